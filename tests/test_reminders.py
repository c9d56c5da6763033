"""Phase and deadline reminders: right moment, right people, right tone, never twice, never lost.

Reminders are delivered through the channel contract; the tests that stay on Telegram are
about its adapter: the Bot API's 429 (retry_after), timeouts, 403 for a blocked bot and a
message sent in part (502), and chat_member updates."""

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import delete, select

import handlers
from bot import delivery
from bot.channels import local
from bot.channels.local.chat import LocalChannel, LocalChat, Sent, plain
from bot.channels.telegram.local_api import LocalBotAPI
from bot.channels.telegram.local_chat import telegram_user
from bot.core import calendar, reminders
from bot.core.access import Account
from bot.core.calendar import ReportStepDone
from bot.core.contract import Inbound, Kind
from bot.core.preferences import ReminderChoice
from bot.jobs import SteppedJobs, periodic_jobs
from storage import calendar as calendar_queries
from storage import outbox
from storage import people as people_queries
from storage.models import (
    Campaign,
    CampaignStep,
    ChannelAccount,
    Member,
    OutboxMessage,
    OutboxStatus,
    PlannedReminder,
    StepDone,
    StepKind,
)
from tests.conftest import SHANGHAI, account_ids, block_bot, blocked_since

# START is Monday 2026-11-23 09:00 in Shanghai.
CAMPAIGN = """
[campaign]
name = "测试活动"
timezone = "Asia/Shanghai"
remind_days_before = 2
reminder_time = "{reminder_time}"
digest_day = "off"  # the weekly digest has its own tests (test_digests.py)

[[phases]]
name = "动员部署"
start = 2026-11-23
end = 2026-11-29
announcement = "召开动员大会。"
asks = "公开承诺。"

[[phases]]
name = "全面推进"
start = 2026-11-30
end = 2026-12-31

[[steps]]
name = "自查"
opens = 2026-11-24
due = 2026-11-27
text = "对照标准自查。"

[[quarters]]
name = "第四季度"
summary_opens = 2026-12-01
summary_due = 2026-12-04
evaluation_opens = 2026-12-07
evaluation_due = 2026-12-10
rectification_due = 2026-12-20
"""


async def load(runtime, text: str = CAMPAIGN, reminder_time: str = "09:00") -> None:
    spec, problems = calendar.parse_campaign(text.replace("{reminder_time}", reminder_time))
    assert not problems, problems
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await calendar.load_campaign(
            session, organisation_id=organisation.id, spec=spec, now=runtime.clock.now()
        )


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A local time in the test month (November 2026 continues into December)."""
    return datetime(2026, 11, 1, hour, minute, tzinfo=SHANGHAI) + timedelta(days=day - 1)


def received(api: LocalBotAPI, chat_id: int) -> list[str]:
    """On Telegram: the texts sent to a chat."""
    return [call.text for call in api.sent(chat_id) if call.method == "sendMessage"]


def count(api: LocalBotAPI, chat_id: int, fragment: str) -> int:
    """On Telegram: how many messages to a chat contain `fragment`."""
    return sum(fragment in text for text in received(api, chat_id))


STEP_KEYS = (
    "reminder_step_open",
    "reminder_step_due_soon",
    "reminder_step_due_today",
    "reminder_step_overdue",
    "reminder_step_gentle",
)


def keys_of(message: Sent) -> list[str]:
    """The templates of a message: an outbox message may bundle several, its key naming each."""
    return message.key.split(",")


def got(sent, person, key: str, fragment: str = "") -> int:
    """How many messages to the person carry the template `key` and say `fragment` (in
    plain words, whatever the channel's markup)."""
    return sum(key in keys_of(m) and fragment in plain(m.text) for m in sent.to(person))


@pytest.fixture
async def campaign(runtime, people):
    await load(runtime)
    return people


@pytest.fixture
def stepper(runtime, clock, sent):
    """The periodic jobs, run as the clock moves (after the channel is up: `sent`)."""
    return SteppedJobs(runtime, periodic_jobs(runtime.settings), clock.now())


async def test_a_whole_campaign_reaches_everyone_once(campaign, sent, stepper, clock, runtime):
    # Nobody does anything; the clock runs from the first phase to past the last deadline.
    await stepper.run_until(at(55, 12), clock.set)
    everyone = [p for name, p in campaign.items() if name != "何静"]
    # She reads English.
    assert got(sent, campaign["何静"], "reminder_phase_start", "enters its “动员部署” stage") == 1
    for person in everyone:
        assert got(sent, person, "reminder_phase_start", "进入“动员部署”阶段") == 1
        assert got(sent, person, "reminder_phase_start", "进入“全面推进”阶段") == 1
    zheng, wang, zhang = campaign["郑强"], campaign["王秀英"], campaign["张明"]
    # An ordinary member: window opens, due soon, due today, overdue: once each.
    for key, fragment in (
        ("reminder_step_open", "自查 现在开始"),
        ("reminder_step_due_soon", "自查 将于"),
        ("reminder_step_due_today", "自查 今天截止"),
        ("reminder_step_overdue", "自查 已于"),
        ("reminder_step_open", "第四季度自我小结 现在开始"),
        ("reminder_step_due_today", "第四季度自我小结 今天截止"),
    ):
        assert got(sent, zheng, key, fragment) == 1, fragment
    # 年老体弱: one gentle reminder per deadline, no chasing.
    # 自查, 小结; not 整改落实, as she has nothing to rectify, nor 评议, as no round of
    # 群众评议 was ever opened: there was nothing to rate.
    assert got(sent, wang, "reminder_step_gentle", "请您量力而行") == 2
    for person in everyone:
        for key in STEP_KEYS:
            assert got(sent, person, key, "领导点评和群众评议") == 0, (person.name, key)
    for key in ("reminder_step_due_today", "reminder_step_overdue", "reminder_step_due_soon"):
        assert got(sent, wang, key) == 0, key
    # The secretary hears who in the branch is behind, once per deadline (but 评议).
    assert got(sent, zhang, "reminder_branch_overdue", "本支部还有") == 3
    notice = next(
        plain(m.text)
        for m in sent.to(zhang)
        if "reminder_branch_overdue" in keys_of(m) and "自查 已截止" in plain(m.text)
    )
    assert "郑强" in notice and "王秀英" in notice and "黄勇" not in notice
    assert "张明" not in notice.split("未完成：")[1]  # never the secretary in their own list
    # No opening reminder on top of the gentle one.
    assert got(sent, wang, "reminder_step_open") == 0
    # And nothing at all was sent twice.
    for person in everyone:
        texts = sent.texts(person)
        assert len(texts) == len(set(texts)), person.name
    async with runtime.db.session() as session:
        statuses = Counter((await session.exec(select(OutboxMessage.status))).all())
        skipped_steps = set(
            (
                await session.exec(
                    select(CampaignStep.kind)
                    .join(OutboxMessage, OutboxMessage.step_id == CampaignStep.id)
                    .where(OutboxMessage.status == OutboxStatus.SKIPPED)
                )
            ).all()
        )
    # Only 整改落实's chasing was dropped, at sending time: nobody had anything to rectify;
    # and 评议's, as no round was opened.
    assert set(statuses) == {OutboxStatus.SENT, OutboxStatus.SKIPPED}
    assert skipped_steps == {StepKind.RECTIFICATION, StepKind.EVALUATION}


async def test_those_who_are_done_are_not_chased(campaign, sent, stepper, clock, chat, runtime):
    zheng = campaign["郑强"]
    await stepper.run_until(at(24, 10), clock.set)  # the 自查 window has opened
    opening = next(m for m in sent.to(zheng) if "自查 现在开始" in plain(m.text))
    assert "reminder_step_open" in keys_of(opening)
    steps = {step.name: step for step in await steps_of(runtime)}
    assert opening.buttons == [["✅ 我已完成", ReportStepDone(steps["自查"].id).pack()]]
    await chat.press(zheng, opening.buttons[0][1], opening)
    assert sent.last(zheng).key == "step_done_thanks"
    assert "已记录您的完成情况" in sent.last(zheng).text
    await chat.press(zheng, opening.buttons[0][1], opening)  # a double tap
    await stepper.run_until(at(29, 10), clock.set)
    assert got(sent, zheng, "reminder_step_due_soon", "自查 将于") == 0
    assert got(sent, zheng, "reminder_step_due_today", "自查 今天截止") == 0
    assert got(sent, campaign["冯磊"], "reminder_step_due_today", "自查 今天截止") == 1
    notice = next(
        plain(m.text) for m in sent.to(campaign["张明"]) if "自查 已截止" in plain(m.text)
    )
    assert "郑强" not in notice and "冯磊" in notice
    async with runtime.db.session() as session:
        (done,) = (await session.exec(select(StepDone))).all()
    assert (done.member_id, done.step_id) == ((await member(runtime, "郑强")).id, steps["自查"].id)


async def test_forged_done_buttons_are_refused(campaign, sent, stepper, clock, chat, runtime):
    await stepper.run_until(at(24, 10), clock.set)
    steps = await steps_of(runtime)
    summary = next(s for s in steps if s.kind == "summary")
    zheng = campaign["郑强"]
    before = len(sent.to(zheng))
    for action in (ReportStepDone(summary.id), ReportStepDone(999999)):
        await chat.press(zheng, action.pack())
        assert "无需您在这里报告" in sent.toasts(zheng)[-1]
    assert len(sent.toasts(zheng)) == 2 and len(sent.to(zheng)) == before
    async with runtime.db.session() as session:
        assert (await session.exec(select(StepDone))).all() == []


async def steps_of(runtime) -> list[CampaignStep]:
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        return await calendar_queries.list_steps(session, organisation_id=organisation.id)


async def test_quiet_hours_hold_reminders_until_morning(runtime, people, sent, clock):
    await load(runtime)
    clock.set(at(23, 22, 40))  # the bot was down all day and comes back at night
    await delivery.tick(runtime)
    assert sent.to() == []  # planned, but it is night
    clock.set(at(24, 7, 55))
    await delivery.tick(runtime)
    assert sent.to() == []
    clock.set(at(24, 8, 0))
    await delivery.tick(runtime)
    assert got(sent, people["郑强"], "reminder_phase_start", "进入“动员部署”阶段") == 1


async def test_catch_up_after_a_week_down_sends_what_is_still_useful_once(
    campaign, sent, runtime, clock
):
    # The bot was down from before the campaign until the 自查 deadline day.
    clock.set(at(27, 15))
    await delivery.tick(runtime)
    zheng = campaign["郑强"]
    (bundle,) = sent.to(zheng)  # one message per member per round, all in it
    assert got(sent, zheng, "reminder_phase_start", "进入“动员部署”阶段") == 1  # still on
    # The latest useful reminder, the superseded one not, and the window is still open.
    assert got(sent, zheng, "reminder_step_due_today", "自查 今天截止") == 1
    assert got(sent, zheng, "reminder_step_due_soon") == 0
    assert got(sent, zheng, "reminder_step_open", "自查 现在开始") == 1
    assert {"reminder_phase_start", "reminder_step_due_today", "reminder_step_open"} <= set(
        keys_of(bundle)
    )
    # Down again until long after: nothing stale is sent, and nothing twice.
    before = len(sent.to(zheng))
    clock.set(at(45, 10))
    await delivery.tick(runtime)
    assert not any("自查" in text for text in sent.texts(zheng)[before:])
    assert got(sent, zheng, "reminder_phase_start", "进入“动员部署”阶段") == 1
    # Still running on 12-15.
    assert got(sent, zheng, "reminder_phase_start", "进入“全面推进”阶段") == 1


async def test_leading_cadres_get_theirs_first(campaign, runtime, clock, channel):
    clock.set(at(23, 9, 5))
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await reminders.plan(session, organisation_id=organisation.id, now=clock.now())
    async with runtime.db.session() as session:
        first = await outbox.claim(session, channels=[channel], now=clock.now(), limit=4)
        rows = await outbox.get_messages(session, ids=first)
    cadres = {(await member(runtime, name)).id for name in ("王志刚", "李建国", "赵振华", "陈卫东")}
    assert {row.member_id for row in rows} == cadres


async def test_telegram_sends_the_leading_cadres_theirs_first(campaign, api, app, clock, runtime):
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    first = [call.chat_id for call in api.sent()][:4]
    cadres = {campaign[name].user_id for name in ("王志刚", "李建国", "赵振华", "陈卫东")}
    assert set(first) == cadres


async def test_muted_members_get_deadlines_but_no_announcements(
    campaign, sent, runtime, clock, chat
):
    zheng = campaign["郑强"]
    await chat.send(zheng, "/reminders")
    assert sent.last(zheng).key == "reminder_settings"
    assert [payload for _label, payload in sent.last(zheng).buttons] == [
        ReminderChoice("all").pack(),
        ReminderChoice("deadlines").pack(),
    ]
    assert await chat.tap(zheng, "只接收我自己的截止提醒")
    assert sent.last(zheng).key == "reminder_settings"
    assert "只接收自己的截止提醒" in sent.last(zheng).text
    assert (await member(runtime, "郑强")).reminders_muted
    before = len(sent.to(zheng))
    clock.set(at(25, 9, 5))
    await delivery.tick(runtime)
    assert got(sent, zheng, "reminder_phase_start") == 0
    assert not any("阶段" in text for text in sent.texts(zheng)[before:])
    assert got(sent, zheng, "reminder_step_due_soon", "自查 将于") == 1


async def test_crash_between_claiming_and_sending_loses_nothing_and_duplicates_nothing(
    campaign, runtime, sent, clock, channel
):
    clock.set(at(23, 9, 5))
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        report = await reminders.plan(session, organisation_id=organisation.id, now=clock.now())
    # Counted on every database (psycopg's rowcount of an INSERT … SELECT is -1 unless asked).
    assert report.messages == 20
    async with runtime.db.session() as session:
        claimed = await outbox.claim(
            session, channels=[channel], now=clock.now(), limit=30
        )  # …and the process dies
    assert len(claimed) == 20
    # A new process on the same database sends what the dead one claimed, at once: none of
    # it had been handed to the channel.
    restarted = restart(runtime, clock)
    await delivery.tick(runtime)
    for person in campaign.values():
        (message,) = restarted.to(person)
        assert "reminder_phase_start" in keys_of(message) and "动员部署" in message.text
    assert sent.to() == []


def restart(runtime, clock) -> LocalChannel:
    """A new process's channel on the same database (it replaces the dead one's)."""
    return LocalChat(runtime, handlers.routes(), clock).channel


async def test_crash_while_sending_never_sends_twice(campaign, runtime, sent, clock, channel):
    clock.set(at(23, 9, 5))
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await reminders.plan(session, organisation_id=organisation.id, now=clock.now())
        handed = await outbox.claim(session, channels=[channel], now=clock.now(), limit=5)
    async with runtime.db.session() as session:
        await outbox.set_status(session, ids=handed, status=OutboxStatus.SENDING)  # …and it dies
    clock.advance(delivery.CLAIM_LEASE + timedelta(minutes=1))
    restarted = restart(runtime, clock)
    await delivery.tick(runtime)
    assert len(restarted.to()) == 15 and sent.to() == []
    async with runtime.db.session() as session:
        failed = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
            )
        ).all()
    assert sorted(m.id for m in failed) == sorted(handed)
    # Those whose message may have gone are not sent it again.
    accounts = await account_ids(runtime, channel)
    assert {str(accounts[m.member_id]) for m in failed}.isdisjoint({m.chat for m in restarted.to()})


async def test_retry_after_waits_then_sends_once(campaign, api, app, clock, runtime):
    zheng = campaign["郑强"]
    api.fail(method="sendMessage", chat_id=zheng.user_id, status=429, retry_after=30)
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    assert count(api, zheng.user_id, "阶段") == 0
    await delivery.tick(runtime)  # Telegram said 30 s: not yet
    assert count(api, zheng.user_id, "阶段") == 0
    clock.advance(timedelta(seconds=31))
    await delivery.tick(runtime)
    assert count(api, zheng.user_id, "进入“动员部署”阶段") == 1
    assert all(len(api.sent(p.user_id)) == 1 for p in campaign.values())


async def test_a_timeout_is_not_retried(campaign, api, app, clock, runtime):
    zheng = campaign["郑强"]
    api.fail(method="sendMessage", chat_id=zheng.user_id, status=0)
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    clock.advance(timedelta(hours=1))
    await delivery.tick(runtime)
    assert count(api, zheng.user_id, "阶段") == 0
    async with runtime.db.session() as session:
        row = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
            )
        ).one()
    assert row.member_id == (await member(runtime, "郑强")).id


async def member(runtime, name: str) -> Member:
    async with runtime.db.session() as session:
        return (await session.exec(select(Member).where(Member.name == name))).one()


def chat_member_update(person, old: str, new: str) -> dict:
    return {
        "my_chat_member": {
            "chat": {"id": person.user_id, "type": "private", "first_name": person.name},
            "from": telegram_user(person),
            "date": 0,
            "old_chat_member": {
                "status": old,
                "until_date": 0,
                "user": {"id": 7000000001, "is_bot": True, "first_name": "bot"},
            },
            "new_chat_member": {
                "status": new,
                "until_date": 0,
                "user": {"id": 7000000001, "is_bot": True, "first_name": "bot"},
            },
        }
    }


async def joined(chat, person) -> None:
    """The person can be reached again (on Telegram: a chat_member update; WeCom: subscribe)."""
    inbound = Inbound(
        Kind.JOINED, Account(local.CHANNEL, str(person.user_id)), str(person.user_id), True
    )
    await chat.routes.dispatch(inbound, chat.channel, chat.runtime)


async def test_an_unreachable_member_is_skipped_and_named_to_the_secretary_until_back(
    campaign, sent, runtime, clock, chat, channel
):
    zheng = campaign["郑强"]
    zheng_id = (await member(runtime, "郑强")).id
    await block_bot(runtime, zheng_id)
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    clock.set(at(24, 9, 5))
    await delivery.tick(runtime)  # the 自查 window opens: skipped for him
    assert sent.to(zheng) == []
    clock.set(at(28, 9, 5))
    await delivery.tick(runtime)  # the day after the 自查 deadline: his secretary hears of him
    notice = next(
        plain(m.text) for m in sent.to(campaign["张明"]) if "自查 已截止" in plain(m.text)
    )
    assert "暂时无法收到消息" in notice and "郑强" in notice.split("暂时无法收到消息")[1]
    await joined(chat, zheng)
    assert await blocked_since(runtime, zheng_id, channel) is None
    clock.set(at(29, 9, 5))
    await delivery.tick(runtime)
    assert got(sent, zheng, "reminder_phase_start", "进入“全面推进”阶段") == 0
    clock.set(at(30, 9, 5))
    await delivery.tick(runtime)
    assert got(sent, zheng, "reminder_phase_start", "进入“全面推进”阶段") == 1


async def test_forbidden_marks_unreachable_until_they_come_back(
    campaign, api, app, clock, chat, runtime
):
    """Telegram's 403 marks the member unreachable (no more tries); chat_member, back."""
    zheng = campaign["郑强"]
    api.block(zheng.user_id)
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    assert await blocked_since(runtime, (await member(runtime, "郑强")).id, "telegram") is not None
    clock.set(at(24, 9, 5))
    await delivery.tick(runtime)  # the 自查 window opens: skipped for him, no more 403s
    forbidden_tries = [c for c in api.calls if c.chat_id == zheng.user_id]
    assert forbidden_tries == []
    api.unblock(zheng.user_id)
    await chat.feed(chat_member_update(zheng, "kicked", "member"))
    assert await blocked_since(runtime, (await member(runtime, "郑强")).id, "telegram") is None
    clock.set(at(30, 9, 5))
    await delivery.tick(runtime)
    assert count(api, zheng.user_id, "进入“全面推进”阶段") == 1


async def test_blocking_through_my_chat_member_is_noticed(campaign, chat, runtime, api):
    zheng = campaign["郑强"]
    await chat.feed(chat_member_update(zheng, "member", "kicked"))
    assert await blocked_since(runtime, (await member(runtime, "郑强")).id, "telegram") is not None
    assert not api.sent(zheng.user_id)


async def test_phase_command_shows_stage_and_my_deadlines(campaign, chat, sent, clock):
    clock.set(at(24, 10))
    zheng, zhang = campaign["郑强"], campaign["张明"]
    await chat.send(zheng, "/phase")
    assert sent.keys(zheng) == ["phase"]
    text = plain(sent.last(zheng).text)
    assert "当前阶段：动员部署" in text and "公开承诺" in text
    assert "自查 — 11月27日（还有 3 天）" in text
    await chat.send(zhang, "/phase")
    assert sent.keys(zhang) == ["phase"] and "自查" in sent.last(zhang).text


async def test_phase_before_any_campaign(people, chat, sent):
    await chat.send(people["郑强"], "/phase")
    assert sent.keys(people["郑强"]) == ["phase"]
    assert "还没有发布" in sent.last(people["郑强"]).text


async def test_planning_uses_the_same_number_of_queries_for_any_roster(
    runtime, people, clock, channel
):
    await load(runtime)
    statements: list[str] = []
    event.listen(
        runtime.db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )

    async def queries_to_plan(moment: datetime) -> int:
        statements.clear()
        async with runtime.db.session() as session:
            organisation = await people_queries.get_organisation(session)
            await reminders.plan(session, organisation_id=organisation.id, now=moment)
        return len(statements)

    small = await queries_to_plan(at(24, 10))
    async with runtime.db.session() as session:
        await session.exec(delete(OutboxMessage))
        await session.exec(delete(PlannedReminder))  # plan the very same reminders again…
        organisation = await people_queries.get_organisation(session)
        branch = (await people_queries.list_branches(session, organisation_id=organisation.id))[1]
        added = [
            Member(
                organisation_id=organisation.id,
                name=f"成员{number}",
                branch_id=branch.id,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            for number in range(300)  # …for sixteen times as many members
        ]
        session.add_all(added)
        await session.flush()
        session.add_all(
            ChannelAccount(
                member_id=m.id,
                channel=channel,
                external_id=str(9_000_000 + m.id),
                bound_at=clock.now(),
            )
            for m in added
        )
    large = await queries_to_plan(at(24, 10))
    assert small == large


BAD_FILES = [
    (
        "reminder_in_quiet_hours",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\nreminder_time = "22:30"\n',
        4,
    ),
    ("syntax", 'name = "x"\n[campaign\n', 2),
    ("missing_timezone", '[campaign]\nname = "x"\n', 1),
    ("unknown_timezone", '[campaign]\nname = "x"\ntimezone = "Mars/Olympus"\n', 3),
    ("unknown_key", '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\ncolour = "red"\n', 4),
    (
        "reversed",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\n\n[[phases]]\nname = "a"\nstart = 2026-12-01\nend = 2026-11-01\n',
        8,
    ),
    (
        "overlap",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\n\n[[phases]]\nname = "a"\nstart = 2026-11-01\nend = 2026-11-30\n\n[[phases]]\nname = "b"\nstart = 2026-11-15\nend = 2026-12-30\n',
        12,
    ),
    (
        "not_a_date",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\n\n[[steps]]\nname = "a"\ndue = "明天"\n',
        7,
    ),
    (
        "reversed",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\n\n[[quarters]]\nname = "q"\nsummary_opens = 2026-12-01\nsummary_due = 2026-11-01\nevaluation_opens = 2026-12-05\nevaluation_due = 2026-12-06\nrectification_due = 2026-12-07\n',
        8,
    ),
    (
        "missing_key",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\n\n[[phases]]\nname = "a"\nstart = 2026-11-01\n',
        5,
    ),
    (
        "unknown_audience",
        '[campaign]\nname = "x"\ntimezone = "Asia/Shanghai"\n\n[[steps]]\nname = "a"\ndue = 2026-11-01\naudience = "群众"\n',
        8,
    ),
]


@pytest.mark.parametrize(
    ("reason", "text", "line"), BAD_FILES, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(BAD_FILES)]
)
def test_bad_campaign_files_name_the_line(reason, text, line):
    spec, problems = calendar.parse_campaign(text)
    assert spec is None
    assert (reason, line) in [(p.reason, p.line) for p in problems], problems


async def test_campaign_command_line_loads_nothing_half(
    database_url, tmp_path, monkeypatch, capsys, runtime, people
):
    import asyncio

    from bot.__main__ import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        CAMPAIGN.replace("{reminder_time}", "09:00")
        + '\n[[phases]]\nname = "重叠"\nstart = 2026-12-15\nend = 2027-01-15\n',
        encoding="utf-8",
    )
    assert await asyncio.to_thread(main, ["campaign", "load", str(bad)]) == 1
    assert "与上一阶段日期重叠" in capsys.readouterr().out
    async with runtime.db.session() as session:
        assert (await session.exec(select(Campaign))).all() == []
    from bot.cli.demo import SAMPLES

    assert (
        await asyncio.to_thread(main, ["campaign", "load", str(SAMPLES / "campaign_seed001.toml")])
        == 0
    )
    assert "4 个阶段" in capsys.readouterr().out


async def test_two_senders_never_claim_the_same_row(campaign, runtime, clock, channel):
    clock.set(at(23, 9, 5))
    async with runtime.db.session() as session:
        await reminders.plan(session, organisation_id=1, now=clock.now())

    async def claim() -> list[int]:
        async with runtime.db.session() as session:
            return await outbox.claim(session, channels=[channel], now=clock.now(), limit=15)

    first, second = await asyncio.gather(claim(), claim())
    assert not set(first) & set(second)
    assert len(first) + len(second) == 20


async def test_a_message_that_arrived_in_part_is_never_sent_again(runtime, people, api, app, clock):
    long_text = (
        CAMPAIGN.replace('announcement = "召开动员大会。"', f'announcement = "{"动" * 2000}"')
        .replace('text = "对照标准自查。"', f'text = "{"查" * 2000}"')
        .replace("opens = 2026-11-24", "opens = 2026-11-23")
    )
    await load(runtime, long_text)
    zheng = people["郑强"]
    api.fail(
        method="sendMessage", chat_id=zheng.user_id, status=502, description="Bad Gateway", after=1
    )
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    clock.advance(timedelta(hours=1))
    await delivery.tick(runtime)
    assert len(api.sent(zheng.user_id)) == 1  # the first part, once; the rest is not retried
    assert len(api.sent(people["冯磊"].user_id)) == 2  # both parts for everyone else


async def test_a_moved_deadline_is_reminded_anew_and_stale_rows_are_dropped(
    campaign, sent, clock, runtime
):
    zheng = campaign["郑强"]
    clock.set(at(27, 9, 5))
    await delivery.tick(runtime)  # 自查 is due today (11-27)
    assert got(sent, zheng, "reminder_step_due_today", "自查 今天截止") == 1
    await load(runtime, CAMPAIGN.replace("due = 2026-11-27", "due = 2026-12-08"))
    clock.set(at(36, 9, 5))  # 12-06: two days before the new deadline
    await delivery.tick(runtime)
    assert got(sent, zheng, "reminder_step_due_soon", "自查 将于 12月8日") == 1
    clock.set(at(38, 9, 5))
    await delivery.tick(runtime)
    # The old day's, and the new day's; the old deadline is not chased.
    assert got(sent, zheng, "reminder_step_due_today", "自查 今天截止") == 2
    assert got(sent, zheng, "reminder_step_overdue", "自查 已于 11月27日") == 0
    assert not any("自查 已于 11月27日" in plain(text) for text in sent.texts(zheng))


async def test_a_deadline_loaded_after_it_passed_chases_nobody(runtime, people, sent, clock):
    clock.set(at(28, 10))
    await load(runtime)  # 自查 was due 11-27
    await delivery.tick(runtime)
    clock.advance(timedelta(days=1))
    await delivery.tick(runtime)
    assert sent.to()  # the phase's announcement went
    assert not any("自查" in text for text in sent.texts())


async def test_a_member_who_writes_again_is_reachable_again(
    campaign, sent, clock, chat, runtime, channel
):
    zheng = campaign["郑强"]
    zheng_id = (await member(runtime, "郑强")).id
    await block_bot(runtime, zheng_id)  # the unblock update never reached us…
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    assert sent.to(zheng) == []
    await chat.send(zheng, "/phase")  # …but he writes to the bot
    assert sent.keys(zheng) == ["phase"]
    assert await blocked_since(runtime, zheng_id, channel) is None


async def test_a_429_in_one_chat_holds_back_only_that_chat(campaign, api, app, clock, runtime):
    zheng = campaign["郑强"]
    api.fail(method="sendMessage", chat_id=zheng.user_id, status=429, retry_after=60)
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    assert all(len(api.sent(p.user_id)) == 1 for p in campaign.values() if p != zheng)
    clock.advance(timedelta(seconds=30))
    await delivery.tick(runtime)
    assert not api.sent(zheng.user_id)  # still within Telegram's minute
    clock.advance(timedelta(seconds=31))
    await delivery.tick(runtime)
    assert all(len(api.sent(p.user_id)) == 1 for p in campaign.values())


def test_a_campaign_file_reports_every_problem_in_one_pass():
    text = (
        CAMPAIGN.replace("{reminder_time}", "23:00")  # in the quiet hours
        .replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\ncolour = "red"')
        .replace("end = 2026-11-29", "end = 2026-11-30")  # overlaps the next phase
        .replace("rectification_due = 2026-12-20", "rectification_due = 2026-12-02")
        + '\n[[steps]]\nname = "自查"\ndue = 2026-11-28\n'  # a second 自查
        + '\n[[steps]]\nname = "无期限"\n'  # no due date
    )
    spec, problems = calendar.parse_campaign(text)
    assert spec is None
    assert {p.reason for p in problems} == {
        "unknown_key",
        "reminder_in_quiet_hours",
        "overlap",
        "reversed",
        "duplicate_name",
        "missing_key",
    }


async def test_a_campaign_file_that_would_drop_most_of_the_calendar_needs_asking(
    database_url, tmp_path, monkeypatch, capsys, runtime, people
):
    import asyncio

    from bot.__main__ import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    full, bare = tmp_path / "full.toml", tmp_path / "bare.toml"
    full.write_text(CAMPAIGN.replace("{reminder_time}", "09:00"), encoding="utf-8")
    bare.write_text('[campaign]\nname = "测试活动"\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["campaign", "load", str(full)]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["campaign", "load", str(bare)]) == 1
    assert "会去掉现有日程中的 6 个阶段和工作节点" in capsys.readouterr().out
    async with runtime.db.session() as session:
        assert len(await calendar_queries.list_steps(session, organisation_id=1)) == 4
    args = ["campaign", "load", str(bare), "--allow-removals"]
    assert await asyncio.to_thread(main, args) == 0
    assert "停用 4 个旧节点" in capsys.readouterr().out
