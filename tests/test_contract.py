"""Features through the channel contract: the local chat as a channel of its own, with no
python-telegram-bot in the way; and the typed actions every channel's buttons carry."""

import typing
from dataclasses import dataclass, fields
from typing import Annotated, Literal

import pytest
from sqlmodel import select

from bot.core.actions import Action, _pattern
from bot.core.pledges import NoDeadline, PledgeStep
from storage.models import Pledge


async def test_a_pledge_is_made_through_the_contract(chat, sent, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "按时办结窗口业务")
    await chat.send(zheng, "每天提前到岗")
    assert sent.keys(zheng) == ["pledge_ask_goal", "pledge_ask_measures", "pledge_ask_due"]
    assert [payload for _label, payload in chat.last_with_buttons(zheng).buttons] == [
        NoDeadline().pack()
    ]
    assert await chat.tap(zheng, "1")
    assert sent.keys(zheng)[-1] == "pledge_saved"
    async with runtime.db.session() as session:
        (pledge,) = (await session.exec(select(Pledge))).all()
    assert pledge.due_on is None and pledge.goal == "按时办结窗口业务"
    await chat.send(zheng, "/pledges")
    assert chat.last_with_buttons(zheng).buttons[0][1] == PledgeStep(pledge.id, "open").pack()


async def test_a_forged_or_unknown_button_gets_only_a_toast(chat, sent, people, runtime):
    zheng = people["郑强"]
    for payload in ("pledge:delete:1", "nothing", "pledge:1:kept:extra", "x" * 200):
        await chat.press(zheng, payload)
    stale = runtime.messages.plain("zh_CN", "button_stale")
    assert sent.to(zheng) == [] and sent.toasts(zheng) == [stale] * 4


async def test_a_stranger_is_told_whom_to_ask(chat, sent, stranger):
    await chat.send(stranger, "/pledge")
    assert sent.keys(stranger) == ["not_member"]


async def test_an_unknown_command_and_stray_words_are_answered_politely(chat, sent, people):
    zheng = people["郑强"]
    await chat.send(zheng, "/nonsense")
    await chat.send(zheng, "你好")
    assert sent.keys(zheng) == ["not_understood", "not_understood"]


async def test_a_deep_link_is_the_channels_own(chat, sent, people):
    """On the local chat an invite is a line to type, not a t.me link."""
    zhang = people["张明"]
    await chat.send(zhang, "/invites 郑强")
    (invite,) = sent.to(zhang)
    assert "/start " in invite.text and "t.me" not in invite.text


# --- typed actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample(Action, prefix="test-sample"):
    number: int
    choice: Literal["a", "b!"]
    word: Annotated[str, r"[a-f]{2}"]
    last: Literal["more"] | None = None


def test_an_action_packs_to_the_text_it_parses_from():
    action = _Sample(12, "b!", "ab")
    assert action.pack() == "test-sample:12:b!:ab"
    assert Action.parse("test-sample:12:b!:ab") == action
    assert Action.parse("test-sample:12:b!:ab:more") == _Sample(12, "b!", "ab", "more")
    assert _Sample.parse(_Sample(1, "a", "cd", "more").pack()) == _Sample(1, "a", "cd", "more")


@pytest.mark.parametrize(
    "forged",
    [
        "test-sample:12:c:ab",  # not a choice
        "test-sample:1234567890:a:ab",  # more than nine digits
        "test-sample:-1:a:ab",
        "test-sample:1:a:zz",  # not the word's pattern
        "test-sample:1:a:ab:less",
        "test-sample:1:a",
        "test-sample:1:a:ab\n",
        "",
    ],
)
def test_a_forged_payload_parses_to_nothing(forged):
    assert Action.parse(forged) is None


def test_every_action_fits_telegrams_64_bytes_at_its_longest():
    """The widest values each field allows, packed: within the smallest channel limit."""
    for prefix, cls in Action._registry.items():
        hints = typing.get_type_hints(cls, include_extras=True)
        parts = [prefix]
        for field in fields(cls):
            pattern, _optional = _pattern(hints[field.name])
            parts.append(_longest(pattern))
        assert len(":".join(parts).encode()) <= 64, prefix


def _longest(pattern: str) -> str:
    if pattern.startswith(r"\d{1,"):
        return "9" * int(pattern.split(",")[1].rstrip("}"))
    if pattern.startswith(r"\w{1,"):
        return "w" * int(pattern.split(",")[1].rstrip("}"))
    if "{" in pattern and pattern.endswith("}"):
        return "x" * int(pattern.rsplit(",", 1)[-1].rsplit("{", 1)[-1].rstrip("}"))
    return max(pattern.replace("\\", "").split("|"), key=len)
