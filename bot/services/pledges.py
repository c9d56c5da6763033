"""Public pledges (公开承诺): made, kept public within the branch, reported on until kept."""

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.access import Actor, speaks_for_branch
from bot.services.calendar import pledge_window_open
from storage.models import Member, Pledge, PledgeProgress, PledgeStatus

GOAL_LIMIT = 500
MEASURES_LIMIT = 1000
NOTE_LIMIT = 500
PROGRESS_LIMIT = 1000
_ONE_MESSAGE = re.compile(
    r"^(?P<goal>[^|｜]+)[|｜](?P<measures>[^|｜]+)(?:[|｜](?P<due>.+))?$", re.S
)


class PledgeRefusal(StrEnum):
    WINDOW_CLOSED = "window_closed"  # outside the pledge window: progress only
    NOT_YOURS = "not_yours"  # someone else's, or gone
    NOT_SECRETARY = "not_secretary"  # branch pledges are the secretary's to record


@dataclass(frozen=True)
class PledgeText:
    goal: str
    measures: str
    due_on: date | None


def parse_due(text: str) -> date | None:
    """A date as people type it: 2026-12-31, 2026/12/31, 2026年12月31日, 2026.12.31."""
    match = re.fullmatch(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*", text)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_one_message(text: str) -> PledgeText | None:
    """`目标 | 措施 | 2026-12-31` (the date optional) as one pledge, or None."""
    match = _ONE_MESSAGE.match(text.strip())
    if not match:
        return None
    due = match.group("due")
    due_on = parse_due(due) if due else None
    if due and due_on is None:
        return None
    goal, measures = match.group("goal").strip(), match.group("measures").strip()
    return PledgeText(goal, measures, due_on) if goal and measures else None


def _refusal(actor: Actor, pledge: Pledge | None) -> PledgeRefusal | None:
    if (
        pledge is None
        or pledge.organisation_id != actor.organisation_id
        or pledge.status == PledgeStatus.WITHDRAWN
    ):
        return PledgeRefusal.NOT_YOURS
    if pledge.member_id is None:
        if not (speaks_for_branch(actor) and actor.branch_id == pledge.branch_id):
            return PledgeRefusal.NOT_YOURS
    elif pledge.member_id != actor.member_id:
        return PledgeRefusal.NOT_YOURS
    return None


async def add(
    session: AsyncSession, *, actor: Actor, text: PledgeText, for_branch: bool, now: datetime
) -> Pledge | PledgeRefusal:
    if for_branch and not speaks_for_branch(actor):
        return PledgeRefusal.NOT_SECRETARY
    if not await pledge_window_open(session, organisation_id=actor.organisation_id, now=now):
        return PledgeRefusal.WINDOW_CLOSED
    pledge = Pledge(
        organisation_id=actor.organisation_id,
        branch_id=actor.branch_id,
        member_id=None if for_branch else actor.member_id,
        goal=text.goal[:GOAL_LIMIT],
        measures=text.measures[:MEASURES_LIMIT],
        due_on=text.due_on,
        created_by=actor.member_id,
        created_at=now,
        updated_at=now,
    )
    session.add(pledge)
    await session.flush()
    return pledge


async def get_changeable(
    session: AsyncSession, *, actor: Actor, pledge_id: int, now: datetime, editing: bool
) -> Pledge | PledgeRefusal:
    """The pledge, if this person may change it now (editing and withdrawing need the window)."""
    pledge = await session.get(Pledge, pledge_id)
    refusal = _refusal(actor, pledge)
    if refusal:
        return refusal
    if editing and not await pledge_window_open(
        session, organisation_id=actor.organisation_id, now=now
    ):
        return PledgeRefusal.WINDOW_CLOSED
    return pledge


async def edit(
    session: AsyncSession, *, actor: Actor, pledge_id: int, text: PledgeText, now: datetime
) -> Pledge | PledgeRefusal:
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=True)
    if isinstance(pledge, PledgeRefusal):
        return pledge
    pledge.goal, pledge.measures, pledge.due_on = (
        text.goal[:GOAL_LIMIT],
        text.measures[:MEASURES_LIMIT],
        text.due_on,
    )
    pledge.updated_at = now
    return pledge


async def withdraw(
    session: AsyncSession, *, actor: Actor, pledge_id: int, now: datetime
) -> Pledge | PledgeRefusal:
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=True)
    if isinstance(pledge, PledgeRefusal):
        return pledge
    pledge.status, pledge.updated_at = PledgeStatus.WITHDRAWN, now
    return pledge


async def set_status(
    session: AsyncSession,
    *,
    actor: Actor,
    pledge_id: int,
    status: PledgeStatus,
    note: str | None,
    now: datetime,
) -> Pledge | PledgeRefusal:
    """进行中 / 已兑现 / 未兑现 (with the reason): at any time, it is how a pledge is kept."""
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=False)
    if isinstance(pledge, PledgeRefusal):
        return pledge
    pledge.status = status
    pledge.status_note = (note or "")[:NOTE_LIMIT] or None
    pledge.updated_at = now
    return pledge


async def record_progress(
    session: AsyncSession,
    *,
    actor: Actor,
    pledge_id: int,
    note: str,
    evidence: tuple[str, str] | None,
    now: datetime,
) -> PledgeProgress | PledgeRefusal:
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=False)
    if isinstance(pledge, PledgeRefusal):
        return pledge
    progress = PledgeProgress(
        pledge_id=pledge.id,
        author_id=actor.member_id,
        note=note[:PROGRESS_LIMIT],
        evidence_file_id=evidence[0] if evidence else None,
        evidence_kind=evidence[1] if evidence else None,
        created_at=now,
    )
    pledge.updated_at = now
    session.add(progress)
    await session.flush()
    return progress


@dataclass(frozen=True)
class PledgeView:
    pledge: Pledge
    owner: str | None  # the member's name; None for the branch's own pledge
    progress: int  # how many progress notes


async def _views(session: AsyncSession, pledges: list[Pledge]) -> list[PledgeView]:
    member_ids = {p.member_id for p in pledges if p.member_id}
    names = {
        m.id: m.name
        for m in (await session.exec(select(Member).where(col(Member.id).in_(member_ids)))).all()
    }
    counts: dict[int, int] = {}
    if pledges:
        rows = await session.exec(
            select(PledgeProgress.pledge_id).where(
                col(PledgeProgress.pledge_id).in_([p.id for p in pledges])
            )
        )
        for pledge_id in rows.all():
            counts[pledge_id] = counts.get(pledge_id, 0) + 1
    return [
        PledgeView(p, names.get(p.member_id) if p.member_id else None, counts.get(p.id, 0))
        for p in pledges
    ]


async def mine(session: AsyncSession, *, actor: Actor) -> list[PledgeView]:
    result = await session.exec(
        select(Pledge)
        .where(Pledge.member_id == actor.member_id, Pledge.status != PledgeStatus.WITHDRAWN)
        .order_by(Pledge.id)
    )
    return await _views(session, list(result.all()))


async def of_branch(session: AsyncSession, *, actor: Actor) -> list[PledgeView]:
    """Every pledge of my branch, names included: public within the branch, never outside it."""
    result = await session.exec(
        select(Pledge)
        .where(Pledge.branch_id == actor.branch_id, Pledge.status != PledgeStatus.WITHDRAWN)
        .order_by(col(Pledge.member_id).is_not(None), Pledge.member_id, Pledge.id)
    )
    return await _views(session, list(result.all()))


async def open_pledges(
    session: AsyncSession, *, member_id: int | None, branch_id: int
) -> list[Pledge]:
    """The pledges a summary looks back at: not withdrawn (a member's, or the branch's)."""
    query = select(Pledge).where(Pledge.status != PledgeStatus.WITHDRAWN)
    if member_id is None:
        query = query.where(Pledge.branch_id == branch_id, col(Pledge.member_id).is_(None))
    else:
        query = query.where(Pledge.member_id == member_id)
    return list((await session.exec(query.order_by(Pledge.id))).all())


async def by_ids(session: AsyncSession, *, ids: list[int]) -> dict[int, Pledge]:
    """These pledges, by id, in one query."""
    if not ids:
        return {}
    result = await session.exec(select(Pledge).where(col(Pledge.id).in_(ids)))
    return {pledge.id: pledge for pledge in result.all()}
