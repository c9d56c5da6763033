"""Queries on the conversation each member is in."""

import json
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChatState


async def get_state(session: AsyncSession, *, member_id: int) -> ChatState | None:
    return await session.get(ChatState, member_id)


async def set_state(
    session: AsyncSession,
    *,
    member_id: int,
    flow: str,
    stage: str,
    now: datetime,
    subject_id: int | None = None,
    data: dict | None = None,
) -> ChatState:
    state = await session.get(ChatState, member_id) or ChatState(
        member_id=member_id, flow=flow, updated_at=now
    )
    state.flow, state.stage, state.subject_id = flow, stage, subject_id
    state.data = json.dumps(data or {}, ensure_ascii=False)
    state.updated_at = now
    session.add(state)
    await session.flush()
    return state


async def clear_state(session: AsyncSession, *, member_id: int) -> bool:
    state = await session.get(ChatState, member_id)
    if state is None:
        return False
    await session.delete(state)
    await session.flush()
    return True
