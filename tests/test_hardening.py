"""Hardening (issue 16): secrets at rest, refusals that hold for every role and process, and
hostile files and text."""

import asyncio
import csv
import io
import re
import zipfile
from datetime import timedelta

import pytest
from docx import Document
from sqlalchemy import text, update
from sqlmodel import select

from bot.__main__ import main
from bot.channels.local.chat import Person
from bot.cli import demo
from bot.core import deed_documents, onboarding, roster, tokens
from bot.core.access import Account
from bot.runtime import Runtime
from storage.db import Database
from storage.models import Invite, Member, Nomination, Selection
from tests.conftest import import_roster
from tests.test_commendation import (
    DEEDS,
    WINDOW,
    docx_of,
    grade_all,
    nominate,
    nominations,
    open_selection,
)
from tests.test_reviews import toast

BRANCHES = [["支部", "机关支部"], ["机关党支部", "是"]]


@pytest.fixture
async def selection(runtime, people) -> Selection:
    """Graded by 王志刚 and 李建国, and by the organiser 周敏 herself."""
    return await open_selection(runtime, graders=["王志刚", "李建国", "周敏"])


FORMULA = '=HYPERLINK("http://evil.example/x","点我")'


async def test_the_invites_csv_never_carries_a_formula(
    runtime, tmp_path, monkeypatch, database_url
):
    people = [["编号", "姓名", "支部"], ["1", FORMULA, "机关党支部"], ["2", "-2+3", "机关党支部"]]
    assert (await import_roster(runtime, people, BRANCHES)).ok
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "branch_bot")
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["invites", "--csv", "links.csv"]) == 0
    with (tmp_path / "links.csv").open(encoding="utf-8-sig") as file:
        names = sorted(row[1] for row in list(csv.reader(file))[1:])
    assert names == ["'-2+3", "'" + FORMULA]


def bomb_docx(unpacked: int) -> bytes:
    """A real .docx whose text unpacks to `unpacked` bytes, yet compresses to a few KiB."""
    source = zipfile.ZipFile(io.BytesIO(docx_of("x")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in source.infolist():
            content = source.read(part)
            if part.filename == "word/document.xml":
                content = content.replace(b">x<", b">" + b"a" * unpacked + b"<")
            archive.writestr(part, content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


async def test_a_docx_bomb_is_refused_before_it_is_parsed(runtime, chat, api, people, selection):
    zhang = people["张明"]
    bomb = bomb_docx(deed_documents.UNPACKED_LIMIT)
    assert len(bomb) < 64 * 1024
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", ("事迹.docx", bomb))
    assert "展开后内容过大" in api.last(zhang.user_id).text
    assert await nominations(runtime) == []
    # Still waiting for the material, and a real document is taken.
    await chat.send_document(zhang, "事迹.docx", docx_of(DEEDS))
    assert [n.material for n in await nominations(runtime)] == [DEEDS]


async def test_control_characters_never_block_publication(
    runtime, chat, api, app, people, selection, clock
):
    zhang, organiser = people["张明"], people["周敏"]
    material = DEEDS + "\x00\x1a"
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", ("事迹.txt", material.encode()))
    (nomination,) = await nominations(runtime)
    assert nomination.material == DEEDS
    # A material stored before input was cleaned does not block the compiled document either.
    async with runtime.db.session() as session:
        stored = await session.get(Nomination, nomination.id)
        stored.material = DEEDS + "\x0b"
    clock.advance(WINDOW + timedelta(minutes=1))
    for grader in ("王志刚", "李建国", "周敏"):
        await grade_all(chat, people[grader], ["一等奖"])
    await chat.send(organiser, "/commendation")
    assert await chat.tap(organiser, "确定名单")
    assert await chat.tap(organiser, "公布")
    async with runtime.db.session() as session:
        assert (await session.get(Selection, selection.id)).stage == "published"
    (document,) = [c for c in api.sent(organiser.user_id) if c.method == "sendDocument"]
    compiled = Document(io.BytesIO(document.params["document"]["content"]))
    assert DEEDS in [p.text for p in compiled.paragraphs]


async def test_an_organiser_who_grades_sees_no_proposal_before_submitting(
    runtime, chat, api, people, selection, clock
):
    organiser = people["周敏"]
    await nominate(chat, people["张明"], "推荐：优秀共产党员", "郑强", DEEDS)
    clock.advance(WINDOW + timedelta(minutes=1))
    await grade_all(chat, people["王志刚"], ["一等奖"])
    # Neither the tally nor the list, by button or by a forged press, before her own.
    await chat.send(organiser, "/commendation")
    labels = [b["text"] for b in chat.last_with_buttons(organiser).buttons]
    assert labels == ["开始评定"]
    for data in (f"cmt:{selection.id}", f"cmf:{selection.id}", f"cmf:{selection.id}:anyway"):
        await chat.press(organiser, data)
        answer = api.last(organiser.user_id).text
        assert "请先提交自己的评定意见" in answer and "王志刚" not in answer
    async with runtime.db.session() as session:
        assert (await session.get(Selection, selection.id)).confirmed_at is None
    await grade_all(chat, organiser, ["二等奖"])
    assert "王志刚 一等奖" in api.last(organiser.user_id).text
    # Confirming with a grader missing names him first; she may go ahead without him.
    await chat.send(organiser, "/commendation")
    assert await chat.tap(organiser, "确定名单")
    assert "李建国" in api.last(organiser.user_id).text
    async with runtime.db.session() as session:
        assert (await session.get(Selection, selection.id)).confirmed_at is None
    assert await chat.tap(organiser, "仍然确定名单")
    assert "一等奖：郑强" in api.last(organiser.user_id).text
    # A second 公布 says it is already published.
    assert await chat.tap(organiser, "公布")
    await chat.press(organiser, f"cmp:{selection.id}")
    answer = api.last(organiser.user_id).text
    assert "已经公布" in answer and "名单确定后才能公布" not in answer


async def test_buttons_pressed_in_a_group_answer_only_privately(chat, api, people, selection):
    organiser, zheng = people["周敏"], people["郑强"]
    group = {"id": -100_123, "type": "supergroup", "title": "支部群"}
    presses = [
        (zheng, "evr:own"),  # results
        (zheng, "remind:all"),
        (organiser, "dg:export"),  # the organisation's workbook
        (organiser, "eva:open"),  # an organiser's view
        (organiser, f"cmt:{selection.id}"),  # the graders' tally
        (organiser, "pledge:delete:1"),  # a button no handler knows
    ]
    for person, data in presses:
        await chat.press(person, data, in_chat=group)
        assert "私聊" in toast(api), data
    assert not api.sent(group["id"])
    assert not api.sent(zheng.user_id) and not api.sent(organiser.user_id)
    # The same press in the private chat still works.
    await chat.press(zheng, "evr:own")
    assert api.sent(zheng.user_id)


async def test_invite_tokens_are_kept_only_as_digests(chat, api, runtime, people):
    zhang = people["张明"]
    await chat.send(zhang, "/invites 郑强")
    token = re.search(r"start=(m[\w-]+)", api.last(zhang.user_id).text).group(1)
    async with runtime.db.session() as session:
        rows = (await session.exec(select(Invite))).all()
    stored = [value for row in rows for value in row.model_dump().values()]
    assert token not in stored and tokens.digest(token) in stored
    # Whatever the database holds binds no account; the link itself still does.
    thief = Person(666, "Thief")
    for value in stored:
        if isinstance(value, str):
            await chat.send(thief, f"/start {value}")
    assert not any("欢迎" in text for text in api.texts(thief.user_id))
    await chat.send(Person(77, "new phone"), f"/start {token}")
    assert "郑强同志，欢迎您" in api.last(77).text


async def test_the_migration_turns_clear_tokens_into_digests(database_url, clock):
    database = Database(database_url)
    await database.migrate("0007")
    now = clock.now()
    async with database.engine.begin() as connection:
        for statement, values in (
            ("INSERT INTO organisation (name, timezone, created_at) VALUES ('局', 'UTC', :t)", {}),
            ("INSERT INTO branch (organisation_id, name, is_organ) VALUES (1, '支部', false)", {}),
            (
                "INSERT INTO member (organisation_id, name, branch_id, category, roles, active,"
                " reminders_muted, created_at, updated_at)"
                " VALUES (1, '郑强', 1, 'ordinary', 'member', true, false, :t, :t)",
                {},
            ),
            (
                "INSERT INTO invite (member_id, token, created_at, expires_at)"
                " VALUES (1, 'mLIVE-token', :t, :later)",
                {"later": now + timedelta(days=14)},
            ),
        ):
            await connection.execute(text(statement), {"t": now, **values})
    await database.migrate()
    async with database.session() as session:
        (invite,) = (await session.exec(select(Invite))).all()
        assert invite.digest == tokens.digest("mLIVE-token")
        # A link handed out before the upgrade still works.
        result = await onboarding.redeem(
            session, token="mLIVE-token", account=Account("telegram", "42"), now=now
        )
        assert result.outcome == onboarding.Redemption.BOUND
    await database.dispose()


async def test_a_removal_from_another_process_holds_on_the_next_update(
    chat, api, runtime, people, database_url
):
    zheng = people["郑强"]
    await chat.send(zheng, "/help")
    assert "/pledge" in api.last(zheng.user_id).text
    # The command line imports a roster without him, through an engine of its own.
    elsewhere = Runtime(
        settings=runtime.settings,
        db=Database(database_url),
        clock=runtime.clock,
        messages=runtime.messages,
    )
    rows = roster.read_tables(demo.DEMO_ROSTER, demo.DEMO_BRANCHES)
    people_rows = [row for row in rows[0] if "郑强" not in row]
    report = await import_roster(elsewhere, people_rows, rows[1], allow_removals=True)
    assert report.ok
    await elsewhere.db.dispose()
    await chat.send(zheng, "/help")
    assert "/pledge" not in api.last(zheng.user_id).text


async def test_a_new_role_from_another_process_holds_on_the_next_update(
    chat, api, runtime, people, database_url
):
    zheng = people["郑强"]
    await chat.send(zheng, "/invites")
    assert "没有这项权限" in api.last(zheng.user_id).text
    other = Database(database_url)
    async with other.session() as session:
        await session.exec(
            update(Member).where(Member.name == "郑强").values(roles="member secretary")
        )
    await other.dispose()
    await chat.send(zheng, "/invites")
    assert "没有这项权限" not in api.last(zheng.user_id).text


async def test_a_document_that_takes_too_long_to_read_is_refused(
    runtime, chat, api, people, selection, monkeypatch
):
    monkeypatch.setattr(deed_documents, "READ_SECONDS", 0)
    zhang = people["张明"]
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", ("事迹.docx", docx_of(DEEDS)))
    assert "读取耗时过长" in api.last(zhang.user_id).text
    assert await nominations(runtime) == []
