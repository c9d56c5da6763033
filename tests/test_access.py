"""One access check: roles decide, callback data is untrusted, errors end in an apology."""

import logging

from sqlmodel import select

from bot.channels.local.chat import Person
from bot.channels.telegram.local_chat import telegram_user
from storage.models import Member
from tests.conftest import STICKER, import_roster


async def test_member_cannot_run_a_secretary_command(chat, api, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/invites")
    answer = api.last(zheng.user_id).text
    assert "没有这项权限" in answer
    assert "https://t.me/" not in answer


async def test_help_lists_what_each_role_can_do(chat, api, people):
    await chat.send(people["郑强"], "/help")
    await chat.send(people["张明"], "/help")
    assert "/invites" not in api.last(people["郑强"].user_id).text
    assert "/invites" in api.last(people["张明"].user_id).text


async def test_forged_language_is_refused_and_nothing_changes(chat, api, runtime, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/lang")
    await chat.press(zheng, "lang:xx")
    assert "暂时只支持" in api.last(zheng.user_id).text
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "郑强"))).one()
    assert member.locale is None


async def test_unknown_callback_data_gets_a_stale_button_notice(chat, api, people):
    zheng = people["郑强"]
    await chat.press(zheng, "pledge:delete:1")
    answer = [call for call in api.calls if call.method == "answerCallbackQuery"][-1]
    assert "失效" in answer.params["text"]
    assert not api.sent(zheng.user_id)


async def test_stranger_pressing_a_button_is_refused(chat, api, stranger, people):
    await chat.press(stranger, "lang:en")
    answer = [call for call in api.calls if call.method == "answerCallbackQuery"][-1]
    assert "不适用" in answer.params["text"]
    assert not api.sent(stranger.user_id)  # the notice on the button is the whole answer


async def test_language_button_switches_and_later_replies_follow(chat, api, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/lang")
    assert await chat.tap(zheng, "English")
    assert api.last(zheng.user_id).method == "editMessageText"
    await chat.send(zheng, "/help")
    assert "Here is what you can do" in api.last(zheng.user_id).text


async def test_telegram_language_is_used_until_a_member_chooses(chat, api, people):
    english_app_user = Person(people["郑强"].user_id, "Zheng", language_code="en")
    await chat.send(english_app_user, "/help")
    assert "Here is what you can do" in api.last(english_app_user.user_id).text


async def test_wrong_message_types_get_a_polite_prompt(chat, api, people):
    zheng = people["郑强"]
    await chat.send_payload(zheng, **STICKER)
    await chat.send_payload(
        zheng, photo=[{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]
    )
    assert api.texts(zheng.user_id) == [api.texts(zheng.user_id)[0]] * 2
    assert "没有理解" in api.texts(zheng.user_id)[0]


async def test_cancel_outside_a_conversation(chat, api, people):
    await chat.send(people["郑强"], "/cancel")
    assert "无需取消" in api.last(people["郑强"].user_id).text


async def test_telegram_error_is_logged_with_context_and_apologised_for(chat, api, people, caplog):
    zheng = people["郑强"]
    api.fail(method="sendMessage", chat_id=zheng.user_id, status=500)
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        await chat.send(zheng, "/help")
    assert "抱歉，处理您的消息时出了点问题" in api.last(zheng.user_id).text
    assert "Traceback" not in api.last(zheng.user_id).text
    record = caplog.records[-1]
    assert "(message) in chat" in record.getMessage() and record.exc_info is not None


async def test_timeout_is_logged_and_apologised_for(chat, api, people, caplog):
    zheng = people["郑强"]
    api.fail(method="sendMessage", chat_id=zheng.user_id, status=0)
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        await chat.send(zheng, "/help")
    assert "出了点问题" in api.last(zheng.user_id).text


async def test_group_chats_are_not_answered_with_member_data(chat, api, people):
    zheng = people["郑强"]
    await chat.feed(
        {
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": -100123, "type": "supergroup", "title": "支部群"},
                "from": telegram_user(zheng),
                "text": "/invites",
                "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
            }
        }
    )
    assert not api.sent(-100123)


async def test_a_double_tap_on_the_same_choice_is_quiet(chat, api, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/reminders")
    assert await chat.tap(zheng, "只接收我自己的截止提醒")
    assert await chat.tap(zheng, "只接收我自己的截止提醒")  # Telegram: "message is not modified"
    assert not any("出了点问题" in text for text in api.texts(zheng.user_id))
    assert len([c for c in api.calls if c.method == "answerCallbackQuery"]) == 2


async def test_the_local_bot_api_refuses_what_telegram_refuses(app):
    import pytest
    from telegram.error import BadRequest

    for text in ("", "<b>unclosed", "<script>x</script>", "字" * 4097):
        with pytest.raises(BadRequest):
            await app.bot.send_message(1, text, parse_mode="HTML")


async def test_an_organiser_renewing_a_shared_name_is_asked_which_branch(
    chat, api, people, runtime
):
    from bot.core import roster

    # Give 市场管理党支部 its own 孙伟 too.
    people_table, branch_table = roster.read_tables(demo_files()[0], demo_files()[1])
    rows = [*people_table, ["D99", "孙伟", "市场管理党支部", "", "普通党员", ""]]
    report = await import_roster(runtime, rows, branch_table)
    assert report.ok
    organiser = people["周敏"]
    await chat.send(organiser, "/invites 孙伟")
    assert "有几位同志都叫“孙伟”" in api.last(organiser.user_id).text
    await chat.send(organiser, "/invites 孙伟 市场管理党支部")
    answer = api.last(organiser.user_id).text
    assert "孙伟（市场管理党支部）" in answer and "机关党支部" not in answer


def demo_files():
    from bot.cli import demo

    return demo.DEMO_ROSTER, demo.DEMO_BRANCHES


async def test_an_organiser_naming_an_unknown_branch_is_told_so(chat, api, people):
    await chat.send(people["周敏"], "/invites 孙伟 不存在的支部")
    assert "没有名为“不存在的支部”的支部" in api.last(people["周敏"].user_id).text
