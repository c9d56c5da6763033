"""The database: async engine, one session per unit of work, SQLite pragmas, migrations."""

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel import Session as SyncSession
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelAccount, Member, SQLModel

if TYPE_CHECKING:
    from storage.conversations import Conversation

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000  # how long SQLite waits for another writer


_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """The URL with the async driver this project uses for its backend."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    """The URL with a blocking driver, for Alembic's command line."""
    return _with_driver(url, _SYNC_DRIVERS)


def dialect_insert(session: AsyncSession):
    """The session's database's own INSERT, which knows ON CONFLICT DO NOTHING."""
    return postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def _note_roster_writes(session: Session, _context) -> None:
    """Remember whose accounts and member rows this flush really changed (the conversation
    states written are noted by `storage.conversations` itself, `note_conversation`)."""
    accounts: set[tuple[str, str]] = session.info.setdefault("accounts_changed", set())
    members: set[int] = session.info.setdefault("members_changed", set())
    changed = [row for row in session.dirty if session.is_modified(row)]
    for row in (*session.new, *session.deleted, *changed):
        if isinstance(row, ChannelAccount):
            # An account given another id forgets the id it had too.
            history = inspect(row).attrs.external_id.history
            accounts.update((row.channel, old) for old in (row.external_id, *history.deleted))
            members.add(row.member_id)
        elif isinstance(row, Member):
            members.add(row.id)


_CONVERSATIONS = "conversations_written"


def note_conversation(session: AsyncSession, member_id: int, state: "Conversation | None") -> None:
    """A member's conversation state written in this session's transaction (None: ended),
    told to the roster listeners once it commits."""
    session.info.setdefault(_CONVERSATIONS, {})[member_id] = state


def _after_rollback(session: Session) -> None:
    """What a transaction rolled back wrote is told to nobody."""
    for key in ("accounts_changed", "members_changed", _CONVERSATIONS):
        session.info.pop(key, None)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run beside the writer; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted and overwritten content is zeroed, and a WAL that has been checkpointed is cut
    # back to nothing: no old version of a page (a count before a batch) stays in the files.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA journal_size_limit=0")
    cursor.close()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class _LoopConnection(aiosqlite.Connection):
    """aiosqlite's connection, which can also run its statements on the event loop's thread.

    A statement that touches a few rows by key takes microseconds; handing it to aiosqlite's
    worker thread and back costs more than that. A session marked with `on_loop` (the hot
    paths: an answer in a conversation, a ballot, the identity lookup) runs its statements,
    its commit and its pool reset here; everything else (digests, exports, planning, which
    scan) still goes through the worker thread.
    """

    on_loop = False

    async def _execute(self, fn, *args, **kwargs):
        connection = self._connection
        if not self.on_loop or connection is None:
            return await super()._execute(fn, *args, **kwargs)
        if connection.in_transaction or not _writes(fn, args):
            return fn(*args, **kwargs)
        # The transaction's first write takes SQLite's write lock. If another connection holds
        # it, the wait for it (up to the busy timeout) happens on the worker thread, not here.
        connection.execute("PRAGMA busy_timeout=0")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
        finally:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return await super()._execute(fn, *args, **kwargs)


def _writes(fn, args) -> bool:
    return (
        getattr(fn, "__name__", "") in ("execute", "executemany")
        and bool(args)
        and isinstance(args[0], str)
        and args[0].lstrip()[:7].upper().startswith(_WRITES)
    )


def _loop_connector(url: str) -> Callable | None:
    """For a SQLite file, a connection factory of `_LoopConnection`s (None for :memory:)."""
    arguments, options = aiosqlite_dialect().create_connect_args(make_url(url))
    if arguments[0] == ":memory:":
        return None
    options["check_same_thread"] = False  # opened on the worker thread, used on both

    async def connect() -> aiosqlite.Connection:
        return await _LoopConnection(lambda: sqlite3.connect(*arguments, **options), 64)

    return connect


async def on_loop(session: AsyncSession, *, on: bool = True) -> None:
    """Run this session's SQLite statements on the event loop's thread (with `on`) until it
    ends or is told otherwise. Only for statements that each touch a handful of rows by key;
    no-op on PostgreSQL."""
    connection = await session.connection()
    driver = connection.sync_connection.connection.driver_connection
    if isinstance(driver, _LoopConnection):
        driver.on_loop = on


def _back_to_thread(dbapi_connection, _record) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    if isinstance(driver, _LoopConnection):
        driver.on_loop = False


# Called after a commit with the (channel, external id) accounts and the member ids whose rows
# it changed, and the conversation states it wrote (member id → state, None when ended).
RosterListener = Callable[[set[tuple[str, str]], set[int], dict[int, "Conversation | None"]], None]


class Database:
    """One engine per process; `session()` opens the session of one update or job."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self._roster_listeners: list[RosterListener] = []
        # The CHANNEL_ORDER setting, for the queries that choose where a message goes
        # (storage.accounts); Runtime sets it.
        self.channel_order: tuple[str, ...] | None = None
        # 群众评议 ballots confirmed in this process and waiting for their batch: who has
        # rated whom, not yet in the tables (see storage.evaluation.rated_by).
        self.held_ratings: object | None = None
        self.url = async_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A failed statement's message never carries its parameters (a batch of ballots, a
        # member's text) into a log.
        connector = _loop_connector(self.url) if self.is_sqlite else None
        self.engine = create_async_engine(
            self.url,
            echo=echo,
            hide_parameters=True,
            **({"async_creator": connector} if connector else {}),
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine.pool, "checkin", _back_to_thread)
        # A session class of this database's own, so its listeners hear only its sessions.
        session_class = type("DatabaseSession", (SyncSession,), {})
        self._sessions = async_sessionmaker(
            self.engine,
            class_=AsyncSession,
            sync_session_class=session_class,
            expire_on_commit=False,
        )
        event.listen(session_class, "after_flush", _note_roster_writes)
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", _after_rollback)

    def on_roster_change(self, listener: RosterListener) -> None:
        """After a commit that changed accounts or member rows, or wrote a conversation state,
        call `listener` with the (channel, external id) pairs and the member ids concerned,
        and the states written (caches listen)."""
        self._roster_listeners.append(listener)

    def _after_commit(self, session: Session) -> None:
        accounts = session.info.pop("accounts_changed", set())
        members = session.info.pop("members_changed", set())
        states = session.info.pop(_CONVERSATIONS, {})
        if accounts or members or states:
            for listener in self._roster_listeners:
                listener(accounts, members, states)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        async with self._sessions() as session:
            session.info["held_ratings"] = self.held_ratings
            session.info["channel_order"] = self.channel_order
            try:
                yield session
                if session.in_transaction():
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def forget_old_versions(self, *, tables: list[str], thorough: bool) -> None:
        """Leave no old version of these tables' rows in the database's files.

        SQLite: checkpoint the WAL into the main file and cut it back (secure_delete has
        zeroed what was freed); when `thorough`, VACUUM first, which rewrites every table in
        key order, so where a row sits no longer says when it was written. PostgreSQL, when
        `thorough` (it locks the tables while it runs, so not for every write): the tables
        are rewritten from their live rows (`_rewrite`); the WAL and its archive keep what
        they keep (see the README)."""
        if not self.is_sqlite:
            if thorough:
                await self._rewrite(tables)
            return
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if thorough:
                await autocommit.exec_driver_sql("VACUUM")
            # A reader holding an old snapshot keeps the WAL from being cut back; the batches
            # are written all the same, and a later checkpoint cuts it.
            await autocommit.exec_driver_sql("PRAGMA busy_timeout=0")
            await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            await autocommit.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    async def _rewrite(self, tables: list[str]) -> None:
        """Rewrite the tables with their live rows only, in primary-key order, in one
        transaction: TRUNCATE gives each a new file (the old one, with every dead row version,
        is unlinked at commit) and the rows come back from a copy. Unlike VACUUM FULL or
        CLUSTER, this keeps no version that an older snapshot elsewhere might still see, and
        every row then carries this transaction's xmin, not the batch's that wrote it."""
        async with self.engine.begin() as connection:
            for name in tables:
                order = ", ".join(c.name for c in SQLModel.metadata.tables[name].primary_key)
                await connection.exec_driver_sql(
                    f"CREATE TEMP TABLE kept_{name} ON COMMIT DROP AS SELECT * FROM {name}"
                )
                await connection.exec_driver_sql(f"TRUNCATE {name}")
                await connection.exec_driver_sql(
                    f"INSERT INTO {name} SELECT * FROM kept_{name} ORDER BY {order}"
                )

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` through the Alembic migrations."""
        await self._alembic(command.upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        """Take the schema back down to `revision`."""
        await self._alembic(command.downgrade, revision)

    async def _alembic(self, step: Callable[[Config, str], None], revision: str) -> None:
        def run(connection: Connection) -> None:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            step(config, revision)

        async with self.engine.connect() as connection:
            if self.is_sqlite:
                # A migration that rebuilds a table others refer to (batch mode) drops it on
                # the way: SQLite's own recipe turns foreign keys off meanwhile, and checks
                # them all before the transaction commits.
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                await connection.commit()
            try:
                async with connection.begin():
                    await connection.run_sync(run)
                    if self.is_sqlite:
                        broken = (
                            await connection.exec_driver_sql("PRAGMA foreign_key_check")
                        ).all()
                        if broken:
                            raise RuntimeError(f"foreign keys broken by a migration: {broken}")
            finally:
                if self.is_sqlite:
                    await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    await connection.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
