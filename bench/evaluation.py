"""群众评议 at scale, through the service code: ballots taken one session each and written in
batches of k per target (against a one-row INSERT per session on the same database), and
closing a round, counting what still waits and working out its results (a constant number of
statements, whatever the number of targets). On a SQLite file and, when it answers, on
PostgreSQL."""

import random
import time
from datetime import timedelta

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlmodel import insert, select

from bench.harness import (
    bind_telegram_accounts,
    counting,
    each_database,
    floors,
    peak_memory_mb,
)
from bot.core import ballot_counting, evaluation, evaluation_results
from bot.core.evaluation import MEMBERS, Outcome, Rater
from bot.runtime import Runtime
from storage.models import Branch, EvaluationRound, Member, Organisation

QUARTER = "2026年第四季度"
COMMENTS = ("工作认真负责，服务热情。", "希望多深入基层。", "办事效率高。", "作风扎实。")
# Members per branch in the ballots run: each rates the other ten, six items each.
PER_BRANCH = 11

# The floor: the same session and commit around one trivial INSERT.
_floor = Table(
    "bench_floor",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("value", String(40)),
)


async def _organisation(
    runtime: Runtime, *, branches: int, per_branch: int, cadres: bool, name: str
) -> tuple[int, list[tuple[int, int]]]:
    """An organisation written straight into the tables: its id, and (member id, branch id)
    of every member, branch by branch. Nobody is in the leadership team, so a member rates
    exactly their own branch and its members; with `cadres`, each branch's first member is
    a 党员领导干部 (seven items), everyone else an ordinary member (six)."""
    now = runtime.clock.now()
    async with runtime.db.session() as session:
        organisation = Organisation(name=name, timezone="Asia/Shanghai", created_at=now)
        session.add(organisation)
        await session.flush()
        await session.exec(
            insert(Branch),
            params=[
                {"organisation_id": organisation.id, "name": f"第{b}支部", "is_organ": False}
                for b in range(branches)
            ],
        )
        branch_ids = list(
            (
                await session.exec(
                    select(Branch.id)
                    .where(Branch.organisation_id == organisation.id)
                    .order_by(Branch.id)
                )
            ).all()
        )
        rows = [
            {
                "organisation_id": organisation.id,
                "name": f"党员{b}-{m}",
                "branch_id": branch_id,
                "category": "leading_cadre" if cadres and m == 0 else "ordinary",
                "roles": "member secretary" if m == 0 else "member",
                "active": True,
                "reminders_muted": False,
                "created_at": now,
                "updated_at": now,
            }
            for b, branch_id in enumerate(branch_ids)
            for m in range(per_branch)
        ]
        for start in range(0, len(rows), 20_000):
            await session.exec(insert(Member), params=rows[start : start + 20_000])
        await bind_telegram_accounts(session, organisation_id=organisation.id, now=now)
        members = (
            await session.exec(
                select(Member.id, Member.branch_id)
                .where(Member.organisation_id == organisation.id)
                .order_by(Member.branch_id, Member.id)
            )
        ).all()
        return organisation.id, [(m, b) for m, b in members]


async def _open_round(runtime: Runtime, organisation_id: int) -> int:
    now = runtime.clock.now()
    async with runtime.db.session() as session:
        evaluation_round = await evaluation.open_round(
            session,
            organisation_id=organisation_id,
            quarter=QUARTER,
            closes_at=now + timedelta(days=7),
            now=now,
        )
        assert isinstance(evaluation_round, EvaluationRound), evaluation_round
        return evaluation_round.id


# --- ballots -------------------------------------------------------------------------------


def _pairs(members: list[tuple[int, int]], limit: int) -> list[tuple[int, int, int]]:
    """(rater, target, branch): every member rates every other member of their branch, one
    rater after another (as people do), up to `limit` ballots."""
    by_branch: dict[int, list[int]] = {}
    for member_id, branch_id in members:
        by_branch.setdefault(branch_id, []).append(member_id)
    pairs = []
    for branch_id, ids in by_branch.items():
        for rater in ids:
            for target in ids:
                if target != rater:
                    pairs.append((rater, target, branch_id))
                    if len(pairs) == limit:
                        return pairs
    return pairs


async def _floor_rate(runtime: Runtime, count: int) -> float:
    """One-row INSERTs per second, each in its own session committed like a ballot's."""
    async with runtime.db.engine.begin() as connection:
        await connection.run_sync(_floor.metadata.create_all)
    started = time.perf_counter()
    for n in range(count):
        async with runtime.db.session() as session:
            await session.exec(insert(_floor).values(value=f"member:{n}"))
    return count / (time.perf_counter() - started)


def _ballots_measure(ballots: int):
    async def measure(runtime: Runtime) -> dict:
        branches = -(-ballots // (PER_BRANCH * (PER_BRANCH - 1)))
        organisation_id, members = await _organisation(
            runtime, branches=branches, per_branch=PER_BRANCH, cadres=False, name="基准测试局"
        )
        round_id = await _open_round(runtime, organisation_id)
        pairs = _pairs(members, ballots)
        assert len(pairs) == ballots
        choose = random.Random(4).randrange
        # Decided before the clock starts, so the timing is the service's and the database's.
        work = [
            (
                Rater(f"member:{rater}", organisation_id, MEMBERS, branch_id),
                f"member:{target}",
                [choose(4) for _ in range(6)],
                COMMENTS[n // 5 % len(COMMENTS)] if n % 5 == 0 else "",
            )
            for n, (rater, target, branch_id) in enumerate(pairs)
        ]
        now = runtime.clock.now()
        received = batches = 0
        batch_seconds = 0.0
        tenth = max(ballots // 10, 1)
        marks = []  # the clock at every tenth of the ballots, to see any slowing down
        with counting(runtime) as statements:
            started = time.perf_counter()
            for n, (rater, target, choices, comment) in enumerate(work, 1):
                async with runtime.db.session() as session:
                    outcome = await evaluation.cast(
                        session,
                        pending=runtime.pending,
                        round_id=round_id,
                        rater=rater,
                        target=target,
                        choices=choices,
                        comment=comment,
                        now=now,
                    )
                received += outcome == Outcome.RECEIVED
                # As the handler does once the update has replied: write any full batch.
                writing = time.perf_counter()
                written = await ballot_counting.count_full_batches(runtime)
                if written:
                    batches += written
                    batch_seconds += time.perf_counter() - writing
                if n % tenth == 0:
                    marks.append(time.perf_counter())
            seconds = time.perf_counter() - started
        assert received == ballots, (received, ballots)
        waiting = len(runtime.pending)
        # The floor's rate settles long before a hundred thousand rows.
        floor = await _floor_rate(runtime, min(ballots, max(ballots // 5, 2000)))
        echo, durable = await floors(runtime.db.url, min(ballots, 2000))
        rate = ballots / seconds
        return {
            "ballots": ballots,
            "members": len(members),
            "branches": branches,
            "seconds": round(seconds, 1),
            "ballots_per_s": round(rate, 1),
            "floor_per_s": round(floor, 1),
            "ratio_to_floor": round(rate / floor, 3),
            "echo_floor_per_s": round(echo, 1),
            "ratio_to_echo_floor": round(rate / echo, 3),
            "durable_floor_per_s": round(durable, 1),
            "ratio_to_durable_floor": round(rate / durable, 3),
            "first_tenth_per_s": round(tenth / (marks[0] - started), 1),
            "last_tenth_per_s": round(tenth / (marks[-1] - marks[-2]), 1)
            if len(marks) > 1
            else None,
            "statements_per_ballot": round(statements[0] / ballots, 2),
            "batches": batches,
            "batch_write_ms": round(1000 * batch_seconds / max(batches, 1), 2),
            "waiting_at_end": waiting,
            "peak_memory_mb": peak_memory_mb(),
        }

    return measure


# --- closing a round -----------------------------------------------------------------------


async def _rated_round(runtime: Runtime, targets: int, name: str) -> int:
    """A round of `targets` targets (a tenth of them branches, nine members each), each rated
    by 3 to 8 of its branch's members: under the raters' threshold for some, over it for the
    others; every ballot on every other target carries a comment."""
    branches = max(targets // 10, 1)
    organisation_id, members = await _organisation(
        runtime, branches=branches, per_branch=9, cadres=True, name=name
    )
    round_id = await _open_round(runtime, organisation_id)
    by_branch: dict[int, list[int]] = {}
    for member_id, branch_id in members:
        by_branch.setdefault(branch_id, []).append(member_id)
    now = runtime.clock.now()
    choose = random.Random(8).randrange
    index = 0
    async with runtime.db.session() as session:
        for branch_id, ids in by_branch.items():
            for target, items in [
                (f"branch:{branch_id}", 6),
                *((f"member:{m}", 7 if m == ids[0] else 6) for m in ids),
            ]:
                raters = [m for m in ids if f"member:{m}" != target][: 3 + index % 6]
                for rater in raters:
                    outcome = await evaluation.cast(
                        session,
                        pending=runtime.pending,
                        round_id=round_id,
                        rater=Rater(f"member:{rater}", organisation_id, MEMBERS, branch_id),
                        target=target,
                        choices=[choose(4) for _ in range(items)],
                        comment=COMMENTS[rater % len(COMMENTS)] if index % 2 == 0 else "",
                        now=now,
                    )
                    assert outcome == Outcome.RECEIVED, outcome
                index += 1
    await ballot_counting.count_full_batches(runtime)
    return round_id


async def _close_and_read(runtime: Runtime, round_id: int) -> tuple[float, int, dict]:
    """Close the round (one session), count the ballots still waiting and rewrite the rating
    tables (another), and work out every target's results (a third): the seconds, the
    statements sent, and what the results showed."""
    with counting(runtime) as statements:
        started = time.perf_counter()
        async with runtime.db.session() as session:
            evaluation_round = await session.get(EvaluationRound, round_id)
            closed = await evaluation.close_round(
                session, evaluation_round=evaluation_round, now=runtime.clock.now()
            )
            assert closed
        assert await ballot_counting.count_ended_rounds(runtime) == 1
        async with runtime.db.session() as session:
            evaluation_round = await session.get(EvaluationRound, round_id)
            found = await evaluation_results.results(session, evaluation_round=evaluation_round)
        seconds = time.perf_counter() - started
    shown = [t for t in found.targets if t.shown]
    return (
        seconds,
        statements[0],
        {
            "targets": len(found.targets),
            "shown": len(shown),
            "withheld": len(found.targets) - len(shown),
            "with_comments": sum(bool(t.comments) for t in shown),
        },
    )


def _close_round_measure(targets: int, small: int):
    async def measure(runtime: Runtime) -> dict:
        round_id = await _rated_round(runtime, targets, "基准测试局")
        small_round_id = await _rated_round(runtime, small, "小局")
        seconds, queries, shown = await _close_and_read(runtime, round_id)
        small_seconds, small_queries, small_shown = await _close_and_read(runtime, small_round_id)
        assert shown["targets"] == targets and small_shown["targets"] == small, (shown, small)
        return {
            "targets": targets,
            "seconds": round(seconds, 3),
            "target_s": 2.0,
            "queries": queries,
            "queries_100_targets": small_queries,
            "seconds_100_targets": round(small_seconds, 3),
            "targets_shown": shown["shown"],
            "targets_withheld": shown["withheld"],
            "targets_with_comments": shown["with_comments"],
            "peak_memory_mb": peak_memory_mb(),
        }

    return measure


async def run_ballots(scale: float = 1.0) -> list[dict]:
    return await each_database("evaluation_ballots", _ballots_measure(int(100_000 * scale)))


async def run_close_round(scale: float = 1.0) -> list[dict]:
    targets = max(int(1000 * scale) // 10 * 10, 10)
    return await each_database("evaluation_close_round", _close_round_measure(targets, 100))
