"""A member's accounts on several channels: pushed messages go to the first reachable one in
CHANNEL_ORDER, replies go back where the update came from, and the identity cache forgets
an account let go by any process."""

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
from tests.test_reminders import at, count, load

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


async def test_pushed_messages_go_to_the_first_channel_in_order_replies_come_back(
    campaign, runtime, api, app, chat, clock
):
    zheng = campaign["郑强"]
    member_id = await member_id_of(runtime, "郑强")
    await bind_account(runtime, member_id, "zhengqiang", channel="wecom")
    clock.set(at(23, 9, 5))
    await delivery.tick(app.bot_data["runtime"])
    # CHANNEL_ORDER is "wecom,telegram,local": WeCom's sender (not built yet) will take it.
    assert await recipient(runtime, member_id, reminders.PHASE_START) == ("wecom", "zhengqiang")
    assert count(api, zheng.user_id, MOBILISING) == 0
    assert count(api, campaign["张明"].user_id, MOBILISING) == 1
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
    # He writes on Telegram: the answer comes back on Telegram.
    await chat.send(zheng, "/phase")
    assert "动员部署" in api.last(zheng.user_id).text


async def test_a_blocked_first_channel_falls_through_to_the_next(
    campaign, runtime, api, app, clock
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
    await delivery.tick(app.bot_data["runtime"])
    assert await recipient(runtime, member_id, reminders.PHASE_START) == (
        "telegram",
        str(zheng.user_id),
    )
    assert count(api, zheng.user_id, MOBILISING) == 1


@pytest.mark.telegram
async def test_channel_order_is_a_setting(campaign, runtime, settings, clock):
    member_id = await member_id_of(runtime, "郑强")
    await bind_account(runtime, member_id, "zhengqiang", channel="wecom")
    telegram_first = Runtime(
        settings=settings.model_copy(update={"channel_order": "telegram, wecom"}),
        db=runtime.db,
        clock=clock,
        messages=runtime.messages,
    )
    assert telegram_first.settings.channels == ("telegram", "wecom")
    async with telegram_first.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await reminders.plan(session, organisation_id=organisation.id, now=at(23, 9, 5))
    channel, _external_id = await recipient(runtime, member_id, reminders.PHASE_START)
    assert channel == "telegram"


async def test_an_account_let_go_by_another_process_is_a_stranger_on_its_next_update(
    campaign, runtime, database_url, api, chat
):
    zheng = campaign["郑强"]
    await chat.send(zheng, "/help")  # known, and remembered
    other = Database(database_url)
    async with other.engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM channelaccount WHERE external_id = :id"), {"id": str(zheng.user_id)}
        )
    await other.dispose()
    await chat.send(zheng, "/help")
    assert "郑强" not in api.last(zheng.user_id).text
    assert api.last(zheng.user_id).text == runtime.messages.render("zh_CN", "not_member")
