"""The adversary: knowing who rated, in which order, and able to read copies of the database's
files (every commit the WAL holds, every free page), PostgreSQL's row versions and statement
log, every log line and everything the application keeps, can they tell who chose what?
No more precisely than within a batch of k ballots, written together.

Ballots are cast through the channel contract; two tests stay on Telegram, for what only its
adapter keeps or logs: python-telegram-bot's own state and logs, and its error handler."""

import json
import logging
import random
import re
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bot import logs
from bot.channels.local.chat import Person
from bot.core import evaluation, evaluation_codes
from bot.intake import BALLOT_ACTIONS
from storage import people as people_queries
from storage.models import EvaluationRound
from tests import sqlite_files
from tests.test_reviews import ids

# A ballot's button payload (evt:, evb:, evn:) anywhere in a line.
BALLOT_PAYLOAD = "|".join(map(re.escape, BALLOT_ACTIONS))

RATING_TABLES = {"evaluationparticipation", "evaluationtally", "evaluationcomment"}
LEADER = "王志刚"
LEADER_ITEMS = 7
K = 5  # the round's threshold: the size of a batch, written once 2k wait
RATERS = [
    "李建国",
    "赵振华",
    "陈卫东",
    "刘芳",
    "周敏",
    "孙伟",
    "张明",
    "郑强",
    "冯磊",
    "许涛",
    "马俊",
    "黄勇",
    "林娜",
    "罗斌",
    "谢婷",
    "王秀英",
]
OUTSIDER = Person(555_000_999, "访客", "zh-hans")


async def dump(runtime) -> dict[str, list[dict[str, str]]]:
    """Every row of every table, with what the database itself knows of it: PostgreSQL's
    transaction id (xmin) and position (ctid), SQLite's rowid where a table has one."""
    found = {}
    postgres = not runtime.db.is_sqlite
    async with runtime.db.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if postgres:
                query = f"SELECT xmin::text AS _xmin, ctid::text AS _ctid, * FROM {table.name}"
            else:
                has_rowid = table.dialect_options["sqlite"].get("with_rowid") is not False
                query = f"SELECT {'rowid AS _rowid, ' if has_rowid else ''}* FROM {table.name}"
            rows = (await connection.execute(text(query))).mappings().all()
            found[table.name] = [{k: str(v) for k, v in row.items()} for row in rows]
    return found


def without_system_columns(rows: list[dict[str, str]]) -> list[str]:
    return sorted(
        (json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, sort_keys=True))
        for r in rows
    )


async def open_round_with_a_code(runtime) -> tuple[EvaluationRound, str]:
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        evaluation_round = await evaluation.open_round(
            session,
            organisation_id=organisation.id,
            quarter="第四季度",
            closes_at=runtime.clock.now() + timedelta(days=5),
            now=runtime.clock.now(),
        )
        (token,) = await evaluation_codes.issue_codes(
            session, evaluation_round=evaluation_round, rater_group="staff", branch_id=None, count=1
        )
    return evaluation_round, token


class Ballots:
    """Known raters, in a known order, each with their own choices and a comment only they
    wrote; a code holder rates in the middle."""

    def __init__(self, people) -> None:
        self.order: list[tuple[Person, str]] = [(people[name], name) for name in RATERS]
        self.order.insert(8, (OUTSIDER, "code"))
        chooser = random.Random(20261201)
        self.of: dict[str, tuple[list[int], str]] = {}
        for _person, name in self.order:
            choices = [chooser.randrange(4) for _ in range(LEADER_ITEMS)]
            self.of[name] = (choices, f"意见{chooser.randrange(10**8):08d}")

    async def fill(self, chat, person: Person, name: str, token: str) -> None:
        """Everything up to the confirmation: the target, a tap per item, the comment."""
        choices, marker = self.of[name]
        await chat.send(person, f"/start {token}" if name == "code" else "/rate")
        assert await chat.tap(person, LEADER)
        for level in choices:
            assert await chat.tap(person, str(level + 1))
        await chat.send(person, marker)

    async def rate(self, chat, texts, person: Person, name: str, token: str) -> None:
        """Fill and confirm; `texts(person)` is what the person's chat shows."""
        await self.fill(chat, person, name, token)
        assert await chat.tap(person, "1")
        assert "已收到" in "".join(texts(person)), name

    async def rate_all(self, chat, sent, token: str) -> None:
        """Everyone in order, through the contract: each told their ballot is received."""
        for person, name in self.order:
            await self.rate(chat, sent.texts, person, name, token)
            assert "ballot_received" in sent.keys(person), name

    def summed(self, names) -> dict[tuple[int, int], int]:
        total = Counter()
        for name in names:
            for item, level in enumerate(self.of[name][0]):
                total[(item, level)] += 1
        return dict(total)


async def test_no_rater_can_be_matched_to_a_choice(runtime, chat, sent, people, caplog):
    # The libraries' loggers capped, as every command of `python -m bot` does at start (and
    # the Telegram application when built): the database driver's DEBUG lines quote each
    # statement's parameters.
    logs.cap_libraries()
    caplog.set_level(logging.DEBUG)
    who = await ids(runtime)
    evaluation_round, token = await open_round_with_a_code(runtime)
    before = await dump(runtime)
    records_before = len(caplog.records)
    ballots = Ballots(people)
    await ballots.rate_all(chat, sent, token)
    target = f"member:{who[LEADER]}"

    # 17 ballots: two batches of five are in the database (each written when ten waited),
    # seven wait in memory, so that the last batch too has at least five.
    during = await dump(runtime)
    leader_rows = [r for r in during["evaluationparticipation"] if r["target"] == target]
    assert len(leader_rows) == 2 * K and len(runtime.pending) == 17 - 2 * K
    if not runtime.db.is_sqlite:
        # Each batch is one transaction: its rows share an xmin, and no xmin has fewer than k.
        assert sorted(Counter(r["_xmin"] for r in leader_rows).values()) == [K, K]

    # 1. Nothing but the rating tables changed: no timestamp, state, outbox row or log of
    #    the conversation records a ballot anywhere else.
    for table, rows in during.items():
        if table not in RATING_TABLES | {"evaluationcodeuse"}:
            assert without_system_columns(rows) == without_system_columns(before[table]), table
    for table in RATING_TABLES | {"evaluationcode", "evaluationcodeuse"}:
        columns = SQLModel.metadata.tables[table].columns
        assert not any(isinstance(c.type, DateTime) for c in columns), table

    # 2. No row holds both a rater and something only that rater chose.
    identities = {
        name: re.compile(
            rf"(member:{who[name]}|{person.user_id})(?!\d)"
            if name != "code"
            else rf"(code:\d+|{person.user_id})(?!\d)"
        )
        for person, name in ballots.order
    }
    for table, rows in during.items():
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            for name, (_choices, marker) in ballots.of.items():
                assert not (identities[name].search(line) and marker in line), (table, name)

    # 3. The round closes: what waited is counted, and the counts are all the database keeps
    #    of the choices; every count row of the target was rewritten by the last batch.
    await close_the_round(chat, people)
    assert sent.last(people["周敏"]).key == "evaluation_closed_now"
    assert len(runtime.pending) == 0
    after = await dump(runtime)
    tally = [r for r in after["evaluationtally"] if r["target"] == target]
    counted = {
        (int(r["item"]), int(r["level"])): int(r["count"]) for r in tally if r["count"] != "0"
    }
    assert counted == ballots.summed(ballots.of)
    if not runtime.db.is_sqlite:
        assert len({r["_xmin"] for r in tally}) == 1
    else:
        assert all("_rowid" not in r for t in RATING_TABLES for r in after[t])

    # 4. The comments keep no trace of the order they came in.
    stored = [r["text"] for r in after["evaluationcomment"] if r["target"] == target]
    rated_order = [marker for _choices, marker in ballots.of.values()]
    assert sorted(stored) == sorted(rated_order)
    for guess in (rated_order, rated_order[::-1]):
        hits = sum(a == b for a, b in zip(stored, guess, strict=True))
        assert hits <= 6, hits  # 17 comments: chance gives one on average

    # 5. No log line names a rater beside a choice, or carries a ballot at all.
    assert_no_ballot_in(caplog.records[records_before:], ballots)

    # 6. Nothing of a ballot is left in memory.
    assert len(runtime.ballots) == 0 and len(runtime.pending) == 0


async def close_the_round(chat, people) -> None:
    """The organiser closes the round by /evaluation: what waits is counted."""
    zhou = people["周敏"]
    await chat.send(zhou, "/evaluation")
    assert await chat.tap(zhou, "结束评议") and await chat.tap(zhou, "确认结束")


def assert_no_ballot_in(records, ballots: Ballots) -> None:
    markers = [marker for _choices, marker in ballots.of.values()]
    for record in records:
        line = record.getMessage()
        assert not any(m in line for m in markers), line
        assert not re.search(BALLOT_PAYLOAD, line), line


async def test_telegram_keeps_no_ballot_in_its_state_or_logs(runtime, chat, api, people, caplog):
    """python-telegram-bot's per-user and per-chat stores stay empty, and nothing it or the
    adapter logs carries a ballot."""
    caplog.set_level(logging.DEBUG)
    _round, token = await open_round_with_a_code(runtime)
    ballots = Ballots(people)
    for person, name in ballots.order:
        await ballots.rate(chat, lambda p: api.texts(p.user_id), person, name, token)
    await close_the_round(chat, people)
    assert "已结束" in api.last(people["周敏"].user_id).text
    assert_no_ballot_in(caplog.records, ballots)
    assert len(runtime.ballots) == 0 and len(runtime.pending) == 0
    application = chat.application
    for store in (application.user_data, application.chat_data):
        assert not any(store.values()), store
    # The channel and the routes are the application's, the same for everybody.
    assert set(application.bot_data) <= {"runtime", "sender", "channel", "routes"}


# --- a copy of SQLite's files ------------------------------------------------------------------


def database_path(runtime) -> Path:
    return Path(make_url(runtime.settings.database_url).database)


def leader_state(image: bytes, folder: Path, target: str):
    raters = {
        rater
        for (rater,) in sqlite_files.query(
            image,
            folder,
            f"SELECT rater FROM evaluationparticipation WHERE target = '{target}'",
        )
    }
    counts = dict(
        ((item, level), count)
        for item, level, count in sqlite_files.query(
            image,
            folder,
            f"SELECT item, level, count FROM evaluationtally WHERE target = '{target}'",
        )
        if count
    )
    comments = {
        t
        for (t,) in sqlite_files.query(
            image, folder, f"SELECT text FROM evaluationcomment WHERE target = '{target}'"
        )
    }
    return raters, counts, comments


async def test_a_copy_of_the_sqlite_files_links_nobody_closer_than_a_batch(
    runtime, chat, sent, people, tmp_path
):
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite's files")
    import sqlite3

    who = await ids(runtime)
    target = f"member:{who[LEADER]}"
    evaluation_round, token = await open_round_with_a_code(runtime)
    path = database_path(runtime)
    # The adversary keeps a read transaction open all along: no checkpoint can then reset
    # the WAL, so it holds every commit made while the round ran.
    watcher = sqlite3.connect(path)
    watcher.execute("BEGIN")
    watcher.execute("SELECT count(*) FROM member").fetchall()
    ballots = Ballots(people)
    await ballots.rate_all(chat, sent, token)

    # A copy of the files while the bot runs.
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(f"{path}{suffix}", copy / f"cxzy.db{suffix}")
    main, wal, shm = ((copy / f"cxzy.db{s}").read_bytes() for s in ("", "-wal", "-shm"))
    states = [
        leader_state(image, tmp_path, target) for image in sqlite_files.replay(main, wal, shm)
    ]
    # Every commit since the adversary's snapshot is there to replay: the code's use, and
    # the two batches (nothing else is written while people rate).
    assert len(states) == 4
    key = {f"member:{who[name]}" if name != "code" else None: name for _p, name in ballots.order}
    batches = 0
    for (raters, counts, comments), (raters_next, counts_next, comments_next) in zip(
        states, states[1:], strict=False
    ):
        added = raters_next - raters
        delta = Counter(counts_next)
        delta.subtract(counts)
        delta = {cell: n for cell, n in delta.items() if n}
        if not added:
            assert not delta and comments_next == comments
            continue
        # A commit that moved the counts added at least k raters, and its change is the sum
        # of all their ballots: nobody's choices stand apart from the batch's.
        batches += 1
        assert len(added) >= K
        names = [key.get(r, "code") for r in added]
        assert delta == ballots.summed(names)
        assert comments_next - comments == {ballots.of[n][1] for n in names}
    assert batches == 2
    watcher.close()

    # The round closes; nothing of the old page versions is left in the files afterwards.
    await close_the_round(chat, people)
    assert path.with_name(path.name + "-wal").stat().st_size == 0
    image = path.read_bytes()
    raters, counts, _comments = leader_state(image, tmp_path, target)
    assert len(raters) == 17 and counts == ballots.summed(ballots.of)
    for page, used in sqlite_files.free_pages(image):
        assert not any(page[used:]), "a free page keeps old content"


# --- PostgreSQL's row versions and statement log -------------------------------------------

SERVER_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


async def test_postgres_row_versions_and_statement_log_link_nobody_closer_than_a_batch(
    runtime, chat, sent, people
):
    if runtime.db.is_sqlite:
        pytest.skip("PostgreSQL's row versions and log")
    who = await ids(runtime)
    target = f"member:{who[LEADER]}"
    database = make_url(runtime.settings.database_url).database
    # Every statement of the bot's sessions goes to the server's log, with its parameters.
    await runtime.db.engine.dispose()

    @event.listens_for(runtime.db.engine.sync_engine, "connect")
    def log_everything(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET log_statement = 'all'")
        dbapi_connection.commit()

    log_start = _server_log_size()
    evaluation_round, token = await open_round_with_a_code(runtime)
    ballots = Ballots(people)
    await ballots.rate_all(chat, sent, token)

    async with runtime.db.engine.begin() as connection:
        await connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pageinspect")
    async with runtime.db.engine.connect() as connection:
        batches = dict(
            (
                await connection.exec_driver_sql(
                    "SELECT xmin::text, count(*) FROM evaluationparticipation GROUP BY 1"
                )
            ).all()
        )
        versions = await _tuple_versions(connection, "evaluationtally")
    # Each batch is one transaction of k raters; every version of a count row (live or dead)
    # was written by one of them (the first batch of a target writes its rows).
    assert sorted(batches.values()) == [K, K]
    writers = {xmin for xmin, _xmax in versions}
    assert writers <= set(batches)
    assert any(xmax != "0" for _xmin, xmax in versions)  # old versions are there, for now

    if log_start is not None:
        counting = 0
        for transaction in _transactions(_server_log_since(log_start), database):
            if "INSERT INTO evaluationtally" not in transaction:
                continue
            counting += 1
            raters = set(re.findall(r"'((?:member|code):\d+)'", transaction)) - {target}
            assert len(raters) >= K, transaction[:2000]
        assert counting == 2  # the two batches, each logged with its parameters

    # Closing rewrites the rating tables: no dead version of a count row is left.
    await close_the_round(chat, people)
    async with runtime.db.engine.connect() as connection:
        for table in RATING_TABLES:
            versions = await _tuple_versions(connection, table)
            live = (await connection.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar()
            # Every version in the pages is a live row (an xmax there is a lock or an
            # aborted update, not a dead version): nothing older is kept.
            assert len(versions) == live > 0, table
    assert evaluation_round.id


async def _tuple_versions(connection, table: str) -> list[tuple[str, str]]:
    """(xmin, xmax) of every row version in the table's pages, dead ones included."""
    pages = (
        await connection.exec_driver_sql(
            f"SELECT pg_relation_size('{table}') / current_setting('block_size')::int"
        )
    ).scalar()
    found = []
    for page in range(pages):
        rows = await connection.exec_driver_sql(
            "SELECT t_xmin::text, t_xmax::text FROM heap_page_items(get_raw_page(%s::text, %s::bigint)) "
            "WHERE t_xmin IS NOT NULL",
            (table, page),
        )
        found += [tuple(row) for row in rows.all()]
    return found


def _server_log_size() -> int | None:
    return SERVER_LOG.stat().st_size if SERVER_LOG.exists() else None


def _server_log_since(offset: int) -> list[str]:
    with SERVER_LOG.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


def _transactions(lines: list[str], database: str) -> list[str]:
    """The server log's statements of this database, by backend, cut into transactions."""
    current: dict[str, list[str]] = {}
    found = []
    for line in lines:
        match = re.match(r"\S+ \S+ \S+ \[(\d+)\] \S*@(\S+) ", line)
        if not match or match[2] != database:
            continue
        backend = match[1]
        current.setdefault(backend, []).append(line)
        if re.search(r"statement: (COMMIT|ROLLBACK)", line):
            found.append("\n".join(current.pop(backend)))
    return found + ["\n".join(rest) for rest in current.values()]


# --- logs ------------------------------------------------------------------------------------


def assert_logs_keep_no_ballot(records, ballots: Ballots, who: dict[str, int]) -> None:
    """No marker, payload, parameter list or level, nor any rater's or the leader's id."""
    for record in records:
        line = record.getMessage() + (record.exc_text or "")
        for _choices, marker in ballots.of.values():
            assert marker not in line, line
        assert not re.search(rf"{BALLOT_PAYLOAD}|\[parameters|level_\d|'added'", line), line
        assert not re.search(rf"member:{who[LEADER]}\b", line), line
        for rater_name in RATERS:
            assert not re.search(rf"member:{who[rater_name]}\b", line), line


async def test_a_failed_write_keeps_the_ballots_and_logs_nothing_of_them(
    runtime, chat, sent, people, caplog
):
    logs.cap_libraries()  # as `python -m bot` does at start
    caplog.set_level(logging.DEBUG)
    who = await ids(runtime)
    await open_round_with_a_code(runtime)
    ballots = Ballots(people)
    members = [(person, name) for person, name in ballots.order if name != "code"]
    raters = members[: 2 * K]
    for person, name in raters[:-1]:
        await ballots.rate(chat, sent.texts, person, name, "")
    # The database refuses the batch's count update (a lock timeout, a failover: here the
    # table is away), while the 2k-th ballot makes a batch due.
    async with runtime.db.engine.begin() as connection:
        await connection.exec_driver_sql("ALTER TABLE evaluationtally RENAME TO tally_away")
    await ballots.rate(chat, sent.texts, *raters[-1], "")
    # The rater is still told the ballot is received: it waits, whole, for the next try.
    assert "ballot_received" in sent.keys(raters[-1][0])
    assert "could not count 1 batch" in caplog.text
    # Nothing half written; the batch waits for the next try.
    assert len(runtime.pending) == 2 * K
    async with runtime.db.engine.begin() as connection:
        rows = await connection.exec_driver_sql("SELECT count(*) FROM evaluationparticipation")
        assert rows.scalar() == 0
        await connection.exec_driver_sql("ALTER TABLE tally_away RENAME TO evaluationtally")
    assert_logs_keep_no_ballot(caplog.records, ballots, who)
    # The next try counts the batch, once.
    await close_the_round(chat, people)
    async with runtime.db.engine.connect() as connection:
        rows = await connection.exec_driver_sql(
            "SELECT count(*) FROM evaluationparticipation WHERE target = :t".replace(
                ":t", f"'member:{who[LEADER]}'"
            )
        )
        assert rows.scalar() == 2 * K


async def test_a_failure_while_confirming_is_logged_by_telegrams_error_handler_without_the_ballot(
    runtime, chat, api, people, caplog
):
    """A failure while a ballot is being confirmed reaches the Telegram adapter's error
    handler: it logs where, never what (a database error's message quotes the rows)."""
    caplog.set_level(logging.DEBUG)
    who = await ids(runtime)
    await open_round_with_a_code(runtime)
    ballots = Ballots(people)
    person, name = next((p, n) for p, n in ballots.order if n != "code")
    await ballots.fill(chat, person, name, "")
    async with runtime.db.engine.begin() as connection:
        await connection.exec_driver_sql(
            "ALTER TABLE evaluationparticipation RENAME TO participation_away"
        )
    assert await chat.tap(person, "1")
    assert "error handling update" in caplog.text and "已收到" not in api.last(person.user_id).text
    async with runtime.db.engine.begin() as connection:
        await connection.exec_driver_sql(
            "ALTER TABLE participation_away RENAME TO evaluationparticipation"
        )
    assert_logs_keep_no_ballot(caplog.records, ballots, who)
