"""Reminders at scale: a broadcast through the sender under a per-second limit, and planning
the due reminders of a very large organisation."""

import asyncio
import random
import time

from sqlalchemy import event
from sqlmodel import select

from bench.harness import START, bot_on_sqlite_file, one_phase_campaign, peak_memory_mb, populate
from bot.channels.local.chat import Person
from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_api import Limits, LocalBotAPI
from bot.channels.telegram.local_chat import LocalChat
from bot.channels.telegram.pacing import ChatByChat, Pacer
from bot.core import calendar, reminders
from bot.delivery import Sender
from bot.virtual_time import VirtualTimeLoop
from storage.models import ChannelAccount, Member


async def _campaign(runtime, organisation_id: int, *, with_step: bool) -> None:
    text = one_phase_campaign(START.date().isoformat(), with_step=with_step)
    spec, problems = calendar.parse_campaign(text)
    assert not problems, problems
    async with runtime.db.session() as session:
        await calendar.load_campaign(
            session, organisation_id=organisation_id, spec=spec, now=runtime.clock.now()
        )


async def _announced(runtime, members: int) -> int:
    organisation_id = await populate(runtime, members=members, branches=max(members // 100, 1))
    await _campaign(runtime, organisation_id, with_step=False)
    async with runtime.db.session() as session:
        plan = await reminders.plan(
            session, organisation_id=organisation_id, now=runtime.clock.now()
        )
    return plan.messages


def _paced(runtime, api):
    return build_application(
        runtime, request=api, rate_limiter=Pacer(), update_processor=ChatByChat()
    )


async def broadcast(scale: float) -> dict:
    """A phase announcement to 3,000 members against Telegram's limits (30 a second, one a
    second per chat), on simulated time (bot/virtual_time.py)."""
    members = int(3_000 * scale)
    loop = asyncio.get_running_loop()
    async with bot_on_sqlite_file() as (runtime, _chat):
        planned = await _announced(runtime, members)
        api = LocalBotAPI(now=lambda: runtime.clock.now().timestamp(), limits=Limits())
        async with _paced(runtime, api):
            sender = Sender(runtime, batch=100)
            started, real = loop.time(), time.perf_counter()
            report = await sender.drain()
            seconds, real_seconds = loop.time() - started, time.perf_counter() - real
    rate = report.sent / seconds
    limit = Limits().overall
    return {
        "benchmark": "broadcast_under_telegram_limits",
        "members": members,
        "messages_planned": planned,
        "messages_sent": report.sent,
        "limit_per_s": limit,
        "achieved_per_s": round(rate, 2),
        "fraction_of_limit": round(rate / limit, 3),
        "target_fraction": 0.97,
        "flood_refusals_429": api.flood_refusals,
        "target_429": 0,
        "simulated_s": round(seconds, 1),
        "real_s": round(real_seconds, 1),
        "peak_memory_mb": peak_memory_mb(),
    }


async def broadcast_while_chatting(scale: float) -> dict:
    """The same broadcast while 50 members chat (a message every 2 to 6 s each): how long
    their replies take, at the 95th percentile, on simulated time."""
    members = int(1_500 * scale)
    chatting = 50
    loop = asyncio.get_running_loop()
    async with bot_on_sqlite_file() as (runtime, _chat):
        planned = await _announced(runtime, members)
        everyone = await demo_people_of(runtime, chatting)
        api = LocalBotAPI(now=lambda: runtime.clock.now().timestamp(), limits=Limits())
        asked: dict[int, list[float]] = {p.user_id: [] for p in everyone}
        delays: list[float] = []

        def replied(call) -> None:
            if call.method == "sendMessage" and asked.get(call.chat_id):
                delays.append(loop.time() - asked[call.chat_id].pop(0))

        api.on_call = replied
        async with _paced(runtime, api) as application:
            await application.start()
            chat = LocalChat(application, api, runtime.clock, queued=True)
            sender = Sender(runtime, batch=100)
            started = loop.time()
            sending = asyncio.create_task(sender.drain())
            generator = random.Random(15)

            async def talk(person) -> None:
                while not sending.done():
                    await asyncio.sleep(generator.uniform(2, 6))
                    asked[person.user_id].append(loop.time())
                    await chat.send(person, "/help")

            talkers = [asyncio.create_task(talk(person)) for person in everyone]
            report = await sending
            seconds = loop.time() - started
            replies_meanwhile = len(delays)
            await asyncio.gather(*talkers)
            await application.update_queue.join()
            await application.stop()
    delays.sort()
    p95 = delays[int(0.95 * (len(delays) - 1))] if delays else None
    return {
        "benchmark": "broadcast_while_50_members_chat",
        "members": members,
        "messages_planned": planned,
        "broadcast_sent": report.sent,
        "broadcast_fraction_of_limit": round(report.sent / seconds / Limits().overall, 3),
        # The replies take their share of the 30 a second: together they use the limit.
        "all_messages_fraction_of_limit": round(
            (report.sent + replies_meanwhile) / seconds / Limits().overall, 3
        ),
        "replies": len(delays),
        "reply_delay_p95_s": round(p95, 2) if p95 is not None else None,
        "target_reply_delay_p95_s": 2.0,
        "flood_refusals_429": api.flood_refusals,
        "target_429": 0,
        "peak_memory_mb": peak_memory_mb(),
    }


async def demo_people_of(runtime, count: int) -> list[Person]:
    """`count` of the populated members, bound to Telegram accounts, as chat partners."""
    async with runtime.db.session() as session:
        rows = (
            await session.exec(
                select(ChannelAccount.external_id, Member.name)
                .join(ChannelAccount, ChannelAccount.member_id == Member.id)
                .limit(count)
            )
        ).all()
    return [Person(int(user_id), name) for user_id, name in rows]


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


def run_broadcast(scale: float = 1.0) -> list[dict]:
    """Both broadcasts, each on a loop of simulated time."""
    results = []
    for measure in (broadcast, broadcast_while_chatting):
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            results.append(runner.run(measure(scale)))
    return results


async def run_planning(scale: float = 1.0) -> list[dict]:
    return [await planning(scale)]
