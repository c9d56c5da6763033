"""Queries on the conversation each member is in.

Read and written on every answer, so in SQLAlchemy Core (prepared statements, no identity
map). The identity cache (`bot.core.access.Identities`) holds each member's conversation
with who they are, read once with them: every state written here is handed to it when the
transaction commits (`storage.db.note_conversation`), so an answer never reads it again.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_insert, note_conversation
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
    upsert = dialect_insert(session)(_TABLE).values(member_id=member_id, **values)
    await connection.execute(
        upsert.on_conflict_do_update(index_elements=[_TABLE.c.member_id], set_=values)
    )
    state = Conversation(member_id, flow, subject_id, stage, values["data"])
    note_conversation(session, member_id, state)
    return state


async def clear_state(session: AsyncSession, *, member_id: int) -> bool:
    connection = await session.connection()
    removed = await connection.execute(delete(_TABLE).where(_TABLE.c.member_id == member_id))
    note_conversation(session, member_id, None)
    return removed.rowcount > 0
