"""Digests for those who look after branches: where each branch stands this quarter.

One call works out every branch of an organisation with the same few queries, however many
members and branches there are; a branch secretary's digest, the organisation digest (one
line per branch, most behind first), the weekly outbox message and the workbook all read it.
Evaluation figures come only from the round's participation (who has rated, never what) and,
once it has closed, from the thresholded results.
"""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import evaluation, evaluation_results
from bot.core.access import Actor, parse_roles
from bot.core.actions import Action
from bot.core.calendar import CampaignTime, applies_to
from bot.core.evaluation import RoundState
from bot.core.summaries import Quarter, Window, current_quarter
from storage import accounts
from storage import calendar as calendar_queries
from storage.models import (
    Campaign,
    CampaignPhase,
    CampaignStep,
    EvaluationRound,
    Member,
    Pledge,
    PledgeStatus,
    Rectification,
    RectificationStatus,
    Review,
    ReviewStatus,
    Role,
    Summary,
    SummaryStatus,
    TargetKind,
)

# Deadlines this close are worth a line in the digest.
DEADLINES_AHEAD = timedelta(days=14)


@dataclass(frozen=True)
class DigestAction(Action, prefix="dg"):
    """A button under a digest (asked for, or the weekly one): its charts, or the workbook."""

    want: Literal["chart", "export"]


CHARTS, WORKBOOK = DigestAction("chart"), DigestAction("export")


# An unchanged week's digest of every branch names only this many, those most behind.
UNCHANGED_BRANCHES = 5


@dataclass
class SummaryFigures:
    expected: int = 0
    submitted: int = 0
    late: int = 0  # submitted after the window closed
    missing: list[str] = field(default_factory=list)  # names, member order
    branch_submitted: bool = False  # the branch's own summary, by its secretary


@dataclass
class EvaluationFigures:
    state: str
    expected: int = 0
    done: int = 0
    started: int = 0
    not_done: list[str] = field(default_factory=list)  # while the round runs
    satisfaction: float | None = None  # after close: the branch's members pooled (shown only)
    members_shown: int = 0
    members_withheld: int = 0
    branch_satisfaction: float | None = None  # the branch as a target, if shown
    flagged: bool = False  # satisfaction below the round's `flag_below`
    flag_below: float | None = None


@dataclass
class BranchDigest:
    branch_id: int
    name: str
    members: int = 0
    summaries: SummaryFigures | None = None
    pledges: Counter = field(default_factory=Counter)  # status → count (withdrawn left out)
    evaluation: EvaluationFigures | None = None
    reviews: Counter = field(default_factory=Counter)  # status → count
    awaiting_review: int = 0  # submitted summaries with no review sent yet
    rectification_open: int = 0
    rectification_overdue: int = 0
    rectification_reported: int = 0  # reported done, waiting for the reviewer to confirm
    unreachable: list[str] = field(default_factory=list)  # blocked the bot
    not_joined: list[str] = field(default_factory=list)  # never bound an account

    @property
    def kept_share(self) -> float | None:
        settled = self.pledges[PledgeStatus.KEPT] + self.pledges[PledgeStatus.NOT_KEPT]
        total = settled + self.pledges[PledgeStatus.IN_PROGRESS]
        return self.pledges[PledgeStatus.KEPT] / total if total else None

    @property
    def progress(self) -> float | None:
        """How far the branch is with what is asked of it now (summaries and rating), 0–1."""
        shares = []
        if self.summaries and self.summaries.expected:
            shares.append(self.summaries.submitted / self.summaries.expected)
        if (
            self.evaluation
            and self.evaluation.state == RoundState.OPEN
            and self.evaluation.expected
        ):
            shares.append(self.evaluation.done / self.evaluation.expected)
        return sum(shares) / len(shares) if shares else None

    @property
    def behind(self) -> tuple:
        """Sort key: least progress first, then most overdue items, then fewest reachable."""
        progress = self.progress
        return (
            progress if progress is not None else 1.0,
            -self.rectification_overdue,
            -len(self.unreachable) - len(self.not_joined),
            self.name,
        )

    @property
    def has_news(self) -> bool:
        """Whether there is anything for the secretary to act on."""
        return bool(
            (self.summaries and self.summaries.missing)
            or (self.summaries and self.summaries.expected and not self.summaries.branch_submitted)
            or (self.evaluation and self.evaluation.not_done)
            or (self.evaluation and self.evaluation.state == RoundState.CLOSED)
            or self.awaiting_review
            or self.rectification_open
            or self.rectification_reported
            or self.unreachable
        )


@dataclass
class Digest:
    """The organisation's state this quarter, branch by branch."""

    today: date | None
    phase: CampaignPhase | None
    deadlines: list[tuple[CampaignStep, int]]  # (step, days left), soonest first
    quarter: Quarter
    evaluation_round: EvaluationRound | None
    evaluation_state: str | None
    branches: list[BranchDigest]

    def branch(self, branch_id: int) -> BranchDigest | None:
        return next((b for b in self.branches if b.branch_id == branch_id), None)

    @property
    def most_behind_first(self) -> list[BranchDigest]:
        return sorted(self.branches, key=lambda b: b.behind)

    def worth_sending(self, branch_id: int | None) -> bool:
        """Whether a scheduled digest has anything to say (a deadline soon, or news)."""
        if self.deadlines:
            return True
        chosen = self.branches if branch_id is None else [self.branch(branch_id)]
        return any(b is not None and b.has_news for b in chosen)


def scope_of(actor: Actor) -> int | None:
    """The branch whose digest and workbook this person gets; None for all branches."""
    if actor.has(Role.ORGANISER) or actor.has(Role.PARTY_SECRETARY):
        return None
    return actor.branch_id


async def for_reader(
    session: AsyncSession, *, actor: Actor, now: datetime
) -> tuple[int | None, Digest]:
    """The branch this person reads of (None: every branch) and its digest."""
    scope = scope_of(actor)
    found = await digest(session, organisation_id=actor.organisation_id, now=now, branch_id=scope)
    return scope, found


async def digest(
    session: AsyncSession, *, organisation_id: int, now: datetime, branch_id: int | None = None
) -> Digest:
    """Every branch's figures (or one branch's), from a fixed number of queries."""
    campaign = await session.get(Campaign, organisation_id)
    time = CampaignTime.of(campaign) if campaign else None
    today = time.today(now) if time else None
    phase, deadlines = None, []
    if today is not None:
        phases = await calendar_queries.list_phases(session, organisation_id=organisation_id)
        phase = next((p for p in phases if p.starts_on <= today <= p.ends_on), None)
        steps = await calendar_queries.list_steps(session, organisation_id=organisation_id)
        deadlines = [
            (s, (s.due_on - today).days)
            for s in steps
            if today <= s.due_on <= today + DEADLINES_AHEAD
        ][:4]
    quarter = await current_quarter(session, organisation_id=organisation_id, now=now)
    rows = await _branches(session, organisation_id, branch_id)
    members = await _members(session, organisation_id, branch_id)
    for _id, name, member_branch, _roles, bound, unreachable in members:
        row = rows.get(member_branch)
        if row is None:
            continue
        row.members += 1
        if not bound:
            row.not_joined.append(name)
        elif unreachable:
            row.unreachable.append(name)
    await _add_pledges(session, rows, organisation_id, branch_id)
    if quarter.step is not None and quarter.window in (Window.OPEN, Window.LATE):
        await _add_summaries(session, rows, quarter.step, members)
        await _add_reviews(session, rows, quarter.step)
    if today is not None:
        await _add_rectification(session, rows, organisation_id, branch_id, today)
    evaluation_round = await evaluation.current_round(
        session, organisation_id=organisation_id, now=now
    )
    if evaluation_round is not None:
        await _add_evaluation(session, rows, evaluation_round, branch_id, now)
    return Digest(
        today,
        phase,
        deadlines,
        quarter,
        evaluation_round,
        evaluation.state_of(evaluation_round, now) if evaluation_round else None,
        sorted(rows.values(), key=lambda b: b.name),
    )


async def _branches(session, organisation_id, branch_id) -> dict[int, BranchDigest]:
    names = await evaluation.branch_names(session, organisation_id=organisation_id)
    return {
        bid: BranchDigest(bid, name)
        for bid, name in names.items()
        if branch_id is None or bid == branch_id
    }


def _in_scope(column, organisation_id: int, branch_id: int | None, organisation_column):
    conditions = [organisation_column == organisation_id]
    if branch_id is not None:
        conditions.append(column == branch_id)
    return conditions


async def _members(session, organisation_id, branch_id) -> list[tuple]:
    return list(
        (
            await session.exec(
                select(
                    Member.id,
                    Member.name,
                    Member.branch_id,
                    Member.roles,
                    accounts.is_bound(Member.id),
                    accounts.is_unreachable(Member.id),
                )
                .where(
                    *_in_scope(
                        Member.branch_id, organisation_id, branch_id, Member.organisation_id
                    ),
                    Member.active,
                )
                .order_by(Member.id)
            )
        ).all()
    )


async def _add_pledges(session, rows, organisation_id, branch_id) -> None:
    counted = await session.exec(
        select(Pledge.branch_id, Pledge.status, func.count())
        .where(
            *_in_scope(Pledge.branch_id, organisation_id, branch_id, Pledge.organisation_id),
            Pledge.status != PledgeStatus.WITHDRAWN,
        )
        .group_by(Pledge.branch_id, Pledge.status)
    )
    for pledge_branch, status, count in counted.all():
        if pledge_branch in rows:
            rows[pledge_branch].pledges[PledgeStatus(status)] = count


async def _add_summaries(session, rows, step: CampaignStep, members) -> None:
    found = (
        await session.exec(
            select(Summary.member_id, Summary.branch_id, Summary.late).where(
                Summary.step_id == step.id, Summary.status == SummaryStatus.SUBMITTED
            )
        )
    ).all()
    submitted = {member_id: late for member_id, _branch, late in found if member_id is not None}
    branch_done = {branch for member_id, branch, _late in found if member_id is None}
    for row in rows.values():
        row.summaries = SummaryFigures(branch_submitted=row.branch_id in branch_done)
    for member_id, name, member_branch, roles, _bound, _unreachable in members:
        row = rows.get(member_branch)
        if row is None or not applies_to(step, parse_roles(roles)):
            continue
        figures = row.summaries
        figures.expected += 1
        if member_id in submitted:
            figures.submitted += 1
            figures.late += bool(submitted[member_id])
        else:
            figures.missing.append(name)


async def _add_reviews(session, rows, step: CampaignStep) -> None:
    reviews = (
        await session.exec(
            select(Review.reviewee, Review.branch_id, Review.status).where(
                Review.step_id == step.id
            )
        )
    ).all()
    sent = set()
    for reviewee, review_branch, status in reviews:
        if review_branch in rows:
            rows[review_branch].reviews[ReviewStatus(status)] += 1
        if status != ReviewStatus.DRAFT:
            sent.add(reviewee)
    owners = await session.exec(
        select(Summary.owner, Summary.branch_id).where(
            Summary.step_id == step.id, Summary.status == SummaryStatus.SUBMITTED
        )
    )
    for owner, owner_branch in owners.all():
        if owner not in sent and owner_branch in rows:
            rows[owner_branch].awaiting_review += 1


async def _add_rectification(session, rows, organisation_id, branch_id, today: date) -> None:
    overdue = Rectification.due_on < today
    counted = await session.exec(
        select(Rectification.branch_id, Rectification.status, overdue, func.count())
        .where(
            *_in_scope(
                Rectification.branch_id,
                organisation_id,
                branch_id,
                Rectification.organisation_id,
            ),
            Rectification.status != RectificationStatus.CONFIRMED,
        )
        .group_by(Rectification.branch_id, Rectification.status, overdue)
    )
    for item_branch, status, late, count in counted.all():
        row = rows.get(item_branch)
        if row is None:
            continue
        if status == RectificationStatus.DONE:
            row.rectification_reported += count
        else:
            row.rectification_open += count
            row.rectification_overdue += count if late else 0


async def _add_evaluation(session, rows, evaluation_round, branch_id, now) -> None:
    state = evaluation.state_of(evaluation_round, now)
    for row in rows.values():
        row.evaluation = EvaluationFigures(state)
    if state == RoundState.OPEN:
        for line in await evaluation.participation(
            session, evaluation_round=evaluation_round, branch_id=branch_id
        ):
            row = rows.get(line.branch_id)
            if row is not None:
                figures = row.evaluation
                figures.expected, figures.done = line.expected, line.done
                figures.started, figures.not_done = line.started, line.not_done
    elif state == RoundState.CLOSED:
        found = await evaluation_results.results(
            session, evaluation_round=evaluation_round, branch_id=branch_id, items=False
        )
        for total in found.totals:
            row = rows.get(total.branch_id)
            if row is not None:
                figures = row.evaluation
                figures.satisfaction, figures.flagged = total.satisfaction, total.flagged
                figures.flag_below = found.settings.flag_below
                figures.members_shown, figures.members_withheld = total.included, total.withheld
        by_branch = defaultdict(list)
        for target in found.targets:
            by_branch[target.branch_id].append(target)
        for bid, targets in by_branch.items():
            own = next((t for t in targets if t.kind == TargetKind.BRANCH and t.shown), None)
            if bid in rows and own is not None:
                rows[bid].evaluation.branch_satisfaction = own.satisfaction


# --- what the charts show ----------------------------------------------------------------


def progress_shares(digest: Digest) -> list[tuple[str, float | None, float | None]]:
    """(branch, share of summaries in, share who have rated everyone), most behind first;
    none while every share is still zero."""
    found = []
    for b in digest.most_behind_first:
        summaries = (
            b.summaries.submitted / b.summaries.expected
            if b.summaries and b.summaries.expected
            else None
        )
        e = b.evaluation
        rated = e.done / e.expected if e and e.state == RoundState.OPEN and e.expected else None
        if summaries is not None or rated is not None:
            found.append((b.name, summaries, rated))
    # Bars all at zero say nothing a sentence would not: no chart until someone has moved.
    if not any(share for _, *shares in found for share in shares):
        return []
    return found


def item_satisfaction(found: "evaluation_results.RoundResults") -> list[tuple[str, str, float]]:
    """(target kind, item, satisfaction) pooled over the targets shown, in the items' order."""
    pooled: dict[tuple[str, str], list[int]] = {}
    for target in found.targets:
        if not target.shown:
            continue
        for item in target.items:
            counts = pooled.setdefault((target.kind, item.name), [0] * len(item.counts))
            pooled[(target.kind, item.name)] = [
                a + b for a, b in zip(counts, item.counts, strict=True)
            ]
    satisfied = found.settings.satisfied_levels
    return [
        (kind, name, sum(counts[:satisfied]) / sum(counts))
        for (kind, name), counts in pooled.items()
        if sum(counts)
    ]


@dataclass
class Charts:
    """What one reader's charts show: progress per branch (`branch` names theirs, "" for
    every branch), and once a round has closed, satisfaction per item against its flag."""

    branch: str
    progress: list[tuple[str, float | None, float | None]]
    quarter: str = ""
    items: list[tuple[str, str, float]] = field(default_factory=list)
    flag_below: float | None = None

    def __bool__(self) -> bool:
        return bool(self.progress or self.items)


async def charts_for(session: AsyncSession, *, actor: Actor, now: datetime) -> Charts:
    scope, found = await for_reader(session, actor=actor, now=now)
    charts = Charts(found.branch(scope).name if scope else "", progress_shares(found))
    if found.evaluation_state == RoundState.CLOSED:
        results = await evaluation_results.results(
            session, evaluation_round=found.evaluation_round, branch_id=scope
        )
        charts.items = item_satisfaction(results)
        charts.quarter = found.evaluation_round.quarter
        charts.flag_below = results.settings.flag_below
    return charts


def fingerprint(found: Digest, branch_id: int | None) -> str:
    """A digest's figures for one reader (their branch, or every branch) as a short hash:
    equal from one week to the next when nothing has moved."""
    chosen = found.branches if branch_id is None else [found.branch(branch_id)]
    figures = [
        (
            b.branch_id,
            b.members,
            b.summaries
            and (b.summaries.submitted, b.summaries.missing, b.summaries.branch_submitted),
            sorted(b.pledges.items()),
            b.evaluation and (b.evaluation.state, b.evaluation.done, b.evaluation.satisfaction),
            sorted(b.reviews.items()),
            b.awaiting_review,
            (b.rectification_open, b.rectification_overdue, b.rectification_reported),
            b.unreachable,
            b.not_joined,
        )
        for b in chosen
        if b is not None
    ]
    return hashlib.sha256(json.dumps(figures, ensure_ascii=False, default=str).encode()).hexdigest()
