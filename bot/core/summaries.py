"""Quarterly self-summaries (自我小结): one question at a time, saved after every answer.

The form (seed 004): each pledge looked back at (回头看: kept, in progress or not kept, and
why), then 成绩, 问题, 原因 and 下一步. 年老体弱 members get a shorter form (分类指导). A draft
lives in the database, so it survives a restart and can be resumed; until the window closes
a submitted summary can be reopened; afterwards it is read-only, and one submitted late is
accepted and marked late.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from sqlalchemy import bindparam, insert, literal_column, true, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import pledges as pledge_service
from bot.core import rectification, reviewers
from bot.core.access import Actor, speaks_for_branch
from bot.core.actions import Action
from bot.core.calendar import CampaignTime
from bot.core.refusal import Refusal, too_long
from storage import calendar as calendar_queries
from storage.db import dialect_insert
from storage.models import (
    Branch,
    Campaign,
    CampaignStep,
    Category,
    Member,
    Pledge,
    PledgeStatus,
    Rectification,
    Role,
    StepDone,
    StepKind,
    Summary,
    SummaryPledge,
    SummaryRectification,
    SummaryStatus,
)

TEXT_FIELDS = ("achievements", "problems", "causes", "next_steps")
SHORT_FORM = ("achievements", "next_steps")
REQUIRED = frozenset({"achievements"})
CONFIRM = "confirm"
# The statuses a pledge can be given in the summary, by the name its button carries.
PLEDGE_STATUSES = {
    "kept": PledgeStatus.KEPT,
    "in_progress": PledgeStatus.IN_PROGRESS,
    "not_kept": PledgeStatus.NOT_KEPT,
}


@dataclass(frozen=True)
class SummaryStep(Action, prefix="sum"):
    """Skip (or keep) the current answer, submit, or reopen for editing."""

    summary_id: int
    step: Literal["skip", "submit", "edit"]


@dataclass(frozen=True)
class SummaryPledgeStatus(Action, prefix="sump"):
    """How a pledge stands, chosen while writing the summary."""

    summary_id: int
    pledge_id: int
    status: Literal["kept", "in_progress", "not_kept"]

    # As buttons sent before the actions had classes say it: "sum:12:p:34:kept".
    _before = re.compile(r"sum:(\d{1,9}):p:(\d{1,9}):(kept|in_progress|not_kept)")

    @classmethod
    def _read(cls, payload: str) -> "SummaryPledgeStatus | None":
        if found := cls._before.fullmatch(payload):
            return cls(int(found[1]), int(found[2]), found[3])
        return super()._read(payload)


@dataclass(frozen=True)
class ReadSummary(Action, prefix="sumv"):
    summary_id: int


@dataclass(frozen=True)
class Question:
    """The question a summary is at: which field, what it holds now, what it is about."""

    field: str
    current: str
    skippable: bool
    pledge: Pledge | None = None
    item: Rectification | None = None


# A note on one pledge or one rectification item; it becomes the pledge's note whole.
NOTE_LIMIT = pledge_service.NOTE_LIMIT


class Window(StrEnum):
    OPEN = "open"
    LATE = "late"  # the window has closed: a first submission is still taken, marked late
    NOT_YET = "not_yet"
    NONE = "none"  # no quarter in the calendar


@dataclass(frozen=True)
class Quarter:
    step: CampaignStep | None
    window: Window


async def current_quarter(session: AsyncSession, *, organisation_id: int, now: datetime) -> Quarter:
    """The summary step that is open, else the last one closed, else the next one."""
    campaign = await session.get(Campaign, organisation_id)
    if campaign is None:
        return Quarter(None, Window.NONE)
    today = CampaignTime.of(campaign).today(now)
    steps = [
        s
        for s in await calendar_queries.list_steps(session, organisation_id=organisation_id)
        if s.kind == StepKind.SUMMARY
    ]
    for step in steps:
        if step.opens_on <= today <= step.due_on:
            return Quarter(step, Window.OPEN)
    closed = [s for s in steps if s.due_on < today]
    if closed:
        return Quarter(closed[-1], Window.LATE)
    upcoming = [s for s in steps if s.opens_on > today]
    return Quarter(upcoming[0] if upcoming else None, Window.NOT_YET if upcoming else Window.NONE)


def owner_of(actor: Actor, for_branch: bool) -> str:
    return f"branch:{actor.branch_id}" if for_branch else f"member:{actor.member_id}"


def _owns(actor: Actor, summary: Summary | None) -> bool:
    """The summary is this person's to write: their own, or their branch's for its secretary
    (button data names any id; this is where it is checked)."""
    if summary is None or summary.organisation_id != actor.organisation_id:
        return False
    if summary.member_id == actor.member_id:
        return True
    return (
        summary.member_id is None
        and speaks_for_branch(actor)
        and summary.branch_id == actor.branch_id
    )


async def own(session: AsyncSession, *, actor: Actor, summary_id: int | None) -> Summary | None:
    """The summary, if it is this person's to write."""
    summary = await session.get(Summary, summary_id) if summary_id else None
    return summary if _owns(actor, summary) else None


async def find(session: AsyncSession, *, step_id: int, owner: str) -> Summary | None:
    result = await session.exec(
        select(Summary).where(Summary.step_id == step_id, Summary.owner == owner)
    )
    return result.first()


async def start(
    session: AsyncSession,
    *,
    actor: Actor,
    quarter: Quarter,
    for_branch: bool,
    existing: Summary | None,
    now: datetime,
) -> tuple[Summary, list[str]]:
    """This quarter's summary of mine (or my branch's): the draft to continue (`existing`, as
    `find` gave it), or a new one; with its questions (`form`)."""
    if existing is not None:
        return existing, await form(session, existing, actor=actor)
    summary = Summary(
        organisation_id=actor.organisation_id,
        step_id=quarter.step.id,
        owner=owner_of(actor, for_branch),
        member_id=None if for_branch else actor.member_id,
        branch_id=actor.branch_id,
        short_form=not for_branch and actor.category == Category.ELDERLY,
        created_at=now,
        updated_at=now,
    )
    questions = await form(session, summary, actor=actor)
    summary.stage = questions[0]
    session.add(summary)
    await session.flush()
    return summary, questions


async def form(session: AsyncSession, summary: Summary, *, actor: Actor) -> list[str]:
    """The questions of this summary, in order, ending with the confirmation. `actor` is the
    person writing it: the member it belongs to, or their branch's secretary."""
    pledges = await pledge_service.open_pledges(
        session, member_id=summary.member_id, branch_id=summary.branch_id
    )
    short = summary.member_id == actor.member_id and actor.category == Category.ELDERLY
    stages = []
    for pledge in pledges:
        stages.append(f"pledge:{pledge.id}")
        if not short:
            stages.append(f"pledge_note:{pledge.id}")
    # Rectification items still open from an earlier quarter's review are looked back at too.
    items = await rectification.carried_over(
        session, member_id=summary.member_id, branch_id=summary.branch_id, step_id=summary.step_id
    )
    stages += [f"rect:{item.id}" for item in items]
    return [*stages, *(SHORT_FORM if short else TEXT_FIELDS), CONFIRM]


def advance(summary: Summary, stages: list[str], now: datetime) -> str:
    """On to the next question of `stages` (the summary's form, read when it was opened)."""
    position = stages.index(summary.stage) if summary.stage in stages else -1
    summary.stage = stages[min(position + 1, len(stages) - 1)]
    summary.refused_text = None
    summary.updated_at = now
    return summary.stage


def _used(summary: Summary, notes: dict[str, str], leaving_out: str) -> int:
    texts = [getattr(summary, f) for f in TEXT_FIELDS if f != leaving_out]
    texts += [note for stage, note in notes.items() if stage != leaving_out]
    return sum(len(t) for t in texts)


_SUMMARY = Summary.__table__
_PLEDGE_NOTES = SummaryPledge.__table__
_ITEM_NOTES = SummaryRectification.__table__
_NOTES = union_all(
    select(
        literal_column("'pledge_note'").label("kind"),
        _PLEDGE_NOTES.c.pledge_id.label("number"),
        _PLEDGE_NOTES.c.note,
    ).where(_PLEDGE_NOTES.c.summary_id == bindparam("summary_id")),
    select(literal_column("'rect'"), _ITEM_NOTES.c.rectification_id, _ITEM_NOTES.c.note).where(
        _ITEM_NOTES.c.summary_id == bindparam("summary_id")
    ),
)
_NOTES_OF = _NOTES.subquery()
# The summary and its notes, a row per note (one with empty notes when there is none).
_DRAFT = (
    select(
        *_SUMMARY.c,
        _NOTES_OF.c.kind.label("note_kind"),
        _NOTES_OF.c.number.label("note_number"),
        _NOTES_OF.c.note.label("note_text"),
    )
    .select_from(_SUMMARY.outerjoin(_NOTES_OF, true()))
    .where(_SUMMARY.c.id == bindparam("summary_id"))
)
# The answers' writes, prepared once: the summary's columns named by the parameters given.
_SAVE = update(_SUMMARY).where(_SUMMARY.c.id == bindparam("summary_id"))
_SAVE_PLEDGE_NOTE = (
    update(_PLEDGE_NOTES)
    .where(_PLEDGE_NOTES.c.summary_id == bindparam("summary"))
    .where(_PLEDGE_NOTES.c.pledge_id == bindparam("item"))
    .values(note=bindparam("text"))
)
_SAVE_ITEM_NOTE = (
    update(_ITEM_NOTES)
    .where(_ITEM_NOTES.c.summary_id == bindparam("summary"))
    .where(_ITEM_NOTES.c.rectification_id == bindparam("item"))
    .values(note=bindparam("text"))
)
_SET_PLEDGE_STATUS = (
    update(_PLEDGE_NOTES)
    .where(_PLEDGE_NOTES.c.summary_id == bindparam("summary"))
    .where(_PLEDGE_NOTES.c.pledge_id == bindparam("item"))
    .values(status=bindparam("status"))
)
_ADD_PLEDGE_STATUS = insert(_PLEDGE_NOTES).values(
    summary_id=bindparam("summary"), pledge_id=bindparam("item"), status=bindparam("status")
)
_ADD_ITEM_NOTE = insert(_ITEM_NOTES).values(
    summary_id=bindparam("summary"),
    rectification_id=bindparam("item"),
    note=bindparam("text"),
)


async def note_texts(session: AsyncSession, *, summary_id: int) -> dict[str, str]:
    """Each note of a summary by the question it answers (pledge_note:… or rect:…), in one
    statement: the answers' path needs only their texts."""
    connection = await session.connection()
    rows = await connection.execute(_NOTES, {"summary_id": summary_id})
    return {f"{kind}:{number}": note for kind, number, note in rows}


@dataclass(frozen=True)
class Draft:
    """A summary being answered, read in one statement with the texts of its notes (by the
    question each answers). The summary is not the session's: `answer_text` writes it."""

    summary: Summary
    notes: dict[str, str]


async def draft(session: AsyncSession, *, actor: Actor, summary_id: int | None) -> Draft | None:
    """The summary and its notes, if it is this person's to write."""
    if not summary_id:
        return None
    connection = await session.connection()
    rows = (await connection.execute(_DRAFT, {"summary_id": summary_id})).all()
    if not rows:
        return None
    first = rows[0]._mapping
    summary = Summary(**{column.name: first[column.name] for column in _SUMMARY.c})
    if not _owns(actor, summary):
        return None
    notes = {f"{row.note_kind}:{row.note_number}": row.note_text for row in rows if row.note_kind}
    return Draft(summary, notes)


@dataclass(frozen=True)
class Notes:
    """What a summary says of each pledge (回头看) and of each carried-over item."""

    pledges: list[SummaryPledge]
    items: list[SummaryRectification]


async def notes_of(session: AsyncSession, summary: Summary) -> Notes:
    return Notes(await pledge_reviews(session, summary), await _item_notes(session, summary))


async def _item_notes(session: AsyncSession, summary: Summary) -> list[SummaryRectification]:
    items = await session.exec(
        select(SummaryRectification).where(SummaryRectification.summary_id == summary.id)
    )
    return list(items.all())


@dataclass(frozen=True)
class Readable:
    """A summary as people read it: whose, each pledge with its 回头看, each carried item."""

    summary: Summary
    owner: str
    pledges: list[tuple[Pledge, SummaryPledge]]
    carried: list[tuple[Rectification, str]]


async def readable(session: AsyncSession, summary: Summary) -> Readable:
    notes = await notes_of(session, summary)
    pledges = await pledge_service.by_ids(session, ids=[r.pledge_id for r in notes.pledges])
    items = {
        i.id: i
        for i in await rectification.by_ids(session, ids=[n.rectification_id for n in notes.items])
    }
    owner = await (
        session.get(Member, summary.member_id)
        if summary.member_id
        else session.get(Branch, summary.branch_id)
    )
    return Readable(
        summary,
        owner.name,
        [(pledges[r.pledge_id], r) for r in notes.pledges],
        [(items[n.rectification_id], n.note) for n in notes.items],
    )


async def pledge_reviews(session: AsyncSession, summary: Summary) -> list[SummaryPledge]:
    result = await session.exec(select(SummaryPledge).where(SummaryPledge.summary_id == summary.id))
    return list(result.all())


async def answer_text(
    session: AsyncSession,
    *,
    draft: Draft,
    stages: list[str],
    text: str,
    limit: int,
    now: datetime,
) -> Refusal | None:
    """Record the text for the current question, unless the whole would exceed the limit
    (then it is kept aside, so it can be shortened rather than typed again). A text answer
    and the next question are one UPDATE; a note is its own row, then the stage."""
    summary, notes = draft.summary, draft.notes
    stage = summary.stage
    allowed = limit - _used(summary, notes, stage)
    kind, _, number = stage.partition(":")
    if kind in ("pledge_note", "rect"):
        allowed = min(allowed, NOTE_LIMIT)
    connection = await session.connection()
    if len(text) > allowed:
        summary.refused_text = text
        summary.updated_at = now
        await connection.execute(
            _SAVE, {"summary_id": summary.id, "refused_text": text, "updated_at": now}
        )
        return too_long(text, max(allowed, 0), limit=limit)
    answer = {}
    if stage in TEXT_FIELDS:
        setattr(summary, stage, text)
        answer = {stage: text}
    elif kind in ("pledge_note", "rect"):
        # A pledge's note goes in the row written with its status; an item's may be new.
        written = _SAVE_ITEM_NOTE if stage in notes else _ADD_ITEM_NOTE
        await connection.execute(
            _SAVE_PLEDGE_NOTE if kind == "pledge_note" else written,
            {"summary": summary.id, "item": int(number), "text": text},
        )
        notes[stage] = text
    await _advance(connection, summary, stages, now, answer)
    return None


async def _advance(
    connection: AsyncConnection,
    summary: Summary,
    stages: list[str],
    now: datetime,
    answer: dict[str, str] | None = None,
) -> None:
    """On to the next question, written in one UPDATE with the `answer` (its column: text)."""
    advance(summary, stages, now)
    values = {"stage": summary.stage, "refused_text": None, "updated_at": now, **(answer or {})}
    await connection.execute(_SAVE, {"summary_id": summary.id, **values})


async def choose_status(
    session: AsyncSession,
    *,
    draft: Draft,
    stages: list[str],
    pledge_id: int,
    status: PledgeStatus,
    now: datetime,
) -> bool:
    """回头看: how a pledge stands. False when the button is not for the current question."""
    summary = draft.summary
    if summary.stage != f"pledge:{pledge_id}":
        return False
    connection = await session.connection()
    review = {"summary": summary.id, "item": pledge_id, "status": status}
    note = f"pledge_note:{pledge_id}"
    if note in draft.notes:  # every review of the summary is among its notes
        await connection.execute(_SET_PLEDGE_STATUS, review)
    else:
        await connection.execute(_ADD_PLEDGE_STATUS, review)
        draft.notes[note] = ""
    await _advance(connection, summary, stages, now)
    return True


async def skip(session: AsyncSession, *, draft: Draft, stages: list[str], now: datetime) -> bool:
    """Leave an optional question as it is (or keep the earlier answer when editing)."""
    summary = draft.summary
    if summary.stage in REQUIRED and not summary.achievements:
        return False
    await _advance(await session.connection(), summary, stages, now)
    return True


async def reopen(
    session: AsyncSession, *, summary: Summary, quarter: Quarter, actor: Actor, now: datetime
) -> list[str] | None:
    """Back to the first question, keeping the answers; only while the window is open. The
    questions (`form`), or None when it stays closed."""
    if quarter.window != Window.OPEN or summary.step_id != quarter.step.id:
        return None
    questions = await form(session, summary, actor=actor)
    summary.status = SummaryStatus.DRAFT
    summary.stage = questions[0]
    summary.updated_at = now
    return questions


async def submit(
    session: AsyncSession, *, summary: Summary, quarter: Quarter, actor: Actor, now: datetime
) -> bool:
    """Submit once: a double tap, or two phones at once, count once. Late is marked late."""
    if summary.stage != CONFIRM or not summary.achievements:
        return False
    late = quarter.window == Window.LATE or summary.step_id != quarter.step.id
    result = await session.exec(
        update(Summary)
        .where(Summary.id == summary.id, Summary.status == SummaryStatus.DRAFT)
        .values(status=SummaryStatus.SUBMITTED, submitted_at=now, late=late, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    # The 回头看 is how the pledges stand now.
    for review in await pledge_reviews(session, summary):
        pledge = await session.get(Pledge, review.pledge_id)
        if pledge is not None and pledge.status != PledgeStatus.WITHDRAWN:
            pledge.status, pledge.updated_at = review.status, now
            if review.note:
                pledge.status_note = review.note
    author = summary.member_id or actor.member_id
    for noted in await _item_notes(session, summary):
        await rectification.note_from_summary(
            session, item_id=noted.rectification_id, author_id=author, note=noted.note, now=now
        )
    if summary.member_id is not None:
        await session.exec(
            dialect_insert(session)(StepDone)
            .values(step_id=summary.step_id, member_id=summary.member_id, done_at=now)
            .on_conflict_do_nothing()
        )
    # What the UPDATE wrote, without reading the row back.
    for name, value in (
        ("status", SummaryStatus.SUBMITTED),
        ("submitted_at", now),
        ("late", late),
        ("updated_at", now),
    ):
        set_committed_value(summary, name, value)
    return True


async def question(
    session: AsyncSession, *, summary: Summary, notes: dict[str, str] | None = None
) -> Question:
    """The current question of a summary being written (not the pledge or confirm stages'
    buttons: see `pledge_asked`); `notes` are its notes' texts when they are known."""
    stage = summary.stage
    if stage in TEXT_FIELDS:
        current = getattr(summary, stage, "")
    else:
        if notes is None:
            notes = await note_texts(session, summary_id=summary.id)
        current = notes.get(stage, "")
    kind, _, number = stage.partition(":")
    return Question(
        field=kind,
        current=current,
        skippable=stage not in REQUIRED or bool(current),
        pledge=await session.get(Pledge, int(number)) if kind == "pledge_note" else None,
        item=await session.get(Rectification, int(number)) if kind == "rect" else None,
    )


async def pledge_asked(session: AsyncSession, *, summary: Summary) -> Pledge | None:
    """The pledge whose status the summary asks for now, if it is at such a stage."""
    kind, _, number = summary.stage.partition(":")
    return await session.get(Pledge, int(number)) if kind == "pledge" else None


async def readable_by(session: AsyncSession, *, actor: Actor, summary_id: int) -> Summary | None:
    """A submitted summary this person may read, or None."""
    summary = await session.get(Summary, summary_id)
    if summary is None or summary.status != SummaryStatus.SUBMITTED:
        return None
    return summary if await may_read(session, actor=actor, summary=summary) else None


async def may_read(session: AsyncSession, *, actor: Actor, summary: Summary) -> bool:
    """The member, their branch secretary and their reviewer; nobody else."""
    if summary.organisation_id != actor.organisation_id:
        return False
    if summary.member_id == actor.member_id:
        return True
    if actor.has(Role.SECRETARY) and actor.branch_id == summary.branch_id:
        return True
    reviewer = await reviewers.reviewer_of(
        session, organisation_id=actor.organisation_id, reviewee=summary.owner
    )
    return reviewer == actor.member_id


@dataclass(frozen=True)
class BranchRow:
    member: Member
    summary: Summary | None


async def branch_overview(session: AsyncSession, *, actor: Actor, step_id: int) -> list[BranchRow]:
    """For the secretary: each member of the branch and their summary, if any."""
    members = (
        await session.exec(
            select(Member)
            .where(Member.branch_id == actor.branch_id, Member.active)
            .order_by(Member.id)
        )
    ).all()
    summaries = {
        s.member_id: s
        for s in (
            await session.exec(
                select(Summary).where(
                    Summary.step_id == step_id, col(Summary.member_id).in_([m.id for m in members])
                )
            )
        ).all()
    }
    return [BranchRow(member, summaries.get(member.id)) for member in members]
