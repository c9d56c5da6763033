"""A member's own settings."""

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import LOCALES
from bot.services.access import Actor
from storage import people


async def set_locale(session: AsyncSession, *, actor: Actor, locale: str) -> bool:
    """Remember the member's language; False for a locale the bot does not speak."""
    if locale not in LOCALES:
        return False
    if actor.locale == locale:
        return True
    member = await people.get_member(session, member_id=actor.member_id)
    member.locale = locale
    return True
