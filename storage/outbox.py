"""Queries on the outbox: planning rows once, claiming them, recording how each ended."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OutboxMessage, OutboxStatus, PlannedReminder


async def planned_reminders(session: AsyncSession, *, organisation_id: int) -> set[tuple[str, str]]:
    result = await session.exec(
        select(PlannedReminder.reminder, PlannedReminder.subject).where(
            PlannedReminder.organisation_id == organisation_id
        )
    )
    return {(reminder, subject) for reminder, subject in result.all()}


async def add_planned(
    session: AsyncSession, *, rows: Sequence[dict], markers: Sequence[dict]
) -> None:
    """Insert outbox rows and their planning markers; a row planned before is left alone."""
    dialect = session.bind.dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    if rows:
        await session.exec(
            insert(OutboxMessage).on_conflict_do_nothing(
                index_elements=["reminder", "subject", "member_id"]
            ),
            params=list(rows),
        )
    if markers:
        await session.exec(
            insert(PlannedReminder).on_conflict_do_nothing(index_elements=["reminder", "subject"]),
            params=list(markers),
        )


async def earliest_pending(session: AsyncSession, *, organisation_id: int) -> datetime | None:
    result = await session.exec(
        select(func.min(OutboxMessage.send_after)).where(
            OutboxMessage.organisation_id == organisation_id,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED]),
        )
    )
    return result.one()


async def claim(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    """Take up to `limit` due rows for this sender, leaders' first; others skip locked rows."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.send_after <= now)
        .order_by(OutboxMessage.priority, OutboxMessage.send_after, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.exec(due)).all())
    if ids:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(ids), OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.CLAIMED, claimed_at=now)
        )
    return ids


async def release_abandoned(session: AsyncSession, *, before: datetime) -> tuple[int, int]:
    """After a crash: claimed rows go back to pending; rows handed to Telegram are not resent."""
    back = await session.exec(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.CLAIMED, col(OutboxMessage.claimed_at) < before)
        .values(status=OutboxStatus.PENDING, claimed_at=None)
    )
    unsure = await session.exec(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, col(OutboxMessage.claimed_at) < before)
        .values(status=OutboxStatus.FAILED, error="interrupted while sending; not resent")
    )
    return back.rowcount, unsure.rowcount


async def get_messages(session: AsyncSession, *, ids: Sequence[int]) -> Sequence[OutboxMessage]:
    result = await session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .order_by(OutboxMessage.priority, OutboxMessage.send_after, OutboxMessage.id)
    )
    return result.all()


async def set_status(
    session: AsyncSession,
    *,
    ids: Sequence[int],
    status: OutboxStatus,
    now: datetime | None = None,
    error: str | None = None,
) -> None:
    if not ids:
        return
    values: dict = {"status": status}
    if status == OutboxStatus.SENT:
        values["sent_at"] = now
    if error is not None:
        values["error"] = error[:200]
    await session.exec(update(OutboxMessage).where(col(OutboxMessage.id).in_(ids)).values(**values))


async def retry_later(
    session: AsyncSession, *, ids: Sequence[int], after: datetime, error: str
) -> None:
    if not ids:
        return
    await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .values(
            status=OutboxStatus.PENDING,
            send_after=after,
            claimed_at=None,
            attempts=OutboxMessage.attempts + 1,
            error=error[:200],
        )
    )
