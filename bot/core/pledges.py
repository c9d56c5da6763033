"""Public pledges (公开承诺): made, kept public within the branch, reported on until kept."""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import refusal
from bot.core.access import Actor, speaks_for_branch
from bot.core.actions import Action
from bot.core.calendar import campaign_end, organisation_today, pledge_window_open
from bot.core.contract import FileRef
from bot.core.refusal import Refusal
from storage.models import Member, Pledge, PledgeProgress, PledgeStatus

GOAL_LIMIT = 500
MEASURES_LIMIT = 1000
NOTE_LIMIT = 500
PROGRESS_LIMIT = 1000
LIMITS = {
    "goal": GOAL_LIMIT,
    "measures": MEASURES_LIMIT,
    "note": NOTE_LIMIT,
    "progress": PROGRESS_LIMIT,
}
# How far ahead a deadline may lie when the campaign's calendar does not say (or has ended).
DUE_HORIZON = timedelta(days=3 * 365)
_ONE_MESSAGE = re.compile(
    r"^(?P<goal>[^|｜]+)[|｜](?P<measures>[^|｜]+)(?:[|｜](?P<due>.+))?$", re.S
)


@dataclass(frozen=True)
class PledgeStep(Action, prefix="pledge"):
    """A button on one pledge: open it, report on it, edit or withdraw it."""

    pledge_id: int
    step: Literal[
        "open", "kept", "inprogress", "progress", "notkept", "edit", "withdraw", "withdraw_yes"
    ]


@dataclass(frozen=True)
class NoDeadline(Action, prefix="pledge:due:none"):
    """The answer "no deadline" to the last question of a new pledge."""


class PledgeRefusal(StrEnum):
    WINDOW_CLOSED = "window_closed"  # outside the pledge window: progress only
    NOT_YOURS = "not_yours"  # someone else's, or gone
    NOT_SECRETARY = "not_secretary"  # branch pledges are the secretary's to record


def too_long(part: str, text: str) -> Refusal | None:
    """`part` is a key of LIMITS; the refusal names it, so the member knows which to shorten."""
    return refusal.over(text, LIMITS[part], pledge_part=part)


def refused(reason: PledgeRefusal, *, toast: bool = False) -> Refusal:
    return Refusal("pledge_refused_short" if toast else "pledge_refused", {"reason": reason}, toast)


class DueProblem(StrEnum):
    UNREADABLE = "unreadable"
    PAST = "past"
    TOO_FAR = "too_far"


@dataclass(frozen=True)
class DueRefusal:
    problem: DueProblem
    earliest: date  # the organisation's today
    latest: date  # the campaign's end, or DUE_HORIZON from today


@dataclass(frozen=True)
class PledgeText:
    goal: str
    measures: str
    due_on: date | None

    @property
    def too_long(self) -> Refusal | None:
        return too_long("goal", self.goal) or too_long("measures", self.measures)


@dataclass(frozen=True)
class OneMessage:
    """`/pledge 目标 | 措施 | 日期`, split: the date as typed (read with `read_due`)."""

    goal: str
    measures: str
    due: str | None


# --- reading a deadline ------------------------------------------------------------------

_CHINESE_DIGITS = {c: n for n, c in enumerate("〇一二三四五六七八九")} | {"零": 0, "○": 0, "两": 2}
_CHINESE_NUMBER = re.compile("[〇○零一二两三四五六七八九十]+")
_FULL = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?")
_MONTH_DAY = re.compile(r"(\d{1,2})[-/.月](\d{1,2})[日号]?")
_MONTH_END = re.compile(r"(?:(\d{4})年)?(\d{1,2})月[底末]")
_YEAR_END = re.compile(r"([今明])?年年?[底末]")
_BEFORE = re.compile(r"(之前|以前|前|为止)$")


def _arabic(numeral: str) -> str:
    """十二 → 12, 三十一 → 31, 二〇二六 → 2026."""
    if "十" not in numeral:
        return "".join(str(_CHINESE_DIGITS[c]) for c in numeral)
    tens, _, units = numeral.partition("十")
    return str(
        (_CHINESE_DIGITS.get(tens, 1) if tens else 1) * 10
        + (_CHINESE_DIGITS.get(units, 0) if units else 0)
    )


def _on_or_after(today: date, month: int, day: int) -> date | None:
    """The next such date: this year's if it has not passed, else the next year that has it."""
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def parse_due(text: str, *, today: date) -> date | None:
    """A date as people type it: 2026-12-31, 2026/12/31, 2026.12.31, 2026年12月31日(号),
    二〇二六年十二月三十一日, ２０２６年１２月３１日; without the year (12月31日, 12-31) the next
    such date; 12月底, 2026年12月底, 年底, 明年底; any of them with 前 (12月31日前)."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    text = _CHINESE_NUMBER.sub(lambda m: _arabic(m.group()), _BEFORE.sub("", text))
    try:
        if match := _FULL.fullmatch(text):
            return date(*(int(part) for part in match.groups()))
        if match := _MONTH_DAY.fullmatch(text):
            return _on_or_after(today, int(match.group(1)), int(match.group(2)))
        if match := _MONTH_END.fullmatch(text):
            year, month = match.groups()
            if not 1 <= int(month) <= 12:
                return None
            if year:
                return _month_end(int(year), int(month))
            end = _month_end(today.year, int(month))
            return end if end >= today else _month_end(today.year + 1, int(month))
        if match := _YEAR_END.fullmatch(text):
            return date(today.year + (match.group(1) == "明"), 12, 31)
    except ValueError:
        return None
    return None


async def read_due(
    session: AsyncSession, *, organisation_id: int, text: str, now: datetime
) -> date | Refusal:
    """A deadline as typed, between the organisation's today and the campaign's end (or a
    few years ahead when the calendar does not say): a pledge is for the campaign."""
    today = await organisation_today(session, organisation_id=organisation_id, now=now)
    end = await campaign_end(session, organisation_id=organisation_id)
    latest = end if end is not None and end >= today else today + DUE_HORIZON
    due_on = parse_due(text, today=today)
    if due_on is None:
        return Refusal(
            "pledge_bad_date", {"due_refusal": DueRefusal(DueProblem.UNREADABLE, today, latest)}
        )
    if due_on < today:
        return Refusal(
            "pledge_bad_date", {"due_refusal": DueRefusal(DueProblem.PAST, today, latest)}
        )
    if due_on > latest:
        return Refusal(
            "pledge_bad_date", {"due_refusal": DueRefusal(DueProblem.TOO_FAR, today, latest)}
        )
    return due_on


def parse_one_message(text: str) -> OneMessage | None:
    """`目标 | 措施 | 2026-12-31` (the date optional), or None."""
    match = _ONE_MESSAGE.match(text.strip())
    if not match:
        return None
    goal, measures = match.group("goal").strip(), match.group("measures").strip()
    due = (match.group("due") or "").strip() or None
    return OneMessage(goal, measures, due) if goal and measures else None


def _refusal(actor: Actor, pledge: Pledge | None) -> Refusal | None:
    if (
        pledge is None
        or pledge.organisation_id != actor.organisation_id
        or pledge.status == PledgeStatus.WITHDRAWN
    ):
        return refused(PledgeRefusal.NOT_YOURS)
    if pledge.member_id is None:
        if not (speaks_for_branch(actor) and actor.branch_id == pledge.branch_id):
            return refused(PledgeRefusal.NOT_YOURS)
    elif pledge.member_id != actor.member_id:
        return refused(PledgeRefusal.NOT_YOURS)
    return None


async def add(
    session: AsyncSession, *, actor: Actor, text: PledgeText, for_branch: bool, now: datetime
) -> Pledge | Refusal:
    if too_long_text := text.too_long:
        return too_long_text
    if for_branch and not speaks_for_branch(actor):
        return refused(PledgeRefusal.NOT_SECRETARY)
    if not await pledge_window_open(session, organisation_id=actor.organisation_id, now=now):
        return refused(PledgeRefusal.WINDOW_CLOSED)
    pledge = Pledge(
        organisation_id=actor.organisation_id,
        branch_id=actor.branch_id,
        member_id=None if for_branch else actor.member_id,
        goal=text.goal,
        measures=text.measures,
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
) -> Pledge | Refusal:
    """The pledge, if this person may change it now (editing and withdrawing need the window)."""
    pledge = await session.get(Pledge, pledge_id)
    refusal = _refusal(actor, pledge)
    if refusal:
        return refusal
    if editing and not await pledge_window_open(
        session, organisation_id=actor.organisation_id, now=now
    ):
        return refused(PledgeRefusal.WINDOW_CLOSED)
    return pledge


async def edit(
    session: AsyncSession, *, actor: Actor, pledge_id: int, text: PledgeText, now: datetime
) -> Pledge | Refusal:
    if too_long_text := text.too_long:
        return too_long_text
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=True)
    if isinstance(pledge, Refusal):
        return pledge
    pledge.goal, pledge.measures, pledge.due_on = text.goal, text.measures, text.due_on
    pledge.updated_at = now
    return pledge


async def withdraw(
    session: AsyncSession, *, actor: Actor, pledge_id: int, now: datetime
) -> Pledge | Refusal:
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=True)
    if isinstance(pledge, Refusal):
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
) -> Pledge | Refusal:
    """进行中 / 已兑现 / 未兑现 (with the reason): at any time, it is how a pledge is kept."""
    if too_long_text := too_long("note", note or ""):
        return too_long_text
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=False)
    if isinstance(pledge, Refusal):
        return pledge
    pledge.status = status
    pledge.status_note = note or None
    pledge.updated_at = now
    return pledge


async def record_progress(
    session: AsyncSession,
    *,
    actor: Actor,
    pledge_id: int,
    note: str,
    evidence: FileRef | None,
    now: datetime,
) -> PledgeProgress | Refusal:
    if too_long_text := too_long("progress", note):
        return too_long_text
    pledge = await get_changeable(session, actor=actor, pledge_id=pledge_id, now=now, editing=False)
    if isinstance(pledge, Refusal):
        return pledge
    progress = PledgeProgress(
        pledge_id=pledge.id,
        author_id=actor.member_id,
        note=note,
        evidence_file_id=evidence.file_id if evidence else None,
        evidence_kind=evidence.kind if evidence else None,
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
