"""Hardening (issue 16): secrets at rest, refusals that hold for every role and process, and
hostile files and text. Through the channel contract (the local channel)."""

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
from bot.core.commendation import ConfirmList, Publish, SeeTally
from bot.core.contract import Kind
from bot.core.digests import DigestAction
from bot.core.evaluation import RoundControl
from bot.core.evaluation_results import ShowResults
from bot.core.preferences import ReminderChoice
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
from tests.test_pledges import feed, labels
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


async def test_a_docx_bomb_is_refused_before_it_is_parsed(runtime, chat, sent, people, selection):
    zhang = people["张明"]
    bomb = bomb_docx(deed_documents.UNPACKED_LIMIT)
    assert len(bomb) < 64 * 1024
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", ("事迹.docx", bomb))
    assert sent.last(zhang).key == "commendation_material_too_large"
    assert "“事迹.docx”展开后内容过大" in sent.last(zhang).text
    assert await nominations(runtime) == []
    # Still waiting for the material, and a real document is taken.
    await chat.send_document(zhang, "事迹.docx", docx_of(DEEDS))
    assert [n.material for n in await nominations(runtime)] == [DEEDS]


async def test_control_characters_never_block_publication(
    runtime, chat, sent, people, selection, clock
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
    (document,) = [item for item in sent.to(organiser) if item.kind == "file"]
    compiled = Document(io.BytesIO(document.content))
    assert DEEDS in [p.text for p in compiled.paragraphs]


async def test_an_organiser_who_grades_sees_no_proposal_before_submitting(
    runtime, chat, sent, people, selection, clock
):
    organiser = people["周敏"]
    await nominate(chat, people["张明"], "推荐：优秀共产党员", "郑强", DEEDS)
    clock.advance(WINDOW + timedelta(minutes=1))
    await grade_all(chat, people["王志刚"], ["一等奖"])
    # Neither the tally nor the list, by button or by a forged press, before her own.
    await chat.send(organiser, "/commendation")
    assert labels(chat.last_with_buttons(organiser)) == ["开始评定"]
    forged = (
        SeeTally(selection.id),
        ConfirmList(selection.id),
        ConfirmList(selection.id, "anyway"),
    )
    for action in forged:
        await chat.press(organiser, action.pack())
        answer = sent.last(organiser)
        assert "请先提交自己的评定意见" in answer.text and "王志刚" not in answer.text
    async with runtime.db.session() as session:
        assert (await session.get(Selection, selection.id)).confirmed_at is None
    await grade_all(chat, organiser, ["二等奖"])
    assert "王志刚 一等奖" in sent.last(organiser).text
    # Confirming with a grader missing names him first; she may go ahead without him.
    await chat.send(organiser, "/commendation")
    assert await chat.tap(organiser, "确定名单")
    assert "李建国" in sent.last(organiser).text
    assert ConfirmList(selection.id, "anyway").pack() in [
        p for _l, p in sent.last(organiser).buttons
    ]
    async with runtime.db.session() as session:
        assert (await session.get(Selection, selection.id)).confirmed_at is None
    assert await chat.tap(organiser, "仍然确定名单")
    assert "一等奖：郑强" in sent.last(organiser).text
    # A second 公布 says it is already published.
    assert await chat.tap(organiser, "公布")
    await chat.press(organiser, Publish(selection.id).pack())
    answer = sent.last(organiser).text
    assert "已经公布" in answer and "名单确定后才能公布" not in answer


async def test_buttons_pressed_in_a_group_answer_only_privately(
    chat, sent, runtime, people, selection
):
    organiser, zheng = people["周敏"], people["郑强"]
    group = "-100123"
    presses = [
        (zheng, ShowResults("own").pack()),  # results
        (zheng, ReminderChoice("all").pack()),
        (organiser, DigestAction("export").pack()),  # the organisation's workbook
        (organiser, RoundControl("open").pack()),  # an organiser's view
        (organiser, SeeTally(selection.id).pack()),  # the graders' tally
        (organiser, "pledge:delete:1"),  # a button no handler knows
    ]
    for person, payload in presses:
        await feed(chat, person, Kind.ACTION, group=group, action=payload)
    assert sent.toasts(group) == [toast(runtime, "private_only")] * len(presses)
    assert not sent.to(group)
    assert not sent.to(zheng) and not sent.to(organiser)
    # The same press in the private chat still works.
    await chat.press(zheng, ShowResults("own").pack())
    assert sent.to(zheng)


async def test_invite_tokens_are_kept_only_as_digests(chat, sent, runtime, people):
    zhang = people["张明"]
    await chat.send(zhang, "/invites 郑强")
    token = re.search(r"/start (m[\w-]+)", sent.last(zhang).text).group(1)
    async with runtime.db.session() as session:
        rows = (await session.exec(select(Invite))).all()
    stored = [value for row in rows for value in row.model_dump().values()]
    assert token not in stored and tokens.digest(token) in stored
    # Whatever the database holds binds no account; the link itself still does.
    thief = Person(666, "Thief")
    for value in stored:
        if isinstance(value, str):
            await chat.send(thief, f"/start {value}")
    assert set(sent.keys(thief)) == {"invite_invalid"}
    assert not any("欢迎" in text for text in sent.texts(thief))
    await chat.send(Person(77, "new phone"), f"/start {token}")
    assert sent.keys(77) == ["welcome"] and "郑强同志，欢迎您" in sent.last(77).text


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
    chat, sent, runtime, people, database_url
):
    zheng = people["郑强"]
    await chat.send(zheng, "/help")
    assert sent.last(zheng).key == "help" and "/pledge" in sent.last(zheng).text
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
    assert sent.last(zheng).key == "not_member" and "/pledge" not in sent.last(zheng).text


async def test_a_new_role_from_another_process_holds_on_the_next_update(
    chat, sent, runtime, people, database_url
):
    zheng = people["郑强"]
    await chat.send(zheng, "/invites")
    assert sent.last(zheng).key == "not_allowed"
    other = Database(database_url)
    async with other.session() as session:
        await session.exec(
            update(Member).where(Member.name == "郑强").values(roles="member secretary")
        )
    await other.dispose()
    await chat.send(zheng, "/invites")
    assert sent.last(zheng).key == "invites"  # a secretary now: his branch is all bound


async def test_a_document_that_takes_too_long_to_read_is_refused(
    runtime, chat, sent, people, selection, monkeypatch
):
    monkeypatch.setattr(deed_documents, "READ_SECONDS", 0)
    zhang = people["张明"]
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", ("事迹.docx", docx_of(DEEDS)))
    assert sent.last(zhang).key == "commendation_material_too_large"
    assert "读取耗时过长" in sent.last(zhang).text
    assert await nominations(runtime) == []
