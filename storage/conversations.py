"""Queries on the conversation each member is in.

Read and written on every answer, so in SQLAlchemy Core (prepared statements, no identity
map). Starting or ending a conversation tells the identity cache (`storage.db`), whose
actors know whether they are in one; the answers in between change nothing it holds.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChatState

_TABLE = ChatState.__table__
_READ = select(
    _TABLE.c.member_id, _TABLE.c.flow, _TABLE.c.subject_id, _TABLE.c.stage, _TABLE.c.data
)


@dataclass(frozen=True, slots=True)
class Conversation:
    """The flow a member is in, the row it is about, where it stands, what was typed (JSON)."""

    member_id: int
    flow: str
    subject_id: int | None
    stage: str
    data: str


async def get_state(session: AsyncSession, *, member_id: int) -> Conversation | None:
    connection = await session.connection()
    row = (await connection.execute(_READ.where(_TABLE.c.member_id == member_id))).first()
    return Conversation(*row) if row is not None else None


def _started_or_ended(session: AsyncSession, member_id: int) -> None:
    session.info.setdefault("members_changed", set()).add(member_id)


async def set_state(
    session: AsyncSession,
    *,
    member_id: int,
    flow: str,
    stage: str,
    now: datetime,
    subject_id: int | None = None,
    data: dict | None = None,
) -> Conversation:
    values = {
        "flow": flow,
        "stage": stage,
        "subject_id": subject_id,
        "data": json.dumps(data or {}, ensure_ascii=False),
        "updated_at": now,
    }
    connection = await session.connection()
    changed = await connection.execute(
        update(_TABLE).where(_TABLE.c.member_id == member_id).values(values)
    )
    if changed.rowcount == 0:
        await connection.execute(insert(_TABLE).values(member_id=member_id, **values))
        _started_or_ended(session, member_id)
    return Conversation(member_id, flow, subject_id, stage, values["data"])


async def clear_state(session: AsyncSession, *, member_id: int) -> bool:
    connection = await session.connection()
    removed = await connection.execute(delete(_TABLE).where(_TABLE.c.member_id == member_id))
    if removed.rowcount == 0:
        return False
    _started_or_ended(session, member_id)
    return True
