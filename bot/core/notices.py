"""What the outbox sender needs from a feature: for each claimed row, a message or a reason
to skip it. Calendar reminders, reviews and rectification each compose their own rows. Group
announcements are queued rendered (`announce_to_groups`)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.actions import Button
from storage import outbox
from storage.models import Member


@dataclass(frozen=True)
class Notice:
    """A message ready to render: template, values and buttons."""

    message_id: int
    member: Member
    template: str
    values: dict
    buttons: tuple[Button, ...] = ()


@dataclass
class Composed:
    notices: list[Notice] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # outbox id → why

    def merge(self, other: "Composed") -> "Composed":
        self.notices += other.notices
        self.skipped |= other.skipped
        return self


def undeliverable(member: Member | None) -> str | None:
    """Why nothing can be sent to this member now, if nothing can (whether the account a
    message goes to still reaches them is the sender's check, `delivery.compose`)."""
    if member is None or not member.active:
        return "not an active member"
    return None


async def announce_to_groups(
    session: AsyncSession,
    *,
    organisation_id: int,
    groups: Sequence[tuple[str, str]],
    subject: str,
    text: str,
    now: datetime,
) -> int:
    """Queue an announcement once for each group chat, as (channel, name) (a WeCom group
    robot), in the caller's transaction: the outbox sender sends each once."""
    rows = [
        {
            "organisation_id": organisation_id,
            "channel": channel,
            "chat": chat,
            "subject": subject,
            "text": text,
            "send_after": now,
        }
        for channel, chat in groups
    ]
    return await outbox.add_group_messages(session, rows=rows)
