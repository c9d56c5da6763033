"""WeCom's group robots (群机器人): announcements to group chats through the outbox, once each,
within a robot's 20 messages a minute; and the per-recipient limits across a restart. Against
the local WeCom (bot/channels/wecom/local_server.py), which speaks the webhook's wire format."""

import logging
from datetime import timedelta

import pytest
from sqlmodel import select

from bot import delivery
from bot.channels.wecom.local_server import Pusher
from bot.channels.wecom.pacing import MemberPace
from bot.config import Settings
from bot.core import notices
from bot.core.contract import Outgoing, Undelivered
from bot.logs import OWN_LOGGERS
from bot.runtime import Runtime
from storage import people as people_queries
from storage.models import (
    BoundChat,
    GroupMessage,
    Nomination,
    OutboxStatus,
    Selection,
    SelectionStage,
    SentCount,
)
from tests.test_commendation import open_selection
from tests.test_wecom import fake, members, people, push, running, say  # noqa: F401 — fixtures

ALL_KEY = "0f1e2d3c-aaaa-4bbb-8ccc-000000000001"
BRANCH_KEY = "0f1e2d3c-aaaa-4bbb-8ccc-000000000002"
ROBOTS = f"全局={ALL_KEY}; 市场管理党支部=https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={BRANCH_KEY}"


def with_robots(runtime, robots: str = ROBOTS) -> Runtime:
    return Runtime(
        settings=runtime.settings.model_copy(update={"wecom_robots": robots}),
        db=runtime.db,
        clock=runtime.clock,
        messages=runtime.messages,
    )


async def queue(runtime, count: int, chat: str = "全局") -> None:
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        for number in range(count):
            await notices.announce_to_groups(
                session,
                organisation_id=organisation.id,
                groups=[("wecom", chat)],
                subject=f"test:{number}",
                text=f"第{number}条通知",
                now=runtime.clock.now(),
            )


async def group_statuses(runtime) -> list[str]:
    async with runtime.db.session() as session:
        rows = await session.exec(select(GroupMessage.status).order_by(GroupMessage.id))
        return list(rows.all())


def test_robots_are_named_keys_and_a_malformed_setting_says_which():
    settings = Settings(wecom_robots=ROBOTS)
    assert settings.announcement_groups == [("wecom", "全局"), ("wecom", "市场管理党支部")]
    with pytest.raises(ValueError, match="'二支部'") as refused:
        Settings(wecom_robots=f"全局={ALL_KEY};二支部=https://example.com/hook")
    assert ALL_KEY not in str(refused.value)


async def test_a_published_commendation_reaches_each_robots_group_once(
    runtime,
    fake,  # noqa: F811
    members,  # noqa: F811
    clock,
):
    fake.robot_keys |= {ALL_KEY, BRANCH_KEY}
    selection = await open_selection(runtime)
    async with runtime.db.session() as session:
        chosen = await session.get(Selection, selection.id)
        organisation = await people_queries.get_organisation(session)
        zheng = (await people_queries.list_members(session, organisation_id=organisation.id))[0]
        session.add(
            Nomination(
                selection_id=selection.id,
                category="member",
                nominee=f"member:{zheng.id}",
                member_id=zheng.id,
                branch_id=zheng.branch_id,
                material="事迹",
                nominated_by=zheng.id,
                prize="first",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        chosen.stage, chosen.confirmed_at = SelectionStage.CONFIRMED, clock.now()
        # A Telegram group an organiser bound: it hears through Telegram, never through WeCom.
        session.add(
            BoundChat(
                chat_id=-100_200_300,
                organisation_id=organisation.id,
                channel="telegram",
                bound_by=zheng.id,
                bound_at=clock.now(),
            )
        )
    fake.members.add("-100200300")
    wecom = await running(with_robots(runtime), fake)
    pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    organiser = members["周敏"]
    publish = pusher.tap(organiser, "task-1", f"cmp:{selection.id}", "code-1")
    try:
        await say(pusher, wecom, publish)
        assert "3 个群也会收到" in fake.to(organiser)[0].text
        first = await delivery.send_now(wecom.channel.runtime)
        await say(pusher, wecom, pusher.tap(organiser, "task-1", f"cmp:{selection.id}", "code-2"))
        second = await delivery.send_now(wecom.channel.runtime)
    finally:
        await pusher.close()
        await wecom.stop()
    (said,) = fake.robot_texts(ALL_KEY)
    assert fake.robot_texts(BRANCH_KEY) == [said]
    assert fake.to("-100200300") == []
    assert "2026年度争当排头兵评选结果\n优秀共产党员\n· 一等奖：王志刚" in said and "<" not in said
    assert first.sent >= 2 and second.sent == 0  # the members' notices go the same way
    assert await group_statuses(runtime) == [OutboxStatus.SENT, OutboxStatus.SENT]


async def test_a_robot_takes_20_a_minute_and_the_rest_wait_in_the_queue(
    runtime,
    fake,  # noqa: F811
    members,  # noqa: F811
    clock,
):
    fake.robot_keys.add(ALL_KEY)
    await queue(runtime, 25)
    wecom = await running(with_robots(runtime), fake)
    try:
        first = await delivery.send_now(wecom.channel.runtime)
        assert (first.sent, first.again) == (20, 5)
        clock.advance(timedelta(seconds=30))
        fake.reset_frequency()  # WeCom's minute is not ours: only our pace keeps it
        assert (await delivery.send_now(wecom.channel.runtime)).sent == 0
    finally:
        await wecom.stop()
    # A restart within the minute still knows the robot's 20.
    clock.advance(timedelta(seconds=20))
    wecom = await running(with_robots(runtime), fake)
    try:
        again = await delivery.send_now(wecom.channel.runtime)
        assert again.sent == 0
        clock.advance(timedelta(minutes=1))
        last = await delivery.send_now(wecom.channel.runtime)
    finally:
        await wecom.stop()
    assert last.sent == 5 and fake.refused_by_frequency == 0
    assert fake.robot_texts(ALL_KEY) == [f"第{n}条通知" for n in range(25)]  # each once, in order
    assert set(await group_statuses(runtime)) == {OutboxStatus.SENT}


async def test_wecoms_45009_puts_an_announcement_back_and_an_unknown_robot_fails_quietly(
    runtime,
    fake,  # noqa: F811
    members,  # noqa: F811
    clock,
    caplog,
):
    fake.robot_keys.add(ALL_KEY)  # not BRANCH_KEY: that robot was removed from its group
    fake.robot_per_minute = 2
    await queue(runtime, 3)
    await queue(runtime, 1, chat="市场管理党支部")
    await queue(runtime, 1, chat="没有的群")
    wecom = await running(with_robots(runtime), fake)
    try:
        with caplog.at_level(logging.DEBUG, logger="bot"):  # libraries are capped (bot.logs)
            first = await delivery.send_now(wecom.channel.runtime)
        clock.advance(timedelta(minutes=1))
        fake.reset_frequency()
        second = await delivery.send_now(wecom.channel.runtime)
    finally:
        await wecom.stop()
    assert (first.sent, first.again, first.failed) == (2, 1, 2)
    assert second.sent == 1
    assert fake.robot_texts(ALL_KEY) == ["第0条通知", "第1条通知", "第2条通知"]
    async with runtime.db.session() as session:
        failed = (
            await session.exec(
                select(GroupMessage.chat, GroupMessage.error).where(
                    GroupMessage.status == OutboxStatus.FAILED
                )
            )
        ).all()
    assert sorted(chat for chat, _ in failed) == ["市场管理党支部", "没有的群"]
    # Our own lines (the local WeCom's access log is WeCom's side).
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in OWN_LOGGERS]
    assert ours and not any(BRANCH_KEY in line for line in ours)
    assert all(BRANCH_KEY not in error for _, error in failed)


# --- the limits across a restart ---------------------------------------------------------------


async def test_a_restarted_bot_still_keeps_a_members_hour(
    runtime,
    fake,  # noqa: F811
    members,  # noqa: F811
    clock,
):
    zheng = members["郑强"]
    wecom = await running(runtime, fake, pace=MemberPace(per_minute=2, per_hour=3))
    try:
        for _ in range(2):
            await push(wecom.channel, Outgoing(zheng, "提醒"))
        clock.advance(timedelta(minutes=10))
        await wecom.channel.send([Outgoing(zheng, "回复")], None)
    finally:
        await wecom.stop()
    # Only the outbox's messages are kept: when a member was answered stays theirs.
    async with runtime.db.session() as session:
        kept = (await session.exec(select(SentCount))).all()
    assert sum(row.count for row in kept) == 2
    clock.advance(timedelta(minutes=5))
    # A new process, with nothing in memory: the hour's two pushes are still counted.
    wecom = await running(runtime, fake, pace=MemberPace(per_minute=2, per_hour=3))
    try:
        await push(wecom.channel, Outgoing(zheng, "提醒"))
        with pytest.raises(Undelivered) as refused:
            await push(wecom.channel, Outgoing(zheng, "提醒"))
        clock.advance(refused.value.wait)
        await push(wecom.channel, Outgoing(zheng, "提醒"))
    finally:
        await wecom.stop()
    # The first two count from the end of their minute: never earlier than they went.
    assert timedelta(minutes=45) <= refused.value.wait <= timedelta(minutes=46)
    assert [item.text for item in fake.to(zheng)] == ["提醒", "提醒", "回复", "提醒", "提醒"]
