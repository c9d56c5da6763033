"""Binding a channel account through a personal invite: `/start <token>`, as the local
channel's deep link says it and Telegram's t.me link sends it.

Through the channel contract; Telegram keeps the per-chat command menus (setMyCommands) and
the command line's t.me links (tests without a chat)."""

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.channels.local.chat import Person
from bot.cli import demo
from bot.core import onboarding, roster
from storage.models import ChannelAccount, Invite, Member
from tests.conftest import account_ids, import_roster


@pytest.fixture
async def unbound(runtime) -> dict[str, str]:
    """The demo roster, nobody bound yet; name → a live invite token."""
    report = await import_roster(runtime, *roster.read_tables(demo.DEMO_ROSTER, demo.DEMO_BRANCHES))
    assert report.ok
    async with runtime.db.session() as session:
        issued = await onboarding.issue_invites(
            session, now=runtime.clock.now(), valid_for=timedelta(days=14)
        )
    return {invite.member.name: invite.token for invite in issued}


async def member_named(runtime, name: str) -> Member:
    async with runtime.db.session() as session:
        return (await session.exec(select(Member).where(Member.name == name))).one()


async def account_id_of(runtime, name: str, channel: str) -> int | None:
    return (await account_ids(runtime, channel)).get((await member_named(runtime, name)).id)


async def test_good_token_binds_and_greets_by_name(chat, sent, runtime, unbound, channel):
    zheng = Person(42, "Zheng", "zh-hans")
    await chat.send(zheng, f"/start {unbound['郑强']}")
    assert sent.keys(42) == ["welcome"]
    greeting = sent.last(42).text
    assert "郑强同志，欢迎您" in greeting
    assert "/help" in greeting
    member = await member_named(runtime, "郑强")
    async with runtime.db.session() as session:
        (account,) = (
            await session.exec(select(ChannelAccount).where(ChannelAccount.member_id == member.id))
        ).all()
    assert (account.channel, account.external_id) == (channel, "42")
    assert account.bound_at == runtime.clock.now()


async def test_secretary_gets_a_menu_of_their_own(chat, api, unbound):
    await chat.send(Person(43, "Zhang"), f"/start {unbound['张明']}")
    menus = [call for call in api.calls if call.method == "setMyCommands"]
    assert len(menus) == 1
    assert menus[0].params["scope"] == {"type": "chat", "chat_id": 43}
    assert "invites" in [command["command"] for command in menus[0].params["commands"]]


async def test_ordinary_member_keeps_the_default_menu(chat, api, unbound):
    await chat.send(Person(44, "Feng"), f"/start {unbound['冯磊']}")
    assert not [call for call in api.calls if call.method == "setMyCommands"]


async def test_reused_token_by_another_account_is_refused_politely(
    chat, sent, runtime, unbound, channel
):
    token = unbound["郑强"]
    await chat.send(Person(42, "Zheng"), f"/start {token}")
    await chat.send(Person(99, "Someone else"), f"/start {token}")
    answer = sent.last(99)
    assert answer.key == "invite_invalid" and "无法使用" in answer.text
    assert "郑强" not in answer.text and "示范局" not in answer.text
    assert await account_id_of(runtime, "郑强", channel) == 42


async def test_same_account_tapping_the_link_again_is_welcomed_back(chat, sent, unbound):
    token = unbound["郑强"]
    await chat.send(Person(42, "Zheng"), f"/start {token}")
    await chat.send(Person(42, "Zheng"), f"/start {token}")
    assert sent.keys(42) == ["welcome", "welcome_back"]
    assert "欢迎回来" in sent.last(42).text and "郑强" in sent.last(42).text


async def test_expired_token_is_refused(chat, sent, runtime, clock, unbound, channel):
    clock.advance(timedelta(days=14, seconds=1))
    await chat.send(Person(42, "Zheng"), f"/start {unbound['郑强']}")
    assert sent.keys(42) == ["invite_invalid"]
    assert await account_id_of(runtime, "郑强", channel) is None


async def test_stranger_learns_nothing(chat, sent, stranger, unbound):
    for text in ("/start", "/start mNOT-A-TOKEN", "/help", "hello", "/invites"):
        await chat.send(stranger, text)
    assert sent.keys(stranger) == [
        "not_member",
        "invite_invalid",
        "not_member",
        "not_member",
        "not_member",
    ]
    for answer in sent.texts(stranger):
        assert "示范局" not in answer
        assert not any(name in answer for name in unbound)


async def test_one_account_cannot_take_two_members(chat, sent, runtime, unbound, channel):
    await chat.send(Person(42, "Zheng"), f"/start {unbound['郑强']}")
    await chat.send(Person(42, "Zheng"), f"/start {unbound['冯磊']}")
    assert sent.last(42).key == "invite_account_taken"
    assert "已经绑定为“郑强”" in sent.last(42).text
    assert await account_id_of(runtime, "冯磊", channel) is None


async def test_reissued_invite_replaces_the_old_one(chat, sent, runtime, unbound):
    old = unbound["郑强"]
    async with runtime.db.session() as session:
        renewed = await onboarding.issue_invites(
            session, now=runtime.clock.now(), valid_for=timedelta(days=14), member_name="郑强"
        )
    assert len(renewed) == 1 and renewed[0].token != old
    await chat.send(Person(42, "Zheng"), f"/start {old}")
    assert sent.last(42).key == "invite_invalid"
    await chat.send(Person(42, "Zheng"), f"/start {renewed[0].token}")
    assert sent.last(42).key == "welcome" and "郑强同志，欢迎您" in sent.last(42).text


async def test_a_renewed_link_moves_a_member_to_a_new_phone(chat, sent, runtime, unbound, channel):
    await chat.send(Person(42, "old phone"), f"/start {unbound['郑强']}")
    async with runtime.db.session() as session:
        (renewed,) = await onboarding.issue_invites(
            session, now=runtime.clock.now(), valid_for=timedelta(days=14), member_name="郑强"
        )
    await chat.send(Person(77, "new phone"), f"/start {renewed.token}")
    assert sent.keys(77) == ["welcome"]
    assert await account_id_of(runtime, "郑强", channel) == 77


async def test_invites_are_kept_until_reissued_but_never_shown_again(runtime, unbound):
    async with runtime.db.session() as session:
        again = await onboarding.issue_invites(
            session, now=runtime.clock.now(), valid_for=timedelta(days=14)
        )
        assert {i.member.name: i.token for i in again} == dict.fromkeys(unbound)
        await onboarding.issue_invites(
            session, now=runtime.clock.now(), valid_for=timedelta(days=14), reissue=True
        )
        invites = (await session.exec(select(Invite))).all()
    assert sum(invite.revoked_at is not None for invite in invites) == len(unbound)


async def test_secretary_lists_links_of_own_branch_only(chat, sent, unbound):
    await chat.send(Person(43, "Zhang"), f"/start {unbound['张明']}")
    await chat.send(Person(43, "Zhang"), "/invites")
    assert sent.last(43).key == "invites"
    listing = sent.last(43).text
    # The links were handed out already (the fixture): listed, not shown again.
    assert "郑强（市场管理党支部）" in listing and "/invites 郑强" in listing
    assert "/start " not in listing and not any(token in listing for token in unbound.values())
    assert "黄勇" not in listing  # 执法大队党支部, not his branch
    assert "张明（" not in listing  # he is bound now


async def test_invites_command_line_writes_csv_and_qr_codes(
    runtime, unbound, tmp_path, monkeypatch, capsys, database_url
):
    import asyncio
    import csv

    from bot.__main__ import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "branch_bot")
    monkeypatch.chdir(tmp_path)
    args = ["invites", "--branch", "市场管理党支部", "--csv", "links.csv", "--qr", "qr"]
    # The links given out already cannot be printed again: they are listed, not written.
    assert await asyncio.to_thread(main, args) == 0
    assert "无法再次显示" in capsys.readouterr().out
    with (tmp_path / "links.csv").open(encoding="utf-8-sig") as file:
        assert list(csv.reader(file)) == [["支部", "姓名", "链接", "有效期至"]]
    # Reissued, they are new links, written to the file and the QR codes.
    assert await asyncio.to_thread(main, [*args, "--reissue"]) == 0
    with (tmp_path / "links.csv").open(encoding="utf-8-sig") as file:
        rows = list(csv.reader(file))
    assert {row[1] for row in rows[1:]} == {"张明", "郑强", "王秀英", "冯磊", "何静", "许涛"}
    prefix = "https://t.me/branch_bot?start=m"
    assert all(row[2].startswith(prefix) and unbound[row[1]] not in row[2] for row in rows[1:])
    pngs = sorted((tmp_path / "qr").glob("*.png"))
    assert len(pngs) == 6 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "https://t.me/branch_bot?start=" in capsys.readouterr().out


async def test_invites_command_line_without_username_is_clear(
    runtime, tmp_path, monkeypatch, capsys, database_url
):
    import asyncio

    from bot.__main__ import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["invites"]) == 2
    assert "TELEGRAM_BOT_USERNAME" in capsys.readouterr().out


async def test_joining_mid_campaign_shows_where_it_stands(chat, sent, runtime, unbound):
    from tests.test_reminders import load

    await load(runtime)
    await chat.send(Person(42, "Zheng"), f"/start {unbound['郑强']}")
    assert sent.keys(42) == ["welcome", "phase"]
    welcome, stage = sent.texts(42)
    assert "郑强同志，欢迎您" in welcome
    assert "当前阶段：" in stage and "动员部署" in stage


async def renew_for_zheng(chat, unbound) -> None:
    """The secretary (account 43) renews 郑强's invite."""
    zhang = Person(43, "Zhang")
    await chat.send(zhang, f"/start {unbound['张明']}")
    await chat.send(zhang, "/invites 郑强")


async def test_a_renewed_invite_typed_as_the_channel_says_binds(
    chat, sent, runtime, unbound, channel
):
    """The local channel's deep link is the line to type: `/start <payload>`."""
    await renew_for_zheng(chat, unbound)
    renewal = sent.last(43).text
    assert sent.last(43).key == "invites" and "郑强（市场管理党支部）" in renewal
    (payload,) = set(re.findall(r"/start (m[\w-]+)", renewal))
    assert payload != unbound["郑强"]  # a new link; the old one is revoked
    await chat.send(Person(42, "Zheng"), f"/start {payload}")
    assert sent.keys(42) == ["welcome"]
    assert await account_id_of(runtime, "郑强", channel) == 42


async def test_on_telegram_a_renewed_invite_is_a_t_me_link(chat, api, runtime, unbound):
    await renew_for_zheng(chat, unbound)
    renewal = api.last(43).text
    (payload,) = set(re.findall(r"https://t\.me/cxzy_demo_bot\?start=(m[\w-]+)", renewal))
    assert "/start " not in renewal
    await chat.send(Person(42, "Zheng"), f"/start {payload}")  # what Telegram sends on opening it
    assert "郑强同志，欢迎您" in api.last(42).text
    assert await account_id_of(runtime, "郑强", "telegram") == 42
