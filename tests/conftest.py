"""Shared fixtures: a migrated database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
a manual clock, a chat with the bot, and the demo people.

Features are tested through the channel contract: `chat` is the local channel
(bot/channels/local/chat.py) and `sent` what it recorded, with message keys. A test that asks
for `api` (the local Bot API), or is marked `telegram`, tests the Telegram adapter instead: its `chat` feeds real update
payloads to the real `Application`, and its `people` are bound on Telegram."""

import asyncio
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import select, update

import handlers
from bot.channels import local, telegram
from bot.channels.local.chat import LocalChannel, LocalChat, Person
from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_api import LocalBotAPI
from bot.channels.telegram.local_chat import LocalChat as TelegramChat
from bot.cli import demo
from bot.clock import ManualClock
from bot.config import Settings
from bot.core import roster
from bot.runtime import Runtime
from bot.virtual_time import VirtualTimeLoop
from messages.render import Messages
from storage import accounts
from storage.db import Database, async_url
from storage.models import ChannelAccount

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A sticker message's fields, for "wrong kind of message" tests.
STICKER = {
    "sticker": {
        "file_id": "s",
        "file_unique_id": "s",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
}
START = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def pytest_asyncio_loop_factories(config, item):
    """Tests marked `virtual_time` run on a loop whose clock jumps over waiting, so that
    Telegram's limits are kept in simulated seconds (bot/virtual_time.py)."""
    if item.get_closest_marker("virtual_time"):
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


async def _admin(url: str, *statements: str) -> None:
    """Run statements on the server's maintenance database (CREATE/DROP DATABASE)."""
    engine = create_async_engine(async_url(_named(url, "postgres")), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    await engine.dispose()


def _named(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _migrate(url: str) -> None:
    """Migrate on a loop of its own, in a thread: fixtures asking for it run on a loop."""

    async def migrate() -> None:
        database = Database(url)
        await database.migrate()
        await database.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate()).result()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite file migrated once per session; each test's database starts as a copy."""
    path = tmp_path_factory.mktemp("migrated") / "migrated.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> str | None:
    """A PostgreSQL database migrated once per session, the template of each test's."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None
    template = f"{make_url(url).database}_migrated"
    drop = f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(url, drop, f'CREATE DATABASE "{template}"')).result()
    _migrate(_named(url, template))
    return template


@pytest.fixture(params=BACKENDS)
async def database_url(request, tmp_path) -> str:
    """An empty database on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url = os.environ["TEST_DATABASE_URL"]
    engine = create_async_engine(async_url(url))
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


@pytest.fixture
async def database(request, database_url):
    """The database at `database_url`, migrated: a copy of the session's migrated one (the
    migrations run once per session, not once per test)."""
    if database_url.startswith("sqlite"):
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), make_url(database_url).database)
    else:
        name = make_url(database_url).database
        template = request.getfixturevalue("migrated_postgres")
        await _admin(
            database_url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{template}"',
        )
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(_env_file=None, database_url=database_url)


@pytest.fixture
def runtime(settings, database, clock) -> Runtime:
    messages = Messages(timezone=settings.zone, default_locale=settings.default_locale)
    return Runtime(settings=settings, db=database, clock=clock, messages=messages)


def _on_telegram(request) -> bool:
    """Tests of the Telegram adapter ask for the local Bot API (or are marked `telegram`);
    the rest talk to the contract."""
    return "api" in request.fixturenames or request.node.get_closest_marker("telegram") is not None


@pytest.fixture
def channel(request) -> str:
    """The channel the test's people talk on."""
    return telegram.CHANNEL if _on_telegram(request) else local.CHANNEL


@pytest.fixture
def api(clock) -> LocalBotAPI:
    return LocalBotAPI(now=lambda: clock.now().timestamp())


@pytest.fixture
async def app(runtime, api):
    application = build_application(runtime, request=api)
    async with application:
        yield application


@pytest.fixture
def chat(request, runtime, clock) -> LocalChat | TelegramChat:
    if _on_telegram(request):
        return TelegramChat(request.getfixturevalue("app"), request.getfixturevalue("api"), clock)
    return LocalChat(runtime, handlers.routes(), clock)


@pytest.fixture
def sent(chat) -> LocalChannel:
    """What the bot sent through the contract: messages with their keys, files and toasts."""
    return chat.channel


@pytest.fixture
async def people(runtime, channel) -> dict[str, Person]:
    """The demo organisation, everyone bound on the test's channel; by name."""
    await demo.seed(runtime, channel=channel)
    return {person.name: person for person in await demo.demo_people(runtime, channel=channel)}


@pytest.fixture
def stranger() -> Person:
    return Person(555_000_111, "Stranger", "zh-hans")


async def import_roster(runtime, people_table, branch_table, **options) -> "roster.ImportReport":
    """Import a roster as the command line does: all of it, or (rolled back) nothing."""
    async with runtime.db.session() as session:
        report = await roster.import_roster(
            session,
            people_table=people_table,
            branch_table=branch_table,
            organisation_name="示范局",
            timezone="Asia/Shanghai",
            now=runtime.clock.now(),
            **options,
        )
        if not report.ok:
            await session.rollback()
    return report


async def account_ids(runtime, channel: str) -> dict[int, int]:
    """Member id → the id of their account on the channel, for those who bound one."""
    async with runtime.db.session() as session:
        bound = await session.exec(select(ChannelAccount).where(ChannelAccount.channel == channel))
        return {account.member_id: int(account.external_id) for account in bound.all()}


async def bind_account(runtime, member_id: int, external_id: str, channel: str) -> None:
    """Give the member an account on a channel, as an invite would have."""
    async with runtime.db.session() as session:
        session.add(
            ChannelAccount(
                member_id=member_id,
                channel=channel,
                external_id=external_id,
                bound_at=runtime.clock.now(),
            )
        )


async def block_bot(runtime, member_id: int) -> None:
    """The member blocked the bot on every account they have."""
    async with runtime.db.session() as session:
        await session.exec(
            update(ChannelAccount)
            .where(ChannelAccount.member_id == member_id)
            .values(unreachable_since=runtime.clock.now())
        )


async def blocked_since(runtime, member_id: int, channel: str) -> datetime | None:
    """When the member blocked the bot on their account on the channel, if they did."""
    async with runtime.db.session() as session:
        account = await accounts.account_on(session, member_id=member_id, channel=channel)
        return account.unreachable_since
