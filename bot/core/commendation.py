"""评选表彰: a selection opened by the organiser, nominations by branch secretaries with deed
material (先进事迹材料, at most 1,500 字), private grading by the leading group, the
organiser's confirmation within the quotas, and publication (seeds 001, 002).

Selection weighs work results and how the masses see the nominee (注重工作实绩和社会公认度):
the graders see, beside the material, what the bot already holds of the nominee.
"""

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import deed_documents, evaluation, evaluation_results
from bot.core.access import Actor, speaks_for_branch
from bot.core.actions import Action, Button
from bot.core.refusal import Refusal
from storage import outbox
from storage.models import (
    BoundChat,
    Branch,
    GradeProposal,
    GraderSubmission,
    Member,
    Nomination,
    Pledge,
    PledgeStatus,
    Rectification,
    RectificationStatus,
    Review,
    ReviewStatus,
    Role,
    Selection,
    SelectionStage,
    Summary,
    SummaryStatus,
)
from storage.outbox import Recipients

MATERIAL_LIMIT = 1500  # 字, seed 002
NAME_LIMIT = 200  # a selection's name, 字
LEAST_QUOTA = 1  # nominations a branch may make
PRIZES = ("first", "second", "third")
NO_PRIZE = "none"
POINTS = {"first": 3, "second": 2, "third": 1, NO_PRIZE: 0}
DEFAULT_CATEGORIES = (
    {"key": "branch", "name": "先进基层党组织", "of": "branch"},
    {"key": "member", "name": "优秀共产党员", "of": "member"},
)
NOMINATED = "commendation_nominated"  # outbox: to the nominee
PUBLISHED = "commendation_published"  # outbox: to every member
ANNOUNCEMENT_USEFUL_FOR = timedelta(days=14)
Prize = Literal["first", "second", "third", "none"]


# --- the actions its buttons carry (packed as before: "cmn:12:member") -------------------------


@dataclass(frozen=True)
class ChooseCategory(Action, prefix="cmn"):
    selection_id: int
    category: str


@dataclass(frozen=True)
class ChooseNominee(Action, prefix="cmm"):
    selection_id: int
    category: str
    member_id: int


@dataclass(frozen=True)
class WithdrawNomination(Action, prefix="cmw"):
    nomination_id: int


@dataclass(frozen=True)
class Grade(Action, prefix="cmg"):
    selection_id: int


@dataclass(frozen=True)
class ProposePrize(Action, prefix="cmv"):
    nomination_id: int
    prize: Prize


@dataclass(frozen=True)
class Regrade(Action, prefix="cmr"):
    selection_id: int


@dataclass(frozen=True)
class RegradeNominee(Action, prefix="cmx"):
    nomination_id: int


@dataclass(frozen=True)
class SubmitGrades(Action, prefix="cms"):
    selection_id: int


@dataclass(frozen=True)
class SeeTally(Action, prefix="cmt"):
    selection_id: int


@dataclass(frozen=True)
class ConfirmList(Action, prefix="cmf"):
    selection_id: int
    anyway: Literal["anyway"] | None = None


@dataclass(frozen=True)
class Publish(Action, prefix="cmp"):
    selection_id: int


@dataclass(frozen=True)
class Compile(Action, prefix="cmd"):
    selection_id: int


def count_characters(text: str) -> int:
    """字数 as seed 002 counts it (and as word processors do for Chinese): each Chinese
    character and each punctuation mark is one, a run of Latin letters or digits (a word, a
    number) is one, spaces and line breaks are none."""
    return len(re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text))


@dataclass(frozen=True)
class Category:
    key: str
    name: str
    of: str  # "member" or "branch"


@dataclass(frozen=True)
class Rules:
    """A selection's categories, quotas and graders, from its JSON columns."""

    categories: tuple[Category, ...]
    per_branch: int
    prizes: dict[str, int]  # per category: first, second, third
    graders: tuple[int, ...]

    @classmethod
    def of(cls, selection: Selection) -> "Rules":
        return cls(
            tuple(Category(**c) for c in json.loads(selection.categories)),
            selection.per_branch,
            json.loads(selection.prizes),
            tuple(json.loads(selection.graders)),
        )

    def category(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.key == key), None)


class Stage(StrEnum):
    NOT_YET = "not_yet"
    NOMINATING = SelectionStage.NOMINATING.value
    GRADING = SelectionStage.GRADING.value
    CONFIRMED = SelectionStage.CONFIRMED.value
    PUBLISHED = SelectionStage.PUBLISHED.value


def stage_of(selection: Selection, now: datetime) -> Stage:
    if selection.stage in (SelectionStage.CONFIRMED, SelectionStage.PUBLISHED):
        return Stage(selection.stage)
    if now < selection.opens_at:
        return Stage.NOT_YET
    return Stage.NOMINATING if now < selection.closes_at else Stage.GRADING


# --- opening ---------------------------------------------------------------------------------


async def open_selection(
    session: AsyncSession,
    *,
    organisation_id: int,
    name: str,
    opens_at: datetime,
    closes_at: datetime,
    per_branch: int,
    prizes: tuple[int, int, int],
    graders: list[str],
    categories: list[dict] | None = None,
    now: datetime,
) -> Selection | list[str]:
    """A new selection, or the problems with what was asked (each a template key).

    One selection at a time: everyone works on the latest, so a new one waits until the
    last is published (its nominations can be closed early with `close_nominations`)."""
    problems = []
    latest = await current(session, organisation_id=organisation_id)
    if latest is not None and latest.stage != SelectionStage.PUBLISHED:
        problems.append(f"selection_running:{latest.name}")
    if not 0 < len(name.strip()) <= NAME_LIMIT:
        problems.append("bad_name")
    if closes_at <= opens_at:
        problems.append("bad_window")
    if per_branch < LEAST_QUOTA:
        problems.append("bad_quota")
    if any(n < 0 for n in prizes) or not any(prizes):
        problems.append("bad_prizes")
    categories = list(categories or DEFAULT_CATEGORIES)
    if not categories or any(c.get("of") not in ("member", "branch") for c in categories):
        problems.append("bad_categories")
    grader_ids = []
    for grader in graders:
        found = (
            await session.exec(
                select(Member.id).where(
                    Member.organisation_id == organisation_id,
                    Member.active,
                    (Member.name == grader) | (Member.roster_id == grader),
                )
            )
        ).all()
        if len(found) != 1:
            problems.append(f"unknown_grader:{grader}")
        else:
            grader_ids.append(found[0])
    if not grader_ids and not any(p.startswith("unknown_grader") for p in problems):
        problems.append("no_graders")
    if problems:
        return problems
    selection = Selection(
        organisation_id=organisation_id,
        name=name.strip(),
        categories=json.dumps(categories, ensure_ascii=False),
        opens_at=opens_at,
        closes_at=closes_at,
        per_branch=per_branch,
        prizes=json.dumps(dict(zip(PRIZES, prizes, strict=True))),
        graders=json.dumps(grader_ids),
        created_at=now,
    )
    session.add(selection)
    await session.flush()
    return selection


def close_nominations(selection: Selection, now: datetime) -> bool:
    """Nominations end now and grading begins; False when they are not open (or not yet)."""
    if stage_of(selection, now) not in (Stage.NOT_YET, Stage.NOMINATING):
        return False
    selection.opens_at = min(selection.opens_at, now)
    selection.closes_at = now
    return True


async def all_of(session: AsyncSession, *, organisation_id: int) -> list[Selection]:
    """The organisation's selections, newest first."""
    rows = await session.exec(
        select(Selection)
        .where(Selection.organisation_id == organisation_id)
        .order_by(col(Selection.id).desc())
    )
    return list(rows.all())


async def current(session: AsyncSession, *, organisation_id: int) -> Selection | None:
    """The latest selection (the one everyone is working on, or the last published)."""
    return (
        await session.exec(
            select(Selection)
            .where(Selection.organisation_id == organisation_id)
            .order_by(col(Selection.id).desc())
        )
    ).first()


async def of_actor(session: AsyncSession, *, actor: Actor, selection_id: int) -> Selection | None:
    selection = await session.get(Selection, selection_id)
    return selection if selection and selection.organisation_id == actor.organisation_id else None


# --- nominating ------------------------------------------------------------------------------


class Reason(StrEnum):
    NOT_SECRETARY = "not_secretary"
    NOT_NOMINATING = "not_nominating"  # outside the nomination window
    UNKNOWN_CATEGORY = "unknown_category"
    NOT_IN_BRANCH = "not_in_branch"
    OVER_QUOTA = "over_quota"
    TOO_LONG = "too_long"
    EMPTY = "empty"
    NOT_A_GRADER = "not_a_grader"
    NOT_GRADING = "not_grading"
    SUBMITTED = "submitted"  # proposals are final once submitted
    INCOMPLETE = "incomplete"  # a nominee has no proposal yet
    NOT_ORGANISER = "not_organiser"
    NO_PROPOSALS = "no_proposals"
    NOT_CONFIRMED = "not_confirmed"
    ALREADY_PUBLISHED = "already_published"
    # A grader sees no one's proposals before submitting their own, organiser or not.
    NOT_SUBMITTED = "not_submitted"
    GRADERS_MISSING = "graders_missing"  # confirming now would leave these graders out
    STALE = "stale"  # the button names what is gone, or what this person no longer may do


def refused(reason: Reason, **values: Any) -> Refusal:
    """What a member is told: a toast for a button whose subject is gone, else why not."""
    if reason is Reason.STALE:
        return Refusal("button_stale", toast=True)
    return Refusal(
        "commendation_refused", {"refusal": reason, "count": 0, "limit": MATERIAL_LIMIT} | values
    )


@dataclass
class Outcome:
    nomination: Nomination | None = None
    refusal: Reason | None = None
    count: int = 0  # the material's 字数
    replaced: bool = False  # the nominee's material was replaced


async def nominees_of(session: AsyncSession, *, actor: Actor) -> list[Member]:
    """Whom a secretary may put forward: the active members of their branch."""
    return list(
        (
            await session.exec(
                select(Member)
                .where(Member.branch_id == actor.branch_id, Member.active)
                .order_by(Member.id)
            )
        ).all()
    )


def may_nominate(actor: Actor, selection: Selection, now: datetime) -> Reason | None:
    if not speaks_for_branch(actor):
        return Reason.NOT_SECRETARY
    if stage_of(selection, now) != Stage.NOMINATING:
        return Reason.NOT_NOMINATING
    return None


async def check_nominee(
    session: AsyncSession,
    *,
    actor: Actor,
    selection: Selection,
    category: str,
    nominee: str,
    now: datetime,
) -> tuple[Reason | None, Member | None]:
    """Whether this secretary may put this nominee forward in this category now (and the
    member, for a member category): before the material is asked for, and again with it."""
    refusal = may_nominate(actor, selection, now)
    if refusal:
        return refusal, None
    chosen = Rules.of(selection).category(category)
    if chosen is None:
        return Reason.UNKNOWN_CATEGORY, None
    if chosen.of == "branch":
        ok = nominee == f"branch:{actor.branch_id}"
        return (None if ok else Reason.NOT_IN_BRANCH), None
    kind, _, number = nominee.partition(":")
    member = await session.get(Member, int(number)) if number.isdigit() else None
    if kind != "member" or member is None or not member.active:
        return Reason.NOT_IN_BRANCH, None
    if member.branch_id != actor.branch_id:
        return Reason.NOT_IN_BRANCH, None
    return None, member


async def nominate(
    session: AsyncSession,
    *,
    actor: Actor,
    selection: Selection,
    category: str,
    nominee: str,
    material: str,
    now: datetime,
) -> Outcome:
    """Put a nominee forward with their deed material (again: the material is replaced)."""
    refusal, member = await check_nominee(
        session, actor=actor, selection=selection, category=category, nominee=nominee, now=now
    )
    if refusal:
        return Outcome(refusal=refusal)
    material = deed_documents.xml_safe(material).strip()
    count = count_characters(material)
    if not count:
        return Outcome(refusal=Reason.EMPTY)
    if count > MATERIAL_LIMIT:
        return Outcome(refusal=Reason.TOO_LONG, count=count)
    existing = (
        await session.exec(
            select(Nomination)
            .where(Nomination.selection_id == selection.id, Nomination.category == category)
            .where(Nomination.branch_id == actor.branch_id)
            .with_for_update()
        )
    ).all()
    nomination = next((n for n in existing if n.nominee == nominee), None)
    if nomination is None and len(existing) >= selection.per_branch:
        return Outcome(refusal=Reason.OVER_QUOTA, count=count)
    replaced = nomination is not None
    if nomination is None:
        nomination = Nomination(
            selection_id=selection.id,
            category=category,
            nominee=nominee,
            member_id=member.id if member else None,
            branch_id=actor.branch_id,
            nominated_by=actor.member_id,
            created_at=now,
            updated_at=now,
        )
    nomination.material, nomination.updated_at = material, now
    session.add(nomination)
    await session.flush()
    if member is not None and not replaced:
        await outbox.add_message(
            session,
            organisation_id=actor.organisation_id,
            reminder=NOMINATED,
            subject=f"nomination:{nomination.id}",
            member_id=member.id,
            send_after=now,
            expires_at=selection.closes_at,
        )
    return Outcome(nomination, None, count, replaced)


async def withdraw(
    session: AsyncSession, *, actor: Actor, nomination_id: int, now: datetime
) -> bool:
    """The secretary takes a nomination back while the window is open."""
    nomination = await session.get(Nomination, nomination_id)
    if nomination is None or nomination.branch_id != actor.branch_id:
        return False
    selection = await session.get(Selection, nomination.selection_id)
    if may_nominate(actor, selection, now) is not None:
        return False
    await session.delete(nomination)
    return True


async def nominations(
    session: AsyncSession, *, selection: Selection, branch_id: int | None = None
) -> list[Nomination]:
    query = select(Nomination).where(Nomination.selection_id == selection.id)
    if branch_id is not None:
        query = query.where(Nomination.branch_id == branch_id)
    return list((await session.exec(query.order_by(Nomination.id))).all())


async def names_of(session: AsyncSession, items: list[Nomination]) -> dict[int, str]:
    """Nomination id → the nominee's name (a member's, or the branch's)."""
    members = dict(
        (
            await session.exec(
                select(Member.id, Member.name).where(
                    col(Member.id).in_({n.member_id for n in items if n.member_id})
                )
            )
        ).all()
    )
    branches = dict(
        (
            await session.exec(
                select(Branch.id, Branch.name).where(
                    col(Branch.id).in_({n.branch_id for n in items})
                )
            )
        ).all()
    )
    return {
        n.id: members.get(n.member_id, "") if n.member_id else branches.get(n.branch_id, "")
        for n in items
    }


async def mine(session: AsyncSession, *, actor: Actor) -> list[tuple[Selection, Nomination]]:
    """The nominations of me (so that I can read my own material)."""
    rows = await session.exec(
        select(Selection, Nomination)
        .join(Nomination, Nomination.selection_id == Selection.id)
        .where(Nomination.member_id == actor.member_id)
        .order_by(Nomination.id)
    )
    return list(rows.all())


# --- the record beside the material ------------------------------------------------------------


@dataclass
class Evidence:
    """What the bot holds of a nominee: work results and how the masses see them."""

    pledges: int = 0
    pledges_kept: int = 0
    summaries: int = 0
    summaries_on_time: int = 0
    satisfaction: float | None = None  # last closed round, only if shown
    satisfaction_withheld: bool = False
    reviews: int = 0
    reviews_read: int = 0
    rectification: int = 0
    rectification_closed: int = 0


async def evidence(session: AsyncSession, *, nomination: Nomination, now: datetime) -> Evidence:
    found = Evidence()
    owner = nomination.nominee
    member_id = nomination.member_id
    pledges = select(Pledge.status, func.count()).where(Pledge.status != PledgeStatus.WITHDRAWN)
    pledges = (
        pledges.where(Pledge.member_id == member_id)
        if member_id
        else pledges.where(
            Pledge.branch_id == nomination.branch_id, col(Pledge.member_id).is_(None)
        )
    )
    for status, count in (await session.exec(pledges.group_by(Pledge.status))).all():
        found.pledges += count
        found.pledges_kept += count if status == PledgeStatus.KEPT else 0
    for late, count in (
        await session.exec(
            select(Summary.late, func.count())
            .where(Summary.owner == owner, Summary.status == SummaryStatus.SUBMITTED)
            .group_by(Summary.late)
        )
    ).all():
        found.summaries += count
        found.summaries_on_time += 0 if late else count
    for status, count in (
        await session.exec(
            select(Review.status, func.count())
            .where(Review.reviewee == owner, Review.status != ReviewStatus.DRAFT)
            .group_by(Review.status)
        )
    ).all():
        found.reviews += count
        found.reviews_read += count if status == ReviewStatus.ACKNOWLEDGED else 0
    items = select(Rectification.status, func.count()).group_by(Rectification.status)
    items = (
        items.where(Rectification.member_id == member_id)
        if member_id
        else items.where(
            Rectification.branch_id == nomination.branch_id,
            col(Rectification.member_id).is_(None),
        )
    )
    for status, count in (await session.exec(items)).all():
        found.rectification += count
        found.rectification_closed += count if status == RectificationStatus.CONFIRMED else 0
    selection = await session.get(Selection, nomination.selection_id)
    evaluation_round = await evaluation.last_closed_round(
        session, organisation_id=selection.organisation_id, now=now
    )
    if evaluation_round is not None:
        results = await evaluation_results.results(
            session, evaluation_round=evaluation_round, target=owner
        )
        if results.targets:
            target = results.targets[0]
            found.satisfaction = target.satisfaction if target.shown else None
            found.satisfaction_withheld = not target.shown
    return found


# --- grading ---------------------------------------------------------------------------------


def is_grader(actor: Actor, selection: Selection) -> bool:
    return actor.member_id in Rules.of(selection).graders


async def proposals_of(
    session: AsyncSession, *, selection: Selection, grader_id: int
) -> dict[int, str]:
    """Nomination id → this grader's proposed prize."""
    rows = await session.exec(
        select(GradeProposal.nomination_id, GradeProposal.prize)
        .join(Nomination, Nomination.id == GradeProposal.nomination_id)
        .where(Nomination.selection_id == selection.id, GradeProposal.grader_id == grader_id)
    )
    return dict(rows.all())


async def has_submitted(session: AsyncSession, *, selection: Selection, grader_id: int) -> bool:
    return await session.get(GraderSubmission, (selection.id, grader_id)) is not None


async def _grading_refusal(session, actor: Actor, selection: Selection, now) -> Reason | None:
    if not is_grader(actor, selection):
        return Reason.NOT_A_GRADER
    if stage_of(selection, now) != Stage.GRADING:
        return Reason.NOT_GRADING
    if await has_submitted(session, selection=selection, grader_id=actor.member_id):
        return Reason.SUBMITTED
    return None


async def propose(
    session: AsyncSession, *, actor: Actor, nomination_id: int, prize: str, now: datetime
) -> Reason | None:
    """A grader's private proposal for one nominee (changeable until they submit)."""
    nomination = await session.get(Nomination, nomination_id)
    selection = await session.get(Selection, nomination.selection_id) if nomination else None
    if selection is None or selection.organisation_id != actor.organisation_id:
        return Reason.NOT_A_GRADER
    refusal = await _grading_refusal(session, actor, selection, now)
    if refusal:
        return refusal
    if prize not in POINTS:
        return Reason.UNKNOWN_CATEGORY
    proposal = await session.get(GradeProposal, (nomination_id, actor.member_id))
    if proposal is None:
        proposal = GradeProposal(
            nomination_id=nomination_id, grader_id=actor.member_id, prize=prize
        )
    proposal.prize = prize
    session.add(proposal)
    await session.flush()
    return None


async def submit(
    session: AsyncSession, *, actor: Actor, selection: Selection, now: datetime
) -> Reason | None:
    """A grader's proposals become final, and they may see everyone's."""
    refusal = await _grading_refusal(session, actor, selection, now)
    if refusal:
        return refusal
    proposed = await proposals_of(session, selection=selection, grader_id=actor.member_id)
    if any(n.id not in proposed for n in await nominations(session, selection=selection)):
        return Reason.INCOMPLETE
    session.add(
        GraderSubmission(selection_id=selection.id, grader_id=actor.member_id, submitted_at=now)
    )
    await session.flush()
    return None


async def tally_refusal(
    session: AsyncSession, *, actor: Actor, selection: Selection
) -> Reason | None:
    """Why this person may not see the graders' proposals side by side (None: they may)."""
    if is_grader(actor, selection):
        if not await has_submitted(session, selection=selection, grader_id=actor.member_id):
            return Reason.NOT_SUBMITTED
        return None
    return None if actor.has(Role.ORGANISER) else Reason.NOT_A_GRADER


async def missing_graders(session: AsyncSession, *, selection: Selection) -> list[str]:
    """The names of the graders who have not submitted, in the order they were named."""
    graders = Rules.of(selection).graders
    submitted = set(
        (
            await session.exec(
                select(GraderSubmission.grader_id).where(
                    GraderSubmission.selection_id == selection.id
                )
            )
        ).all()
    )
    names = dict(
        (
            await session.exec(select(Member.id, Member.name).where(col(Member.id).in_(graders)))
        ).all()
    )
    return [names.get(g, "") for g in graders if g not in submitted]


@dataclass
class Tallied:
    nomination: Nomination
    name: str
    proposals: list[tuple[str, str]] = field(default_factory=list)  # (grader, prize), submitted
    points: float = 0.0  # average over the graders who submitted
    firsts: int = 0


async def tally(session: AsyncSession, *, selection: Selection) -> list[Tallied]:
    """Every nominee with the submitted graders' proposals side by side (never a grader's
    unsubmitted ones), best first within each category."""
    items = await nominations(session, selection=selection)
    names = await names_of(session, items)
    rows = (
        await session.exec(
            select(GradeProposal.nomination_id, Member.name, GradeProposal.prize)
            .join(Member, Member.id == GradeProposal.grader_id)
            .join(
                GraderSubmission,
                (GraderSubmission.grader_id == GradeProposal.grader_id)
                & (GraderSubmission.selection_id == selection.id),
            )
            .where(col(GradeProposal.nomination_id).in_([n.id for n in items]))
            .order_by(Member.id)
        )
    ).all()
    by_nomination = defaultdict(list)
    for nomination_id, grader, prize in rows:
        by_nomination[nomination_id].append((grader, prize))
    found = []
    for n in items:
        proposals = by_nomination[n.id]
        points = sum(POINTS[p] for _, p in proposals) / len(proposals) if proposals else 0.0
        firsts = sum(p == "first" for _, p in proposals)
        found.append(Tallied(n, names[n.id], proposals, points, firsts))
    order = {c.key: i for i, c in enumerate(Rules.of(selection).categories)}
    found.sort(
        key=lambda t: (order.get(t.nomination.category, 99), -t.points, -t.firsts, t.nomination.id)
    )
    return found


def final_list(tallied: list[Tallied], rules: Rules) -> dict[int, str]:
    """Nomination id → prize: in each category, the best by average points take the first
    prizes, then the second, then the third, within the quotas; a nominee whom no grader
    gave a prize gets none."""
    prizes: dict[int, str] = {}
    by_category = defaultdict(list)
    for t in tallied:
        by_category[t.nomination.category].append(t)
    for ranked in by_category.values():
        slots = [p for p in PRIZES for _ in range(rules.prizes.get(p, 0))]
        for t, prize in zip([t for t in ranked if t.points > 0], slots, strict=False):
            prizes[t.nomination.id] = prize
    return prizes


async def confirm(
    session: AsyncSession,
    *,
    actor: Actor,
    selection: Selection,
    now: datetime,
    despite_missing: bool = False,
) -> Reason | None:
    """The organiser confirms the final list the tally gives, within the quotas; with graders
    who have not submitted, only when told to go ahead without them."""
    if not actor.has(Role.ORGANISER):
        return Reason.NOT_ORGANISER
    if stage_of(selection, now) != Stage.GRADING:
        return Reason.NOT_GRADING
    refusal = await tally_refusal(session, actor=actor, selection=selection)
    if refusal:
        return refusal
    tallied = await tally(session, selection=selection)
    if not any(t.proposals for t in tallied):
        return Reason.NO_PROPOSALS
    if not despite_missing and await missing_graders(session, selection=selection):
        return Reason.GRADERS_MISSING
    prizes = final_list(tallied, Rules.of(selection))
    for t in tallied:
        t.nomination.prize = prizes.get(t.nomination.id)
        session.add(t.nomination)
    selection.stage, selection.confirmed_at = SelectionStage.CONFIRMED, now
    session.add(selection)
    await session.flush()
    return None


async def winners(session: AsyncSession, *, selection: Selection) -> list[tuple[Nomination, str]]:
    """The confirmed list, by category, then prize, then name: (nomination, nominee's name)."""
    items = [n for n in await nominations(session, selection=selection) if n.prize]
    names = await names_of(session, items)
    order = {c.key: i for i, c in enumerate(Rules.of(selection).categories)}
    items.sort(key=lambda n: (order.get(n.category, 99), PRIZES.index(n.prize), names[n.id]))
    return [(n, names[n.id]) for n in items]


async def publish(
    session: AsyncSession, *, actor: Actor, selection: Selection, now: datetime
) -> Reason | None:
    """Announce the confirmed list to every member, through the outbox, once."""
    if not actor.has(Role.ORGANISER):
        return Reason.NOT_ORGANISER
    if selection.stage == SelectionStage.PUBLISHED:
        return Reason.ALREADY_PUBLISHED
    if selection.stage != SelectionStage.CONFIRMED:
        return Reason.NOT_CONFIRMED
    selection.stage, selection.published_at = SelectionStage.PUBLISHED, now
    session.add(selection)
    await outbox.insert_recipients(
        session,
        recipients=Recipients(selection.organisation_id),
        reminder=PUBLISHED,
        subject=f"selection:{selection.id}",
        step_id=None,
        send_after=now,
        expires_at=now + ANNOUNCEMENT_USEFUL_FOR,
    )
    return None


async def nominee_name(session: AsyncSession, *, nominee: str) -> str:
    """A nominee key's name: the member's, or the branch's."""
    return (await evaluation.target_names(session, keys=[nominee])).get(nominee, "")


async def compilation(
    session: AsyncSession,
    *,
    selection: Selection,
    winners: list[tuple[Nomination, str]],
    words: dict,
) -> bytes:
    """The confirmed list's deed materials in one .docx, by category and prize (汇编成册)."""
    rules = Rules.of(selection)
    branches = await evaluation.branch_names(session, organisation_id=selection.organisation_id)
    entries = [
        deed_documents.Entry(
            rules.category(n.category).name if rules.category(n.category) else n.category,
            words["prizes"][n.prize],
            name,
            branches.get(n.branch_id, "") if n.member_id else "",
            n.material,
        )
        for n, name in winners
    ]
    return deed_documents.compile_docx(
        f"{selection.name}{words['compilation']}", entries, words["branch"]
    )


async def bound_chats(session: AsyncSession, *, organisation_id: int) -> list[tuple[str, str]]:
    """The group chats that hear the organisation's announcements: (channel, chat as the
    channel names it)."""
    rows = await session.exec(
        select(BoundChat.channel, BoundChat.chat_id).where(
            BoundChat.organisation_id == organisation_id
        )
    )
    return [(channel, str(chat_id)) for channel, chat_id in rows.all()]


async def bind_chat(
    session: AsyncSession,
    *,
    actor: Actor,
    channel: str,
    chat: str,
    title: str = "",
    now: datetime,
) -> None:
    """A group chat of a channel that receives the organisation's announcements (bound
    again: renamed)."""
    chat_id = int(chat)
    bound = await session.get(BoundChat, chat_id) or BoundChat(
        chat_id=chat_id,
        organisation_id=actor.organisation_id,
        bound_by=actor.member_id,
        bound_at=now,
    )
    bound.organisation_id, bound.title = actor.organisation_id, title[:200]
    bound.channel = channel
    session.add(bound)
    await session.flush()


# --- each step as a person takes it: what to show and which buttons, or a refusal --------------


@dataclass
class Status:
    """The current selection as this person takes part in it: nominate, grade, confirm,
    publish, each offered only to whom it is for and in its stage."""

    selection: Selection
    rules: Rules
    stage: Stage
    ours: list[tuple[Nomination, str]]  # the secretary's branch's nominations, named
    mine: list[tuple[Nomination, Selection]]  # the nominations of this person
    grader: bool
    submitted: bool
    winners: list[tuple[Nomination, str]]
    offers: list[list[Button]]


async def status(session: AsyncSession, *, actor: Actor, now: datetime) -> Status | None:
    selection = await current(session, organisation_id=actor.organisation_id)
    if selection is None:
        return None
    rules, stage = Rules.of(selection), stage_of(selection, now)
    own = [(n, s) for s, n in await mine(session, actor=actor) if s.id == selection.id]
    ours, names = [], {}
    if actor.has(Role.SECRETARY):
        ours = await nominations(session, selection=selection, branch_id=actor.branch_id)
        names = await names_of(session, ours)
    grader = is_grader(actor, selection)
    submitted = grader and await has_submitted(
        session, selection=selection, grader_id=actor.member_id
    )
    offers = []
    if may_nominate(actor, selection, now) is None:
        offers += [
            [
                Button(
                    "button_nominate",
                    ChooseCategory(selection.id, c.key),
                    {"category_name": c.name},
                )
            ]
            for c in rules.categories
        ]
        offers += [
            [Button("button_withdraw_nomination", WithdrawNomination(n.id), {"name": names[n.id]})]
            for n in ours
        ]
    if grader and stage == Stage.GRADING:
        offers.append(
            [Button("button_see_tally" if submitted else "button_grade", Grade(selection.id))]
        )
    organiser = actor.has(Role.ORGANISER)
    if organiser:
        may_see_tally = await tally_refusal(session, actor=actor, selection=selection) is None
        if stage == Stage.GRADING and may_see_tally:
            offers.append([Button("button_see_tally", SeeTally(selection.id))])
            offers.append([Button("button_confirm_list", ConfirmList(selection.id))])
        if stage == Stage.CONFIRMED:
            offers.append([Button("button_publish", Publish(selection.id))])
        if stage in (Stage.CONFIRMED, Stage.PUBLISHED):
            offers.append([Button("button_compile", Compile(selection.id))])
    listed = []
    if stage == Stage.PUBLISHED or (stage == Stage.CONFIRMED and organiser):
        listed = await winners(session, selection=selection)
    return Status(
        selection,
        rules,
        stage,
        [(n, names[n.id]) for n in ours],
        own,
        grader,
        submitted,
        listed,
        offers,
    )


@dataclass
class CategoryChoice:
    """A category chosen to nominate in: the branch itself (`nominee`), or one of `members`."""

    selection: Selection
    category: Category
    nominee: str | None
    members: list[Member]


async def choose_category(
    session: AsyncSession, *, actor: Actor, selection_id: int, category: str, now: datetime
) -> Refusal | CategoryChoice:
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None:
        return refused(Reason.NOT_NOMINATING)
    if refusal := may_nominate(actor, selection, now):
        return refused(refusal)
    chosen = Rules.of(selection).category(category)
    if chosen is None:
        return refused(Reason.UNKNOWN_CATEGORY)
    if chosen.of == "branch":
        return CategoryChoice(selection, chosen, f"branch:{actor.branch_id}", [])
    return CategoryChoice(selection, chosen, None, await nominees_of(session, actor=actor))


async def choose_nominee(
    session: AsyncSession,
    *,
    actor: Actor,
    selection_id: int,
    category: str,
    member_id: int,
    now: datetime,
) -> Refusal | Selection:
    """The selection whose material is asked for next, if this member may be put forward."""
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None:
        return refused(Reason.STALE)
    refusal, _member = await check_nominee(
        session,
        actor=actor,
        selection=selection,
        category=category,
        nominee=f"member:{member_id}",
        now=now,
    )
    return refused(refusal) if refusal else selection


@dataclass
class ToGrade:
    """One nominee for grading: the material, the record beside it, a button per prize."""

    nomination: Nomination
    name: str
    category: Category | None
    record: Evidence
    graded: int
    total: int
    offers: list[list[Button]]


@dataclass
class MyProposals:
    """Every nominee has my proposal: submit them, or go through them again."""

    rules: Rules
    proposals: list[tuple[Nomination, str, str]]  # nomination, name, prize
    offers: list[list[Button]]


@dataclass
class Tally:
    rules: Rules
    tallied: list[Tallied]


async def _to_grade(session, selection, nomination, name, graded, total, now) -> ToGrade:
    def prize_offer(prize: str) -> Button:
        return Button("button_prize", ProposePrize(nomination.id, prize), {"prize": prize})

    return ToGrade(
        nomination,
        name,
        Rules.of(selection).category(nomination.category),
        await evidence(session, nomination=nomination, now=now),
        graded,
        total,
        [[prize_offer(prize) for prize in PRIZES], [prize_offer(NO_PRIZE)]],
    )


async def next_to_grade(
    session: AsyncSession, *, actor: Actor, selection: Selection, now: datetime
) -> MyProposals | ToGrade:
    """The next nominee without my proposal; once all have one, my proposals."""
    items = await nominations(session, selection=selection)
    proposed = await proposals_of(session, selection=selection, grader_id=actor.member_id)
    names = await names_of(session, items)
    waiting = [n for n in items if n.id not in proposed]
    if not waiting:
        return MyProposals(
            Rules.of(selection),
            [(n, names[n.id], proposed[n.id]) for n in items],
            [
                [Button("button_submit_grades", SubmitGrades(selection.id))],
                [Button("button_regrade", Regrade(selection.id))],
            ],
        )
    first = waiting[0]
    graded = len(items) - len(waiting)
    return await _to_grade(session, selection, first, names[first.id], graded, len(items), now)


async def tally_of(session: AsyncSession, *, selection: Selection) -> Tally:
    return Tally(Rules.of(selection), await tally(session, selection=selection))


async def grading(
    session: AsyncSession, *, actor: Actor, selection_id: int, now: datetime
) -> Refusal | Tally | MyProposals | ToGrade:
    """A grader's next step: the next nominee, or their proposals; once submitted, everyone's."""
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None or not is_grader(actor, selection):
        return refused(Reason.NOT_A_GRADER)
    if await has_submitted(session, selection=selection, grader_id=actor.member_id):
        return await tally_of(session, selection=selection)
    if stage_of(selection, now) != Stage.GRADING:
        return refused(Reason.NOT_GRADING)
    return await next_to_grade(session, actor=actor, selection=selection, now=now)


async def propose_prize(
    session: AsyncSession, *, actor: Actor, nomination_id: int, prize: str, now: datetime
) -> Refusal | MyProposals | ToGrade:
    """A grader's proposal for one nominee, then what is next to grade."""
    if refusal := await propose(
        session, actor=actor, nomination_id=nomination_id, prize=prize, now=now
    ):
        return refused(refusal)
    nomination = await session.get(Nomination, nomination_id)
    selection = await session.get(Selection, nomination.selection_id)
    return await next_to_grade(session, actor=actor, selection=selection, now=now)


async def regrading(
    session: AsyncSession, *, actor: Actor, selection_id: int
) -> Refusal | list[tuple[Nomination, str]]:
    """The nominees to go through again before submitting (each tap replaces a proposal)."""
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None or await has_submitted(
        session, selection=selection, grader_id=actor.member_id
    ):
        return refused(Reason.STALE)
    items = await nominations(session, selection=selection)
    names = await names_of(session, items)
    return [(n, names[n.id]) for n in items]


async def regrade_nominee(
    session: AsyncSession, *, actor: Actor, nomination_id: int, now: datetime
) -> Refusal | ToGrade:
    """One nominee shown again for a new proposal."""
    nomination = await session.get(Nomination, nomination_id)
    selection = (
        await of_actor(session, actor=actor, selection_id=nomination.selection_id)
        if nomination
        else None
    )
    if selection is None or not is_grader(actor, selection):
        return refused(Reason.STALE)
    names = await names_of(session, [nomination])
    total = len(await nominations(session, selection=selection))
    return await _to_grade(session, selection, nomination, names[nomination.id], total, total, now)


async def submit_grades(
    session: AsyncSession, *, actor: Actor, selection_id: int, now: datetime
) -> Refusal | Tally:
    """My proposals are final; then everyone's who has submitted, side by side."""
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None:
        return refused(Reason.NOT_A_GRADER)
    if refusal := await submit(session, actor=actor, selection=selection, now=now):
        return refused(refusal)
    return await tally_of(session, selection=selection)


async def tally_for(session: AsyncSession, *, actor: Actor, selection_id: int) -> Refusal | Tally:
    """The proposals side by side, for whom may see them (bot.core.commendation.tally_refusal)."""
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None:
        return refused(Reason.STALE)
    if refusal := await tally_refusal(session, actor=actor, selection=selection):
        return refused(refusal)
    return await tally_of(session, selection=selection)


@dataclass
class GradersMissing:
    """Confirming now would leave these graders out: the organiser may go ahead anyway."""

    names: list[str]
    offers: list[list[Button]]


@dataclass
class Confirmed:
    selection: Selection
    rules: Rules
    winners: list[tuple[Nomination, str]]
    offers: list[list[Button]]


async def confirm_list(
    session: AsyncSession,
    *,
    actor: Actor,
    selection_id: int,
    now: datetime,
    despite_missing: bool = False,
) -> Refusal | GradersMissing | Confirmed:
    """The final list confirmed (`confirm`); graders who have not submitted are named first."""
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None:
        return refused(Reason.NOT_GRADING)
    refusal = await confirm(
        session, actor=actor, selection=selection, now=now, despite_missing=despite_missing
    )
    if refusal is Reason.GRADERS_MISSING:
        return GradersMissing(
            await missing_graders(session, selection=selection),
            [[Button("button_confirm_anyway", ConfirmList(selection.id, "anyway"))]],
        )
    if refusal:
        return refused(refusal)
    return Confirmed(
        selection,
        Rules.of(selection),
        await winners(session, selection=selection),
        [[Button("button_publish", Publish(selection.id))]],
    )


@dataclass
class Published:
    """Published now: the list for the announcement, and the chats bound to hear it."""

    selection: Selection
    rules: Rules
    winners: list[tuple[Nomination, str]]
    chats: list[tuple[str, str]]  # (channel, chat)


async def publish_list(
    session: AsyncSession, *, actor: Actor, selection_id: int, now: datetime
) -> Refusal | Published:
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    if selection is None:
        return refused(Reason.NOT_CONFIRMED)
    if refusal := await publish(session, actor=actor, selection=selection, now=now):
        return refused(refusal)
    return Published(
        selection,
        Rules.of(selection),
        await winners(session, selection=selection),
        await bound_chats(session, organisation_id=selection.organisation_id),
    )


@dataclass(frozen=True)
class Compiled:
    """The compiled deeds as a file: its name and bytes."""

    name: str
    content: bytes


async def compiled(
    session: AsyncSession, *, selection: Selection, now: datetime, words: dict
) -> Compiled | None:
    """The confirmed (or published) list's deed materials in one .docx; None before that."""
    if stage_of(selection, now) not in (Stage.CONFIRMED, Stage.PUBLISHED):
        return None
    chosen = await winners(session, selection=selection)
    content = await compilation(session, selection=selection, winners=chosen, words=words)
    return Compiled(re.sub(r'[\\/:*?"<>|\s]+', "_", f"{selection.name}.docx"), content)


async def compiled_for(
    session: AsyncSession, *, actor: Actor, selection_id: int, now: datetime, words: dict
) -> Refusal | Compiled:
    selection = await of_actor(session, actor=actor, selection_id=selection_id)
    found = (
        await compiled(session, selection=selection, now=now, words=words) if selection else None
    )
    return found or refused(Reason.STALE)
