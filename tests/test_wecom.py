"""The WeCom channel against a WeCom of our own on 127.0.0.1 (bot/channels/wecom/local_server.py)
speaking the wire format: signed, encrypted callbacks in; gettoken, message/send, card
updates and media out.

The demo's people are bound on WeCom, their userids the numbers the demo gives them.
"""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from bench.harness import populate
from bot import delivery
from bot.channels.wecom import local_server
from bot.channels.wecom.app import WeCom
from bot.channels.wecom.channel import TEXT_BYTES, split_bytes
from bot.channels.wecom.inbound import CHANNEL, Pushed
from bot.channels.wecom.local_server import LocalWeCom, Pusher
from bot.channels.wecom.pacing import MemberPace
from bot.cli import demo
from bot.core.contract import Outgoing, OutgoingFile, Undelivered, Unreachable
from bot.intake import Intake
from bot.runtime import Runtime
from messages.render import unmarked
from storage.models import ChannelAccount, IntakeUpdate, OutboxMessage, OutboxStatus, SentCount
from tests.test_evaluation_anonymity import (
    LEADER,
    LEADER_ITEMS,
    open_round_with_a_code,
)
from tests.test_pacing import _announce_to_everyone


@pytest.fixture
async def fake():
    wecom = LocalWeCom()
    await wecom.start()
    yield wecom
    await wecom.stop()


async def running(runtime, fake, pace: MemberPace | None = None, **settings):
    runtime = Runtime(
        settings=runtime.settings.model_copy(
            update={**local_server.settings(fake.base_url), **settings}
        ),
        db=runtime.db,
        clock=runtime.clock,
        messages=runtime.messages,
    )
    wecom = WeCom.build(runtime, pace=pace)
    await wecom.start("127.0.0.1", 0)
    return wecom


@pytest.fixture
async def wecom(runtime, fake):
    service = await running(runtime, fake)
    yield service
    await service.stop()


@pytest.fixture
async def pusher(wecom):
    client = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
    yield client
    await client.close()


@pytest.fixture
async def people(runtime):
    """The demo organisation, everyone bound on WeCom; by name."""
    await demo.seed(runtime, channel=CHANNEL)
    return {person.name: person for person in await demo.demo_people(runtime, channel=CHANNEL)}


@pytest.fixture
async def members(people, fake) -> dict[str, str]:
    """The demo's people by name, as WeCom userids."""
    userids = {name: str(person.user_id) for name, person in people.items()}
    fake.members |= set(userids.values())
    return userids


async def say(pusher: Pusher, wecom: WeCom, xml: str, times: int = 1) -> list[int]:
    statuses = [(await pusher.post(xml)).status_code for _ in range(times)]
    await wecom.callbacks.idle()
    return statuses


async def push(channel, item: Outgoing) -> None:
    """An outbox message as the sender hands it over: room made for it, then pushed."""
    await channel.make_room([item])
    await channel.push(item, before_request=None)


def texts(fake: LocalWeCom, user: str) -> list[str]:
    return [item.text for item in fake.to(user)]


def shown(runtime, template: str, **values) -> str:
    """A message as WeCom shows it by default: text, with the keywords members type."""
    return runtime.messages.render_as("wecom_text", "zh_CN", template, **values)


# --- the callback endpoint ---------------------------------------------------------------------


async def test_url_verification_answers_the_decrypted_echostr(pusher):
    answer = await pusher.verify_url("1288432023552776189")
    assert answer.status_code == 200 and answer.text == "1288432023552776189"
    assert answer.headers["content-type"].startswith("text/plain")


async def test_url_verification_with_another_key_is_refused(wecom):
    from bot.channels.wecom.crypto import WeComCrypto

    stranger = WeComCrypto(local_server.TOKEN, "B" * 43, local_server.CORP_ID)
    other = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback", stranger)
    try:
        assert (await other.verify_url()).status_code == 403
    finally:
        await other.close()


async def test_a_command_a_keyword_and_a_menu_entry_get_the_same_help(
    pusher, wecom, fake, members, runtime
):
    zheng = members["郑强"]
    await say(pusher, wecom, pusher.text(zheng, "/help"))
    await say(pusher, wecom, pusher.text(zheng, "帮助"))
    await say(pusher, wecom, pusher.event(zheng, "click", EventKey="help"))
    first, second, third = texts(fake, zheng)
    assert first == second == third and "/pledge" in first
    # The menu went up once at start, with the typed keywords' own words.
    (menu,) = fake.menus
    assert [group["name"] for group in menu["button"]] == ["日常", "评议", "更多"]
    assert menu["button"][0]["sub_button"][0] == {"type": "click", "name": "承诺", "key": "pledges"}


async def test_a_retried_push_is_processed_once(pusher, wecom, fake, members, runtime):
    zheng = members["郑强"]
    xml = pusher.text(zheng, "/phase")
    assert await say(pusher, wecom, xml, times=4) == [200] * 4  # the first and three retries
    assert len(fake.to(zheng)) == 1
    event = pusher.event(zheng, "click", EventKey="help")
    await say(pusher, wecom, event, times=3)
    assert len(fake.to(zheng)) == 2
    async with runtime.db.session() as session:
        stored = (await session.exec(select(IntakeUpdate))).all()
    assert len(stored) == 2 and all(row.done and row.channel == "wecom" for row in stored)


async def test_a_forged_signature_is_refused_and_nothing_stored(
    pusher, wecom, fake, members, runtime
):
    response = await pusher.post(pusher.text(members["郑强"], "/help"), forged=True)
    await wecom.callbacks.idle()
    assert response.status_code == 403
    assert fake.delivered == []
    async with runtime.db.session() as session:
        assert (await session.exec(select(IntakeUpdate))).all() == []


async def test_a_stranger_is_told_whom_to_ask(pusher, wecom, fake, runtime):
    fake.members.add("4242")
    await say(pusher, wecom, pusher.text("4242", "承诺"))
    assert texts(fake, "4242") == [shown(runtime, "not_member")]


async def test_leaving_and_coming_back_follow_wecoms_events(pusher, wecom, fake, members, runtime):
    zheng = members["郑强"]

    async def unreachable() -> bool:
        async with runtime.db.session() as session:
            account = (
                await session.exec(
                    select(ChannelAccount).where(
                        ChannelAccount.channel == CHANNEL, ChannelAccount.external_id == zheng
                    )
                )
            ).one()
        return account.unreachable_since is not None

    await say(pusher, wecom, pusher.event(zheng, "unsubscribe"))
    assert await unreachable()
    await say(pusher, wecom, pusher.event(zheng, "subscribe"))
    assert not await unreachable()


# --- cards -------------------------------------------------------------------------------------


async def test_a_tapped_card_is_updated_in_place(pusher, wecom, fake, members, runtime):
    zheng = members["郑强"]
    await say(pusher, wecom, pusher.text(zheng, "/reminders"))
    (card,) = fake.to(zheng)
    assert card.msgtype == "template_card" and len(card.buttons) == 2
    task = card.body["template_card"]["task_id"]
    code = fake.card_code(task)
    await say(pusher, wecom, pusher.tap(zheng, task, card.buttons[1][1], code))
    (update,) = fake.updates
    assert update["response_code"] == code and update["template_card"]["task_id"] == task
    assert len(fake.to(zheng)) == 1  # no new message: the card itself changed
    # A second tap with the same code: the code is spent, so the answer comes anew.
    await say(pusher, wecom, pusher.tap(zheng, task, card.buttons[0][1], code))
    assert len(fake.updates) == 1 and len(fake.to(zheng)) == 2
    assert fake.to(zheng)[1].msgtype == "template_card"


async def test_a_stale_or_forged_card_button_only_greys_the_card(
    pusher, wecom, fake, members, runtime
):
    zheng = members["郑强"]
    await say(pusher, wecom, pusher.text(zheng, "/reminders"))
    (card,) = fake.to(zheng)
    task = card.body["template_card"]["task_id"]
    await say(pusher, wecom, pusher.tap(zheng, task, "pledge:delete:1", fake.card_code(task)))
    (update,) = fake.updates
    stale = runtime.messages.plain("zh_CN", "button_stale")
    assert update["button"]["replace_name"] == stale  # the toast's words, on the card
    assert len(fake.to(zheng)) == 1


async def test_words_where_a_button_was_expected_are_answered_politely(
    pusher, wecom, fake, members, runtime
):
    zheng = members["郑强"]
    await say(pusher, wecom, pusher.text(zheng, "/reminders"))
    await say(pusher, wecom, pusher.text(zheng, "全部提醒"))
    assert texts(fake, zheng)[-1] == shown(runtime, "not_understood")


# --- the sender --------------------------------------------------------------------------------


def test_long_text_splits_at_2048_bytes_between_lines_and_never_inside_a_character():
    line = "党员先锋岗" * 30  # 450 bytes
    text = "\n".join([line] * 10)
    parts = split_bytes(text)
    assert all(len(part.encode()) <= TEXT_BYTES for part in parts)
    assert "\n".join(parts) == text  # cut only at line ends
    one_line = "创先争优" * 400  # 4,800 bytes, no line end to cut at
    parts = split_bytes(one_line)
    assert [len(part.encode()) for part in parts] == [2046, 2046, 708]
    assert "".join(parts) == one_line


async def test_a_message_over_2048_bytes_arrives_whole_in_parts(wecom, fake, members):
    zheng = members["郑强"]
    text = "\n".join(f"第{n}条：按时办结窗口业务，每天提前到岗。" for n in range(200))
    await wecom.channel.send([Outgoing(zheng, text)], None)
    parts = texts(fake, zheng)
    assert len(parts) > 1 and all(len(part.encode()) <= TEXT_BYTES for part in parts)
    assert "\n".join(parts) == text  # nothing lost to WeCom's truncation


async def test_files_go_through_media_upload(wecom, fake, members):
    zheng = members["郑强"]
    await wecom.channel.send_file(
        OutgoingFile(zheng, "周报.xlsx", b"PK\x03\x04workbook", caption="本周")
    )
    file, caption = fake.to(zheng)
    assert file.msgtype == "file" and fake.uploads[file.body["file"]["media_id"]].startswith(b"PK")
    assert caption.text == "本周"


async def test_the_member_limits_keep_messages_in_the_outbox(runtime, fake, members):
    wecom = await running(runtime, fake, pace=MemberPace(per_minute=2, per_hour=3))
    zheng = members["郑强"]
    try:
        for _ in range(2):
            await push(wecom.channel, Outgoing(zheng, "提醒"))
        with pytest.raises(Undelivered) as refused:
            await push(wecom.channel, Outgoing(zheng, "提醒"))
        assert refused.value.wait == timedelta(minutes=1)
        runtime.clock.advance(timedelta(minutes=1))
        await push(wecom.channel, Outgoing(zheng, "提醒"))
        with pytest.raises(Undelivered) as refused:  # the hour's three are used
            await push(wecom.channel, Outgoing(zheng, "提醒"))
        assert refused.value.wait == timedelta(minutes=59)
        with pytest.raises(Unreachable):
            await push(wecom.channel, Outgoing("nobody", "提醒"))
    finally:
        await wecom.stop()
    assert len(fake.to(zheng)) == 3


async def test_a_token_revoked_mid_broadcast_is_renewed_and_nothing_lost(runtime, fake, members):
    await _announce_to_everyone(runtime)
    fake.expire_tokens_after = 5
    wecom = await running(runtime, fake)
    try:
        report = await delivery.send_now(wecom.channel.runtime)
    finally:
        await wecom.stop()
    assert report.sent > 5 and report.failed == report.again == 0
    users = [item.user for item in fake.delivered]
    assert len(users) == len(set(users)) == report.sent
    assert fake.token_fetches == 2


async def test_a_rate_limited_broadcast_to_200_members_drops_none_and_doubles_none(
    runtime, fake, clock
):
    await populate(runtime, members=200, branches=5)
    async with runtime.db.session() as session:
        bound = (await session.exec(select(ChannelAccount))).all()
        for account in bound:  # each also on WeCom, which CHANNEL_ORDER puts first
            session.add(
                ChannelAccount(
                    member_id=account.member_id,
                    channel=CHANNEL,
                    external_id=account.external_id,
                    bound_at=account.bound_at,
                )
            )
    ids = [account.external_id for account in bound]
    fake.members |= set(ids)
    await _announce_to_everyone(runtime)
    fake.frequency_limit = 120  # WeCom answers 45009 beyond this, until the next minute
    wecom = await running(runtime, fake)
    try:
        first = await delivery.send_now(wecom.channel.runtime)
        assert first.sent == 120 and first.again == 80
        clock.advance(timedelta(minutes=1))
        fake.reset_frequency()
        second = await delivery.send_now(wecom.channel.runtime)
    finally:
        await wecom.stop()
    assert second.sent == 80
    users = [item.user for item in fake.delivered]
    assert sorted(users) == sorted(str(user_id) for user_id in ids)  # each once
    async with runtime.db.session() as session:
        statuses = (await session.exec(select(OutboxMessage.status))).all()
    assert statuses.count(OutboxStatus.SENT) == 200
    assert set(statuses) - {OutboxStatus.SKIPPED} == {OutboxStatus.SENT}


async def test_a_members_31st_message_in_a_minute_waits_where_wecom_would_drop_it(
    runtime, fake, members, clock
):
    zheng = members["郑强"]
    fake.clock = clock.now  # the local WeCom drops beyond 30 a minute, as WeCom does
    unpaced = await running(runtime, fake, pace=MemberPace(per_minute=10**6, per_hour=None))
    try:
        for n in range(31):
            await push(unpaced.channel, Outgoing(zheng, f"通知{n}"))
    finally:
        await unpaced.stop()
    assert len(fake.dropped) == 1  # what an application without the limits would lose
    clock.advance(timedelta(hours=1))
    wecom = await running(runtime, fake)
    try:
        for n in range(30):
            await push(wecom.channel, Outgoing(zheng, f"提醒{n}"))
        with pytest.raises(Undelivered) as refused:
            await push(wecom.channel, Outgoing(zheng, "提醒30"))
    finally:
        await wecom.stop()
    assert timedelta(0) < refused.value.wait <= timedelta(minutes=1)
    assert len(fake.dropped) == 1


async def test_an_outbox_message_waits_whole_when_its_parts_do_not_all_fit(runtime, fake, members):
    wecom = await running(runtime, fake, pace=MemberPace(per_minute=2, per_hour=None))
    zheng = members["郑强"]
    try:
        await push(wecom.channel, Outgoing(zheng, "提醒"))
        with pytest.raises(Undelivered) as refused:  # one slot left for two parts
            await wecom.channel.make_room(
                [Outgoing(zheng, "第一部分"), Outgoing(zheng, "第二部分")]
            )
    finally:
        await wecom.stop()
    assert refused.value.wait == timedelta(minutes=1) and texts(fake, zheng) == ["提醒"]


async def test_a_server_outside_the_trusted_ips_keeps_the_broadcast_for_later(
    runtime, fake, members, clock
):
    """WeCom refuses every message from an untrusted IP (60020): nothing arrived, so the
    messages wait for the administrator to add the IP instead of being given up."""
    await _announce_to_everyone(runtime)
    fake.refuse_with = 60020
    wecom = await running(runtime, fake)
    try:
        refused = await delivery.send_now(wecom.channel.runtime)
        fake.refuse_with = None  # the administrator added the IP
        clock.advance(timedelta(minutes=10))
        sent = await delivery.send_now(wecom.channel.runtime)
    finally:
        await wecom.stop()
    assert refused.sent == 0 and refused.failed == 0 and refused.again > 0
    assert sent.sent == refused.again and len(fake.delivered) == sent.sent


# --- 群众评议 through cards --------------------------------------------------------------------


async def tap(pusher: Pusher, wecom: WeCom, fake: LocalWeCom, user: str, selector: str) -> str:
    """Tap button N (from 1) of the latest card, or the one whose label holds `selector`;
    the pressed button's payload."""
    by_number = selector.isdigit()
    card = fake.last_card(user, None if by_number else selector)
    assert card is not None, selector
    buttons = [(button["text"], button["key"]) for button in card["button_list"]]
    if by_number:
        key = buttons[int(selector) - 1][1]
    else:
        (key,) = [key for text, key in buttons if selector in text]
    task = card["task_id"]
    await say(pusher, wecom, pusher.tap(user, task, key, fake.card_code(task)))
    return key


async def test_a_ballot_through_cards_keeps_nothing_of_the_rater(
    pusher, wecom, fake, members, runtime, caplog
):
    caplog.set_level(logging.DEBUG)
    written: list[str] = []  # every statement's parameters, on either database

    def record(_connection, _cursor, _statement, parameters, _context, _many) -> None:
        written.append(repr(parameters))

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", record)
    await open_round_with_a_code(runtime)
    li = members["李建国"]
    await say(pusher, wecom, pusher.text(li, "评议"))
    await tap(pusher, wecom, fake, li, LEADER)
    chosen = [await tap(pusher, wecom, fake, li, str(n % 4 + 1)) for n in range(LEADER_ITEMS)]
    await say(pusher, wecom, pusher.text(li, "意见20261201"))
    await tap(pusher, wecom, fake, li, "1")
    assert "已收到" in "\n".join(texts(fake, li) + [str(u) for u in fake.updates])
    async with runtime.db.session() as session:
        rows = (await session.exec(select(IntakeUpdate))).all()
    assert len(rows) == 2 + LEADER_ITEMS + 2 and all(row.done for row in rows)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    stored = "\n".join(written)
    assert "评议" in stored  # the command itself was stored, as any update is
    # The list of targets (the reply to 评议) is everyone's; the levels chosen are the rater's.
    for trace in (logged, stored):
        assert "意见20261201" not in trace and not any(key in trace for key in chosen)
    # The replies counted for WeCom's limits stay in memory: nothing tells when, or how
    # often, a rater was answered (a typed comment is answered, a tapped level is not).
    async with runtime.db.session() as session:
        assert (await session.exec(select(SentCount))).all() == []


async def test_a_push_a_dead_process_stored_is_answered_after_the_restart(runtime, fake, members):
    zheng = members["郑强"]
    wecom_side = Pusher("http://127.0.0.1:9/unused")
    xml = wecom_side.text(zheng, "/help")
    await wecom_side.close()
    # Stored and acknowledged to WeCom (which will not push it again), then the process died.
    assert await Intake(runtime.db, "wecom").accept(Pushed.parse(xml).update_id, xml)
    wecom = await running(runtime, fake)
    try:
        await wecom.callbacks.idle()
    finally:
        await wecom.stop()
    (reply,) = fake.to(zheng)
    assert "/pledge" in reply.text


async def test_more_than_six_buttons_go_on_further_cards(wecom, fake, members):
    zheng = members["郑强"]
    buttons = [[[f"第{n}项", f"test:{n}"]] for n in range(8)]
    long_text = "请选择\n" + "\n".join(f"第{n}项：" + "说明" * 40 for n in range(8))
    await wecom.channel.send([Outgoing(zheng, "请选择\n评议对象", buttons)], None)
    first, second = fake.to(zheng)
    assert [len(first.buttons), len(second.buttons)] == [6, 2]
    assert first.text == "请选择\n评议对象" and second.text == "请选择"
    tasks = {card.body["template_card"]["task_id"] for card in (first, second)}
    assert len(tasks) == 2
    # A text too long for a card goes first, as texts; the cards keep its first line.
    await wecom.channel.send([Outgoing(zheng, long_text, buttons)], None)
    kinds = [item.msgtype for item in fake.to(zheng)[2:]]
    assert kinds == ["text", "template_card", "template_card"]
    assert fake.to(zheng)[2].text == long_text


async def test_two_taps_on_one_card_in_one_second_are_both_taken(pusher, wecom, fake, members):
    """WeCom's retry repeats a tap's response code; a second tap has a code of its own."""
    zheng = members["郑强"]
    await say(pusher, wecom, pusher.text(zheng, "/reminders"))
    card = fake.last_card(zheng)
    task, keys = card["task_id"], [button["key"] for button in card["button_list"]]
    before = len(fake.updates)
    await say(pusher, wecom, pusher.tap(zheng, task, keys[0], fake.card_code(task)))
    pusher.created -= 1  # the next push carries the same CreateTime
    await say(pusher, wecom, pusher.tap(zheng, task, keys[1], fake.card_code(task)))
    assert len(fake.updates) - before == 2


# --- markdown ----------------------------------------------------------------------------------


@pytest.fixture
async def markdown_pusher(runtime, fake):
    """A pusher to an application set to send markdown (WECOM_MESSAGE_FORMAT=markdown)."""
    service = await running(runtime, fake, wecom_message_format="markdown")
    client = Pusher(f"http://127.0.0.1:{service.port}/wecom/callback")
    yield client, service
    await client.close()
    await service.stop()


async def test_replies_are_text_by_default_that_every_client_shows(pusher, wecom, fake, members):
    zheng = members["郑强"]
    await say(pusher, wecom, pusher.text(zheng, "/pledge 全勤 | 每天提前到岗 | 2026-12-31"))
    saved = fake.to(zheng)[-1]
    assert saved.msgtype == "text" and saved.text.startswith("承诺已记录")
    assert "\n目标：全勤\n措施：每天提前到岗\n" in saved.text and "*" not in saved.text
    assert "发送 「承诺」 可查看" in saved.text


async def test_replies_are_wecom_markdown_and_a_members_words_never_become_markup(
    markdown_pusher, fake, members, runtime
):
    pusher, wecom = markdown_pusher
    zheng = members["郑强"]
    goal = '**全勤** [奖](https://evil.example) `x` <font color="warning">红</font>'
    await say(
        pusher, wecom, pusher.text(zheng, f"/pledge {goal} | # 每天 > 提前到岗_ | 2026-12-31")
    )
    saved = fake.to(zheng)[-1]
    assert saved.msgtype == "markdown"
    text = saved.text
    assert text.startswith("承诺已记录") and "\n**目标**：" in text and "\n**措施**：" in text
    # The member's asterisks, link, code and font tag stay words: escaped, never markup.
    for markup in ("*", "[", "`", "<"):
        assert markup not in text.replace("**目标**", "").replace("**措施**", "").replace(
            "**时限**", ""
        ).replace(f"\\{markup}", "")
    assert f"\n目标：{goal}\n措施：# 每天 > 提前到岗_\n" in unmarked(text)
    # WeCom has no slash commands: the keyword a member types.
    assert "发送 「承诺」 可查看" in text
