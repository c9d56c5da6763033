"""Rectification (整改落实, seed 004): each demand of a review becomes an item with a due date,
which the reviewee reports on until the reviewer confirms it closed.

Items of a member are theirs to report; a branch's are its secretary's. The reviewer confirms
or reopens. Reminders before the due date and when it has passed, and the news of a report
or a reopening, go through the outbox, each once. Items still open are looked back at in the
next quarter's self-summary.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import Actor
from bot.core.actions import Action, Button
from bot.core.calendar import CampaignTime, organisation_today
from bot.core.notices import Composed, Notice, undeliverable
from storage import outbox, people
from storage.models import (
    Branch,
    CampaignStep,
    Member,
    OutboxMessage,
    Rectification,
    RectificationProgress,
    RectificationStatus,
    Review,
    Role,
    StepKind,
)


@dataclass(frozen=True)
class ReportItem(Action, prefix="rc"):
    """The member reports progress on an item, or that it is done."""

    item_id: int
    report: Literal["progress", "done"]


@dataclass(frozen=True)
class JudgeItem(Action, prefix="rcc"):
    """The reviewer confirms a reported item, or reopens it."""

    item_id: int
    judgement: Literal["confirm", "reopen"]


NOTE_LIMIT = 1000
# Without a 整改落实 step in the calendar (or once it has passed), items are due this much later.
DEFAULT_TIME = timedelta(days=30)
DUE_SOON = "rectify_due_soon"
OVERDUE = "rectify_overdue"
REPORTED = "rectify_reported"  # to the reviewer: the reviewee says it is done
REOPENED = "rectify_reopened"  # to the reviewee: the reviewer reopened it
CONFIRMED = "rectify_confirmed"  # to the reviewee: the reviewer closed it
NOTICES = frozenset({DUE_SOON, OVERDUE, REPORTED, REOPENED, CONFIRMED})
OVERDUE_USEFUL_FOR = timedelta(days=7)
NEWS_USEFUL_FOR = timedelta(days=30)

_BREAK = re.compile(r"\n+|[；;]")
# Numbering at the start of an item ("1、", "2.", "（3）", "四、", "-"), never a date's "12.31".
_NUMBERING = re.compile(
    r"^\s*(?:\d{1,2}[、)）]|\d{1,2}[.．](?!\d)|[（(]\d{1,2}[)）]|[一二三四五六七八九十]{1,2}、|[-·•*])\s*"
)


def split_items(text: str) -> list[str]:
    """One item per line or per "；", its numbering ("1、", "（2）") taken off."""
    items = (_NUMBERING.sub("", piece).strip(" \t。，,") for piece in _BREAK.split(text))
    return [item for item in items if item]


async def recipient_of(
    session: AsyncSession, *, organisation_id: int, member_id: int | None, branch_id: int
) -> int | None:
    """Who answers for a member's review or item: the member; for a branch, its secretary."""
    if member_id is not None:
        return member_id
    return await people.first_with_role(
        session, organisation_id=organisation_id, role=Role.SECRETARY, branch_id=branch_id
    )


async def due_date(session: AsyncSession, *, review: Review, now: datetime) -> date:
    """The end of the quarter's 整改落实 step, or a month from now when there is none left."""
    today = await organisation_today(session, organisation_id=review.organisation_id, now=now)
    summary_step = await session.get(CampaignStep, review.step_id)
    step = (
        await session.exec(
            select(CampaignStep).where(
                CampaignStep.organisation_id == review.organisation_id,
                CampaignStep.kind == StepKind.RECTIFICATION,
                CampaignStep.quarter == summary_step.quarter,
                CampaignStep.active,
            )
        )
    ).first()
    if step is not None and step.due_on >= today:
        return step.due_on
    return today + DEFAULT_TIME


async def raise_items(
    session: AsyncSession, *, review: Review, now: datetime
) -> list[Rectification]:
    """The items a sent review asks for: each 整改要求, and each 指出问题 if chosen."""
    parts = [("requirements", review.requirements)]
    if review.track_problems:
        parts.append(("problems", review.problems))
    due_on = await due_date(session, review=review, now=now)
    items = [
        Rectification(
            organisation_id=review.organisation_id,
            review_id=review.id,
            member_id=review.member_id,
            branch_id=review.branch_id,
            text=text,
            source=source,
            due_on=due_on,
            created_at=now,
            updated_at=now,
        )
        for source, part in parts
        for text in split_items(part)
    ]
    session.add_all(items)
    await session.flush()
    return items


def preview_items(review: Review) -> list[str]:
    """What sending would raise, for the reviewer's preview."""
    return split_items(review.requirements) + (
        split_items(review.problems) if review.track_problems else []
    )


async def by_ids(session: AsyncSession, *, ids: list[int]) -> list[Rectification]:
    if not ids:
        return []
    result = await session.exec(select(Rectification).where(col(Rectification.id).in_(ids)))
    return list(result.all())


async def of_review(session: AsyncSession, *, review_id: int) -> list[Rectification]:
    result = await session.exec(
        select(Rectification).where(Rectification.review_id == review_id).order_by(Rectification.id)
    )
    return list(result.all())


async def answerable_for_open_items(session: AsyncSession, *, organisation_id: int) -> set[int]:
    """Members with an item still open: their own, or their branch's as its secretary."""
    result = await session.exec(
        select(Rectification.member_id, Rectification.branch_id)
        .where(
            Rectification.organisation_id == organisation_id,
            Rectification.status == RectificationStatus.OPEN,
        )
        .distinct()
    )
    answerable = set()
    for member_id, branch_id in result.all():
        answerable.add(
            await recipient_of(
                session, organisation_id=organisation_id, member_id=member_id, branch_id=branch_id
            )
        )
    return answerable - {None}


async def of_reviewee(
    session: AsyncSession, *, member_id: int | None, branch_id: int
) -> list[Rectification]:
    """Every item ever raised for this member (or this branch), oldest first."""
    result = await session.exec(
        select(Rectification).where(_owner(member_id, branch_id)).order_by(Rectification.id)
    )
    return list(result.all())


def _owner(member_id: int | None, branch_id: int):
    if member_id is not None:
        return Rectification.member_id == member_id
    return (Rectification.branch_id == branch_id) & col(Rectification.member_id).is_(None)


def _owned_by(actor: Actor):
    """Items this person answers for: their own, and their branch's if they are its secretary."""
    mine = _owner(actor.member_id, actor.branch_id)
    if not actor.has(Role.SECRETARY):
        return mine
    return mine | _owner(None, actor.branch_id)


async def to_report(session: AsyncSession, *, actor: Actor) -> list[Rectification]:
    """My items not yet closed, oldest due first."""
    result = await session.exec(
        select(Rectification)
        .where(_owned_by(actor), Rectification.status != RectificationStatus.CONFIRMED)
        .order_by(Rectification.due_on, Rectification.id)
    )
    return list(result.all())


@dataclass(frozen=True)
class Reported:
    item: Rectification
    owner: str


async def to_confirm(session: AsyncSession, *, actor: Actor) -> list[Reported]:
    """Items of the people I reviewed that they say are done, waiting for my word."""
    result = await session.exec(
        select(Rectification, Member.name, Branch.name)
        .join(Review, col(Review.id) == Rectification.review_id)
        .join(Branch, col(Branch.id) == Rectification.branch_id)
        .join(Member, col(Member.id) == Rectification.member_id, isouter=True)
        .where(
            Review.reviewer_id == actor.member_id,
            Rectification.status == RectificationStatus.DONE,
        )
        .order_by(Rectification.done_at, Rectification.id)
    )
    return [Reported(item, member or branch) for item, member, branch in result.all()]


async def own(session: AsyncSession, *, actor: Actor, item_id: int) -> Rectification | None:
    """The item, if it is this person's to report on (button data names any id)."""
    item = await session.get(Rectification, item_id)
    if item is None or item.organisation_id != actor.organisation_id:
        return None
    if item.member_id == actor.member_id or (
        item.member_id is None and actor.has(Role.SECRETARY) and item.branch_id == actor.branch_id
    ):
        return item
    return None


async def reviewed_by(session: AsyncSession, *, actor: Actor, item_id: int) -> Rectification | None:
    """The item, if this person wrote the review that raised it."""
    item = await session.get(Rectification, item_id)
    if item is None:
        return None
    review = await session.get(Review, item.review_id)
    return item if review.reviewer_id == actor.member_id else None


def _note(session: AsyncSession, item: Rectification, actor: Actor, kind: str, note: str, now):
    session.add(
        RectificationProgress(
            rectification_id=item.id,
            author_id=actor.member_id,
            kind=kind,
            note=note,
            created_at=now,
        )
    )


async def record_progress(
    session: AsyncSession, *, actor: Actor, item: Rectification, note: str, now: datetime
) -> bool:
    if item.status != RectificationStatus.OPEN:
        return False
    _note(session, item, actor, "progress", note, now)
    item.updated_at = now
    return True


async def _move(
    session: AsyncSession, item: Rectification, frm: set[RectificationStatus], to: dict
) -> bool:
    """Change the item's status only from one of `frm`: a double tap moves it once."""
    result = await session.exec(
        update(Rectification)
        .where(col(Rectification.id) == item.id, col(Rectification.status).in_(frm))
        .values(**to)
    )
    await session.refresh(item)
    return result.rowcount == 1


async def report_done(
    session: AsyncSession, *, actor: Actor, item: Rectification, note: str, now: datetime
) -> bool:
    """The reviewee says it is done; the reviewer is told and asked to confirm."""
    moved = await _move(
        session,
        item,
        {RectificationStatus.OPEN},
        {
            "status": RectificationStatus.DONE,
            "done_note": note,
            "done_at": now,
            "updated_at": now,
            "reports": Rectification.reports + 1,
        },
    )
    if moved:
        _note(session, item, actor, "done", note, now)
        review = await session.get(Review, item.review_id)
        await _tell(session, item, REPORTED, review.reviewer_id, now)
    return moved


async def confirm(
    session: AsyncSession, *, actor: Actor, item: Rectification, now: datetime
) -> bool:
    moved = await _move(
        session,
        item,
        {RectificationStatus.DONE},
        {"status": RectificationStatus.CONFIRMED, "confirmed_at": now, "updated_at": now},
    )
    if moved:
        _note(session, item, actor, "confirmed", "", now)
        await _tell_reviewee(session, item, CONFIRMED, now)
    return moved


async def reopen(
    session: AsyncSession, *, actor: Actor, item: Rectification, note: str, now: datetime
) -> bool:
    """Not done yet after all: open again, with what is still needed; the reviewee is told."""
    moved = await _move(
        session,
        item,
        {RectificationStatus.DONE, RectificationStatus.CONFIRMED},
        {"status": RectificationStatus.OPEN, "confirmed_at": None, "updated_at": now},
    )
    if moved:
        _note(session, item, actor, "reopened", note, now)
        await _tell_reviewee(session, item, REOPENED, now)
    return moved


async def _tell_reviewee(session, item: Rectification, reminder: str, now) -> None:
    recipient = await recipient_of(
        session,
        organisation_id=item.organisation_id,
        member_id=item.member_id,
        branch_id=item.branch_id,
    )
    if recipient is not None:
        await _tell(session, item, reminder, recipient, now)


async def _tell(session, item: Rectification, reminder: str, member_id: int, now) -> None:
    # The report count makes each report (and each reopening after it) a message of its own.
    await outbox.add_message(
        session,
        organisation_id=item.organisation_id,
        reminder=reminder,
        subject=f"rectification:{item.id}/{item.reports}",
        member_id=member_id,
        send_after=now,
        expires_at=now + NEWS_USEFUL_FOR,
    )


async def note_from_summary(
    session: AsyncSession, *, item_id: int, author_id: int, note: str, now: datetime
) -> None:
    """What a submitted summary says of an item becomes part of the item's story."""
    if note:
        session.add(
            RectificationProgress(
                rectification_id=item_id,
                author_id=author_id,
                kind="summary",
                note=note,
                created_at=now,
            )
        )


async def history(session: AsyncSession, *, item_ids: list[int]) -> dict[int, list]:
    """Each item's notes, oldest first."""
    result = await session.exec(
        select(RectificationProgress)
        .where(col(RectificationProgress.rectification_id).in_(item_ids))
        .order_by(RectificationProgress.id)
    )
    notes: dict[int, list] = {}
    for note in result.all():
        notes.setdefault(note.rectification_id, []).append(note)
    return notes


async def carried_over(
    session: AsyncSession, *, member_id: int | None, branch_id: int, step_id: int
) -> list[Rectification]:
    """Items from earlier quarters' reviews not yet closed: the next summary looks back at them."""
    owner = _owner(member_id, branch_id)
    result = await session.exec(
        select(Rectification)
        .join(Review, col(Review.id) == Rectification.review_id)
        .where(
            owner,
            Review.step_id != step_id,
            Rectification.status != RectificationStatus.CONFIRMED,
        )
        .order_by(Rectification.id)
    )
    return list(result.all())


# --- reminders ----------------------------------------------------------------------------


def _subject(item: Rectification) -> str:
    # The due date is part of it: an item given a new date is reminded afresh.
    return f"rectification:{item.id}@{item.due_on}"


def _triggers(item: Rectification, time: CampaignTime) -> list[tuple[str, datetime, datetime]]:
    soon = time.reminder_on(item.due_on - timedelta(days=time.remind_days_before))
    overdue = time.reminder_on(item.due_on + timedelta(days=1))
    return [
        (DUE_SOON, soon, time.end_of(item.due_on)),
        (OVERDUE, overdue, overdue + OVERDUE_USEFUL_FOR),
    ]


async def _open_items(session, organisation_id: int, due_by: date | None = None):
    query = select(Rectification).where(
        Rectification.organisation_id == organisation_id,
        Rectification.status == RectificationStatus.OPEN,
    )
    if due_by is not None:
        query = query.where(Rectification.due_on <= due_by)
    return list((await session.exec(query)).all())


async def plan_reminders(
    session: AsyncSession, *, organisation_id: int, time: CampaignTime, now: datetime
) -> int:
    """Queue the reminders of open items that fell due: each once; overdue supersedes soon."""
    items = await _open_items(
        session, organisation_id, time.today(now) + timedelta(days=time.remind_days_before)
    )
    rows = []
    for item in items:
        fired = [(r, at, until) for r, at, until in _triggers(item, time) if at <= now < until]
        if not fired:
            continue
        reminder, fires_at, expires_at = fired[-1]
        recipient = await recipient_of(
            session,
            organisation_id=organisation_id,
            member_id=item.member_id,
            branch_id=item.branch_id,
        )
        if recipient is not None:
            rows.append(
                {
                    "organisation_id": organisation_id,
                    "reminder": reminder,
                    "subject": _subject(item),
                    "member_id": recipient,
                    "send_after": fires_at,
                    "expires_at": expires_at,
                }
            )
    return await outbox.add_messages(session, rows=rows)


async def next_reminder(
    session: AsyncSession, *, organisation_id: int, time: CampaignTime, after: datetime
) -> datetime | None:
    """The next moment an open item's reminder falls due that is not queued yet."""
    items = [
        item
        for item in await _open_items(session, organisation_id)
        if await recipient_of(
            session,
            organisation_id=organisation_id,
            member_id=item.member_id,
            branch_id=item.branch_id,
        )
        is not None  # a branch without a secretary has nobody to remind
    ]
    queued = await outbox.queued_subjects(
        session, reminders=[DUE_SOON, OVERDUE], subjects=[_subject(i) for i in items]
    )
    moments = [
        at
        for item in items
        for reminder, at, until in _triggers(item, time)
        if (reminder, _subject(item)) not in queued
        and until > after
        # a due-soon reminder superseded by the overdue one never comes
        and not (reminder == DUE_SOON and (OVERDUE, _subject(item)) in queued)
    ]
    return min(moments) if moments else None


async def compose(
    session: AsyncSession, *, messages: list[OutboxMessage], now: datetime
) -> Composed:
    """Each claimed reminder or news of an item: still true, and what it says."""
    composed = Composed()
    for message in messages:
        item = await session.get(Rectification, int(re.split(r"[:@/]", message.subject)[1]))
        member = await session.get(Member, message.member_id)
        reason = _skip_reason(message, item, member, now)
        if reason:
            composed.skipped[message.id] = reason
            continue
        owner = (
            (await session.get(Member, item.member_id)).name
            if item.member_id
            else (await session.get(Branch, item.branch_id)).name
        )
        named = {"item": item, "number": None}
        if message.reminder == REPORTED:
            buttons = (
                Button("button_rectify_confirm", JudgeItem(item.id, "confirm"), named),
                Button("button_rectify_reopen", JudgeItem(item.id, "reopen"), named),
            )
        elif message.reminder == CONFIRMED:
            buttons = ()
        else:
            buttons = (
                Button("button_rectify_progress", ReportItem(item.id, "progress"), named),
                Button("button_rectify_done", ReportItem(item.id, "done"), named),
            )
        today = await organisation_today(session, organisation_id=item.organisation_id, now=now)
        composed.notices.append(
            Notice(
                message.id,
                member,
                f"rectification_{message.reminder.removeprefix('rectify_')}",
                {
                    "item": item,
                    "owner": owner,
                    "days_left": (item.due_on - today).days,
                    "note": await _last_note(session, item, "reopened"),
                },
                buttons,
            )
        )
    return composed


async def _last_note(session: AsyncSession, item: Rectification, kind: str) -> str:
    result = await session.exec(
        select(RectificationProgress.note)
        .where(
            RectificationProgress.rectification_id == item.id, RectificationProgress.kind == kind
        )
        .order_by(col(RectificationProgress.id).desc())
    )
    return result.first() or ""


def _skip_reason(message, item, member, now) -> str | None:
    if reason := undeliverable(member):
        return reason
    if message.expires_at <= now:
        return "too late"
    if item is None:
        return "item removed"
    if message.reminder in (DUE_SOON, OVERDUE):
        if item.status != RectificationStatus.OPEN:
            return "already done"
        if message.subject != _subject(item):
            return "due date changed"
    if message.reminder == REPORTED and item.status != RectificationStatus.DONE:
        return "no longer waiting for confirmation"
    if message.reminder == REOPENED and item.status != RectificationStatus.OPEN:
        return "done again since"
    if message.reminder == CONFIRMED and item.status != RectificationStatus.CONFIRMED:
        return "reopened since"
    return None
