"""Features through the channel contract: the local chat as a channel of its own, with no
python-telegram-bot in the way; and the typed actions every channel's buttons carry."""

import typing
from dataclasses import dataclass, fields
from typing import Annotated, Literal

import pytest
from sqlmodel import select

import handlers
from bot.channels.local import CHANNEL
from bot.channels.local.chat import LocalChat, Person
from bot.cli import demo
from bot.core.actions import Action, _pattern
from bot.core.pledges import NoDeadline, PledgeStep
from storage.models import Pledge


@pytest.fixture
def local(runtime, clock) -> LocalChat:
    return LocalChat(runtime, handlers.routes(), clock)


@pytest.fixture
async def people(runtime) -> dict[str, Person]:
    """The demo organisation, everyone bound on the local chat; by name."""
    await demo.seed(runtime, channel=CHANNEL)
    return {person.name: person for person in await demo.demo_people(runtime, channel=CHANNEL)}


def keys(local: LocalChat, person) -> list[str]:
    return [s.key for s in local.channel.sent if s.chat == str(person.user_id) and s.key]


async def test_a_pledge_is_made_through_the_contract(local, people, runtime):
    zheng = people["郑强"]
    await local.send(zheng, "/pledge")
    await local.send(zheng, "按时办结窗口业务")
    await local.send(zheng, "每天提前到岗")
    assert keys(local, zheng) == ["pledge_ask_goal", "pledge_ask_measures", "pledge_ask_due"]
    assert [payload for _label, payload in local.last_with_buttons(zheng).buttons] == [
        NoDeadline().pack()
    ]
    assert await local.tap(zheng, "1")
    assert keys(local, zheng)[-1] == "pledge_saved"
    async with runtime.db.session() as session:
        (pledge,) = (await session.exec(select(Pledge))).all()
    assert pledge.due_on is None and pledge.goal == "按时办结窗口业务"
    await local.send(zheng, "/pledges")
    assert local.last_with_buttons(zheng).buttons[0][1] == PledgeStep(pledge.id, "open").pack()


async def test_a_forged_or_unknown_button_gets_only_a_toast(local, people, runtime):
    zheng = people["郑强"]
    for payload in ("pledge:delete:1", "nothing", "pledge:1:kept:extra", "x" * 200):
        await local.press(zheng, payload)
    sent = [s for s in local.channel.sent if s.chat == str(zheng.user_id)]
    stale = runtime.messages.plain("zh_CN", "button_stale")
    assert [(s.kind, s.text) for s in sent] == [("toast", stale)] * 4


async def test_a_stranger_is_told_whom_to_ask(local, stranger):
    await local.send(stranger, "/pledge")
    assert keys(local, stranger) == ["not_member"]


async def test_an_unknown_command_and_stray_words_are_answered_politely(local, people):
    zheng = people["郑强"]
    await local.send(zheng, "/nonsense")
    await local.send(zheng, "你好")
    assert keys(local, zheng) == ["not_understood", "not_understood"]


async def test_a_deep_link_is_the_channels_own(local, people):
    """On the local chat an invite is a line to type, not a t.me link."""
    zhang = people["张明"]
    await local.send(zhang, "/invites 郑强")
    (sent,) = [s for s in local.channel.sent if s.chat == str(zhang.user_id)]
    assert "/start " in sent.text and "t.me" not in sent.text


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
