"""Real update payloads from Telegram (tests/payloads, see SOURCES.txt) pass through safely."""

import json
import logging
from pathlib import Path

import pytest

PAYLOADS = sorted((Path(__file__).parent / "payloads").glob("*.json"))


@pytest.mark.parametrize("path", PAYLOADS, ids=[p.stem for p in PAYLOADS])
async def test_every_real_payload_is_handled_without_error(chat, api, people, path, caplog):
    payload = json.loads(path.read_text(encoding="utf-8"))
    with caplog.at_level(logging.ERROR):
        await chat.feed(payload)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    for call in api.sent():
        assert call.chat_id is not None and call.chat_id > 0, "nothing is said in groups unasked"


async def test_a_real_stranger_command_gets_the_polite_answer(chat, api, people):
    payload = json.loads(
        (Path(__file__).parent / "payloads" / "message_private_command.json").read_text()
    )
    await chat.feed(payload)
    # Telegram said this user's app is in English.
    assert "This assistant serves the members" in api.last(714862471).text


async def test_a_real_foreign_callback_is_refused_with_a_notice(chat, api, people):
    payload = json.loads(
        (Path(__file__).parent / "payloads" / "callback_query_private.json").read_text()
    )
    await chat.feed(payload)
    toast = [call for call in api.calls if call.method == "answerCallbackQuery"][-1]
    assert toast.params["text"]
