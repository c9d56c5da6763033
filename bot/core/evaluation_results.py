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
    # (choices in the satisfied levels, all choices) over every item, for pooled figures
    pooled: tuple[int, int] = (0, 0)


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
    items: bool = True,
) -> RoundResults:
    """Every target's results (of one branch, or one target), thresholds applied; with
    `items`, each shown target's figures per item too.

    The database sums the counts (a round may have 1,000,000 targets and thirty count rows
    each): a constant number of queries whatever the number of targets."""
    settings = RoundSettings.of(evaluation_round)
    round_id, scope = evaluation_round.id, {"branch_id": branch_id, "target": target}
    figures = await queries.target_figures(
        session, round_id=round_id, satisfied_levels=settings.satisfied_levels, **scope
    )
    per_item: dict[str, dict[int, list[int]]] = defaultdict(dict)
    levels = len(settings.scale)
    if items:
        for key, item, level, count in await queries.item_counts(
            session, round_id=round_id, min_raters=settings.min_raters, **scope
        ):
            per_item[key].setdefault(item, [0] * levels)[level] = count
    comments = await queries.comments(session, round_id=round_id, **scope)
    by_code = await queries.code_raters_per_target(session, round_id=round_id)
    names = await evaluation.target_names(
        session,
        keys=[key for key, *_rest in figures],
        organisation_id=evaluation_round.organisation_id,
    )
    found = []
    for key, kind, target_branch, raters, satisfied, choices in figures:
        result = TargetResult(key, names.get(key, "?"), kind, target_branch, raters, False)
        found.append(result)
        if raters < settings.min_raters:
            continue
        result.shown = True
        result.by_code = by_code.get(key, 0)
        result.pooled = (satisfied, choices)
        for index, name in enumerate(settings.items_for(kind) if items else ()):
            item_counts = per_item[key].get(index, [0] * levels)
            rate = _rate(item_counts, settings.satisfied_levels)
            result.items.append(
                ItemResult(name, tuple(item_counts), rate, rate < settings.flag_below)
            )
        result.satisfaction = satisfied / choices if choices else None
        result.flagged = result.satisfaction < settings.flag_below
        texts = list(comments.get(key, []))
        if len(texts) >= settings.min_commenters:
            _shuffle(texts)
            result.comments = texts
        else:
            result.comments_withheld = bool(texts)
    order = {TargetKind.BRANCH: 0, TargetKind.LEADING_CADRE: 1, TargetKind.ORDINARY: 2}
    found.sort(key=lambda r: (r.branch_id, order[TargetKind(r.kind)], r.name))
    return RoundResults(evaluation_round, settings, found, _totals(found, settings))


def _totals(found: list[TargetResult], settings: RoundSettings) -> list[Total]:
    """The members of each branch pooled, then everyone: only targets shown on their own."""
    groups: dict[int | None, list[TargetResult]] = defaultdict(list)
    for result in found:
        if result.kind != TargetKind.BRANCH:
            groups[result.branch_id].append(result)
            groups[None].append(result)
    totals = []
    for key, members in groups.items():
        shown = [r for r in members if r.shown]
        satisfied = sum(r.pooled[0] for r in shown)
        choices = sum(r.pooled[1] for r in shown)
        rate = satisfied / choices if choices else None
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
