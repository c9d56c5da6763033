"""Queries on the conversation each member is in.

Read and written on every answer, so in SQLAlchemy Core (prepared statements, no identity
map). The identity cache (`bot.core.access.Identities`) holds each member's conversation
with who they are, read once with them: every state written here is handed to it when the
transaction commits (`written`, `storage.db`), so an answer never reads it again.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
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


_WRITTEN = "conversations_written"


async def get_state(session: AsyncSession, *, member_id: int) -> Conversation | None:
    connection = await session.connection()
    row = (await connection.execute(_READ.where(_TABLE.c.member_id == member_id))).first()
    return Conversation(*row) if row is not None else None


def written(session: Session) -> dict[int, Conversation | None]:
    """The conversation states this session's transaction wrote, by member (None: ended);
    taken once it has committed or rolled back (`storage.db`)."""
    return session.info.pop(_WRITTEN, {})


def _wrote(session: AsyncSession, member_id: int, state: Conversation | None) -> None:
    session.info.setdefault(_WRITTEN, {})[member_id] = state


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
    state = Conversation(member_id, flow, subject_id, stage, values["data"])
    _wrote(session, member_id, state)
    return state


async def clear_state(session: AsyncSession, *, member_id: int) -> bool:
    connection = await session.connection()
    removed = await connection.execute(delete(_TABLE).where(_TABLE.c.member_id == member_id))
    _wrote(session, member_id, None)
    return removed.rowcount > 0
