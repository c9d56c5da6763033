"""Durable intake through the real Updater and Application on the local Bot API: an update
is stored before getUpdates acknowledges it, processed once, and survives the process dying;
a duplicate is recognised; a 群众评议 ballot never reaches the intake table."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.channels.local.chat import Person
from bot.channels.telegram import CHANNEL
from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_api import ProcessDropped
from bot.channels.telegram.local_chat import telegram_user
from bot.core.access import Account
from bot.intake import Intake
from bot.runtime import Runtime
from storage import intake
from storage.models import IntakeUpdate

pytestmark = pytest.mark.virtual_time


def message(person: Person, update_id: int, text: str) -> dict:
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": person.user_id, "type": "private", "first_name": person.name},
            "from": telegram_user(person),
            "text": text,
            **({"entities": entities} if text.startswith("/") else {}),
        },
    }


def tap(person: Person, update_id: int, data: str) -> dict:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id),
            "from": telegram_user(person),
            "chat_instance": "local",
            "data": data,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": person.user_id, "type": "private", "first_name": person.name},
                "text": "…",
            },
        },
    }


def polling_app(runtime: Runtime, api):
    return build_application(runtime, request=api, intake=Intake(runtime.db, CHANNEL), polling=True)


async def poll_until_acknowledged(application, api) -> None:
    """Run the Updater until Telegram holds nothing unacknowledged."""
    if not application.updater.running:
        await application.updater.start_polling(poll_interval=0, timeout=1)
    await api.acknowledged()


async def intake_rows(runtime) -> list[IntakeUpdate]:
    async with runtime.db.session() as session:
        return list((await session.exec(select(IntakeUpdate))).all())


async def test_an_update_acknowledged_just_before_a_crash_is_processed_after_it_once(
    runtime, people, api
):
    zheng, feng = people["郑强"], people["冯磊"]
    api.deliver(message(zheng, 101, "/phase"))
    api.deliver(message(feng, 102, "/help"))
    # Telegram takes the offset that acknowledges both, and the process dies right then,
    # before it has processed either.
    api.drop_process(method="getUpdates", after=1, delivered=True)
    application = polling_app(runtime, api)
    async with application:
        await poll_until_acknowledged(application, api)
        assert api.dropped
        with pytest.raises(ProcessDropped):
            await application.updater.stop()
    assert not api.unacknowledged() and not api.sent()

    api.restart()
    restarted = polling_app(runtime, api)
    async with restarted:
        assert await restarted.update_queue.recover(restarted.bot_data["channel"]) == (0, 2)
        await restarted.start()
        await restarted.update_queue.join()
        await restarted.stop()
    assert len(api.sent(zheng.user_id)) == 1 and "活动日程" in api.last(zheng.user_id).text
    assert len(api.sent(feng.user_id)) == 1
    assert all(row.done and row.payload is None for row in await intake_rows(runtime))

    # Another restart finds nothing left to do.
    again = polling_app(runtime, api)
    async with again:
        assert await again.update_queue.recover(again.bot_data["channel"]) == (0, 0)


async def test_a_duplicate_delivery_is_processed_once(runtime, people, api):
    zheng = people["郑强"]
    application = polling_app(runtime, api)
    async with application:
        await application.start()
        api.deliver(message(zheng, 201, "/phase"))
        await poll_until_acknowledged(application, api)
        api.deliver(message(zheng, 201, "/phase"))  # a webhook's retry, a channel's resend
        await poll_until_acknowledged(application, api)
        await application.updater.stop()
        await application.update_queue.join()
        await application.stop()
    assert len(api.sent(zheng.user_id)) == 1
    assert [row.update_id for row in await intake_rows(runtime)] == ["201"]


def waiting_for_its_comment(runtime, person: Person):
    """A ballot of one item, answered, waiting for the person's comment."""
    ballot = runtime.ballots.start(
        Account("telegram", str(person.user_id)),
        runtime.clock.now(),
        round_id=1,
        target="member:1",
        target_name="某人",
        items=("作风",),
        scale=("好",),
    )
    ballot.awaiting_comment = True
    return ballot


async def test_no_ballot_tap_or_comment_reaches_the_intake_table(
    runtime, people, api, database_url
):
    zheng = people["郑强"]
    comment = "领导作风需要改进-匿名意见"
    ballot = waiting_for_its_comment(runtime, zheng)
    application = polling_app(runtime, api)
    async with application:
        await application.start()
        api.deliver(tap(zheng, 301, f"evb:{ballot.nonce}:0:0"))
        api.deliver(tap(zheng, 302, f"evn:{ballot.nonce}:skip"))
        api.deliver(tap(zheng, 303, "evt:1:member:1"))
        api.deliver(message(zheng, 304, comment))
        api.deliver(message(Person(555_000_222, "持码人"), 305, "/start rate-Abc123xyz456"))
        await poll_until_acknowledged(application, api)
        await application.updater.stop()
        await application.update_queue.join()
        await application.stop()
    rows = await intake_rows(runtime)
    assert sorted(row.update_id for row in rows) == ["301", "302", "303", "304", "305"]
    assert all(row.payload is None and row.replies is None for row in rows)
    answered = [call for call in api.calls if call.method == "answerCallbackQuery"]
    assert len(answered) == 3  # processed from memory all the same
    if database_url.startswith("sqlite"):
        # Not in the file, nor in its journal: it was never written at all.
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                written = file.read_bytes()
                assert comment.encode() not in written
                assert b"evb:" not in written and b"rate-Abc123" not in written


async def test_a_late_comment_and_an_edited_comment_never_reach_the_intake_table(
    runtime, people, api, database_url
):
    zheng, feng = people["郑强"], people["冯磊"]
    # 郑强's ballot expired at its comment: what he sends next was meant for it.
    waiting_for_its_comment(runtime, zheng)
    runtime.clock.advance(timedelta(hours=3))
    late, corrected = "迟到的匿名意见", "改过的匿名意见"
    # 冯磊 corrects a comment he sent before confirming: an edit, never taken.
    edited = message(feng, 602, corrected)
    edited["edited_message"] = {**edited.pop("message"), "edit_date": 1}
    application = polling_app(runtime, api)
    async with application:
        await application.start()
        api.deliver(message(zheng, 601, late))
        api.deliver(edited)
        await poll_until_acknowledged(application, api)
        await application.updater.stop()
        await application.update_queue.join()
        await application.stop()
    rows = await intake_rows(runtime)
    assert sorted(row.update_id for row in rows) == ["601", "602"]
    assert all(row.payload is None and row.replies is None for row in rows)
    assert "已经自动作废" in api.last(zheng.user_id).text
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                written = file.read_bytes()
                assert late.encode() not in written and corrected.encode() not in written


async def test_other_words_are_stored_until_processed(runtime, people, api):
    zheng = people["郑强"]
    application = polling_app(runtime, api)
    async with application:  # not started: stored and acknowledged, not processed yet
        api.deliver(message(zheng, 401, "/phase"))
        await poll_until_acknowledged(application, api)
        await application.updater.stop()
    [row] = await intake_rows(runtime)
    assert not row.done and '"/phase"' in row.payload


async def test_a_reply_kept_from_leaving_by_a_crash_is_sent_after_the_restart_once(
    runtime, people, api
):
    zheng = people["郑强"]
    # The button's work commits; the process dies answering the button, before its reply.
    api.drop_process(method="answerCallbackQuery")
    application = polling_app(runtime, api)
    async with application:
        await application.start()
        api.deliver(tap(zheng, 501, "lang:en"))
        await poll_until_acknowledged(application, api)
        await application.updater.stop()
        await application.update_queue.join()
        await application.stop()
    assert api.dropped and not api.sent(zheng.user_id)

    api.restart()
    restarted = polling_app(runtime, api)
    async with restarted:
        assert await restarted.update_queue.recover(restarted.bot_data["channel"]) == (1, 0)
    [reply] = api.sent(zheng.user_id)
    assert "English" in reply.text  # the language was set once, and said so once
    [row] = await intake_rows(runtime)
    assert row.done and row.replies is None
    again = polling_app(runtime, api)
    async with again:
        assert await again.update_queue.recover(again.bot_data["channel"]) == (0, 0)


async def test_old_processed_updates_are_forgotten_the_waiting_never(database):
    async with database.session() as session:
        for number in range(1, 7):
            await intake.accept(session, channel="wecom", update_id=str(number), payload="{}")
        for number in (1, 3, 4, 5, 6):
            await intake.finish(session, channel="wecom", update_id=str(number))
        await intake.mark_done(session, channel="wecom", update_id="4", replies="[]")
        assert await intake.forget_old(session, channel="wecom", keep=2) == 2
        left = (await session.exec(select(IntakeUpdate.update_id))).all()
        # 2 still waits, 4 still has replies to send; 5 and 6 are the newest.
        assert sorted(left) == ["2", "4", "5", "6"]
        assert not await intake.accept(session, channel="wecom", update_id="6", payload="{}")


async def test_replies_a_previous_version_stored_are_sent_after_the_upgrade(runtime, people, api):
    zheng = people["郑强"]
    # Stored before the channel contract: chat_id, an inline keyboard's markup, edit an int.
    button = {"text": "English", "callback_data": "lang:en"}
    stored = [
        {"chat_id": zheng.user_id, "text": "第一条", "markup": None, "edit": None},
        {
            "chat_id": zheng.user_id,
            "text": "第二条",
            "markup": {"inline_keyboard": [[button]]},
            "edit": None,
        },
    ]
    async with runtime.db.session() as session:
        await intake.accept(session, channel=CHANNEL, update_id="701", payload="{}")
        await intake.mark_done(
            session, channel=CHANNEL, update_id="701", replies=json.dumps(stored)
        )
    restarted = polling_app(runtime, api)
    async with restarted:
        assert await restarted.update_queue.recover(restarted.bot_data["channel"]) == (1, 0)
    first, second = api.sent(zheng.user_id)
    assert first.text == "第一条" and second.text == "第二条"
    assert second.buttons == [button]
    [row] = await intake_rows(runtime)
    assert row.replies is None


@pytest.mark.parametrize(
    "typed",
    [
        "/START rate-Abc123xyz456",  # a command's name in any case is the command
        "/start\u00a0rate-Abc123xyz456",  # any space between: the arguments are its words
        "/start \u200brate-Abc123xyz456",  # invisible at the edge: normalised away at the door
        "/start \u200b rate-Abc123xyz456",  # an invisible word: no argument at all
    ],
)
async def test_an_evaluation_code_typed_by_hand_never_reaches_the_intake_table(runtime, api, typed):
    holder = Person(555_000_333, "持码人")
    application = polling_app(runtime, api)
    async with application:  # not started: stored (or not) and acknowledged, not processed
        update = message(holder, 801, typed)
        update["message"]["entities"][0]["length"] = len("/start")
        api.deliver(update)
        await poll_until_acknowledged(application, api)
        await application.updater.stop()
    [row] = await intake_rows(runtime)
    assert row.payload is None
