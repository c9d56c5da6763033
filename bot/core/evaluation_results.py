"""Results of a closed 群众评议 round, within the anonymity thresholds.

A target's figures are shown only when at least `min_raters` distinct raters rated it, its
comments only when there are also at least `min_commenters` of them, in random order.
Totals over several targets (a branch's members, the organisation) count only targets
whose own figures are shown, so no total minus the shown figures gives away a hidden one.
Nothing is shown before the round closes: a tally that moves reveals the vote that moved it.
"""

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import evaluation
from bot.core.access import Actor, overseen_branch
from bot.core.actions import Action
from bot.core.evaluation import RoundSettings, RoundState
from storage import evaluation as queries
from storage.models import EvaluationRound, Role, TargetKind

_shuffle = random.SystemRandom().shuffle


@dataclass(frozen=True)
class ItemResult:
    name: str
    counts: tuple[int, ...]  # per level of the scale
    satisfaction: float  # share in the satisfied levels (满意 + 比较满意)
    flagged: bool


@dataclass
class TargetResult:
    target: str
    name: str
    kind: str
    branch_id: int
    raters: int
    shown: bool  # enough raters for the figures
    items: list[ItemResult] = field(default_factory=list)
    satisfaction: float | None = None
    flagged: bool = False
    comments: list[str] = field(default_factory=list)
    comments_withheld: bool = False  # there are comments, too few to show
    by_code: int = 0  # how many of the raters used an evaluation code


@dataclass(frozen=True)
class Total:
    """Pooled figures over the shown targets of a group; `withheld` were left out."""

    branch_id: int | None  # None: the whole organisation
    included: int
    withheld: int
    satisfaction: float | None
    flagged: bool


@dataclass
class RoundResults:
    evaluation_round: EvaluationRound
    settings: RoundSettings
    targets: list[TargetResult]
    totals: list[Total]


def _rate(counts: list[int] | tuple[int, ...], satisfied: int) -> float | None:
    total = sum(counts)
    return sum(counts[:satisfied]) / total if total else None


async def results(
    session: AsyncSession,
    *,
    evaluation_round: EvaluationRound,
    branch_id: int | None = None,
    target: str | None = None,
) -> RoundResults:
    """Every target's results (of one branch, or one target), thresholds applied.

    A constant number of queries whatever the number of targets."""
    settings = RoundSettings.of(evaluation_round)
    targets = [
        t
        for t in await queries.targets_of(session, round_id=evaluation_round.id)
        if (branch_id is None or t.branch_id == branch_id) and target in (None, t.target)
    ]
    wanted = {t.target for t in targets}
    counts: dict[str, dict[int, list[int]]] = defaultdict(dict)
    levels = len(settings.scale)
    for row in await queries.tallies(session, round_id=evaluation_round.id):
        if row.target in wanted:
            counts[row.target].setdefault(row.item, [0] * levels)[row.level] = row.count
    comments = await queries.comments(session, round_id=evaluation_round.id)
    by_code = await queries.code_raters_per_target(session, round_id=evaluation_round.id)
    names = await evaluation.target_names(session, keys=list(wanted))
    found = []
    for t in targets:
        items = settings.items_for(t.kind)
        per_item = counts.get(t.target, {})
        raters = sum(per_item.get(0, ()))
        result = TargetResult(
            t.target, names.get(t.target, "?"), t.kind, t.branch_id, raters, False
        )
        found.append(result)
        if raters < settings.min_raters:
            continue
        result.shown = True
        result.by_code = by_code.get(t.target, 0)
        pooled = [0] * levels
        for index, name in enumerate(items):
            item_counts = per_item.get(index, [0] * levels)
            pooled = [a + b for a, b in zip(pooled, item_counts, strict=True)]
            rate = _rate(item_counts, settings.satisfied_levels)
            result.items.append(
                ItemResult(name, tuple(item_counts), rate, rate < settings.flag_below)
            )
        result.satisfaction = _rate(pooled, settings.satisfied_levels)
        result.flagged = result.satisfaction < settings.flag_below
        texts = list(comments.get(t.target, []))
        if len(texts) >= settings.min_commenters:
            _shuffle(texts)
            result.comments = texts
        else:
            result.comments_withheld = bool(texts)
    order = {TargetKind.BRANCH: 0, TargetKind.LEADING_CADRE: 1, TargetKind.ORDINARY: 2}
    found.sort(key=lambda r: (r.branch_id, order[TargetKind(r.kind)], r.name))
    return RoundResults(evaluation_round, settings, found, _totals(found, counts, settings))


def _totals(found: list[TargetResult], counts, settings: RoundSettings) -> list[Total]:
    """The members of each branch pooled, then everyone: only targets shown on their own."""
    groups: dict[int | None, list[TargetResult]] = defaultdict(list)
    for result in found:
        if result.kind != TargetKind.BRANCH:
            groups[result.branch_id].append(result)
            groups[None].append(result)
    totals = []
    for key, members in groups.items():
        shown = [r for r in members if r.shown]
        pooled = [0] * len(settings.scale)
        for result in shown:
            for item_counts in counts[result.target].values():
                pooled = [a + b for a, b in zip(pooled, item_counts, strict=True)]
        rate = _rate(pooled, settings.satisfied_levels)
        totals.append(
            Total(
                key,
                len(shown),
                len(members) - len(shown),
                rate,
                rate is not None and rate < settings.flag_below,
            )
        )
    return totals


class Scope:
    """What part of a round's results a person may see."""

    OWN = "own"
    BRANCH = "branch"
    ALL = "all"


@dataclass(frozen=True)
class ShowResults(Action, prefix="evr"):
    """The results of one scope (Scope)."""

    scope: Literal["own", "branch", "all"]


def scopes_for(actor: Actor) -> list[str]:
    scopes = [Scope.OWN]
    if actor.has(Role.SECRETARY) or actor.has(Role.ORGANISER):
        scopes.append(Scope.BRANCH)
    if actor.has(Role.ORGANISER):
        scopes.append(Scope.ALL)
    return scopes


async def visible_results(
    session: AsyncSession, *, actor: Actor, evaluation_round: EvaluationRound, scope: str, now
) -> RoundResults | None:
    """The results this person may see: their own; a secretary's branch; the organiser's
    everything. None while the round is still running or if the scope is not theirs."""
    if evaluation.state_of(evaluation_round, now) != RoundState.CLOSED:
        return None
    if evaluation_round.organisation_id != actor.organisation_id or scope not in scopes_for(actor):
        return None
    if scope == Scope.OWN:
        return await results(
            session, evaluation_round=evaluation_round, target=f"member:{actor.member_id}"
        )
    if scope == Scope.BRANCH:
        return await results(session, evaluation_round=evaluation_round, branch_id=actor.branch_id)
    return await results(
        session, evaluation_round=evaluation_round, branch_id=overseen_branch(actor)
    )
