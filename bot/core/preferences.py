"""A member's own settings."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import LOCALES
from bot.core.access import Actor
from bot.core.actions import Action
from storage import accounts, people


@dataclass(frozen=True)
class ReminderChoice(Action, prefix="remind"):
    """Every announcement, or only my own deadlines."""

    choice: Literal["all", "deadlines"]


@dataclass(frozen=True)
class LanguageChoice(Action, prefix="lang"):
    locale: Annotated[str, r"[A-Za-z_]{2,5}"]


async def set_locale(session: AsyncSession, *, actor: Actor, locale: str) -> bool:
    """Remember the member's language; False for a locale the bot does not speak."""
    if locale not in LOCALES:
        return False
    if actor.locale == locale:
        return True
    member = await people.get_member(session, member_id=actor.member_id)
    member.locale = locale
    return True


async def reminders_muted(session: AsyncSession, *, actor: Actor) -> bool:
    member = await people.get_member(session, member_id=actor.member_id)
    return member.reminders_muted


async def mute_reminders(session: AsyncSession, *, actor: Actor, muted: bool) -> None:
    """Muted: only reminders of one's own deadlines, no announcements."""
    member = await people.get_member(session, member_id=actor.member_id)
    member.reminders_muted = muted


async def set_reachable(
    session: AsyncSession, *, actor: Actor, reachable: bool, now: datetime
) -> None:
    """Marks the account they are using: messages skip a blocked account (and a member
    blocked everywhere is listed for their secretary) until they come back."""
    if actor.account is None:
        return
    account = await accounts.get_account(
        session, channel=actor.account.channel, external_id=actor.account.external_id
    )
    if account is None:
        return
    if reachable:
        account.unreachable_since = None
    elif account.unreachable_since is None:
        account.unreachable_since = now
