"""Digests and the workbook at scale, through the service code: every branch's digest of an
organisation of 100,000 members in 1,000 branches with a quarter's worth of data (worked out,
then rendered as the messages they would send), against reading the member rows once (the
floor: a digest cannot do with less); and the workbook of a 500-member branch. On a SQLite
file and, when it answers, on PostgreSQL."""

import time
import tracemalloc
from datetime import date, timedelta

from sqlmodel import insert, select

from bench.harness import counting, each_database, peak_memory_mb, populate
from bot.core import calendar, digests, evaluation, export
from bot.runtime import Runtime
from messages.render import split
from storage import calendar as calendar_queries
from storage import evaluation as evaluation_queries
from storage.models import (
    EvaluationParticipation,
    Member,
    Pledge,
    Rectification,
    Review,
    StepKind,
    Summary,
)

TEXT = "按照承诺要求，认真完成本季度各项工作，窗口服务零投诉，学习计划全部完成。" * 2


def _campaign(today: date) -> str:
    """One phase, and a quarter whose self-summaries are open today."""
    return f"""
[campaign]
name = "基准"
timezone = "Asia/Shanghai"

[[phases]]
name = "全面推进"
start = {today - timedelta(days=30)}
end = {today + timedelta(days=60)}

[[quarters]]
name = "第四季度"
summary_opens = {today - timedelta(days=5)}
summary_due = {today + timedelta(days=5)}
evaluation_opens = {today + timedelta(days=7)}
evaluation_due = {today + timedelta(days=14)}
rectification_due = {today + timedelta(days=40)}
"""


async def _quarter(runtime: Runtime, *, members: int, branches: int) -> tuple[int, float]:
    """An organisation in the middle of a quarter (`quarter_underway`): its id, and the
    seconds opening the round took."""
    organisation_id = await populate(runtime, members=members, branches=branches)
    return organisation_id, await quarter_underway(runtime, organisation_id)


async def quarter_underway(
    runtime: Runtime, organisation_id: int, more_campaign: str = ""
) -> float:
    """The organisation in the middle of a quarter: 70% of summaries in, a pledge each, half
    the summaries reviewed, some rectification (a third overdue), and a round of 群众评议
    running with a third of the members done. The seconds opening the round took (every
    member and branch a target). `more_campaign` is added to the campaign file."""
    now = runtime.clock.now()
    today = now.date()
    spec, problems = calendar.parse_campaign(_campaign(today) + more_campaign)
    assert not problems, problems
    async with runtime.db.session() as session:
        await calendar.load_campaign(session, organisation_id=organisation_id, spec=spec, now=now)
    async with runtime.db.session() as session:
        steps = await calendar_queries.list_steps(session, organisation_id=organisation_id)
        step = next(s for s in steps if s.kind == StepKind.SUMMARY)
        people = (
            await session.exec(
                select(Member.id, Member.branch_id)
                .where(Member.organisation_id == organisation_id)
                .order_by(Member.id)
            )
        ).all()
        secretary = {}
        for member_id, branch_id in people:
            secretary.setdefault(branch_id, member_id)
        common = {"organisation_id": organisation_id, "created_at": now, "updated_at": now}
        rows = {
            Summary: [
                {
                    **common,
                    "step_id": step.id,
                    "owner": f"member:{m}",
                    "member_id": m,
                    "branch_id": b,
                    "status": "submitted",
                    "achievements": TEXT,
                    "next_steps": TEXT,
                    "late": False,
                    "submitted_at": now,
                }
                for n, (m, b) in enumerate(people)
                if n % 10 < 7
            ],
            Pledge: [
                {
                    **common,
                    "branch_id": b,
                    "member_id": m,
                    "goal": "办好窗口业务",
                    "measures": TEXT,
                    "status": ("in_progress", "kept", "kept", "not_kept")[n % 4],
                    "created_by": m,
                }
                for n, (m, b) in enumerate(people)
            ],
            Review: [
                {
                    **common,
                    "step_id": step.id,
                    "reviewee": f"member:{m}",
                    "member_id": m,
                    "branch_id": b,
                    "reviewer_id": secretary[b],
                    "status": ("sent", "acknowledged")[n % 2],
                    "achievements": TEXT,
                    "requirements": "每周集中学习一次",
                    "sent_at": now,
                }
                for n, (m, b) in enumerate(people)
                if n % 10 < 3 and m != secretary[b]
            ],
        }
        for table, values in rows.items():
            for start in range(0, len(values), 5_000):
                await session.exec(insert(table), params=values[start : start + 5_000])
        reviews = (
            await session.exec(
                select(Review.id, Review.member_id, Review.branch_id).order_by(Review.id)
            )
        ).all()
        items = [
            {
                **common,
                "review_id": r,
                "member_id": m,
                "branch_id": b,
                "text": "每周集中学习一次",
                "source": "requirements",
                "due_on": today + timedelta(days=(-3 if n % 3 == 0 else 20)),
                "status": ("open", "open", "done", "confirmed")[n % 4],
            }
            for n, (r, m, b) in enumerate(reviews)
        ]
        for start in range(0, len(items), 5_000):
            await session.exec(insert(Rectification), params=items[start : start + 5_000])
        started = time.perf_counter()
        opened = await evaluation.open_round(
            session,
            organisation_id=organisation_id,
            quarter="第四季度",
            closes_at=now + timedelta(days=7),
            now=now,
        )
        round_id = opened.id
        opening = time.perf_counter() - started
    # A third of the members rate their own branch; participation is all the digest reads.
    async with runtime.db.session() as session:
        await evaluation_queries.add_rows(
            session,
            table=EvaluationParticipation,
            rows=[
                {"round_id": round_id, "rater": f"member:{m}", "target": f"branch:{b}"}
                for n, (m, b) in enumerate(people)
                if n % 3 == 0
            ],
        )
    return opening


def _render_all(runtime: Runtime, found: digests.Digest) -> int:
    """Every branch secretary's message and the organisation digest, as sent; the parts."""
    messages, parts = runtime.messages, 0
    for branch in found.branches:
        parts += len(
            split(
                messages.render(
                    "zh_CN",
                    "digest_branch",
                    digest=found,
                    branch_digest=branch,
                    weekly=True,
                    unchanged=False,
                    export_hint=True,
                )
            )
        )
    parts += len(
        split(
            messages.render(
                "zh_CN",
                "digest_organisation",
                digest=found,
                branches=found.most_behind_first,
                weekly=True,
                unchanged=False,
            )
        )
    )
    return parts


async def every_digest(runtime: Runtime, organisation_id: int) -> tuple[float, int, int, int]:
    """(seconds, statements, digests, message parts) for every branch's digest and the
    organisation's, worked out once and rendered."""
    with counting(runtime) as statements:
        started = time.perf_counter()
        async with runtime.db.session() as session:
            found = await digests.digest(
                session, organisation_id=organisation_id, now=runtime.clock.now()
            )
        parts = _render_all(runtime, found)
        seconds = time.perf_counter() - started
    return seconds, statements[0], len(found.branches) + 1, parts


async def _floor(runtime: Runtime, organisation_id: int) -> float:
    """Seconds to read every member's row once: less than that, no digest can do."""
    started = time.perf_counter()
    async with runtime.db.session() as session:
        rows = (
            await session.exec(
                select(Member.id, Member.name, Member.branch_id).where(
                    Member.organisation_id == organisation_id
                )
            )
        ).all()
    assert rows
    return time.perf_counter() - started


def _digests_measure(members: int, branches: int):
    async def measure(runtime: Runtime) -> dict:
        small_id, _ = await _quarter(runtime, members=members // 10, branches=branches // 10)
        organisation_id, opening = await _quarter(runtime, members=members, branches=branches)
        small_seconds, small_statements, _, _ = await every_digest(runtime, small_id)
        seconds, statements, count, parts = await every_digest(runtime, organisation_id)
        floor = await _floor(runtime, organisation_id)
        return {
            "members": members,
            "branches": branches,
            "digests": count,
            "message_parts": parts,
            "seconds": round(seconds, 2),
            "target_s": 5.0,
            "floor_read_members_s": round(floor, 3),
            "ratio_to_floor": round(seconds / floor, 1),
            "queries": statements,
            "queries_per_digest": round(statements / count, 3),
            "queries_tenth_size": small_statements,
            "round_opened_s": round(opening, 1),
            "seconds_tenth_size": round(small_seconds, 2),
            "peak_memory_mb": peak_memory_mb(),
        }

    return measure


def _export_measure(members: int):
    async def measure(runtime: Runtime) -> dict:
        organisation_id, _ = await _quarter(runtime, members=members, branches=1)
        async with runtime.db.session() as session:
            branch_id = (
                await session.exec(
                    select(Member.branch_id).where(Member.organisation_id == organisation_id)
                )
            ).first()
        with counting(runtime) as statements:
            tracemalloc.start()
            started = time.perf_counter()
            async with runtime.db.session() as session:
                data = await export.workbook(
                    session,
                    scope=export.ExportScope(organisation_id, branch_id, None),
                    headings=runtime.messages.export_headings("zh_CN"),
                    now=runtime.clock.now(),
                )
            seconds = time.perf_counter() - started
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return {
            "members": members,
            "seconds": round(seconds, 2),
            "workbook_kb": round(len(data) / 1024, 1),
            "queries": statements[0],
            "export_peak_mb": round(peak / 2**20, 1),
            "peak_memory_mb": peak_memory_mb(),
        }

    return measure


async def run_digests(scale: float = 1.0) -> list[dict]:
    members, branches = int(100_000 * scale), max(int(1_000 * scale), 10)
    return await each_database("digests", _digests_measure(members, branches))


async def run_export(scale: float = 1.0) -> list[dict]:
    return await each_database("export", _export_measure(max(int(500 * scale), 10)))
