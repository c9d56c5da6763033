"""A quarter's self-summaries, each a whole conversation, through the application; against
the echo floor measured in the same run."""

import tempfile
from datetime import timedelta
from pathlib import Path

from sqlmodel import insert, select

from bench.harness import (
    POSTGRES_URL,
    START,
    bot_on_sqlite_file,
    counting,
    durable_floor,
    echo_floor,
    peak_memory_mb,
    populate,
    reset_postgres,
    timed,
)
from bot.channels.local.chat import Person
from bot.channels.telegram.local_chat import LocalChat
from bot.core import calendar
from storage.models import ChannelAccount, Member, Pledge

# The ratio to the echo floor each database is to reach (issue 20).
TARGETS = {"sqlite-file": 0.5, "postgresql": 0.25}
ANSWER = "本季度认真履行岗位职责，服务群众，按时完成各项工作任务。"


def _quarter_campaign(today) -> str:
    return f"""
[campaign]
name = "基准"
timezone = "Asia/Shanghai"

[[quarters]]
name = "本季度"
summary_opens = {today}
summary_due = {today + timedelta(days=7)}
evaluation_opens = {today + timedelta(days=8)}
evaluation_due = {today + timedelta(days=10)}
rectification_due = {today + timedelta(days=20)}
"""


async def _write_summary(
    chat: LocalChat, person: Person, statements: list[int], answers: list[int]
) -> int:
    """Answer whatever the bot asks until the summary is submitted; the number of updates.
    `statements` is the running count (`counting`); `answers` [typed answers, statements
    they took] is added to."""
    await chat.send(person, "/summary")
    updates = 1
    for _ in range(20):
        last = chat.api.last(person.user_id)
        labels = [button["text"] for button in last.buttons]
        if "✅ 确认提交" in labels:
            await chat.tap(person, "✅ 确认提交")
            return updates + 1
        if "已兑现" in labels:
            await chat.tap(person, "已兑现")
        else:
            before = statements[0]
            await chat.send(person, ANSWER)
            answers[0] += 1
            answers[1] += statements[0] - before
        updates += 1
    raise RuntimeError(f"the summary of {person.name} did not finish")


async def _replay(chat: LocalChat, people: list[Person], per_person: int) -> None:
    for person in people:
        for step in range(per_person):
            if step % 3 == 1:
                await chat.press(person, "x")
            else:
                await chat.send(person, ANSWER)


async def _quarter(
    database_url: str | None, members: int
) -> tuple[list[Person], int, float, int, float]:
    """Everyone writes their summary: the people, the updates, the seconds, the statements,
    and the statements per typed answer."""
    async with bot_on_sqlite_file(database_url) as (runtime, chat):
        organisation_id = await populate(runtime, members=members, branches=max(members // 100, 1))
        spec, problems = calendar.parse_campaign(_quarter_campaign(START.date()))
        assert not problems, problems
        async with runtime.db.session() as session:
            await calendar.load_campaign(
                session, organisation_id=organisation_id, spec=spec, now=runtime.clock.now()
            )
            rows = (
                await session.exec(
                    select(
                        Member.id, Member.branch_id, ChannelAccount.external_id, Member.name
                    ).join(ChannelAccount, ChannelAccount.member_id == Member.id)
                )
            ).all()
            now = runtime.clock.now()
            await session.exec(
                insert(Pledge),
                params=[
                    {
                        "organisation_id": organisation_id,
                        "branch_id": branch_id,
                        "member_id": member_id,
                        "goal": "办好窗口业务",
                        "measures": "提前到岗",
                        "status": "in_progress",
                        "created_by": member_id,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for member_id, branch_id, _, _ in rows
                ],
            )
        people = [Person(int(telegram_id), name) for _, _, telegram_id, name in rows]
        counted = 0
        answers = [0, 0]

        with counting(runtime) as statements:

            async def everyone() -> None:
                nonlocal counted
                for person in people:
                    counted += await _write_summary(chat, person, statements, answers)

            app_seconds = await timed(everyone)
    return people, counted, app_seconds, statements[0], answers[1] / max(answers[0], 1)


async def run(scale: float = 1.0) -> list[dict]:
    """On a SQLite file, then on PostgreSQL when it answers; one echo floor for both, and a
    durable-write floor per database (the same updates, each one UPDATE and COMMIT through
    that database's driver)."""
    members = int(10_000 * scale)
    runs = {"sqlite-file": await _quarter(None, members)}
    problem = await reset_postgres(POSTGRES_URL)
    if problem is None:
        runs["postgresql"] = await _quarter(POSTGRES_URL, members)
    people, counted, _, _, _ = runs["sqlite-file"]
    per_person = round(counted / members)
    floor_updates = per_person * members
    async with echo_floor() as floor_chat:
        floor_seconds = await timed(lambda: _replay(floor_chat, people, per_person))
    floor_rate = floor_updates / floor_seconds
    durable_rates = {}
    with tempfile.TemporaryDirectory() as folder:
        durable_urls = {"sqlite-file": f"sqlite:///{Path(folder) / 'durable.db'}"}
        if problem is None:
            durable_urls["postgresql"] = POSTGRES_URL
        for database, url in durable_urls.items():
            async with durable_floor(url) as floor_chat:
                seconds = await timed(lambda chat=floor_chat: _replay(chat, people, per_person))
            durable_rates[database] = floor_updates / seconds
    lines = [
        {
            "benchmark": "quarter_of_summaries",
            "database": database,
            "members": members,
            "updates": counted,
            "app_per_s": round(counted / seconds, 1),
            "floor_per_s": round(floor_rate, 1),
            "ratio_to_floor": round(counted / seconds / floor_rate, 3),
            "target_ratio": TARGETS[database],
            "statements_per_update": round(statements / counted, 2),
            "statements_per_answer": round(per_answer, 2),
            "durable_floor_per_s": round(durable_rates[database], 1),
            "ratio_to_durable_floor": round(counted / seconds / durable_rates[database], 3),
            "peak_memory_mb": peak_memory_mb(),
        }
        for database, (_, counted, seconds, statements, per_answer) in runs.items()
    ]
    if problem is not None:
        lines.append(
            {
                "benchmark": "quarter_of_summaries",
                "database": "postgresql",
                "skipped": f"unreachable: {problem}",
            }
        )
    return lines
