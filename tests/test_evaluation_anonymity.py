"""The adversary: knowing who rated, in which order, and able to read every table (with the
database's own row versions and positions), every log line and everything the application
keeps, can they tell who chose what? They must do no better than chance."""

import json
import logging
import random
import re
from datetime import timedelta

from sqlalchemy import DateTime, text
from sqlmodel import SQLModel

from bot.local_chat import Person
from bot.services import evaluation, evaluation_codes
from storage import people as people_queries
from storage.models import EvaluationRound
from tests.test_reviews import ids

RATING_TABLES = {"evaluationparticipation", "evaluationtally", "evaluationcomments"}
LEADER = "王志刚"
LEADER_ITEMS = 7
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


def without_system_columns(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(
        (json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, sort_keys=True))
        for r in rows
    )


async def test_no_rater_can_be_matched_to_a_choice(runtime, chat, api, people, caplog):
    caplog.set_level(logging.DEBUG)
    who = await ids(runtime)
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
    before = await dump(runtime)
    records_before = len(caplog.records)

    # Known raters, in a known order, each with their own choices and a comment only they
    # wrote; a code holder rates in the middle.
    outsider = Person(555_000_999, "访客", "zh-hans")
    order: list[tuple[Person, str]] = [(people[name], name) for name in RATERS]
    order.insert(8, (outsider, "code"))
    chooser = random.Random(20261122)
    ballots = {}
    for person, name in order:
        choices = [chooser.randrange(4) for _ in range(LEADER_ITEMS)]
        marker = f"意见{chooser.randrange(10**8):08d}"
        ballots[name] = (choices, marker)
        if person is outsider:
            await chat.send(person, f"/start {token}")
        else:
            await chat.send(person, "/rate")
        assert await chat.tap(person, LEADER)
        for level in choices:
            assert await chat.tap(person, str(level + 1))
        await chat.send(person, marker)
        assert await chat.tap(person, "1")
        assert "已提交" in "".join(api.texts(person.user_id)), name

    after = await dump(runtime)
    target = f"member:{who[LEADER]}"

    # 1. Nothing but the rating tables changed: no timestamp, state, outbox row or log of
    #    the conversation records a ballot anywhere else.
    for table, rows in after.items():
        if table not in RATING_TABLES:
            assert without_system_columns(rows) == without_system_columns(before[table]), table
    for table in RATING_TABLES | {"evaluationcode"}:
        columns = SQLModel.metadata.tables[table].columns
        assert not any(isinstance(c.type, DateTime) for c in columns), table
    assert set(after["evaluationparticipation"][0]) - {"_xmin", "_ctid", "_rowid"} == {
        "round_id",
        "rater",
        "target",
    }

    # 2. No row holds both a rater and something only that rater chose.
    identities = {
        name: re.compile(
            rf"(member:{who[name]}|code:\d+|{person.user_id})(?!\d)"
            if name != "code"
            else rf"(code:\d+|{person.user_id})(?!\d)"
        )
        for person, name in order
    }
    for table, rows in after.items():
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            for name, (_choices, marker) in ballots.items():
                assert not (identities[name].search(line) and marker in line), (table, name)

    # 3. The counts are all the database keeps of the choices, and each ballot rewrote every
    #    count of the target: no row version (PostgreSQL's xmin) singles out the levels chosen.
    tally = [r for r in after["evaluationtally"] if r["target"] == target]
    per_item = {}
    for row in tally:
        per_item.setdefault(int(row["item"]), [0] * 4)[int(row["level"])] = int(row["count"])
    for item in range(LEADER_ITEMS):
        expected = [0] * 4
        for choices, _marker in ballots.values():
            expected[choices[item]] += 1
        assert per_item[item] == expected
    if not runtime.db.is_sqlite:
        assert len({r["_xmin"] for r in tally}) == 1
        (comments_row,) = [r for r in after["evaluationcomments"] if r["target"] == target]
        assert comments_row["_xmin"] == tally[0]["_xmin"]
    else:
        assert all("_rowid" not in r for t in RATING_TABLES for r in after[t])

    # 4. The comments keep no trace of the order they came in: guessing that the k-th
    #    comment is the k-th rater's (or the k-th from last) does no better than chance.
    (comments_row,) = [r for r in after["evaluationcomments"] if r["target"] == target]
    stored = json.loads(comments_row["texts"])
    rated_order = [marker for _choices, marker in ballots.values()]
    assert sorted(stored) == sorted(rated_order)
    for guess in (rated_order, rated_order[::-1]):
        hits = sum(a == b for a, b in zip(stored, guess, strict=True))
        assert hits <= 6, hits  # 17 ballots: chance gives one on average

    # 5. No log line names a rater beside a choice, or carries a ballot at all.
    secrets = [marker for _choices, marker in ballots.values()]
    for record in caplog.records[records_before:]:
        line = record.getMessage()
        assert not any(s in line for s in secrets), line
        assert not re.search(r"ev[bnt]:", line), line

    # 6. Nothing of a ballot is left in memory or in python-telegram-bot's own state.
    assert len(runtime.ballots) == 0
    application = chat.application
    for store in (application.user_data, application.chat_data):
        assert not any(store.values()), store
    assert set(application.bot_data) <= {"runtime", "sender"}
    async with runtime.db.session() as session:
        assert (await session.get(EvaluationRound, evaluation_round.id)).closed_at is None
