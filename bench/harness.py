"""What every benchmark shares: a scratch database, the app on the local Bot API, a floor."""

import resource
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import insert, select
from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.app import LOCAL_TOKEN, build_application
from bot.clock import ManualClock
from bot.config import Settings
from bot.local_api import LocalBotAPI
from bot.local_chat import LocalChat
from bot.runtime import Runtime
from storage.models import Branch, Member, Organisation

START = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def peak_memory_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


@asynccontextmanager
async def bot_on_sqlite_file(
    database_url: str | None = None,
) -> AsyncIterator[tuple[Runtime, LocalChat]]:
    """The real application on a fresh SQLite file (or the given database), migrated."""
    with tempfile.TemporaryDirectory() as scratch:
        url = database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        clock = ManualClock(START)
        runtime = Runtime.create(Settings(_env_file=None, database_url=url), clock)
        await runtime.db.migrate()
        api = LocalBotAPI(now=lambda: clock.now().timestamp())
        application = build_application(runtime, request=api)
        async with application:
            yield runtime, LocalChat(application, api, clock)
        await runtime.db.dispose()


async def _echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_chat.send_message(update.effective_message.text or "…")


async def _answer(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer()


@asynccontextmanager
async def echo_floor() -> AsyncIterator[LocalChat]:
    """The framework's floor: the same Application and Bot API with a bare echo handler."""
    clock = ManualClock(START)
    api = LocalBotAPI(now=lambda: clock.now().timestamp())
    application = (
        Application.builder()
        .token(LOCAL_TOKEN)
        .request(api)
        .get_updates_request(api)
        .updater(None)
        .build()
    )
    application.add_handler(MessageHandler(filters.ALL, _echo))
    application.add_handler(CallbackQueryHandler(_answer))
    async with application:
        yield LocalChat(application, api, clock)


async def populate(runtime: Runtime, *, members: int, branches: int) -> int:
    """A large organisation written straight into the tables; the organisation's id."""
    now = runtime.clock.now()
    async with runtime.db.session() as session:
        organisation = Organisation(name="基准测试局", timezone="Asia/Shanghai", created_at=now)
        session.add(organisation)
        await session.flush()
        await session.exec(
            insert(Branch),
            params=[
                {"organisation_id": organisation.id, "name": f"第{b}支部", "is_organ": b == 0}
                for b in range(branches)
            ],
        )
        branch_ids = list((await session.exec(select(Branch.id).order_by(Branch.id))).all())
        for start in range(0, members, 20_000):
            await session.exec(
                insert(Member),
                params=[
                    {
                        "organisation_id": organisation.id,
                        "name": f"党员{n}",
                        "branch_id": branch_ids[n % branches],
                        "category": ("leading_cadre", "elderly", "ordinary", "ordinary")[n % 4],
                        "roles": "member secretary" if n < branches else "member",
                        "telegram_user_id": 10_000_000 + n,
                        "active": True,
                        "reminders_muted": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(start, min(start + 20_000, members))
                ],
            )
        return organisation.id


def one_phase_campaign(today: str, *, with_step: bool) -> str:
    step = (
        f"""
[[steps]]
name = "自查"
opens = {today}
due = {today}
"""
        if with_step
        else ""
    )
    return f"""
[campaign]
name = "基准"
timezone = "Asia/Shanghai"

[[phases]]
name = "动员部署"
start = {today}
end = {today}
announcement = "召开动员大会。"
{step}"""
