"""What every benchmark shares: a scratch database, the app on the local Bot API, a floor."""

import os
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, event, literal, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import insert, select
from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot.channels.local.chat import Person
from bot.channels.telegram import CHANNEL
from bot.channels.telegram.app import LOCAL_TOKEN, build_application
from bot.channels.telegram.local_api import LocalBotAPI
from bot.channels.telegram.local_chat import LocalChat
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import Runtime
from storage.db import async_url
from storage.models import Branch, ChannelAccount, Member, Organisation

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


async def _echo_only(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_chat.send_message(update.effective_message.text or "…")


async def _answer_only(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer()


@asynccontextmanager
async def echo_floor(
    write: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[LocalChat]:
    """The framework's floor: the same Application and Bot API with a bare echo handler
    (which first awaits `write`, when given, on every update)."""
    if write is not None:

        async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await write()
            await _echo_only(update, context)

        async def _answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await write()
            await _answer_only(update, context)

    else:
        _echo, _answer = _echo_only, _answer_only
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


@asynccontextmanager
async def durable_floor(database_url: str) -> AsyncIterator[LocalChat]:
    """The echo floor plus one durable write per update: an UPDATE of one row and its COMMIT,
    straight through the driver the bot uses (aiosqlite with the bot's pragmas, or psycopg),
    on the same kind of database. What the hardware allows an update that writes."""
    url = make_url(async_url(database_url))
    if url.get_backend_name() == "sqlite":
        import aiosqlite

        connection = await aiosqlite.connect(url.database)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "secure_delete=ON"):
            await connection.execute(f"PRAGMA {pragma}")
        placeholder = "?"
    else:
        import psycopg

        connection = await psycopg.AsyncConnection.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False)
        )
        placeholder = "%s"
    await connection.execute("DROP TABLE IF EXISTS bench_durable")
    await connection.execute("CREATE TABLE bench_durable (id INTEGER PRIMARY KEY, n INTEGER)")
    await connection.execute("INSERT INTO bench_durable VALUES (1, 0)")
    await connection.commit()
    statement = f"UPDATE bench_durable SET n = n + 1 WHERE id = {placeholder}"

    async def write() -> None:
        await connection.execute(statement, (1,))
        await connection.commit()

    try:
        async with echo_floor(write) as chat:
            yield chat
    finally:
        await connection.execute("DROP TABLE bench_durable")
        await connection.commit()
        await connection.close()


async def floors(database_url: str, updates: int) -> tuple[float, float]:
    """Messages per second through the echo floor and through the durable-write floor,
    measured now (`updates` of each)."""
    rates = []
    for floor in (echo_floor(), durable_floor(database_url)):
        async with floor as chat:
            person = Person(777_000_001, "基准")
            started = time.perf_counter()
            for _ in range(updates):
                await chat.send(person, "本季度认真履行岗位职责。")
            rates.append(updates / (time.perf_counter() - started))
    return rates[0], rates[1]


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
        branch_ids = list(
            (
                await session.exec(
                    select(Branch.id)
                    .where(Branch.organisation_id == organisation.id)
                    .order_by(Branch.id)
                )
            ).all()
        )
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
                        "active": True,
                        "reminders_muted": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(start, min(start + 20_000, members))
                ],
            )
        await bind_telegram_accounts(session, organisation_id=organisation.id, now=now)
        return organisation.id


async def bind_telegram_accounts(session, *, organisation_id: int, now: datetime) -> None:
    """Every member of the organisation gets a Telegram account, in one statement."""
    await session.exec(
        insert(ChannelAccount).from_select(
            ["member_id", "channel", "external_id", "bound_at"],
            select(
                Member.id,
                literal(CHANNEL),
                cast(Member.id + 10_000_000 * organisation_id, String),
                literal(now, type_=ChannelAccount.__table__.c.bound_at.type),
            ).where(Member.organisation_id == organisation_id),
        )
    )


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


# A database of its own, so that a benchmark never meets the tests' schema resets.
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/cxzy_bench"
)


async def reset_postgres(url: str) -> str | None:
    """An empty database (created on the server if it is not there yet), as the tests start
    with; why not, if the server does not answer."""
    database = make_url(async_url(url))
    server = create_async_engine(database.set(database="postgres"), isolation_level="AUTOCOMMIT")
    engine = create_async_engine(database)
    try:
        async with server.connect() as connection:
            found = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": database.database},
            )
            if not found:
                await connection.execute(text(f'CREATE DATABASE "{database.database}"'))
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    except Exception as error:  # noqa: BLE001 - any failure to reach it means: skip
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    finally:
        await server.dispose()
        await engine.dispose()
    return None


async def each_database(benchmark: str, measure) -> list[dict]:
    """`measure(runtime)` on a fresh SQLite file, then on a fresh PostgreSQL schema (or a
    line saying why PostgreSQL was skipped)."""
    lines = []
    async with bot_on_sqlite_file() as (runtime, _chat):
        lines.append({"benchmark": benchmark, "database": "sqlite-file", **await measure(runtime)})
    problem = await reset_postgres(POSTGRES_URL)
    if problem is not None:
        lines.append(
            {"benchmark": benchmark, "database": "postgresql", "skipped": f"unreachable: {problem}"}
        )
        return lines
    async with bot_on_sqlite_file(POSTGRES_URL) as (runtime, _chat):
        lines.append({"benchmark": benchmark, "database": "postgresql", **await measure(runtime)})
    return lines


@contextmanager
def counting(runtime: Runtime) -> Iterator[list[int]]:
    """A one-element list counting every statement sent to the database inside the block."""
    counter = [0]

    def count(*_args) -> None:
        counter[0] += 1

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", count)
