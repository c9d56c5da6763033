"""Leaders' reviews (领导点评, seed 004): who I review this quarter, what I read first, the four
parts I write, and the review's way to the reviewee.

A review belongs to the quarter of its self-summaries. It is written part by part, each
saved as it comes (the draft survives restarts), previewed, then sent once: its 整改要求
(and, if the reviewer chooses, its 指出问题) become rectification items, and the reviewee
gets it through the outbox with a button to acknowledge it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import pledges as pledge_service
from bot.core import rectification, reviewers, summaries
from bot.core.access import Actor
from bot.core.actions import Action, Button
from bot.core.notices import Composed, Notice, undeliverable
from bot.core.refusal import Refusal, too_long
from bot.core.summaries import Quarter, Readable
from storage import outbox
from storage.models import (
    Branch,
    Category,
    Member,
    OutboxMessage,
    OutboxStatus,
    Pledge,
    Rectification,
    Review,
    ReviewStatus,
    Role,
    Summary,
    SummaryStatus,
)


@dataclass(frozen=True)
class StartReview(Action, prefix="rv"):
    """Review this member or branch (or read the review, once sent)."""

    kind: Literal["member", "branch"]
    reviewee_id: int

    @classmethod
    def of(cls, reviewee: str) -> "StartReview":
        kind, _, number = reviewee.partition(":")
        return cls(kind, int(number))

    @property
    def reviewee(self) -> str:
        return f"{self.kind}:{self.reviewee_id}"


@dataclass(frozen=True)
class ReviewStep(Action, prefix="rvs"):
    """Skip a part (or insist on skipping it), edit, track the problems, or send."""

    review_id: int
    step: Literal["skip", "force", "edit", "track", "send"]


@dataclass(frozen=True)
class AcknowledgeReview(Action, prefix="rva"):
    review_id: int


@dataclass(frozen=True)
class ReadReview(Action, prefix="rvv"):
    review_id: int


PARTS = ("achievements", "problems", "direction", "requirements")
# 肯定成绩 and 整改要求 are asked for: skipping them takes a second word from the reviewer.
ASKED = frozenset({"achievements", "requirements"})
PART_LIMIT = 1000
CONFIRM = "confirm"
DELIVERED = "review"  # the outbox message that carries a sent review to its reviewee
DELIVERY_USEFUL_FOR = timedelta(days=60)


@dataclass(frozen=True)
class Reviewee:
    """Someone (or a branch) I review this quarter, and how far their review has got."""

    key: str
    name: str
    category: Category | None  # None for a branch
    branch_name: str
    summary_submitted: bool
    review: Review | None
    delivered: bool


async def my_reviewees(session: AsyncSession, *, actor: Actor, step_id: int) -> list[Reviewee]:
    """Everyone the mapping gives me, branches first, with summary and review status."""
    mapping = await reviewers.reviewer_mapping(session, organisation_id=actor.organisation_id)
    return await _reviewee_rows(session, mapping.reviewees_of(actor.member_id), step_id)


async def branch_reviewees(
    session: AsyncSession, *, organisation_id: int, branch_id: int | None, step_id: int
) -> list[Reviewee]:
    """Every reviewee of a branch (or of the organisation), for the secretary's overview."""
    mapping = await reviewers.reviewer_mapping(session, organisation_id=organisation_id)
    members = {
        m.id: m
        for m in (
            await session.exec(select(Member).where(col(Member.id).in_(mapping.of_member)))
        ).all()
    }
    keys = [
        *(reviewers.branch_key(b) for b in mapping.of_branch if branch_id in (None, b)),
        *(
            reviewers.member_key(m)
            for m in mapping.of_member
            if branch_id in (None, members[m].branch_id)
        ),
    ]
    return await _reviewee_rows(session, keys, step_id)


async def _reviewee_rows(session: AsyncSession, keys: list[str], step_id: int) -> list[Reviewee]:
    member_ids = [reviewers.parse_key(k)[1] for k in keys if k.startswith("member:")]
    members = {
        m.id: m
        for m in (await session.exec(select(Member).where(col(Member.id).in_(member_ids)))).all()
    }
    branches = {b.id: b for b in (await session.exec(select(Branch))).all()}
    reviews = {
        r.reviewee: r
        for r in (
            await session.exec(
                select(Review).where(Review.step_id == step_id, col(Review.reviewee).in_(keys))
            )
        ).all()
    }
    submitted = set(
        (
            await session.exec(
                select(Summary.owner).where(
                    Summary.step_id == step_id,
                    col(Summary.owner).in_(keys),
                    Summary.status == SummaryStatus.SUBMITTED,
                )
            )
        ).all()
    )
    delivered = set(
        (
            await session.exec(
                select(OutboxMessage.subject).where(
                    OutboxMessage.reminder == DELIVERED,
                    col(OutboxMessage.subject).in_([f"review:{r.id}" for r in reviews.values()]),
                    OutboxMessage.status == OutboxStatus.SENT,
                )
            )
        ).all()
    )
    rows = []
    for key in keys:
        kind, number = reviewers.parse_key(key)
        member = members.get(number) if kind == "member" else None
        branch = branches[member.branch_id if member else number]
        review = reviews.get(key)
        rows.append(
            Reviewee(
                key=key,
                name=member.name if member else branch.name,
                category=Category(member.category) if member else None,
                branch_name=branch.name,
                summary_submitted=key in submitted,
                review=review,
                delivered=review is not None and f"review:{review.id}" in delivered,
            )
        )
    return rows


@dataclass(frozen=True)
class Subject:
    """Whom a review is about: the member (None for a branch) and the branch."""

    member: Member | None
    branch: Branch

    @property
    def name(self) -> str:
        return self.member.name if self.member else self.branch.name

    @property
    def category(self) -> Category | None:
        return Category(self.member.category) if self.member else None


async def subject_of(session: AsyncSession, *, review: Review) -> Subject:
    member = await session.get(Member, review.member_id) if review.member_id else None
    return Subject(member, await session.get(Branch, review.branch_id))


async def open_review(
    session: AsyncSession, *, actor: Actor, reviewee: str, quarter: Quarter, now: datetime
) -> Review | None:
    """This quarter's review of `reviewee`, to continue or to start; None when the reviewee
    is not mine to review (whatever the button said)."""
    reviewer = await reviewers.reviewer_of(
        session, organisation_id=actor.organisation_id, reviewee=reviewee
    )
    if reviewer != actor.member_id:
        return None
    review = (
        await session.exec(
            select(Review).where(Review.step_id == quarter.step.id, Review.reviewee == reviewee)
        )
    ).first()
    if review is not None:
        if review.status == ReviewStatus.DRAFT and review.reviewer_id != actor.member_id:
            review.reviewer_id = actor.member_id  # the assignment changed: the draft moves on
        return review
    kind, number = reviewers.parse_key(reviewee)
    member = await session.get(Member, number) if kind == "member" else None
    review = Review(
        organisation_id=actor.organisation_id,
        step_id=quarter.step.id,
        reviewee=reviewee,
        member_id=member.id if member else None,
        branch_id=member.branch_id if member else number,
        reviewer_id=actor.member_id,
        stage=PARTS[0],
        created_at=now,
        updated_at=now,
    )
    session.add(review)
    await session.flush()
    return review


async def own_draft(session: AsyncSession, *, actor: Actor, review_id: int | None) -> Review | None:
    """The review, if it is mine to write (button data names any id; checked here)."""
    review = await session.get(Review, review_id) if review_id else None
    if review is None or review.reviewer_id != actor.member_id:
        return None
    # An organiser may have given the reviewee to someone else since the draft began.
    reviewer = await reviewers.reviewer_of(
        session, organisation_id=actor.organisation_id, reviewee=review.reviewee
    )
    return review if reviewer == actor.member_id else None


@dataclass(frozen=True)
class Material:
    """What the reviewer reads before writing: pledges, this quarter's summary, and what
    became of the items raised by earlier reviews."""

    subject: Subject
    pledges: list[Pledge]
    summary: Readable | None
    earlier_items: list[Rectification]
    history: dict[int, list]


async def material(session: AsyncSession, *, review: Review) -> Material:
    subject = await subject_of(session, review=review)
    pledges = await pledge_service.open_pledges(
        session, member_id=review.member_id, branch_id=review.branch_id
    )
    summary = await summaries.find(session, step_id=review.step_id, owner=review.reviewee)
    readable = (
        await summaries.readable(session, summary)
        if summary is not None and summary.status == SummaryStatus.SUBMITTED
        else None
    )
    earlier = [
        item
        for item in await rectification.of_reviewee(
            session, member_id=review.member_id, branch_id=review.branch_id
        )
        if item.review_id != review.id
    ]
    history = await rectification.history(session, item_ids=[i.id for i in earlier])
    return Material(subject, pledges, readable, earlier, history)


def _advance(review: Review, now: datetime) -> str:
    position = PARTS.index(review.stage) if review.stage in PARTS else len(PARTS)
    review.stage = PARTS[position + 1] if position + 1 < len(PARTS) else CONFIRM
    review.refused_text = None
    review.updated_at = now
    return review.stage


def answer(review: Review, *, text: str, now: datetime) -> Refusal | None:
    """Record the text of the current part, unless it is too long (then kept aside)."""
    if len(text) > PART_LIMIT:
        review.refused_text, review.updated_at = text, now
        return too_long(text, PART_LIMIT)
    setattr(review, review.stage, text)
    _advance(review, now)
    return None


def skip(review: Review, *, now: datetime, insist: bool) -> bool:
    """Leave the current part as it is. An empty 肯定成绩 or 整改要求 is left only when the
    reviewer insists (the second tap), because the seed asks for both."""
    if review.stage not in PARTS:
        return False
    if review.stage in ASKED and not getattr(review, review.stage) and not insist:
        return False
    _advance(review, now)
    return True


def edit(review: Review, *, now: datetime) -> bool:
    """Back to the first part, keeping what was written; only before it is sent."""
    if review.status != ReviewStatus.DRAFT:
        return False
    review.stage, review.updated_at = PARTS[0], now
    return True


def toggle_problems(review: Review, *, now: datetime) -> None:
    review.track_problems = not review.track_problems and bool(review.problems)
    review.updated_at = now


def is_empty(review: Review) -> bool:
    return not any(getattr(review, part).strip() for part in PARTS)


async def send(session: AsyncSession, *, review: Review, now: datetime) -> bool:
    """Send once (a double tap counts once): items to rectify, and the reviewee's message."""
    recipient = await rectification.recipient_of(
        session,
        organisation_id=review.organisation_id,
        member_id=review.member_id,
        branch_id=review.branch_id,
    )
    if review.stage != CONFIRM or is_empty(review) or recipient is None:
        return False  # a branch without a secretary has nobody to receive it
    result = await session.exec(
        update(Review)
        .where(col(Review.id) == review.id, Review.status == ReviewStatus.DRAFT)
        .values(status=ReviewStatus.SENT, sent_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    await session.refresh(review)
    await rectification.raise_items(session, review=review, now=now)
    await outbox.add_message(
        session,
        organisation_id=review.organisation_id,
        reminder=DELIVERED,
        subject=f"review:{review.id}",
        member_id=recipient,
        send_after=now,
        expires_at=now + DELIVERY_USEFUL_FOR,
    )
    return True


async def acknowledge(
    session: AsyncSession, *, actor: Actor, review_id: int, now: datetime
) -> Review | None:
    """The reviewee (or for a branch, its secretary) has read it; a second tap changes nothing."""
    review = await session.get(Review, review_id)
    if review is None or review.status == ReviewStatus.DRAFT:
        return None
    if (
        await rectification.recipient_of(
            session,
            organisation_id=review.organisation_id,
            member_id=review.member_id,
            branch_id=review.branch_id,
        )
        != actor.member_id
    ):
        return None
    await session.exec(
        update(Review)
        .where(col(Review.id) == review.id, Review.status == ReviewStatus.SENT)
        .values(status=ReviewStatus.ACKNOWLEDGED, acknowledged_at=now)
    )
    await session.refresh(review)
    return review


async def as_read(session: AsyncSession, *, review: Review) -> dict:
    """A sent review as its readers see it: the template values of the review and its items."""
    subject = await subject_of(session, review=review)
    reviewer = await session.get(Member, review.reviewer_id)
    return {
        "review": review,
        "reviewer": reviewer.name,
        "subject": subject.name,
        "for_branch": subject.member is None,
        "items": await rectification.of_review(session, review_id=review.id),
    }


async def readable_by(session: AsyncSession, *, actor: Actor, review_id: int) -> Review | None:
    """A sent review this person may read, or None."""
    review = await session.get(Review, review_id)
    return review if review is not None and may_read(actor, review) else None


def may_read(actor: Actor, review: Review) -> bool:
    """The reviewer, the reviewee, the secretary of the reviewee's branch, the organiser."""
    if review.organisation_id != actor.organisation_id:
        return False
    if review.status == ReviewStatus.DRAFT:
        return review.reviewer_id == actor.member_id
    return (
        actor.member_id in (review.reviewer_id, review.member_id)
        or actor.has(Role.ORGANISER)
        or (actor.has(Role.SECRETARY) and actor.branch_id == review.branch_id)
    )


async def compose(
    session: AsyncSession, *, messages: list[OutboxMessage], now: datetime
) -> Composed:
    """The reviewee's copy of each sent review, with its items and the acknowledge button."""
    composed = Composed()
    for message in messages:
        review = await session.get(Review, int(message.subject.split(":")[1]))
        member = await session.get(Member, message.member_id)
        if reason := undeliverable(member):
            composed.skipped[message.id] = reason
            continue
        composed.notices.append(
            Notice(
                message.id,
                member,
                "review_received",
                await as_read(session, review=review),
                (Button("button_acknowledge", AcknowledgeReview(review.id)),),
            )
        )
    return composed
