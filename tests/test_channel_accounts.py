"""A member's accounts on several channels: pushed messages go to the first reachable one in
CHANNEL_ORDER, replies go back where the update came from, and the identity cache forgets
an account let go by any process. Through the channel contract: the people are bound on the
local channel, and some also on WeCom."""

import pytest
from sqlalchemy import text
from sqlmodel import select, update

from bot import delivery
from bot.core import reminders
from bot.runtime import Runtime
from storage import outbox
from storage import people as people_queries
from storage.db import Database
from storage.models import ChannelAccount, Member, OutboxMessage
from tests.conftest import bind_account
from tests.test_reminders import at, load

MOBILISING = "进入“动员部署”阶段"


@pytest.fixture
async def campaign(runtime, people):
    await load(runtime)
    return people


async def member_id_of(runtime, name: str) -> int:
    async with runtime.db.session() as session:
        return (await session.exec(select(Member.id).where(Member.name == name))).one()


async def recipient(runtime, member_id: int, reminder: str) -> tuple[str, str]:
    """The channel and external id an outbox row of the member's went to."""
    async with runtime.db.session() as session:
        row = await session.exec(
            select(OutboxMessage.channel, OutboxMessage.external_id).where(
                OutboxMessage.member_id == member_id, OutboxMessage.reminder == reminder
            )
        )
        return tuple(row.one())


def mobilised(sent, person) -> int:
    """How many messages told the person the 动员部署 phase began."""
    return sum(
        "reminder_phase_start" in item.key.split(",") and MOBILISING in item.text
        for item in sent.to(person)
    )


async def test_pushed_messages_go_to_the_first_channel_in_order_replies_come_back(
    campaign, runtime, chat, sent, clock, channel
):
    zheng = campaign["郑强"]
    member_id = await member_id_of(runtime, "郑强")
    await bind_account(runtime, member_id, "zhengqiang", channel="wecom")
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    # CHANNEL_ORDER is "wecom,telegram,local": WeCom's sender (not running here) will take it.
    assert await recipient(runtime, member_id, reminders.PHASE_START) == ("wecom", "zhengqiang")
    assert mobilised(sent, zheng) == 0
    assert mobilised(sent, campaign["张明"]) == 1
    # A message queued one at a time (a review, an item) follows the same rule.
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await outbox.add_message(
            session,
            organisation_id=organisation.id,
            reminder="review_delivered",
            subject="review:0",
            member_id=member_id,
            send_after=clock.now(),
            expires_at=at(30),
        )
    assert await recipient(runtime, member_id, "review_delivered") == ("wecom", "zhengqiang")
    # He writes on the test's channel: the answer comes back there.
    await chat.send(zheng, "/phase")
    assert sent.keys(zheng) == ["phase"] and "动员部署" in sent.last(zheng).text


async def test_a_blocked_first_channel_falls_through_to_the_next(
    campaign, runtime, sent, clock, channel
):
    zheng = campaign["郑强"]
    member_id = await member_id_of(runtime, "郑强")
    await bind_account(runtime, member_id, "zhengqiang", channel="wecom")
    async with runtime.db.session() as session:
        await session.exec(
            update(ChannelAccount)
            .where(ChannelAccount.channel == "wecom")
            .values(unreachable_since=clock.now())
        )
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    assert await recipient(runtime, member_id, reminders.PHASE_START) == (
        channel,
        str(zheng.user_id),
    )
    assert mobilised(sent, zheng) == 1


async def test_channel_order_is_a_setting(campaign, runtime, settings, clock, channel):
    member_id = await member_id_of(runtime, "郑强")
    await bind_account(runtime, member_id, "zhengqiang", channel="wecom")
    channel_first = Runtime(
        settings=settings.model_copy(update={"channel_order": f"{channel}, wecom"}),
        db=runtime.db,
        clock=clock,
        messages=runtime.messages,
    )
    assert channel_first.settings.channels == (channel, "wecom")
    async with channel_first.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await reminders.plan(session, organisation_id=organisation.id, now=at(23, 9, 5))
    chosen, _external_id = await recipient(runtime, member_id, reminders.PHASE_START)
    assert chosen == channel


async def test_an_account_let_go_by_another_process_is_a_stranger_on_its_next_update(
    campaign, runtime, database_url, chat, sent
):
    zheng = campaign["郑强"]
    await chat.send(zheng, "/help")  # known, and remembered
    assert sent.keys(zheng) == ["help"]
    other = Database(database_url)
    async with other.engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM channelaccount WHERE external_id = :id"), {"id": str(zheng.user_id)}
        )
    await other.dispose()
    await chat.send(zheng, "/help")
    assert sent.keys(zheng) == ["help", "not_member"]
    assert "郑强" not in sent.last(zheng).text
