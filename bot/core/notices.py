"""What the outbox sender needs from a feature: for each claimed row, a message or a reason
to skip it. Calendar reminders, reviews and rectification each compose their own rows."""

from dataclasses import dataclass, field

from bot.core.actions import Button
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
