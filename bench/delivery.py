"""Reminders at scale: a broadcast through the sender under a per-second limit, and planning
the due reminders of a very large organisation."""

import time

from sqlalchemy import event
from telegram.ext import AIORateLimiter

from bench.harness import START, bot_on_sqlite_file, one_phase_campaign, peak_memory_mb, populate
from bot.app import build_application
from bot.delivery import Sender
from bot.local_api import LocalBotAPI
from bot.services import calendar, reminders


async def _campaign(runtime, organisation_id: int, *, with_step: bool) -> None:
    text = one_phase_campaign(START.date().isoformat(), with_step=with_step)
    spec, problems = calendar.parse_campaign(text)
    assert not problems, problems
    async with runtime.db.session() as session:
        await calendar.load_campaign(
            session, organisation_id=organisation_id, spec=spec, now=runtime.clock.now()
        )


async def broadcast(scale: float, limit: int = 1000) -> dict:
    """A phase announcement to 10,000 members, the local Bot API refusing over `limit`/s."""
    members = int(10_000 * scale)
    async with bot_on_sqlite_file() as (runtime, _chat):
        organisation_id = await populate(runtime, members=members, branches=max(members // 100, 1))
        await _campaign(runtime, organisation_id, with_step=False)
        async with runtime.db.session() as session:
            plan = await reminders.plan(
                session, organisation_id=organisation_id, now=runtime.clock.now()
            )
        api = LocalBotAPI(now=lambda: runtime.clock.now().timestamp(), sends_per_second=limit)
        # Like any client of Telegram's fuzzy limit, the sender keeps a little under it.
        limiter = AIORateLimiter(
            overall_max_rate=0.98 * limit, overall_time_period=1, max_retries=5
        )
        application = build_application(runtime, request=api, rate_limiter=limiter)
        async with application:
            sender = Sender(runtime, application.bot, batch=limit)
            started = time.perf_counter()
            report = await sender.drain()
            seconds = time.perf_counter() - started
    rate = report.sent / seconds
    return {
        "benchmark": "broadcast_under_rate_limit",
        "members": members,
        "messages_planned": plan.messages,
        "messages_sent": report.sent,
        "limit_per_s": limit,
        "achieved_per_s": round(rate, 1),
        "fraction_of_limit": round(rate / limit, 3),
        "target_fraction": 0.9,
        "flood_refusals_429": api.flood_refusals,
        "target_429": 0,
        "peak_memory_mb": peak_memory_mb(),
    }


async def planning(scale: float) -> dict:
    """Working out what is due for 100,000 members: a tick where a phase announcement to all
    of them falls due, and an idle tick after it."""
    members = int(100_000 * scale)
    async with bot_on_sqlite_file() as (runtime, _chat):
        organisation_id = await populate(runtime, members=members, branches=max(members // 100, 1))
        await _campaign(runtime, organisation_id, with_step=False)
        statements: list[str] = []
        event.listen(
            runtime.db.engine.sync_engine,
            "before_cursor_execute",
            lambda *a: statements.append(a[2]),
        )

        async def tick() -> tuple[float, int, int]:
            statements.clear()
            started = time.perf_counter()
            async with runtime.db.session() as session:
                report = await reminders.plan(
                    session, organisation_id=organisation_id, now=runtime.clock.now()
                )
            return time.perf_counter() - started, len(statements), report.messages

        firing_seconds, firing_queries, planned = await tick()
        idle_seconds, idle_queries, _ = await tick()
    return {
        "benchmark": "plan_due_reminders",
        "members": members,
        "messages_planned": planned,
        "firing_tick_s": round(firing_seconds, 3),
        "firing_tick_queries": firing_queries,
        "idle_tick_s": round(idle_seconds, 4),
        "idle_tick_queries": idle_queries,
        "target_s": 1.0,
        "peak_memory_mb": peak_memory_mb(),
    }


async def run_broadcast(scale: float = 1.0) -> list[dict]:
    return [await broadcast(scale)]


async def run_planning(scale: float = 1.0) -> list[dict]:
    return [await planning(scale)]
