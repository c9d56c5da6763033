"""群众评议 (seed 004): rounds, who rates whom, ballots counted once, participation.

A round belongs to a quarter. Its settings (scale, items, who rates whom, anonymity
thresholds) are fixed once it opens, so nobody can lower a threshold after seeing who took
part. A confirmed ballot is taken by `cast` into the pending ballots (memory), and counted
in a batch of at least k on the same target by `count_batches`, which records that each
rater has rated the target and adds the batch's summed choices to anonymous counts.
"""

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import Actor, overseen_branch
from bot.core.actions import Action
from bot.core.calendar import CampaignTime
from bot.core.pending_ballots import Batch, Confirmed, PendingBallots
from storage import accounts, people
from storage import calendar as calendar_queries
from storage import evaluation as queries
from storage.db import on_loop
from storage.models import (
    Branch,
    Campaign,
    Category,
    EvaluationCode,
    EvaluationRound,
    EvaluationTarget,
    Member,
    RaterGroup,
    Role,
    StepKind,
    TargetKind,
)

DEFAULT_SCALE = ("满意", "比较满意", "基本满意", "不满意")
# Seed 004, 点评和评议内容.
DEFAULT_ITEMS = {
    TargetKind.BRANCH: (
        "组织领导情况",
        "公开承诺兑现情况",
        "创建优秀党支部措施落实情况",
        "开展活动与促进工作有机结合情况",
        "履行管党责任情况",
        "活动效果",
    ),
    TargetKind.LEADING_CADRE: (
        "参加创先争优活动情况",
        "公开承诺事项兑现情况",
        "推动科学发展情况",
        "执行政策情况",
        "工作作风、廉洁自律情况",
        "关心服务群众情况",
        "分管(主管)工作情况",
    ),
    TargetKind.ORDINARY: (
        "参加创先争优活动情况",
        "公开承诺事项兑现情况",
        "履行岗位职责情况",
        "服务群众情况",
        "工作作风情况",
        "工作成效",
    ),
}
# Whom each kind of rater rates (seed 004, 点评和评议方式): members rate the leadership
# team, their own branch and its members; 局工作人员 the leadership team; the masses a
# grassroots unit serves, the members of the branch they are attached to.
LEADERSHIP, OWN_BRANCH, BRANCH_MEMBERS = "leadership", "own_branch", "branch_members"
TARGET_SETS = (LEADERSHIP, OWN_BRANCH, BRANCH_MEMBERS)
MEMBERS = "member"
RATER_KINDS = (MEMBERS, *(group.value for group in RaterGroup))
DEFAULT_WHO_RATES = {
    MEMBERS: (LEADERSHIP, OWN_BRANCH, BRANCH_MEMBERS),
    RaterGroup.STAFF.value: (LEADERSHIP,),
    RaterGroup.UNIT_STAFF.value: (BRANCH_MEMBERS,),
    RaterGroup.VENDOR.value: (BRANCH_MEMBERS,),
}
THRESHOLD_FLOOR = 3  # never fewer raters than this behind a figure, whatever the settings
COMMENT_LIMIT = 300
SCALE_LEVELS = (2, 7)  # fewest and most levels of a scale
ITEMS_PER_KIND = (1, 12)  # fewest and most items asked of one kind of target
ITEM_LIMIT = 60
QUARTER_LIMIT = 100  # characters of a round's quarter name
FLAG_RANGE = (0, 1)  # flag_below is a share of satisfied ratings
MAX_CODES = 500  # evaluation codes per request: a sheet for one market or unit
DEFAULT_CODES = 10  # when the roster lists nobody for a group, this many codes are printed


class Problem(str):
    """A problem's message key (it compares and is stored as the key), with the values its
    wording names: the limits it was checked against, so that messages never spell them."""

    values: dict[str, object]

    def __new__(cls, key: str, **values: object) -> "Problem":
        problem = super().__new__(cls, key)
        problem.values = values
        return problem


@dataclass(frozen=True)
class RoundControl(Action, prefix="eva"):
    """The organiser opens or closes the round (each after a confirming tap: "open!",
    "close!"), or asks for evaluation codes."""

    step: Literal["open", "open!", "close", "close!", "codes"]


@dataclass(frozen=True)
class CodesFor(Action, prefix="evc"):
    """Evaluation codes for a rater group, attached to a branch (0: none)."""

    rater_group: str
    branch_id: int


@dataclass(frozen=True)
class RoundSettings:
    """What a round asks and how it protects raters; frozen once the round opens."""

    scale: tuple[str, ...] = DEFAULT_SCALE
    satisfied_levels: int = 2  # 满意 + 比较满意
    items: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ITEMS))
    who_rates: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_WHO_RATES))
    min_raters: int = 5  # a target's figures need this many distinct raters
    min_commenters: int = 5  # its comments need this many comments
    flag_below: float = 0.6  # satisfaction under this is flagged (补课)

    def items_for(self, kind: str) -> tuple[str, ...]:
        return self.items[kind]

    def to_json(self) -> str:
        return json.dumps(
            {
                "scale": list(self.scale),
                "satisfied_levels": self.satisfied_levels,
                "items": {k: list(v) for k, v in self.items.items()},
                "who_rates": {k: list(v) for k, v in self.who_rates.items()},
                "min_raters": self.min_raters,
                "min_commenters": self.min_commenters,
                "flag_below": self.flag_below,
            },
            ensure_ascii=False,
        )

    @classmethod
    def of(cls, evaluation_round: EvaluationRound) -> "RoundSettings":
        return _parsed(evaluation_round.settings)

    @classmethod
    def parse(cls, data: dict) -> tuple["RoundSettings | None", list[str]]:
        """Settings from a file's table (anything left out keeps seed 004's default), or the
        problems found; each problem is a message key."""
        problems: list[str] = []
        known = {
            "scale",
            "satisfied_levels",
            "items",
            "who_rates",
            "min_raters",
            "min_commenters",
            "flag_below",
        }
        if set(data) - known:
            problems.append("evaluation_unknown_setting")
        settings = cls()
        try:
            scale = tuple(str(s).strip() for s in data.get("scale", settings.scale))
            items = {
                **settings.items,
                **{
                    TargetKind(k).value: tuple(str(i).strip() for i in v)
                    for k, v in data.get("items", {}).items()
                },
            }
            who_rates = {
                **settings.who_rates,
                **{k: tuple(v) for k, v in data.get("who_rates", {}).items()},
            }
            settings = replace(
                settings,
                scale=scale,
                satisfied_levels=int(data.get("satisfied_levels", settings.satisfied_levels)),
                items=items,
                who_rates=who_rates,
                min_raters=int(data.get("min_raters", settings.min_raters)),
                min_commenters=int(data.get("min_commenters", settings.min_commenters)),
                flag_below=float(data.get("flag_below", settings.flag_below)),
            )
        except (TypeError, ValueError, AttributeError):
            return None, [*problems, "evaluation_bad_setting"]
        fewest, most = SCALE_LEVELS
        if not fewest <= len(scale) <= most or len(set(scale)) != len(scale) or not all(scale):
            problems.append(Problem("evaluation_bad_scale", fewest=fewest, most=most))
        elif not 1 <= settings.satisfied_levels < len(scale):
            problems.append(Problem("evaluation_bad_satisfied_levels", fewest=1))
        fewest, most = ITEMS_PER_KIND
        if any(
            not fewest <= len(v) <= most or not all(0 < len(i) <= ITEM_LIMIT for i in v)
            for v in items.values()
        ):
            problems.append(
                Problem("evaluation_bad_items", fewest=fewest, most=most, longest=ITEM_LIMIT)
            )
        if set(who_rates) - set(RATER_KINDS) or any(
            set(v) - set(TARGET_SETS) for v in who_rates.values()
        ):
            problems.append("evaluation_bad_who_rates")
        if min(settings.min_raters, settings.min_commenters) < THRESHOLD_FLOOR:
            problems.append(Problem("evaluation_threshold_too_low", floor=THRESHOLD_FLOOR))
        lowest, highest = FLAG_RANGE
        if not lowest <= settings.flag_below <= highest:
            problems.append(
                Problem(
                    "evaluation_bad_flag",
                    lowest=lowest,
                    highest=highest,
                    example=RoundSettings.flag_below,
                )
            )
        return (None, problems) if problems else (settings, [])


@lru_cache(maxsize=64)
def _parsed(text: str) -> RoundSettings:
    data = json.loads(text)
    return RoundSettings(
        scale=tuple(data["scale"]),
        satisfied_levels=data["satisfied_levels"],
        items={k: tuple(v) for k, v in data["items"].items()},
        who_rates={k: tuple(v) for k, v in data["who_rates"].items()},
        min_raters=max(THRESHOLD_FLOOR, data["min_raters"]),
        min_commenters=max(THRESHOLD_FLOOR, data["min_commenters"]),
        flag_below=data["flag_below"],
    )


@dataclass(frozen=True)
class Rater:
    """Whoever is rating: a member, or the anonymous holder of an evaluation code."""

    key: str  # "member:<id>" or "code:<id>": what participation records
    organisation_id: int
    kind: str  # MEMBERS or a RaterGroup value
    branch_id: int | None

    @classmethod
    def of_member(cls, actor: Actor) -> "Rater":
        return cls(f"member:{actor.member_id}", actor.organisation_id, MEMBERS, actor.branch_id)

    @classmethod
    def of_code(cls, code: EvaluationCode, organisation_id: int) -> "Rater":
        return cls(f"code:{code.id}", organisation_id, code.rater_group, code.branch_id)


def wanted_by(target: EvaluationTarget, rater: Rater, sets: tuple[str, ...]) -> bool:
    """Whether the round's rules give this rater this target; nobody rates themselves."""
    if target.target == rater.key:
        return False
    own = rater.branch_id is not None and target.branch_id == rater.branch_id
    is_branch = target.kind == TargetKind.BRANCH
    return (
        (LEADERSHIP in sets and target.leadership)
        or (OWN_BRANCH in sets and own and is_branch)
        or (BRANCH_MEMBERS in sets and own and not is_branch)
    )


class RoundState(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    COUNTING = "counting"  # ended; the ballots still waiting in memory are not counted yet
    CLOSED = "closed"  # ended and every ballot counted: results may be shown


def state_of(evaluation_round: EvaluationRound, now: datetime) -> RoundState:
    if evaluation_round.counted_at is not None:
        return RoundState.CLOSED
    if evaluation_round.closed_at is not None or now >= evaluation_round.closes_at:
        return RoundState.COUNTING
    return RoundState.OPEN if now >= evaluation_round.opens_at else RoundState.SCHEDULED


def has_ended(evaluation_round: EvaluationRound, now: datetime) -> bool:
    return state_of(evaluation_round, now) in (RoundState.COUNTING, RoundState.CLOSED)


# --- rounds ------------------------------------------------------------------------------


async def open_round(
    session: AsyncSession,
    *,
    organisation_id: int,
    quarter: str,
    closes_at: datetime,
    now: datetime,
    opens_at: datetime | None = None,
    settings: RoundSettings | None = None,
) -> EvaluationRound | list[str]:
    """Set up a round (opening now unless `opens_at` says later), or the problems found."""
    opens_at = opens_at or now
    quarter = quarter.strip()
    problems = []
    if not 0 < len(quarter) <= QUARTER_LIMIT:
        problems.append(Problem("evaluation_bad_quarter", longest=QUARTER_LIMIT))
    if closes_at <= max(opens_at, now):
        problems.append("evaluation_bad_closing")
    existing = await queries.rounds_of(session, organisation_id=organisation_id)
    if any(r.quarter == quarter for r in existing):
        problems.append("evaluation_quarter_taken")
    if problems:
        return problems
    evaluation_round = EvaluationRound(
        organisation_id=organisation_id,
        quarter=quarter,
        opens_at=opens_at,
        closes_at=closes_at,
        settings=(settings or RoundSettings()).to_json(),
        created_at=now,
    )
    session.add(evaluation_round)
    await session.flush()
    await _set_targets(session, evaluation_round)
    return evaluation_round


async def configure(
    session: AsyncSession, *, evaluation_round: EvaluationRound, settings: RoundSettings, now
) -> bool:
    """Change a round's settings before it opens; False (nothing changed) once it has."""
    if now >= evaluation_round.opens_at:
        return False
    evaluation_round.settings = settings.to_json()
    await queries.delete_round_rows(session, round_id=evaluation_round.id)
    await _set_targets(session, evaluation_round)
    return True


async def _set_targets(session: AsyncSession, evaluation_round: EvaluationRound) -> None:
    """Everyone and every branch rated in the round; their counts start with the first
    batch (no row is a zero)."""
    await queries.add_targets(
        session,
        round_id=evaluation_round.id,
        organisation_id=evaluation_round.organisation_id,
        leadership_roles=[Role.LEADER.value, Role.PARTY_SECRETARY.value],
        cadre_category=Category.LEADING_CADRE.value,
    )


async def close_round(
    session: AsyncSession, *, evaluation_round: EvaluationRound, now: datetime
) -> bool:
    """End a round now; False if it had ended already."""
    if evaluation_round.closed_at is not None:
        return False
    evaluation_round.closed_at = min(now, evaluation_round.closes_at)
    return True


async def count_pending(
    session: AsyncSession,
    *,
    evaluation_round: EvaluationRound,
    batches: dict[tuple[int, str], Batch],
    now: datetime,
) -> None:
    """The round has ended: count what was still waiting and mark it counted, so that its
    results may be shown. What waits on a target is at least k ballots, or all the target
    ever had: then only its raters' participation is written, never their choices (fewer
    than k could be told apart, and the figures could not be shown anyway)."""
    if evaluation_round.closed_at is None:
        evaluation_round.closed_at = evaluation_round.closes_at
    await count_batches(
        session,
        evaluation_round=evaluation_round,
        batches={target: batch for (_round_id, target), batch in batches.items()},
        last=True,
    )
    evaluation_round.counted_at = now


async def current_round(
    session: AsyncSession, *, organisation_id: int, now: datetime
) -> EvaluationRound | None:
    """The round open now, else the one opening next, else the last one closed."""
    rounds = await queries.rounds_of(session, organisation_id=organisation_id)
    by_state = defaultdict(list)
    for evaluation_round in rounds:
        by_state[state_of(evaluation_round, now)].append(evaluation_round)
    if by_state[RoundState.OPEN]:
        return by_state[RoundState.OPEN][-1]
    if by_state[RoundState.SCHEDULED]:
        return by_state[RoundState.SCHEDULED][0]
    closed = by_state[RoundState.CLOSED] + by_state[RoundState.COUNTING]
    return max(closed, key=lambda r: r.closed_at or r.closes_at) if closed else None


async def last_closed_round(
    session: AsyncSession, *, organisation_id: int, now: datetime
) -> EvaluationRound | None:
    closed = [
        r
        for r in await queries.rounds_of(session, organisation_id=organisation_id)
        if state_of(r, now) == RoundState.CLOSED
    ]
    return max(closed, key=lambda r: r.closed_at or r.closes_at) if closed else None


async def round_by_id(session: AsyncSession, *, round_id: int) -> EvaluationRound | None:
    return await session.get(EvaluationRound, round_id)


async def open_now(
    session: AsyncSession, *, organisation_id: int, now: datetime
) -> EvaluationRound | None:
    """The round open now, if any: only then are codes issued or the round closed early."""
    evaluation_round = await current_round(session, organisation_id=organisation_id, now=now)
    if evaluation_round is None or state_of(evaluation_round, now) != RoundState.OPEN:
        return None
    return evaluation_round


@dataclass(frozen=True)
class Overview:
    """How far the current round has got, for a secretary (their branch) or the organiser
    (everything, and the controls they may use now: RoundControl steps)."""

    evaluation_round: EvaluationRound | None
    state: RoundState | None
    progress: list["BranchParticipation"]
    organiser: bool
    controls: tuple[str, ...]


async def overview(session: AsyncSession, *, actor: Actor, now: datetime) -> Overview:
    organisation_id = actor.organisation_id
    evaluation_round = await current_round(session, organisation_id=organisation_id, now=now)
    state = state_of(evaluation_round, now) if evaluation_round else None
    progress = []
    if evaluation_round is not None:
        progress = await participation(
            session, evaluation_round=evaluation_round, branch_id=overseen_branch(actor)
        )
    organiser = actor.has(Role.ORGANISER)
    controls: tuple[str, ...] = ()
    if organiser and state == RoundState.OPEN:
        controls = ("codes", "close")
    elif organiser and await proposed_round(session, organisation_id=organisation_id, now=now):
        controls = ("open",)
    return Overview(evaluation_round, state, progress, organiser, controls)


# --- evaluation codes: for whom, how many --------------------------------------------------


@dataclass(frozen=True)
class CodeGroup:
    """Whom a sheet of evaluation codes is for: a rater group, and the branch whose members
    it rates (None for 局工作人员, who rate the leadership team)."""

    rater_group: RaterGroup
    branch_id: int | None
    branch_name: str = ""
    listed: int = 0  # its people on the roster: how many codes a sheet has unless told


async def code_groups(session: AsyncSession, *, organisation_id: int) -> list[CodeGroup]:
    """Each group the roster names (by its outsiders), and 局工作人员 always."""
    branches = await branch_names(session, organisation_id=organisation_id)
    counts: dict[tuple[str, int | None], int] = {(RaterGroup.STAFF.value, None): 0}
    for outsider in await people.list_outsiders(session, organisation_id=organisation_id):
        if outsider.active:
            key = (outsider.rater_group, outsider.branch_id)
            counts[key] = counts.get(key, 0) + 1
    return [
        CodeGroup(RaterGroup(group), branch_id, branches.get(branch_id, ""), listed)
        for (group, branch_id), listed in sorted(counts.items(), key=lambda kv: str(kv[0]))
    ]


async def code_group(
    session: AsyncSession, *, organisation_id: int, rater_group: str, branch_id: int | None
) -> CodeGroup | None:
    """One of `code_groups` (None: the roster names no such group)."""
    groups = await code_groups(session, organisation_id=organisation_id)
    return next(
        (g for g in groups if (g.rater_group, g.branch_id) == (rater_group, branch_id)), None
    )


@dataclass(frozen=True)
class CodeOrder:
    """Codes to issue: for the round open now, for one group, so many."""

    evaluation_round: EvaluationRound
    group: CodeGroup
    count: int


async def order_codes(
    session: AsyncSession,
    *,
    organisation_id: int,
    group: CodeGroup,
    count: int | None,
    now: datetime,
) -> CodeOrder | list[str]:
    """Codes may be issued while a round is open, at most MAX_CODES at once (unless told,
    as many as the roster lists, or DEFAULT_CODES), and for a group other than 局工作人员
    only with its branch: those rate the members of one branch, and without it a code would
    have nobody to rate. Else the problems (keys of messages' _evaluation)."""
    problems = []
    if group.rater_group != RaterGroup.STAFF and group.branch_id is None:
        problems.append("evaluation_branch_needed")
    if count is None:
        count = min(group.listed or DEFAULT_CODES, MAX_CODES)
    if not 0 < count <= MAX_CODES:
        problems.append(Problem("evaluation_bad_count", fewest=1, most=MAX_CODES))
    evaluation_round = await open_now(session, organisation_id=organisation_id, now=now)
    if evaluation_round is None:
        problems.append("evaluation_no_round")
    return problems or CodeOrder(evaluation_round, group, count)


# --- rating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetView:
    """A target as a rater sees it in their list."""

    target: EvaluationTarget
    name: str
    branch_name: str
    rated: bool


async def targets_for(
    session: AsyncSession,
    *,
    evaluation_round: EvaluationRound,
    rater: Rater,
) -> list[TargetView]:
    """Everyone this rater rates in the round, branches first, with what they have rated
    (counted, or confirmed and held for its batch)."""
    settings = RoundSettings.of(evaluation_round)
    sets = settings.who_rates.get(rater.kind, ())
    candidates = (
        await session.exec(
            select(EvaluationTarget).where(
                EvaluationTarget.round_id == evaluation_round.id,
                col(EvaluationTarget.leadership)
                | (EvaluationTarget.branch_id == (rater.branch_id or 0)),
            )
        )
    ).all()
    wanted = [t for t in candidates if wanted_by(t, rater, sets)]
    rated = await queries.rated_by(session, round_id=evaluation_round.id, rater=rater.key)
    names = await target_names(session, keys=[t.target for t in wanted])
    branches = await branch_names(session, organisation_id=rater.organisation_id)
    views = [
        TargetView(t, names.get(t.target, "?"), branches.get(t.branch_id, ""), t.target in rated)
        for t in wanted
    ]
    order = {TargetKind.BRANCH: 0, TargetKind.LEADING_CADRE: 1, TargetKind.ORDINARY: 2}
    return sorted(views, key=lambda v: (order[TargetKind(v.target.kind)], v.name))


async def target_names(
    session: AsyncSession, *, keys: list[str], organisation_id: int | None = None
) -> dict[str, str]:
    """ "member:<id>" / "branch:<id>" → the member's or the branch's name. Past a thousand
    keys (and with the organisation) the names of all its members are read instead: a
    list of a million ids is no query."""
    member_ids = [int(k.split(":")[1]) for k in keys if k.startswith("member:")]
    branch_ids = [int(k.split(":")[1]) for k in keys if k.startswith("branch:")]
    found = {}
    if len(member_ids) > 1000 and organisation_id is not None:
        rows = await session.exec(
            select(Member.id, Member.name).where(Member.organisation_id == organisation_id)
        )
        found |= {f"member:{i}": name for i, name in rows.all()}
    elif member_ids:
        rows = await session.exec(
            select(Member.id, Member.name).where(col(Member.id).in_(member_ids))
        )
        found |= {f"member:{i}": name for i, name in rows.all()}
    if branch_ids:
        rows = await session.exec(
            select(Branch.id, Branch.name).where(col(Branch.id).in_(branch_ids))
        )
        found |= {f"branch:{i}": name for i, name in rows.all()}
    return found


async def branch_names(session: AsyncSession, *, organisation_id: int) -> dict[int, str]:
    rows = await session.exec(
        select(Branch.id, Branch.name).where(Branch.organisation_id == organisation_id)
    )
    return dict(rows.all())


async def who_rates(
    session: AsyncSession,
    *,
    actor: Actor | None,
    seated: tuple[Rater, int] | None,
    now: datetime,
) -> tuple[Rater, EvaluationRound | None] | None:
    """Who is rating, and in which round: a member in the current one, a code holder
    (`seated`: their anonymous rater and round) in their code's; None for a stranger
    without a code."""
    if actor is not None:
        organisation_id = actor.organisation_id
        evaluation_round = await current_round(session, organisation_id=organisation_id, now=now)
        return Rater.of_member(actor), evaluation_round
    if seated is None:
        return None
    rater, round_id = seated
    return rater, await round_by_id(session, round_id=round_id)


async def target_to_rate(
    session: AsyncSession,
    *,
    rater: Rater,
    evaluation_round: EvaluationRound | None,
    round_id: int,
    target: str,
    now: datetime,
) -> TargetView | str:
    """The target a rater chose (from a button of round `round_id`), or why a ballot on it
    cannot start: a notice key."""
    if evaluation_round is None or evaluation_round.id != round_id:
        return "ballot_stale"
    if state_of(evaluation_round, now) != RoundState.OPEN:
        return "ballot_closed"
    targets = await targets_for(session, evaluation_round=evaluation_round, rater=rater)
    found = next((t for t in targets if t.target.target == target), None)
    if found is None:
        return "button_refused"
    return "ballot_already" if found.rated else found


class Outcome(StrEnum):
    RECEIVED = "received"  # held for its batch, to be counted with at least k others
    ALREADY = "already"  # this rater's ballot on this target was received before
    CLOSED = "closed"  # the round is not taking ballots
    NOT_YOURS = "not_yours"  # not a target this rater rates
    INVALID = "invalid"  # a choice missing or out of the scale, a comment too long


async def cast(
    session: AsyncSession,
    *,
    pending: PendingBallots,
    round_id: int,
    rater: Rater,
    target: str,
    choices: list[int],
    comment: str,
    now: datetime,
) -> Outcome:
    """Take one confirmed ballot into `pending`, exactly once; nothing is written now."""
    await on_loop(session)  # a few rows by key (storage.db.on_loop)
    evaluation_round = await session.get(EvaluationRound, round_id)
    if evaluation_round is None or evaluation_round.organisation_id != rater.organisation_id:
        return Outcome.NOT_YOURS
    if state_of(evaluation_round, now) != RoundState.OPEN:
        return Outcome.CLOSED
    settings = RoundSettings.of(evaluation_round)
    found = await queries.targets_of(session, round_id=round_id, keys=[target])
    if not found or not wanted_by(found[0], rater, settings.who_rates.get(rater.kind, ())):
        return Outcome.NOT_YOURS
    items = settings.items_for(found[0].kind)
    comment = comment.strip()
    if (
        len(choices) != len(items)
        or any(not 0 <= c < len(settings.scale) for c in choices)
        or len(comment) > COMMENT_LIMIT
    ):
        return Outcome.INVALID
    # A batch leaves `pending` only once it is committed, so either it or the database knows
    # of an earlier ballot; asked again after the await, for a second submission meanwhile.
    if target in await queries.rated_by(session, round_id=round_id, rater=rater.key):
        return Outcome.ALREADY
    if pending.holds(round_id, rater.key, target):
        return Outcome.ALREADY
    ballot = Confirmed(rater.key, tuple(choices), comment)
    if not pending.add(round_id, target, ballot, batch_size=settings.min_raters):
        return Outcome.CLOSED
    return Outcome.RECEIVED


class BatchPartlyCounted(Exception):
    """A batch holds ballots whose raters are already counted on its target."""


async def count_batches(
    session: AsyncSession,
    *,
    evaluation_round: EvaluationRound,
    batches: dict[str, Batch],
    last: bool = False,
) -> None:
    """Write batches of ballots, a target each, in a few statements whatever their number:
    the raters' participation (shuffled), the sum of each batch's choices into its target's
    counts, the comments in random places. With `last` (the round's end), a batch smaller
    than k is all its target ever had: only its participation is written."""
    size = RoundSettings.of(evaluation_round).min_raters
    new = await queries.record_participation(
        session,
        round_id=evaluation_round.id,
        pairs=[(b.rater, target) for target, batch in batches.items() for b in batch],
    )
    levels = len(RoundSettings.of(evaluation_round).scale)
    sums: dict[str, list[list[int]]] = {}
    texts: list[tuple[str, str]] = []
    for target, batch in batches.items():
        if last and len(batch) < size:
            continue
        if any((b.rater, target) not in new for b in batch):
            # Some were counted already (a write that committed but was reported failed):
            # the rest alone could be fewer than k. Roll back; the caller sorts it out.
            raise BatchPartlyCounted(target)
        sums[target] = [[0] * levels for _ in batch[0].choices]
        for ballot in batch:
            for item, level in enumerate(ballot.choices):
                sums[target][item][level] += 1
        texts += [(target, b.comment) for b in batch if b.comment]
    random.SystemRandom().shuffle(texts)
    if sums:
        await queries.add_to_tallies(session, round_id=evaluation_round.id, sums=sums)
    await queries.add_comments(session, round_id=evaluation_round.id, texts=texts)


# --- participation -----------------------------------------------------------------------


@dataclass
class BranchParticipation:
    """How far a branch has got: members who have rated all, some, none; codes used."""

    branch_id: int
    name: str
    expected: int = 0
    done: int = 0
    started: int = 0
    not_done: list[str] = field(default_factory=list)  # names, for the secretary's reminders
    codes_issued: int = 0
    codes_used: int = 0  # codes that have rated all their targets


async def participation(
    session: AsyncSession, *, evaluation_round: EvaluationRound, branch_id: int | None = None
) -> list[BranchParticipation]:
    """Per branch, who has rated (never what): a few queries, whatever the size."""
    settings = RoundSettings.of(evaluation_round)
    workload = await _Workload.load(session, evaluation_round, settings)
    rated = await queries.ratings_per_rater(session, round_id=evaluation_round.id)
    names = await branch_names(session, organisation_id=evaluation_round.organisation_id)
    rows: dict[int, BranchParticipation] = {}

    def row(bid: int) -> BranchParticipation:
        return rows.setdefault(bid, BranchParticipation(bid, names.get(bid, "")))

    members = (
        await session.exec(
            select(Member.id, Member.name, Member.branch_id)
            .where(
                Member.organisation_id == evaluation_round.organisation_id,
                Member.active,
                *([Member.branch_id == branch_id] if branch_id is not None else []),
            )
            .order_by(Member.id)
        )
    ).all()
    for member_id, name, member_branch in members:
        key = f"member:{member_id}"
        owed = workload.count(MEMBERS, member_branch, key)
        if not owed:
            continue
        line = row(member_branch)
        line.expected += 1
        done = rated.get(key, 0)
        if done >= owed:
            line.done += 1
        else:
            line.not_done.append(name)
            line.started += bool(done)
    codes = (
        await session.exec(
            select(EvaluationCode).where(EvaluationCode.round_id == evaluation_round.id)
        )
    ).all()
    for code in codes:
        if code.branch_id is None and branch_id is not None:
            continue
        if branch_id is not None and code.branch_id != branch_id:
            continue
        line = row(code.branch_id or 0)
        line.codes_issued += 1
        owed = workload.count(code.rater_group, code.branch_id, f"code:{code.id}")
        line.codes_used += rated.get(f"code:{code.id}", 0) >= owed > 0
    return sorted(rows.values(), key=lambda r: (r.branch_id == 0, r.name))


async def members_with_targets_left(
    session: AsyncSession, *, evaluation_round: EvaluationRound
) -> list[int]:
    """Bound members who still have someone to rate (for the reminder before closing)."""
    return [m for m, rated, owed in await _rating_state(session, evaluation_round) if rated < owed]


async def finished_raters(
    session: AsyncSession, *, organisation_id: int, quarters: set[str]
) -> dict[str, set[int]]:
    """quarter → the members who have rated everyone they rate in that quarter's round
    (the calendar's 群众评议 step is done for them)."""
    found = {}
    for evaluation_round in await queries.rounds_of(session, organisation_id=organisation_id):
        if evaluation_round.quarter in quarters:
            found[evaluation_round.quarter] = {
                m
                for m, rated, owed in await _rating_state(session, evaluation_round)
                if rated >= owed
            }
    return found


async def _rating_state(
    session: AsyncSession, evaluation_round: EvaluationRound
) -> list[tuple[int, int, int]]:
    """(member id, targets rated, targets to rate) of every bound member: three queries."""
    settings = RoundSettings.of(evaluation_round)
    workload = await _Workload.load(session, evaluation_round, settings)
    rated = await queries.ratings_per_rater(session, round_id=evaluation_round.id)
    members = (
        await session.exec(
            select(Member.id, Member.branch_id).where(
                Member.organisation_id == evaluation_round.organisation_id,
                Member.active,
                accounts.is_bound(Member.id),
            )
        )
    ).all()
    return [
        (
            member_id,
            rated.get(f"member:{member_id}", 0),
            workload.count(MEMBERS, member_branch, f"member:{member_id}"),
        )
        for member_id, member_branch in members
    ]


@dataclass
class _Workload:
    """How many targets each kind of rater in each branch has, computed once per round."""

    settings: RoundSettings
    leadership: set[str]
    by_branch: dict[int, set[str]]  # member targets per branch
    branch_targets: set[str]
    _cache: dict = field(default_factory=dict)

    @classmethod
    async def load(cls, session, evaluation_round, settings) -> "_Workload":
        targets = await queries.target_kinds(session, round_id=evaluation_round.id)
        by_branch: dict[int, set[str]] = defaultdict(set)
        for target, kind, branch_id, _leadership in targets:
            if kind != TargetKind.BRANCH:
                by_branch[branch_id].add(target)
        return cls(
            settings,
            {target for target, _kind, _branch, leadership in targets if leadership},
            by_branch,
            {target for target, kind, _branch, _leadership in targets if kind == TargetKind.BRANCH},
        )

    def count(self, kind: str, branch_id: int | None, rater_key: str) -> int:
        """How many targets a rater of this kind and branch has (themselves left out)."""
        keys = self._cache.get((kind, branch_id))
        if keys is None:
            sets = self.settings.who_rates.get(kind, ())
            keys = set()
            if LEADERSHIP in sets:
                keys |= self.leadership
            if branch_id is not None and OWN_BRANCH in sets:
                keys |= {f"branch:{branch_id}"} & self.branch_targets
            if branch_id is not None and BRANCH_MEMBERS in sets:
                keys |= self.by_branch.get(branch_id, set())
            self._cache[(kind, branch_id)] = keys
        return len(keys) - (rater_key in keys)


@dataclass(frozen=True)
class Proposal:
    """The round the calendar suggests: its quarter and closing time."""

    quarter: str
    closes_at: datetime


async def proposed_round(
    session: AsyncSession, *, organisation_id: int, now: datetime, quarter: str | None = None
) -> Proposal | None:
    """The quarter whose evaluation step is running (else the next one), closing at the end
    of that step's deadline; None when the calendar has no such step."""
    campaign = await session.get(Campaign, organisation_id)
    if campaign is None:
        return None
    time = CampaignTime.of(campaign)
    today = time.today(now)
    steps = [
        s
        for s in await calendar_queries.list_steps(session, organisation_id=organisation_id)
        if s.kind == StepKind.EVALUATION
        and s.active
        and s.quarter
        and (quarter is None or s.quarter == quarter)
        and s.due_on >= today
    ]
    if not steps:
        return None
    step = min(steps, key=lambda s: (s.opens_on > today, s.opens_on))
    return Proposal(step.quarter, time.end_of(step.due_on))
