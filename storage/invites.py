"""Queries on invites, the personal deep-link tokens that bind a Telegram account."""

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Invite


async def get_invite_by_digest(session: AsyncSession, *, digest: str) -> Invite | None:
    result = await session.exec(select(Invite).where(Invite.digest == digest))
    return result.first()


async def live_invites(
    session: AsyncSession, *, member_ids: Sequence[int], now: datetime
) -> dict[int, Invite]:
    """Member id → their newest invite that is neither used, revoked nor expired."""
    if not member_ids:
        return {}
    result = await session.exec(
        select(Invite)
        .where(
            col(Invite.member_id).in_(member_ids),
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
            Invite.expires_at > now,
        )
        .order_by(Invite.id)
    )
    return {invite.member_id: invite for invite in result.all()}


async def revoke_open_invites(
    session: AsyncSession, *, member_ids: Sequence[int], now: datetime
) -> None:
    if not member_ids:
        return
    await session.exec(
        update(Invite)
        .where(
            col(Invite.member_id).in_(member_ids),
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )


async def claim_invite(session: AsyncSession, *, invite_id: int, now: datetime) -> bool:
    """Mark the invite used, unless someone else did first (two taps, two phones)."""
    result = await session.exec(
        update(Invite)
        .where(Invite.id == invite_id, col(Invite.used_at).is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1
