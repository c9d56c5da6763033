"""The Telegram adapter's half of the contract: real update payloads (tests/payloads) become
the core's Inbound events, or nothing when they are not for the bot."""

import json
from pathlib import Path

from telegram import Bot, Update

from bot.channels.telegram.inbound import inbound_of
from bot.channels.telegram.local_api import LocalBotAPI
from bot.core.access import Account
from bot.core.contract import Kind

PAYLOADS = Path(__file__).parent / "payloads"
BOT = Bot("1000000:token", request=LocalBotAPI())


def update(name: str, **changes) -> Update:
    payload = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    for path, value in changes.items():
        node = payload
        *parents, last = path.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return Update.de_json(payload, BOT)


def test_a_private_command_names_the_command_and_the_account():
    inbound = inbound_of(update("message_private_command"), "cxzy_bot")
    assert (inbound.kind, inbound.command, inbound.args) == (Kind.COMMAND, "start", ())
    assert inbound.account == Account("telegram", "714862471")
    assert (inbound.chat, inbound.private, inbound.language) == ("714862471", True, "en")


def test_a_command_with_arguments_and_our_name():
    found = update(
        "message_private_command",
        message__text="/pledge@Cxzy_Bot 目标 | 措施",
        message__entities=[{"offset": 0, "length": 16, "type": "bot_command"}],
    )
    inbound = inbound_of(found, "cxzy_bot")
    assert (inbound.command, inbound.args) == ("pledge", ("目标", "|", "措施"))


def test_a_command_for_another_bot_is_not_ours():
    found = update(
        "message_private_command",
        message__text="/start@other_bot",
        message__entities=[{"offset": 0, "length": 16, "type": "bot_command"}],
    )
    assert inbound_of(found, "cxzy_bot") is None


def test_a_group_command_says_the_chat_is_not_private():
    inbound = inbound_of(update("message_group_command_mention"), "cxzy_bot")
    assert (inbound.kind, inbound.command, inbound.private) == (Kind.COMMAND, "test", False)
    assert (inbound.chat, inbound.chat_title) == ("-218487457", "TestSendCoin")


def test_a_pressed_button_carries_its_payload_and_the_handle_to_answer_it():
    found = update("callback_query_private")
    inbound = inbound_of(found, "cxzy_bot")
    assert inbound.kind is Kind.ACTION
    assert inbound.action == found.callback_query.data
    assert inbound.answer_token == "1874464818486990916"
    assert inbound.pressed_message == "1054"


def test_blocking_and_unblocking_the_bot():
    assert inbound_of(update("my_chat_member_private_blocked"), None).kind is Kind.BLOCKED
    assert inbound_of(update("my_chat_member_private_unblocked"), None).kind is Kind.JOINED


def test_an_edit_is_an_edit_and_service_messages_are_nothing():
    assert inbound_of(update("edited_message_private"), None).kind is Kind.EDITED
    assert inbound_of(update("message_group_migrate_to_supergroup"), None) is None


def test_a_photo_and_a_sticker():
    photo = update(
        "message_private_text",
        message__text=None,
        message__photo=[
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
            {"file_id": "large", "file_unique_id": "l", "width": 900, "height": 900},
        ],
        message__caption="进展",
    )
    inbound = inbound_of(photo, None)
    assert (inbound.kind, inbound.file.file_id, inbound.file.kind) == (Kind.WORDS, "large", "photo")
    assert (inbound.caption, inbound.other) == ("进展", False)
    sticker = update(
        "message_private_text",
        message__text=None,
        message__sticker={
            "file_id": "s",
            "file_unique_id": "s",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        },
    )
    assert inbound_of(sticker, None).other is True
