"""评选表彰 through the channel contract: nominations with deed material, private grading,
the confirmed list within the quotas, publication and the compiled document. One test stays
on Telegram: a group message edited into /bind is Telegram's edited_message update."""

import asyncio
import io
from datetime import timedelta

import pytest
from docx import Document
from sqlmodel import select

from bot import delivery
from bot.__main__ import main
from bot.channels import local
from bot.channels.telegram.local_chat import telegram_user
from bot.core import commendation
from bot.core.access import Account
from bot.core.commendation import (
    ChooseCategory,
    ChooseNominee,
    ConfirmList,
    ProposePrize,
    Publish,
    SubmitGrades,
    WithdrawNomination,
    count_characters,
)
from bot.core.contract import Inbound, Kind
from storage import people as people_queries
from storage.models import BoundChat, GradeProposal, Nomination, Selection
from tests.test_reviews import ids

WINDOW = timedelta(days=7)
DEEDS = "郑强同志扎根窗口一线，全年办件三百余件，零投诉。"
GROUP, TITLE = "-100200300", "市直机关党员群"


async def open_selection(runtime, **options) -> Selection:
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        now = runtime.clock.now()
        opened = await commendation.open_selection(
            session,
            organisation_id=organisation.id,
            name="2026年度争当排头兵评选",
            opens_at=options.pop("opens_at", now),
            closes_at=options.pop("closes_at", now + WINDOW),
            per_branch=options.pop("per_branch", 1),
            prizes=options.pop("prizes", (1, 1, 1)),
            graders=options.pop("graders", ["王志刚", "李建国"]),
            now=now,
        )
    assert isinstance(opened, Selection), opened
    return opened


@pytest.fixture
async def selection(runtime, people) -> Selection:
    return await open_selection(runtime)


async def nominate(chat, person, category: str, nominee: str | None, material) -> None:
    """/commendation, the category, the nominee (for a member category), the material: text,
    or (filename, bytes) for an uploaded file."""
    await chat.send(person, "/commendation")
    assert await chat.tap(person, category), category
    if nominee is not None:
        assert await chat.tap(person, nominee), nominee
    if isinstance(material, tuple):
        await chat.send_document(person, *material)
    else:
        await chat.send(person, material)


async def in_group(chat, person, group: str, text: str, kind: Kind = Kind.COMMAND) -> None:
    """`person` writes `text` in a group chat (the local chat's own are private)."""
    word, *args = text.split()
    inbound = Inbound(
        kind,
        Account(local.CHANNEL, str(person.user_id)),
        group,
        False,
        chat_title=TITLE,
        text=text,
        command=word[1:] if word.startswith("/") else "",
        args=tuple(args),
    )
    await chat.routes.dispatch(inbound, chat.channel, chat.runtime)


async def proposals(runtime) -> dict[tuple[int, str], str]:
    """(grader, nominee) → the proposed prize."""
    async with runtime.db.session() as session:
        found = (await session.exec(select(GradeProposal, Nomination).join(Nomination))).all()
    return {(p.grader_id, n.nominee): p.prize for p, n in found}


def docx_of(text: str) -> bytes:
    document = Document()
    for paragraph in text.split("\n"):
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


async def nominations(runtime) -> list[Nomination]:
    async with runtime.db.session() as session:
        return list((await session.exec(select(Nomination).order_by(Nomination.id))).all())


async def grade_all(chat, person, prizes: list[str], submit: bool = True) -> None:
    """Grade every nominee in turn (prize labels), then submit."""
    await chat.send(person, "/commendation")
    assert await chat.tap(person, "开始评定")
    for prize in prizes:
        assert await chat.tap(person, prize), prize
    if submit:
        assert await chat.tap(person, "提交评定")


async def test_a_selection_from_opening_to_publication(
    runtime, chat, sent, people, selection, clock
):
    zhang, ma, zheng = people["张明"], people["马俊"], people["郑强"]
    who = await ids(runtime)
    # A group chat the organiser binds, for the announcement.
    await in_group(chat, people["周敏"], GROUP, "/bind")
    assert sent.keys(GROUP) == ["commendation_bound"]
    async with runtime.db.session() as session:
        (bound,) = (await session.exec(select(BoundChat))).all()
    assert (bound.chat_id, bound.title, bound.bound_by) == (int(GROUP), TITLE, who["周敏"])

    # Nominations: typed, a .docx, a .txt.
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", DEEDS)
    assert sent.last(zhang).key == "commendation_nominated"
    assert "已推荐郑强" in sent.last(zhang).text
    branch_deeds = "市场管理党支部坚持“三会一课”。\n开展“亮身份、比服务”活动。"
    await nominate(
        chat, zhang, "推荐：先进基层党组织", None, ("支部事迹.docx", docx_of(branch_deeds))
    )
    assert sent.last(zhang).key == "commendation_nominated"
    assert "已推荐市场管理党支部" in sent.last(zhang).text
    huang_deeds = "黄勇同志执法为民，文明执法，群众满意。"
    await nominate(chat, ma, "推荐：优秀共产党员", "黄勇", ("事迹.txt", huang_deeds.encode("gbk")))
    assert sent.last(ma).key == "commendation_nominated"
    found = await nominations(runtime)
    assert [(n.nominee, n.material) for n in found] == [
        (f"member:{who['郑强']}", DEEDS),
        (f"branch:{who['市场管理党支部']}", branch_deeds),
        (f"member:{who['黄勇']}", huang_deeds),
    ]
    # The nominee is told, with the material; and can read it again.
    await delivery.tick(runtime)
    (notice,) = [m for m in sent.to(zheng) if m.key == "commendation_nominated_notice"]
    assert DEEDS in notice.text and "2026年度争当排头兵评选" in notice.text
    await chat.send(zheng, "/commendation")
    assert sent.last(zheng).key == "commendation_status" and DEEDS in sent.last(zheng).text

    # Grading, after the window: the material and the record side by side.
    clock.advance(WINDOW + timedelta(minutes=1))
    wang, li = people["王志刚"], people["李建国"]
    await chat.send(wang, "/commendation")
    assert await chat.tap(wang, "开始评定")
    shown = sent.last(wang)
    assert shown.key == "commendation_grade_item"
    assert "郑强" in shown.text and DEEDS in shown.text
    assert "公开承诺" in shown.text and "群众评议满意率" in shown.text
    first = found[0]
    assert [payload for _label, payload in shown.buttons][:3] == [
        ProposePrize(first.id, prize).pack() for prize in ("first", "second", "third")
    ]
    for prize in ("一等奖", "一等奖", "二等奖"):
        assert await chat.tap(wang, prize)
    mine = sent.last(wang)
    assert mine.key == "commendation_my_proposals"
    assert "郑强 — 一等奖" in mine.text and "黄勇 — 二等奖" in mine.text
    assert await proposals(runtime) == {
        (who["王志刚"], f"member:{who['郑强']}"): "first",
        (who["王志刚"], f"branch:{who['市场管理党支部']}"): "first",
        (who["王志刚"], f"member:{who['黄勇']}"): "second",
    }
    # 李建国 grades but has not submitted: nobody sees his proposals yet, nor he others'.
    await grade_all(chat, li, ["二等奖", "一等奖", "一等奖"], submit=False)
    assert "王志刚" not in sent.last(li).text
    # He changes his mind on one before submitting.
    assert await chat.tap(li, "修改某项评定")
    assert await chat.tap(li, "黄勇")
    assert await chat.tap(li, "三等奖")
    assert sent.last(li).key == "commendation_my_proposals"
    assert "黄勇 — 三等奖" in sent.last(li).text
    assert (await proposals(runtime))[(who["李建国"], f"member:{who['黄勇']}")] == "third"
    assert await chat.tap(wang, "提交评定")
    tally = sent.last(wang)
    assert tally.key == "commendation_tally"
    assert "王志刚 一等奖" in tally.text and "李建国" not in tally.text
    assert await chat.tap(li, "提交评定")
    tally = sent.last(li).text
    assert "王志刚 一等奖" in tally and "李建国 二等奖" in tally and "李建国 三等奖" in tally

    # The organiser confirms: per category, best average first, within the quotas.
    organiser = people["周敏"]
    await chat.send(organiser, "/commendation")
    assert await chat.tap(organiser, "确定名单")
    confirmed = sent.last(organiser)
    assert confirmed.key == "commendation_confirmed"
    assert "一等奖：郑强" in confirmed.text and "二等奖：黄勇" in confirmed.text
    assert "一等奖：市场管理党支部" in confirmed.text
    assert Publish(selection.id).pack() in [payload for _l, payload in confirmed.buttons]
    async with runtime.db.session() as session:
        prizes = {n.nominee: n.prize for n in (await session.exec(select(Nomination))).all()}
    assert prizes == {
        f"member:{who['郑强']}": "first",
        f"member:{who['黄勇']}": "second",
        f"branch:{who['市场管理党支部']}": "first",
    }
    # Announced to every member (the outbox) and the bound group; the document to the organiser.
    assert await chat.tap(organiser, "公布")
    assert "commendation_published_now" in sent.keys(organiser)
    (document,) = [m for m in sent.to(organiser) if m.kind == "file"]
    assert document.file_name == "2026年度争当排头兵评选.docx"
    compiled = Document(io.BytesIO(document.content))
    texts = [p.text for p in compiled.paragraphs]
    assert texts[0] == "2026年度争当排头兵评选先进事迹汇编"
    order = [
        texts.index(t)
        for t in ("优秀共产党员 · 一等奖", "郑强", DEEDS, "优秀共产党员 · 二等奖", "黄勇")
    ]
    assert order == sorted(order)
    assert "先进基层党组织 · 一等奖" in texts and "开展“亮身份、比服务”活动。" in texts
    # (The group's announcement is sent without its template's key: words only.)
    announcement = sent.last(GROUP).text
    assert "2026年度争当排头兵评选结果" in announcement and "评选评选" not in announcement
    assert "郑强" in announcement and "黄勇" in announcement
    await delivery.tick(runtime)
    for person in (zheng, people["王秀英"], people["谢婷"]):
        assert sent.keys(person).count("commendation_announcement") == 1
    # Double taps: nothing is published twice.
    await chat.press(organiser, Publish(selection.id).pack())
    await delivery.tick(runtime)
    assert sent.keys(zheng).count("commendation_announcement") == 1
    assert sum("评选结果" in text for text in sent.texts(GROUP)) == 1


async def test_quotas_and_replacing_material(runtime, chat, sent, people, selection):
    zhang = people["张明"]
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", DEEDS)
    await nominate(chat, zhang, "推荐：优秀共产党员", "冯磊", "冯磊同志帮扶经营户。")
    assert sent.last(zhang).key == "commendation_refused"
    assert "名额已经用完" in sent.last(zhang).text
    # The same nominee again: the material is replaced, not a second nomination.
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", "新的事迹材料。")
    assert sent.last(zhang).key == "commendation_nominated"
    assert "已更新郑强的事迹材料" in sent.last(zhang).text
    found = await nominations(runtime)
    assert [n.material for n in found] == ["新的事迹材料。"]
    # Withdrawn, the place is free again.
    await chat.send(zhang, "/commendation")
    labels = {label: payload for label, payload in chat.last_with_buttons(zhang).buttons}
    assert labels["撤回推荐：郑强"] == WithdrawNomination(found[0].id).pack()
    assert await chat.tap(zhang, "撤回推荐：郑强")
    assert await nominations(runtime) == []
    await nominate(chat, zhang, "推荐：优秀共产党员", "冯磊", "冯磊同志帮扶经营户。")
    assert [n.material for n in await nominations(runtime)] == ["冯磊同志帮扶经营户。"]


def test_characters_are_counted_as_the_seed_counts():
    # Chinese characters and punctuation one each; a Latin word or a number one; spaces none.
    assert count_characters("我爱 Python3 编程，hello world!") == 9
    assert count_characters("2026年，共办件 315 件。") == 9
    assert count_characters("“三会一课”\n\n") == 6
    assert count_characters("   ") == 0


async def test_material_over_1500_characters_is_refused_with_its_count(
    runtime, chat, sent, people, selection
):
    zhang = people["张明"]
    long = "为民服务，" * 300 + "好"  # 1,501
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", long)
    assert sent.last(zhang).key == "commendation_refused"
    assert "共 1501 字，超过了 1500 字" in sent.last(zhang).text
    assert await nominations(runtime) == []
    # Still waiting for the material: a shorter one (mixed text, 1,500 exactly) is taken.
    exact = "为民服务，" * 299 + "Party members serve"  # 1,495 + 3 words … + "，好" below
    await chat.send(zhang, exact + "，好")
    assert count_characters(exact + "，好") == 1500
    assert sent.last(zhang).key == "commendation_nominated"
    assert "已推荐郑强（1500 字" in sent.last(zhang).text
    # A file that is not a document is refused, and nothing is lost.
    await nominate(chat, zhang, "推荐：先进基层党组织", None, ("照片.jpg", b"\xff\xd8\xff"))
    assert sent.last(zhang).key == "commendation_material_unreadable"
    assert "照片.jpg" in sent.last(zhang).text
    assert len(await nominations(runtime)) == 1


async def test_refusals_say_why(runtime, chat, sent, people, clock):
    zhang, zheng, ma = people["张明"], people["郑强"], people["马俊"]
    who = await ids(runtime)
    later = await open_selection(
        runtime, opens_at=clock.now() + timedelta(days=1), closes_at=clock.now() + WINDOW
    )
    # Before the window: no nomination buttons, and a forged press is refused.
    await chat.send(zhang, "/commendation")
    assert not any(
        payload.startswith(ChooseCategory.prefix)
        for _label, payload in (chat.last_with_buttons(zhang) or sent.last(zhang)).buttons
    )
    await chat.press(zhang, ChooseCategory(later.id, "member").pack())
    assert sent.last(zhang).key == "commendation_refused"
    assert "不在推荐时间内" in sent.last(zhang).text
    clock.advance(timedelta(days=1, minutes=1))
    # Someone who is not a secretary.
    await chat.press(zheng, ChooseCategory(later.id, "member").pack())
    assert sent.last(zheng).key == "commendation_refused"
    assert "由支部书记负责" in sent.last(zheng).text
    # Someone outside the branch, by a forged button.
    await chat.press(zhang, ChooseNominee(later.id, "member", who["黄勇"]).pack())
    assert sent.last(zhang).key == "commendation_refused"
    assert "只能推荐本支部" in sent.last(zhang).text
    await chat.send(zhang, "事迹")  # and no material is asked for: nothing is taken
    assert await nominations(runtime) == []
    await nominate(chat, ma, "推荐：优秀共产党员", "黄勇", "黄勇同志文明执法。")
    # After the window: no more nominations; grading by someone not in the leading group.
    clock.advance(WINDOW)
    await chat.press(zhang, ChooseCategory(later.id, "member").pack())
    assert "不在推荐时间内" in sent.last(zhang).text
    (huang,) = await nominations(runtime)
    before = len(sent.to(zheng))
    await chat.press(zheng, ProposePrize(huang.id, "first").pack())
    assert "不在名单中" in sent.toasts(zheng)[-1] and len(sent.to(zheng)) == before
    assert await proposals(runtime) == {}
    # A grader who has not graded everyone cannot submit; the organiser only confirms.
    wang = people["王志刚"]
    await chat.press(wang, SubmitGrades(later.id).pack())
    assert sent.last(wang).key == "commendation_refused"
    assert "还有被推荐对象没有评定" in sent.last(wang).text
    await chat.press(zheng, ConfirmList(later.id).pack())
    assert "不适用于您的账号" in sent.toasts(zheng)[-1] and len(sent.to(zheng)) == before


async def test_the_command_line_opens_a_selection_and_compiles_it(
    runtime, people, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    arguments = [
        "commendation",
        "open",
        "--name",
        "2027年度评选",
        "--closes",
        "2099-06-30",
        "--graders",
        "王志刚，李建国",
        "--per-branch",
        "2",
    ]
    assert await asyncio.to_thread(main, arguments) == 0
    assert "2027年度评选：推荐中，推荐 0 名" in capsys.readouterr().out
    assert await asyncio.to_thread(main, [*arguments[:-3], "王志刚,无此人"]) == 1
    assert "名册中找不到（或有重名）：无此人" in capsys.readouterr().out
    out = tmp_path / "汇编.docx"
    assert await asyncio.to_thread(main, ["commendation", "compile", "--out", str(out)]) == 1
    assert "还没有确定" in capsys.readouterr().out and not out.exists()
    async with runtime.db.session() as session:
        bound = (await session.exec(select(BoundChat))).all()
    assert bound == []


async def test_a_message_edited_into_bind_binds_nothing(runtime, chat, sent, people):
    zhou = people["周敏"]
    await in_group(chat, zhou, GROUP, "大家好", kind=Kind.WORDS)
    await in_group(chat, zhou, GROUP, "/bind", kind=Kind.EDITED)
    assert sent.keys(GROUP) == ["edit_not_taken"]
    async with runtime.db.session() as session:
        assert (await session.exec(select(BoundChat))).all() == []


@pytest.mark.telegram
async def test_a_group_message_edited_into_bind_on_telegram_binds_nothing(
    runtime, chat, api, people, clock
):
    group = {"id": -100_200_301, "type": "group", "title": "市直机关党员群"}
    message = {
        "message_id": 7,
        "date": int(clock.now().timestamp()),
        "chat": group,
        "from": telegram_user(people["周敏"]),
        "text": "大家好",
    }
    await chat.feed({"message": message})
    edited = {
        **message,
        "text": "/bind",
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        "edit_date": int(clock.now().timestamp()),
    }
    await chat.feed({"edited_message": edited})
    assert "修改已发出的消息不会被采用" in api.last(group["id"]).text
    async with runtime.db.session() as session:
        assert (await session.exec(select(BoundChat))).all() == []


async def test_an_uploaded_material_is_normalised_as_typed_text(
    runtime, chat, sent, people, selection
):
    who = await ids(runtime)
    deeds = "郑强同志\x00爱岗敬业，\x1b服务群众。\r\n窗口业务零投诉。"
    await nominate(chat, people["张明"], "推荐：优秀共产党员", "郑强", ("事迹.txt", deeds.encode()))
    assert sent.last(people["张明"]).key == "commendation_nominated"
    assert [(n.nominee, n.material) for n in await nominations(runtime)] == [
        (f"member:{who['郑强']}", "郑强同志爱岗敬业，服务群众。\n窗口业务零投诉。")
    ]


async def test_one_selection_at_a_time_and_its_nominations_close_from_the_command_line(
    runtime, people, monkeypatch, capsys
):
    # The command line keeps the wall clock's time: nominations still open by it.
    selection = await open_selection(runtime, closes_at=runtime.clock.now() + timedelta(days=9999))
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    arguments = ["commendation", "open", "--name", "第二次评选", "--closes", "2099-06-30"]
    assert await asyncio.to_thread(main, [*arguments, "--graders", "王志刚"]) == 1
    assert "“2026年度争当排头兵评选”还没有公布结果" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["commendation", "close"]) == 0
    assert "2026年度争当排头兵评选：评定中" in capsys.readouterr().out
    async with runtime.db.session() as session:
        selections = (await session.exec(select(Selection))).all()
    assert [s.id for s in selections] == [selection.id]
    assert selections[0].closes_at < runtime.clock.now() + timedelta(days=9999)
    assert await asyncio.to_thread(main, ["commendation", "close"]) == 1
    assert "没有正在推荐" in capsys.readouterr().out
