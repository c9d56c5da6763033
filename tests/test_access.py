"""One access check: roles decide, button payloads are untrusted, errors end in an apology.

Through the channel contract; on Telegram stay the adapter's own cases: Bot API errors and
timeouts, an unchanged edit ("message is not modified"), and what the Bot API refuses."""

import logging

from sqlmodel import select

from bot.channels.local.chat import Person
from bot.core.contract import FileRef, Kind
from bot.core.preferences import LanguageChoice, ReminderChoice
from storage.models import Member
from tests.conftest import import_roster
from tests.test_pledges import feed, payloads
from tests.test_reviews import toast


async def test_member_cannot_run_a_secretary_command(chat, sent, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/invites")
    assert sent.keys(zheng) == ["not_allowed"]
    answer = sent.last(zheng).text
    assert "没有这项权限" in answer
    assert "/start " not in answer  # no invite link


async def test_help_lists_what_each_role_can_do(chat, sent, people):
    await chat.send(people["郑强"], "/help")
    await chat.send(people["张明"], "/help")
    assert sent.keys(people["郑强"]) == sent.keys(people["张明"]) == ["help"]
    assert "/invites" not in sent.last(people["郑强"]).text
    assert "/invites" in sent.last(people["张明"]).text


async def test_forged_language_is_refused_and_nothing_changes(chat, sent, runtime, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/lang")
    assert LanguageChoice("en").pack() in payloads(sent.last(zheng))
    await chat.press(zheng, LanguageChoice("xx").pack())
    assert sent.last(zheng).key == "language_unknown" and "暂时只支持" in sent.last(zheng).text
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "郑强"))).one()
    assert member.locale is None


async def test_unknown_callback_data_gets_a_stale_button_notice(chat, sent, runtime, people):
    zheng = people["郑强"]
    await chat.press(zheng, "pledge:delete:1")
    assert sent.toasts(zheng) == [toast(runtime, "button_stale")]
    assert not sent.to(zheng)


async def test_stranger_pressing_a_button_is_refused(chat, sent, runtime, stranger, people):
    await chat.press(stranger, LanguageChoice("en").pack())
    assert sent.toasts(stranger) == [toast(runtime, "button_refused")]
    assert not sent.to(stranger)  # the notice on the button is the whole answer


async def test_language_button_switches_and_later_replies_follow(chat, sent, runtime, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/lang")
    assert await chat.tap(zheng, "English")
    assert sent.last(zheng).kind == "edit" and sent.last(zheng).key == "language_set"
    await chat.send(zheng, "/help")
    assert sent.last(zheng).key == "help"
    assert "Here is what you can do" in sent.last(zheng).text
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "郑强"))).one()
    assert member.locale == "en"


async def test_the_apps_language_is_used_until_a_member_chooses(chat, sent, people):
    english_app_user = Person(people["郑强"].user_id, "Zheng", language_code="en")
    await chat.send(english_app_user, "/help")
    assert sent.last(english_app_user).key == "help"
    assert "Here is what you can do" in sent.last(english_app_user).text


async def test_wrong_message_types_get_a_polite_prompt(chat, sent, people):
    zheng = people["郑强"]
    await feed(chat, zheng, other=True)  # a sticker
    await feed(chat, zheng, file=FileRef("p", "photo"))
    assert sent.keys(zheng) == ["not_understood", "not_understood"]
    assert "没有理解" in sent.texts(zheng)[0]


async def test_cancel_outside_a_conversation(chat, sent, people):
    await chat.send(people["郑强"], "/cancel")
    assert sent.keys(people["郑强"]) == ["cancel_nothing"]
    assert "无需取消" in sent.last(people["郑强"]).text


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


async def test_group_chats_are_not_answered_with_member_data(chat, sent, people):
    zheng = people["郑强"]
    await feed(chat, zheng, Kind.COMMAND, group="-100123", text="/invites", command="invites")
    await feed(chat, zheng, group="-100123", text="你好")
    assert not sent.to("-100123") and not sent.to(zheng)
    # The group is heard: the one group command, from the organiser, is answered there.
    await feed(chat, people["周敏"], Kind.COMMAND, group="-100123", text="/bind", command="bind")
    assert sent.keys("-100123") == ["commendation_bound"]


async def test_a_double_tap_on_the_same_choice_is_quiet(chat, sent, runtime, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/reminders")
    assert ReminderChoice("deadlines").pack() in payloads(sent.last(zheng))
    assert await chat.tap(zheng, "只接收我自己的截止提醒")
    assert await chat.tap(zheng, "只接收我自己的截止提醒")
    assert sent.keys(zheng) == ["reminder_settings"] * 3  # the settings, edited twice alike
    assert [item.kind for item in sent.to(zheng)] == ["message", "edit", "edit"]
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "郑强"))).one()
    assert member.reminders_muted


async def test_a_double_tap_on_telegram_is_quiet_though_the_message_is_not_modified(
    chat, api, people
):
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
    chat, sent, people, runtime
):
    from bot.core import roster

    # Give 市场管理党支部 its own 孙伟 too.
    people_table, branch_table = roster.read_tables(demo_files()[0], demo_files()[1])
    rows = [*people_table, ["D99", "孙伟", "市场管理党支部", "", "普通党员", ""]]
    report = await import_roster(runtime, rows, branch_table)
    assert report.ok
    organiser = people["周敏"]
    await chat.send(organiser, "/invites 孙伟")
    assert sent.last(organiser).key == "invites_ambiguous"
    assert "有几位同志都叫“孙伟”" in sent.last(organiser).text
    await chat.send(organiser, "/invites 孙伟 市场管理党支部")
    answer = sent.last(organiser)
    assert answer.key == "invites"
    assert "孙伟（市场管理党支部）" in answer.text and "机关党支部" not in answer.text
    assert "/start m" in answer.text  # the renewed invite, as this channel links to the bot


def demo_files():
    from bot.cli import demo

    return demo.DEMO_ROSTER, demo.DEMO_BRANCHES


async def test_an_organiser_naming_an_unknown_branch_is_told_so(chat, sent, people):
    await chat.send(people["周敏"], "/invites 孙伟 不存在的支部")
    assert sent.last(people["周敏"]).key == "invites_unknown_branch"
    assert "没有名为“不存在的支部”的支部" in sent.last(people["周敏"]).text
