"""Queries on what each channel sent each recipient, per minute, for the last hour: the
per-recipient limits' memory across a restart (bot/channels/wecom/pacing.py)."""

from datetime import datetime

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert
from storage.models import SentCount


async def count_sent(
    session: AsyncSession, *, channel: str, recipient: str, minute: datetime, count: int
) -> None:
    """`count` more messages to `recipient` in the minute starting at `minute`."""
    insert = dialect_insert(session)(SentCount).values(
        channel=channel, recipient=recipient, minute=minute, count=count
    )
    await session.exec(
        insert.on_conflict_do_update(
            index_elements=["channel", "recipient", "minute"],
            set_={"count": SentCount.count + insert.excluded.count},
        )
    )


async def sent_since(
    session: AsyncSession, *, channel: str, since: datetime
) -> list[tuple[str, datetime, int]]:
    """(recipient, minute, count) of the minutes that began after `since`, oldest first."""
    result = await session.exec(
        select(SentCount.recipient, SentCount.minute, SentCount.count)
        .where(SentCount.channel == channel, SentCount.minute > since)
        .order_by(SentCount.minute)
    )
    return list(result.all())


async def forget_sent_before(session: AsyncSession, *, channel: str, before: datetime) -> None:
    await session.exec(
        delete(SentCount).where(SentCount.channel == channel, col(SentCount.minute) < before)
    )
