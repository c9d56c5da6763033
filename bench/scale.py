"""A province on PostgreSQL: the roster import, opening a round of 群众评议, a firing reminder
tick, every digest and a round's results, at 10,000 and 100,000 members (and 1,000,000 with
`--scale 10`), each with the exponent of a log-log fit of its seconds over the sizes (1: it
grows as the members do) and what it would take at 1,000,000 members."""

import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select

from bench.digests import every_digest, quarter_underway
from bench.harness import POSTGRES_URL, START, bot_on_sqlite_file, reset_postgres
from bot import delivery
from bot.core import ballot_counting, evaluation_results, reminders
from bot.runtime import Runtime
from storage import outbox
from storage.models import EvaluationRound, Member, Organisation

PER_BRANCH = 100
TARGETS = {
    "import_s": 180.0,
    "round_opening_s": 30.0,
    "results_s": 30.0,
    "firing_tick_s": 5.0,
    "digests_s": 30.0,
}
# A phase whose announcement to everyone falls due when the quarter's phase has ended.
NEXT_PHASE_DAYS = 61
NEXT_PHASE = """
[[phases]]
name = "总结提高"
start = {day}
end = {last}
announcement = "认真总结，巩固成果。"
"""


def _roster_files(folder: Path, members: int) -> tuple[Path, Path]:
    """A roster of `members` in branches of a hundred (a secretary each, a quarter leading
    cadres, some elderly), and its branches, as CSV files written row by row."""
    people, branches = folder / "people.csv", folder / "branches.csv"
    count = max(members // PER_BRANCH, 1)
    with branches.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["支部", "机关支部", "联系班子成员"])
        writer.writerows([f"第{b}支部", "是" if b == 0 else "否", ""] for b in range(count))
    with people.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["编号", "姓名", "支部", "角色", "类别", "语言"])
        for n in range(members):
            branch = n % count
            writer.writerow(
                [
                    f"P{n:07d}",
                    f"党员{n}",
                    f"第{branch}支部",
                    "支部书记" if n < count else "",
                    ("党员领导干部", "年老体弱", "普通党员", "普通党员")[n % 4],
                    "",
                ]
            )
    return people, branches


def _import(database_url: str, members: int) -> tuple[float, float]:
    """`python -m bot roster import` of a generated roster: seconds, and the command's peak
    memory in MB."""
    with tempfile.TemporaryDirectory() as scratch:
        people, branches = _roster_files(Path(scratch), members)
        command = [sys.executable, "-m", "bot", "roster", "import", str(people)]
        command += ["--branches", str(branches), "--organisation", "基准测试省"]
        env = {**os.environ, "DATABASE_URL": database_url, "DEFAULT_LOCALE": "en"}
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        assert os.waitstatus_to_exitcode(status) == 0, "the import failed"
    return seconds, usage.ru_maxrss / 1024


async def _bind_everyone(runtime: Runtime) -> int:
    """Every imported member bound to a Telegram account (reminders go to bound members)."""
    async with runtime.db.session() as session:
        await session.execute(
            text(
                "INSERT INTO channelaccount (member_id, channel, external_id, bound_at)"
                " SELECT id, 'telegram', CAST(1000000000 + id AS TEXT), now() FROM member"
            )
        )
        return (await session.exec(select(Organisation.id))).one()


async def _analyze(runtime: Runtime) -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would soon gather them."""
    async with runtime.db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("ANALYZE")


async def _firing_tick(runtime: Runtime, organisation_id: int) -> tuple[float, int]:
    """The reminder job at the moment a phase announcement to everyone falls due: count what
    waits, plan, then claim and compose the first batch to send (the rest goes out batch by
    batch, as Telegram's limits allow). Seconds, and the messages planned."""
    runtime.clock.set((START + timedelta(days=NEXT_PHASE_DAYS)).replace(hour=9, minute=5))
    started = time.perf_counter()
    await ballot_counting.count_full_batches(runtime)
    await ballot_counting.count_ended_rounds(runtime)
    async with runtime.db.session() as session:
        report = await reminders.plan(
            session, organisation_id=organisation_id, now=runtime.clock.now()
        )
    now = runtime.clock.now()
    async with runtime.db.session() as session:
        ids = await outbox.claim(session, channels=["telegram"], now=now, limit=30)
    async with runtime.db.session() as session:
        claimed = await outbox.get_messages(session, ids=ids)
        composed = await delivery.compose(session, messages=claimed, now=now, today=now.date())
    seconds = time.perf_counter() - started
    assert composed.notices, composed.skipped
    return seconds, report.messages


async def _rated_and_counted(runtime: Runtime) -> int:
    """Every target of the round rated by seven (its counts written as the batches would
    have), and the round counted; the round's id."""
    async with runtime.db.session() as session:
        evaluation_round = (await session.exec(select(EvaluationRound))).one()
        # Seven raters a target: per item, the seven choices spread over the four levels.
        await session.execute(
            text(
                """
                INSERT INTO evaluationtally (round_id, target, item, level, count)
                SELECT t.round_id, t.target, i, l,
                       CASE l WHEN 0 THEN 3 WHEN 1 THEN 2 WHEN 2 THEN 1 ELSE 1 END
                FROM evaluationtarget t,
                     generate_series(0, CASE t.kind WHEN 'leading_cadre' THEN 6 ELSE 5 END) i,
                     generate_series(0, 3) l
                WHERE t.round_id = :round_id
                """
            ),
            {"round_id": evaluation_round.id},
        )
        evaluation_round.closed_at = evaluation_round.counted_at = runtime.clock.now()
        return evaluation_round.id


async def _results(runtime: Runtime, round_id: int) -> tuple[float, int]:
    """Every target's results without the per-item rows (as digests and totals use them),
    and one branch's with them: seconds, and the targets shown."""
    started = time.perf_counter()
    async with runtime.db.session() as session:
        evaluation_round = await session.get(EvaluationRound, round_id)
        found = await evaluation_results.results(
            session, evaluation_round=evaluation_round, items=False
        )
        branch_id = (await session.exec(select(Member.branch_id).limit(1))).one()
        await evaluation_results.results(
            session, evaluation_round=evaluation_round, branch_id=branch_id
        )
    return time.perf_counter() - started, sum(t.shown for t in found.targets)


async def _one_size(members: int) -> dict:
    problem = await reset_postgres(POSTGRES_URL)
    if problem is not None:
        return {"skipped": f"unreachable: {problem}"}
    async with bot_on_sqlite_file(POSTGRES_URL) as (runtime, _chat):
        pass  # migrated, as the command line finds it
    import_s, import_mb = _import(POSTGRES_URL, members)
    async with bot_on_sqlite_file(POSTGRES_URL) as (runtime, _chat):
        organisation_id = await _bind_everyone(runtime)
        today = START.date()
        more = NEXT_PHASE.format(
            day=today + timedelta(days=NEXT_PHASE_DAYS), last=today + timedelta(days=90)
        )
        opening_s = await quarter_underway(runtime, organisation_id, more)
        await _analyze(runtime)
        digests_s, _statements, digests, _parts = await every_digest(runtime, organisation_id)
        round_id = await _rated_and_counted(runtime)
        await _analyze(runtime)
        results_s, shown = await _results(runtime, round_id)
        closed_digests_s, *_ = await every_digest(runtime, organisation_id)
        tick_s, planned = await _firing_tick(runtime, organisation_id)
    return {
        "import_s": import_s,
        "import_peak_mb": import_mb,
        "round_opening_s": opening_s,
        "digests_s": digests_s,
        "digests": digests,
        "firing_tick_s": tick_s,
        "planned": planned,
        "results_s": results_s,
        "targets_shown": shown,
        "digests_closed_round_s": closed_digests_s,
    }


def _exponent(sizes: list[int], seconds: list[float]) -> float | None:
    """The slope of log(seconds) over log(size), least squares."""
    if len(sizes) < 2 or min(seconds) <= 0:
        return None
    xs, ys = [math.log(n) for n in sizes], [math.log(s) for s in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


async def run(scale: float = 1.0) -> list[dict]:
    sizes = [10_000, 100_000] + ([1_000_000] if scale >= 10 else [])
    if scale < 1:
        sizes = [int(n * scale) for n in sizes]
    measured = {}
    for members in sizes:
        measured[members] = await _one_size(members)
        # Each size as it is done (a run at 1,000,000 takes long): on standard error.
        print(json.dumps({"members": members, **measured[members]}), file=sys.stderr, flush=True)
        if "skipped" in measured[members]:
            return [{"benchmark": "scale", "database": "postgresql", **measured[members]}]
    lines = []
    for step in [*TARGETS, "digests_closed_round_s"]:
        seconds = [measured[n][step] for n in sizes]
        exponent = _exponent(sizes, seconds)
        line = {
            "benchmark": "scale",
            "database": "postgresql",
            "step": step.removesuffix("_s"),
            "members": sizes,
            "seconds": [round(s, 2) for s in seconds],
            "exponent": round(exponent, 2) if exponent is not None else None,
            "at_1m_s": round(seconds[-1] * (1_000_000 / sizes[-1]) ** exponent, 1)
            if exponent is not None
            else None,
            "target_at_1m_s": TARGETS.get(step),
        }
        if step == "import_s":
            line["peak_mb"] = [round(measured[n]["import_peak_mb"]) for n in sizes]
        if step == "firing_tick_s":
            line["planned"] = [measured[n]["planned"] for n in sizes]
        lines.append(line)
    return lines
