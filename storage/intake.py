"""Queries on the intake: updates stored on arrival, once each, until they are processed."""

from collections.abc import Sequence

from sqlmodel import col, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import IntakeUpdate


async def accept(
    session: AsyncSession, *, channel: str, update_id: str, payload: str | None
) -> bool:
    """Store an arriving update; False if it was stored before (a duplicate delivery)."""
    result = await session.exec(
        dialect_insert(session)(IntakeUpdate)
        .values(channel=channel, update_id=update_id, payload=payload, done=False)
        .on_conflict_do_nothing(index_elements=["channel", "update_id"])
        .returning(IntakeUpdate.id)
    )
    return result.first() is not None


async def mark_done(
    session: AsyncSession, *, channel: str, update_id: str, replies: str | None = None
) -> None:
    """Processed: never again, and its content is no longer kept; its `replies` (rendered)
    are kept until they have been sent."""
    await session.exec(
        update(IntakeUpdate)
        .where(IntakeUpdate.channel == channel, IntakeUpdate.update_id == update_id)
        .values(done=True, payload=None, replies=replies, replies_handed=0)
    )


async def finish(session: AsyncSession, *, channel: str, update_id: str) -> None:
    """Processed, if no handler said so already (its replies, if any, are left alone)."""
    await session.exec(
        update(IntakeUpdate)
        .where(
            IntakeUpdate.channel == channel,
            IntakeUpdate.update_id == update_id,
            ~col(IntakeUpdate.done),
        )
        .values(done=True, payload=None)
    )


async def replies_handed(
    session: AsyncSession, *, channel: str, update_id: str, handed: int | None
) -> None:
    """`handed` replies have been handed to the channel; None: all of them, forget them."""
    values = {"replies": None} if handed is None else {"replies_handed": handed}
    await session.exec(
        update(IntakeUpdate)
        .where(IntakeUpdate.channel == channel, IntakeUpdate.update_id == update_id)
        .values(**values)
    )


async def unsent_replies(session: AsyncSession, *, channel: str) -> Sequence[tuple[str, str, int]]:
    """Processed updates whose replies had not all been handed over: (update id, replies,
    how many were)."""
    result = await session.exec(
        select(IntakeUpdate.update_id, IntakeUpdate.replies, IntakeUpdate.replies_handed)
        .where(IntakeUpdate.channel == channel, col(IntakeUpdate.replies).is_not(None))
        .order_by(IntakeUpdate.id)
    )
    return result.all()


async def waiting(session: AsyncSession, *, channel: str) -> Sequence[tuple[str, str]]:
    """Stored updates not yet processed, oldest first, as (update id, payload)."""
    result = await session.exec(
        select(IntakeUpdate.update_id, IntakeUpdate.payload)
        .where(
            IntakeUpdate.channel == channel,
            ~col(IntakeUpdate.done),
            col(IntakeUpdate.payload).is_not(None),
        )
        .order_by(IntakeUpdate.id)
    )
    return result.all()


async def forget_old(session: AsyncSession, *, channel: str, keep: int) -> int:
    """Forget all but the newest `keep` updates of a channel, except those still to be
    processed: a duplicate comes soon after the original, or not at all."""
    newest = (
        await session.exec(select(func.max(IntakeUpdate.id)).where(IntakeUpdate.channel == channel))
    ).one()
    if newest is None:
        return 0
    waiting = ~col(IntakeUpdate.done) & col(IntakeUpdate.payload).is_not(None)
    answering = col(IntakeUpdate.replies).is_not(None)
    result = await session.exec(
        IntakeUpdate.__table__.delete().where(
            IntakeUpdate.channel == channel, IntakeUpdate.id <= newest - keep, ~waiting, ~answering
        )
    )
    return result.rowcount
