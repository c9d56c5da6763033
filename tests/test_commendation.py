"""评选表彰 through the real Application: nominations with deed material, private grading,
the confirmed list within the quotas, publication and the compiled document."""

import asyncio
import io
from datetime import timedelta

import pytest
from docx import Document
from sqlmodel import select

from bot import delivery
from bot.__main__ import main
from bot.channels.telegram.local_chat import telegram_user
from bot.core import commendation
from bot.core.commendation import count_characters
from storage import people as people_queries
from storage.models import BoundChat, GradeProposal, Nomination, Selection
from tests.test_reviews import ids, toast

WINDOW = timedelta(days=7)
DEEDS = "郑强同志扎根窗口一线，全年办件三百余件，零投诉。"


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
    runtime, chat, api, app, people, selection, clock
):
    zhang, ma, zheng = people["张明"], people["马俊"], people["郑强"]
    who = await ids(runtime)
    # A group chat the organiser binds, for the announcement.
    group = {"id": -100_200_300, "type": "group", "title": "市直机关党员群"}
    await chat.feed(
        {
            "message": {
                "message_id": 1,
                "date": int(clock.now().timestamp()),
                "chat": group,
                "from": telegram_user(people["周敏"]),
                "text": "/bind",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            }
        }
    )
    assert "本群已绑定" in api.last(group["id"]).text

    # Nominations: typed, a .docx, a .txt.
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", DEEDS)
    assert "已推荐郑强" in api.last(zhang.user_id).text
    branch_deeds = "市场管理党支部坚持“三会一课”。\n开展“亮身份、比服务”活动。"
    await nominate(
        chat, zhang, "推荐：先进基层党组织", None, ("支部事迹.docx", docx_of(branch_deeds))
    )
    assert "已推荐市场管理党支部" in api.last(zhang.user_id).text
    huang_deeds = "黄勇同志执法为民，文明执法，群众满意。"
    await nominate(chat, ma, "推荐：优秀共产党员", "黄勇", ("事迹.txt", huang_deeds.encode("gbk")))
    found = await nominations(runtime)
    assert [(n.nominee, n.material) for n in found] == [
        (f"member:{who['郑强']}", DEEDS),
        (f"branch:{who['市场管理党支部']}", branch_deeds),
        (f"member:{who['黄勇']}", huang_deeds),
    ]
    # The nominee is told, with the material; and can read it again.
    await delivery.tick(app.bot_data["runtime"])
    assert any("您已被推荐参评" in t and DEEDS in t for t in api.texts(zheng.user_id))
    await chat.send(zheng, "/commendation")
    assert DEEDS in api.last(zheng.user_id).text

    # Grading, after the window: the material and the record side by side.
    clock.advance(WINDOW + timedelta(minutes=1))
    wang, li = people["王志刚"], people["李建国"]
    await chat.send(wang, "/commendation")
    assert await chat.tap(wang, "开始评定")
    shown = api.last(wang.user_id).text
    assert "郑强" in shown and DEEDS in shown and "公开承诺" in shown and "群众评议满意率" in shown
    for prize in ("一等奖", "一等奖", "二等奖"):
        assert await chat.tap(wang, prize)
    mine = api.last(wang.user_id).text
    assert "郑强 — 一等奖" in mine and "黄勇 — 二等奖" in mine
    # 李建国 grades but has not submitted: nobody sees his proposals yet, nor he others'.
    await grade_all(chat, li, ["二等奖", "一等奖", "一等奖"], submit=False)
    assert "王志刚" not in api.last(li.user_id).text
    # He changes his mind on one before submitting.
    assert await chat.tap(li, "修改某项评定")
    assert await chat.tap(li, "黄勇")
    assert await chat.tap(li, "三等奖")
    assert "黄勇 — 三等奖" in api.last(li.user_id).text
    assert await chat.tap(wang, "提交评定")
    tally = api.last(wang.user_id).text
    assert "王志刚 一等奖" in tally and "李建国" not in tally
    assert await chat.tap(li, "提交评定")
    tally = api.last(li.user_id).text
    assert "王志刚 一等奖" in tally and "李建国 二等奖" in tally and "李建国 三等奖" in tally

    # The organiser confirms: per category, best average first, within the quotas.
    organiser = people["周敏"]
    await chat.send(organiser, "/commendation")
    assert await chat.tap(organiser, "确定名单")
    confirmed = api.last(organiser.user_id).text
    assert "一等奖：郑强" in confirmed and "二等奖：黄勇" in confirmed
    assert "一等奖：市场管理党支部" in confirmed
    # Announced to every member (the outbox) and the bound group; the document to the organiser.
    assert await chat.tap(organiser, "公布")
    documents = [c for c in api.sent(organiser.user_id) if c.method == "sendDocument"]
    assert len(documents) == 1
    compiled = Document(io.BytesIO(documents[0].params["document"]["content"]))
    texts = [p.text for p in compiled.paragraphs]
    assert texts[0] == "2026年度争当排头兵评选先进事迹汇编"
    order = [
        texts.index(t)
        for t in ("优秀共产党员 · 一等奖", "郑强", DEEDS, "优秀共产党员 · 二等奖", "黄勇")
    ]
    assert order == sorted(order)
    assert "先进基层党组织 · 一等奖" in texts and "开展“亮身份、比服务”活动。" in texts
    assert "2026年度争当排头兵评选结果" in api.last(group["id"]).text
    assert "评选评选" not in api.last(group["id"]).text
    await delivery.tick(app.bot_data["runtime"])
    for person in (zheng, people["王秀英"], people["谢婷"]):
        assert sum("评选结果" in t for t in api.texts(person.user_id)) == 1
    # Double taps: nothing is published twice.
    await chat.press(organiser, f"cmp:{selection.id}")
    await delivery.tick(app.bot_data["runtime"])
    assert sum("评选结果" in t for t in api.texts(zheng.user_id)) == 1


async def test_quotas_and_replacing_material(runtime, chat, api, people, selection):
    zhang = people["张明"]
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", DEEDS)
    await nominate(chat, zhang, "推荐：优秀共产党员", "冯磊", "冯磊同志帮扶经营户。")
    assert "名额已经用完" in api.last(zhang.user_id).text
    # The same nominee again: the material is replaced, not a second nomination.
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", "新的事迹材料。")
    assert "已更新郑强的事迹材料" in api.last(zhang.user_id).text
    found = await nominations(runtime)
    assert [n.material for n in found] == ["新的事迹材料。"]
    # Withdrawn, the place is free again.
    await chat.send(zhang, "/commendation")
    assert await chat.tap(zhang, "撤回推荐：郑强")
    await nominate(chat, zhang, "推荐：优秀共产党员", "冯磊", "冯磊同志帮扶经营户。")
    assert [n.material for n in await nominations(runtime)] == ["冯磊同志帮扶经营户。"]


def test_characters_are_counted_as_the_seed_counts():
    # Chinese characters and punctuation one each; a Latin word or a number one; spaces none.
    assert count_characters("我爱 Python3 编程，hello world!") == 9
    assert count_characters("2026年，共办件 315 件。") == 9
    assert count_characters("“三会一课”\n\n") == 6
    assert count_characters("   ") == 0


async def test_material_over_1500_characters_is_refused_with_its_count(
    runtime, chat, api, people, selection
):
    zhang = people["张明"]
    long = "为民服务，" * 300 + "好"  # 1,501
    await nominate(chat, zhang, "推荐：优秀共产党员", "郑强", long)
    assert "共 1501 字，超过了 1500 字" in api.last(zhang.user_id).text
    assert await nominations(runtime) == []
    # Still waiting for the material: a shorter one (mixed text, 1,500 exactly) is taken.
    exact = "为民服务，" * 299 + "Party members serve"  # 1,495 + 3 words … + "，好" below
    await chat.send(zhang, exact + "，好")
    assert count_characters(exact + "，好") == 1500
    assert "已推荐郑强（1500 字" in api.last(zhang.user_id).text
    # A file that is not a document is refused, and nothing is lost.
    await nominate(chat, zhang, "推荐：先进基层党组织", None, ("照片.jpg", b"\xff\xd8\xff"))
    assert "无法读取文件" in api.last(zhang.user_id).text
    assert len(await nominations(runtime)) == 1


async def test_refusals_say_why(runtime, chat, api, people, clock):
    zhang, zheng, ma = people["张明"], people["郑强"], people["马俊"]
    who = await ids(runtime)
    later = await open_selection(
        runtime, opens_at=clock.now() + timedelta(days=1), closes_at=clock.now() + WINDOW
    )
    # Before the window: no nomination buttons, and a forged press is refused.
    await chat.press(zhang, f"cmn:{later.id}:member")
    assert "不在推荐时间内" in api.last(zhang.user_id).text
    clock.advance(timedelta(days=1, minutes=1))
    # Someone who is not a secretary.
    await chat.press(zheng, f"cmn:{later.id}:member")
    assert "由支部书记负责" in api.last(zheng.user_id).text
    # Someone outside the branch, by a forged button.
    await chat.press(zhang, f"cmm:{later.id}:member:{who['黄勇']}")
    assert "只能推荐本支部" in api.last(zhang.user_id).text
    await chat.send(zhang, "事迹")  # and no material is asked for: nothing is taken
    assert await nominations(runtime) == []
    await nominate(chat, ma, "推荐：优秀共产党员", "黄勇", "黄勇同志文明执法。")
    # After the window: no more nominations; grading by someone not in the leading group.
    clock.advance(WINDOW)
    await chat.press(zhang, f"cmn:{later.id}:member")
    assert "不在推荐时间内" in api.last(zhang.user_id).text
    (huang,) = await nominations(runtime)
    await chat.press(zheng, f"cmv:{huang.id}:first")
    assert "不在名单中" in toast(api)
    async with runtime.db.session() as session:
        assert (await session.exec(select(GradeProposal))).all() == []
    # A grader who has not graded everyone cannot submit; the organiser only confirms.
    await chat.press(people["王志刚"], f"cms:{later.id}")
    assert "还有被推荐对象没有评定" in api.last(people["王志刚"].user_id).text
    await chat.press(zheng, f"cmf:{later.id}")
    assert "不适用于您的账号" in toast(api)


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


async def test_a_message_edited_into_bind_binds_nothing(runtime, chat, api, people, clock):
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
    runtime, chat, api, people, selection
):
    who = await ids(runtime)
    deeds = "郑强同志\x00爱岗敬业，\x1b服务群众。\r\n窗口业务零投诉。"
    await nominate(chat, people["张明"], "推荐：优秀共产党员", "郑强", ("事迹.txt", deeds.encode()))
    assert "已推荐郑强" in api.last(people["张明"].user_id).text
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
