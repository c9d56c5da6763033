"""Leaders' reviews (领导点评) and the rectification (整改落实) that follows, through the bot."""

import asyncio
import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot import delivery
from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_api import LocalBotAPI
from bot.channels.telegram.local_chat import LocalChat
from bot.core import rectification, reviewers
from storage import people as people_queries
from storage.models import (
    Branch,
    Member,
    Rectification,
    RectificationStatus,
    Review,
    ReviewStatus,
    SummaryRectification,
)
from tests.conftest import blocked_since
from tests.test_reminders import at, load

TWO_QUARTERS = """
[campaign]
name = "测试活动"
timezone = "Asia/Shanghai"

[[quarters]]
name = "第四季度"
summary_opens = 2026-11-23
summary_due = 2026-11-30
evaluation_opens = 2026-12-02
evaluation_due = 2026-12-08
rectification_due = 2026-12-20

[[quarters]]
name = "明年第一季度"
summary_opens = 2027-01-04
summary_due = 2027-01-15
evaluation_opens = 2027-01-18
evaluation_due = 2027-01-25
rectification_due = 2027-02-28
"""


@pytest.fixture
async def quarter(runtime, people):
    await load(runtime, TWO_QUARTERS)
    return people


async def ids(runtime) -> dict[str, int]:
    async with runtime.db.session() as session:
        found = {m.name: m.id for m in (await session.exec(select(Member))).all()}
        found |= {b.name: b.id for b in (await session.exec(select(Branch))).all()}
        return found


async def the_review(runtime, reviewee: str) -> Review:
    async with runtime.db.session() as session:
        return (await session.exec(select(Review).where(Review.reviewee == reviewee))).one()


async def items_of(runtime) -> list[Rectification]:
    async with runtime.db.session() as session:
        return list((await session.exec(select(Rectification).order_by(Rectification.id))).all())


def toast(api: LocalBotAPI) -> str:
    return [c for c in api.calls if c.method == "answerCallbackQuery"][-1].params.get("text", "")


async def review_zheng(chat, zhang, requirements="1、每周集中学习一次\n2、按时参加组织生活"):
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    await chat.send(zhang, "窗口服务热情周到")
    await chat.send(zhang, "学习还不够系统")
    assert await chat.tap(zhang, "跳过")
    await chat.send(zhang, requirements)


async def test_the_assignment_follows_seed_004_for_every_case(quarter, runtime):
    known = await ids(runtime)
    expected = {
        # 局班子成员 and the organ's members → the party-group secretary
        "李建国": "王志刚",
        "赵振华": "王志刚",
        "陈卫东": "王志刚",
        "刘芳": "王志刚",  # the organ branch's secretary
        "孙伟": "王志刚",
        "吴海燕": "王志刚",
        # other branches' secretaries → their liaison leader
        "张明": "李建国",
        "马俊": "赵振华",
        # other members → their branch secretary
        "郑强": "张明",
        "王秀英": "张明",
        "黄勇": "马俊",
    }
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        mapping = await reviewers.reviewer_mapping(session, organisation_id=organisation.id)
        for reviewee, reviewer in expected.items():
            key = reviewers.member_key(known[reviewee])
            assert mapping.of_member[known[reviewee]] == known[reviewer], reviewee
            assert (
                await reviewers.reviewer_of(session, organisation_id=organisation.id, reviewee=key)
                == known[reviewer]
            ), reviewee
        # the organ branch → the party-group secretary; other branches → their liaison
        for branch, reviewer in (
            ("机关党支部", "王志刚"),
            ("市场管理党支部", "李建国"),
            ("执法大队党支部", "赵振华"),
        ):
            assert mapping.of_branch[known[branch]] == known[reviewer]
            assert (
                await reviewers.reviewer_of(
                    session,
                    organisation_id=organisation.id,
                    reviewee=reviewers.branch_key(known[branch]),
                )
                == known[reviewer]
            )
        # nobody reviews the party-group secretary, and nobody reviews themselves
        assert known["王志刚"] not in mapping.of_member
        assert all(m != r for m, r in mapping.of_member.items())
        # the organiser moves one reviewee to another reviewer
        await reviewers.set_override(
            session,
            organisation_id=organisation.id,
            reviewee=reviewers.member_key(known["郑强"]),
            reviewer_id=known["李建国"],
            now=runtime.clock.now(),
        )
        mapping = await reviewers.reviewer_mapping(session, organisation_id=organisation.id)
        assert mapping.of_member[known["郑强"]] == known["李建国"]
        assert (
            await reviewers.reviewer_of(
                session,
                organisation_id=organisation.id,
                reviewee=reviewers.member_key(known["郑强"]),
            )
            == known["李建国"]
        )


async def test_review_list_shows_what_is_done_and_pending(quarter, chat, api):
    zhang = quarter["张明"]
    await chat.send(quarter["郑强"], "/summary")  # a draft is not a submitted summary
    await chat.send(zhang, "/review")
    text = api.last(zhang.user_id).text
    assert "您负责点评以下 5 位" in text and "郑强（普通党员）：小结未交，尚未点评" in text
    assert "王秀英（年老体弱党员）" in text and "马俊" not in text
    await chat.send(quarter["冯磊"], "/review")  # an ordinary member reviews nobody
    assert "暂时没有这项权限" in api.last(quarter["冯磊"].user_id).text


async def test_a_review_written_across_a_restart_is_delivered_and_acknowledged(
    quarter, chat, api, runtime, clock
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await chat.send(zheng, "/pledge 办好窗口业务 | 提前到岗")
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    material = api.texts(zhang.user_id)[-2]
    assert "点评材料：郑强" in material and "办好窗口业务" in material and "还没有提交" in material
    await chat.send(zhang, "窗口服务热情周到")
    clock.advance(timedelta(hours=3))  # the bot restarts in the middle
    fresh_api = LocalBotAPI(now=lambda: clock.now().timestamp())
    restarted = build_application(runtime, request=fresh_api)
    async with restarted:
        fresh = LocalChat(restarted, fresh_api, clock)
        await fresh.send(zhang, "学习还不够系统")
        assert await fresh.tap(zhang, "跳过")
        await fresh.send(zhang, "1、每周集中学习一次\n2、按时参加组织生活")
        preview = fresh_api.last(zhang.user_id).text
        assert "窗口服务热情周到" in preview and "形成 2 项整改事项" in preview
        assert "2026年12月20日前完成" in preview  # the quarter's 整改落实 deadline
        assert await fresh.tap(zhang, "发送点评")
        assert "点评已发出" in fresh_api.last(zhang.user_id).text
        received = fresh_api.last(zheng.user_id)
        assert "张明对您的点评" in received.text and "1. 每周集中学习一次" in received.text
        assert received.buttons[0]["text"] == "✅ 已阅"
        review = await the_review(runtime, reviewers.member_key((await ids(runtime))["郑强"]))
        assert review.status == ReviewStatus.SENT
        assert (review.achievements, review.problems, review.direction) == (
            "窗口服务热情周到",
            "学习还不够系统",
            "",
        )
        await fresh.tap(zheng, "已阅")
        await fresh.tap(zheng, "已阅")  # a double tap changes nothing
        assert "已阅" in toast(fresh_api)
        assert "✅ 已阅。" in fresh_api.last(zheng.user_id).text
        assert not fresh_api.last(zheng.user_id).buttons
        await fresh.send(zhang, "/reviews")
        overview = fresh_api.last(zhang.user_id).text
        assert "已点评 1，已送达 1，已阅 1" in overview
    review = await the_review(runtime, review.reviewee)
    assert review.status == ReviewStatus.ACKNOWLEDGED
    items = await items_of(runtime)
    assert [i.text for i in items] == ["每周集中学习一次", "按时参加组织生活"]
    assert {i.due_on for i in items} == {date(2026, 12, 20)}


async def test_rectification_from_report_to_confirmation_and_reopening(quarter, chat, api, runtime):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    await chat.send(zheng, "/rectify")
    assert "1. 每周集中学习一次" in api.last(zheng.user_id).text
    assert await chat.tap(zheng, "1. 记录进展")
    await chat.send(zheng, "已制定学习计划")
    assert "进展已记录" in api.last(zheng.user_id).text
    # The secretary's workbook carries the progress notes beside the item.
    await chat.send(zhang, "/export")
    document = [c for c in api.sent(zhang.user_id) if c.method == "sendDocument"][-1]
    book = load_workbook(io.BytesIO(document.params["document"]["content"]))
    rows = list(book["整改落实"].values)
    assert rows[0][-1] == "进展情况"
    assert rows[1][2] == "每周集中学习一次" and rows[1][-1].endswith(" 已制定学习计划")
    await chat.send(zheng, "/rectify")
    assert await chat.tap(zheng, "1. ✅ 已完成")
    await chat.send(zheng, "每周三晚集中学习，已坚持四周")
    item = (await items_of(runtime))[0]
    assert item.status == RectificationStatus.DONE
    reported = api.last(zhang.user_id)
    assert "郑强报告整改事项已完成" in reported.text and "已坚持四周" in reported.text
    assert await chat.tap(zhang, "重新打开")
    await chat.send(zhang, "请把学习笔记也整理出来")
    assert (await items_of(runtime))[0].status == RectificationStatus.OPEN
    assert "请把学习笔记也整理出来" in api.last(zheng.user_id).text
    assert await chat.tap(zheng, "已完成")  # from the reopening message itself
    await chat.send(zheng, "笔记已整理")
    assert "笔记已整理" in api.last(zhang.user_id).text
    assert await chat.tap(zhang, "确认完成")
    await chat.tap(zhang, "确认完成")  # a double tap confirms once
    assert "状态已经变了" in toast(api)
    assert (await items_of(runtime))[0].status == RectificationStatus.CONFIRMED
    assert "已经点评人确认完成" in api.last(zheng.user_id).text
    await chat.send(zheng, "/rectify")
    listing = api.last(zheng.user_id).text
    assert "每周集中学习一次" not in listing and "按时参加组织生活" in listing


async def test_open_items_are_reminded_once_before_and_after_the_due_date(
    quarter, chat, api, app, runtime, clock
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    for day in range(24, 32):
        clock.set(at(day, 10))
        await delivery.tick(app.bot_data["runtime"])
    for day in range(1, 31):
        clock.set(at(30 + day, 10))
        await delivery.tick(app.bot_data["runtime"])
    texts = api.texts(zheng.user_id)
    assert sum("将于 12月20日 到期" in t for t in texts) == 1
    assert sum("原定 12月20日 完成" in t for t in texts) == 1
    assert "还有 3 天" in next(t for t in texts if "到期" in t)


async def test_open_items_carry_over_into_next_quarters_summary(quarter, chat, api, runtime, clock):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    clock.set(at(65, 10))  # 2027-01-04: the next quarter's summary opens
    await chat.send(zheng, "/summary")
    ask = api.last(zheng.user_id).text
    assert "整改回头看" in ask and "按时参加组织生活" in ask
    await chat.send(zheng, "每次都按时参加了")
    for answer in ("成绩", "问题", "原因", "下一步"):
        await chat.send(zheng, answer)
    preview = api.last(zheng.user_id).text
    assert "整改回头看" in preview and "按时参加组织生活：每次都按时参加了" in preview
    assert await chat.tap(zheng, "确认提交")
    async with runtime.db.session() as session:
        noted = (await session.exec(select(SummaryRectification))).one()
        assert noted.note == "每次都按时参加了"
    # the next review shows the reviewer what became of it
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    material = api.texts(zhang.user_id)[-2]
    assert "以往点评提出的整改" in material and "每次都按时参加了" in material


async def test_who_may_read_a_review(quarter, chat, api, runtime):
    zhang = quarter["张明"]
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    review = await the_review(runtime, reviewers.member_key((await ids(runtime))["郑强"]))
    for reader in ("郑强", "张明", "周敏"):  # reviewee, reviewer and secretary, organiser
        await chat.press(quarter[reader], f"rvv:{review.id}")
        assert "张明对郑强的点评" in api.last(quarter[reader].user_id).text, reader
    for outsider in ("冯磊", "马俊", "李建国"):  # a fellow member, another secretary, a leader
        await chat.press(quarter[outsider], f"rvv:{review.id}")
        assert not any("窗口服务热情周到" in t for t in api.texts(quarter[outsider].user_id))
        assert "不适用" in toast(api)


async def test_reviewing_someone_not_mine_is_refused_even_with_forged_buttons(
    quarter, chat, api, runtime
):
    known = await ids(runtime)
    ma = quarter["马俊"]  # a secretary, but of another branch
    await chat.press(ma, f"rv:member:{known['郑强']}")
    assert "不由您点评" in toast(api)
    await review_zheng(chat, quarter["张明"])
    review = await the_review(runtime, reviewers.member_key(known["郑强"]))
    await chat.press(ma, f"rvs:{review.id}:send")
    assert (await the_review(runtime, review.reviewee)).status == ReviewStatus.DRAFT
    await chat.press(quarter["郑强"], f"rva:{review.id}")  # cannot acknowledge a draft
    assert "不适用" in toast(api)
    await chat.press(ma, "rc:999:done")
    assert "不适用" in toast(api)


async def test_an_empty_review_cannot_be_sent_and_long_parts_are_kept(quarter, chat, api, runtime):
    zhang = quarter["张明"]
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    await chat.send(zhang, "长" * 1001)
    refusal = api.last(zhang.user_id).text
    assert "共 1001 字" in refusal and "最多还能写 1000 字" in refusal
    await chat.send(zhang, "/review")  # back later: the refused text is offered again
    assert await chat.tap(zhang, "郑强")
    assert "上次这段文字超过了字数" in api.last(zhang.user_id).text
    assert await chat.tap(zhang, "跳过")
    assert "肯定成绩能保护和调动" in api.last(zhang.user_id).text  # asked for once more
    assert await chat.tap(zhang, "这次不写")
    await chat.tap(zhang, "跳过")
    await chat.tap(zhang, "跳过")
    await chat.tap(zhang, "跳过")
    assert await chat.tap(zhang, "这次不写")
    assert "点评还是空的" in api.last(zhang.user_id).text
    await chat.tap(zhang, "发送点评")
    assert "点评还是空的" in toast(api)
    review = await the_review(runtime, reviewers.member_key((await ids(runtime))["郑强"]))
    assert review.status == ReviewStatus.DRAFT


async def test_guidance_differs_for_leading_cadres_and_elderly_members(quarter, chat, api):
    zhang, wang = quarter["张明"], quarter["王志刚"]
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "王秀英")
    assert "重在关心和鼓励" in api.last(zhang.user_id).text
    await chat.send(wang, "/review")
    assert await chat.tap(wang, "李建国")
    for part in ("成绩", "问题", "方向"):
        await chat.send(wang, part)
    assert "具体、可检查" in api.last(wang.user_id).text


async def test_the_liaison_reviews_the_branch_and_its_secretary_answers(
    quarter, chat, api, runtime
):
    li, zhang = quarter["李建国"], quarter["张明"]
    await chat.send(li, "/review")
    listing = api.last(li.user_id).text
    assert "市场管理党支部（支部）" in listing and "张明（普通党员）" in listing
    assert await chat.tap(li, "市场管理党支部")
    await chat.send(li, "支部学习抓得紧")
    await chat.tap(li, "跳过")
    await chat.tap(li, "跳过")
    await chat.send(li, "健全三会一课记录")
    assert await chat.tap(li, "发送点评")
    received = api.last(zhang.user_id)
    assert "李建国对市场管理党支部的点评" in received.text
    assert await chat.tap(zhang, "已阅")
    await chat.send(zhang, "/rectify")
    assert "健全三会一课记录" in api.last(zhang.user_id).text
    await chat.send(quarter["郑强"], "/rectify")  # a branch's items are its secretary's
    assert "健全三会一课记录" not in api.last(quarter["郑强"].user_id).text


async def test_a_review_of_someone_who_blocked_the_bot_waits_in_the_outbox(
    quarter, chat, api, runtime
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    api.block(zheng.user_id)
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    assert not any("张明对您的点评" in t for t in api.texts(zheng.user_id))
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "郑强"))).one()
    assert await blocked_since(runtime, member.id, "telegram") is not None
    review = await the_review(runtime, reviewers.member_key(member.id))
    assert review.status == ReviewStatus.SENT  # sent by the reviewer; /reviews shows it undelivered
    await chat.send(zhang, "/reviews")
    assert "已点评 1，已送达 0" in api.last(zhang.user_id).text


def test_requirements_split_into_one_item_per_line_or_number():
    assert rectification.split_items("2026年12月前完成。") == ["2026年12月前完成"]
    assert rectification.split_items("12.31前完成学习") == ["12.31前完成学习"]
    assert rectification.split_items("1、甲；2、乙\n（3）丙\n\n- 丁") == ["甲", "乙", "丙", "丁"]


async def test_only_those_with_open_items_are_chased_for_the_rectification_step(
    quarter, chat, api, app, clock
):
    zhang, zheng, feng = quarter["张明"], quarter["郑强"], quarter["冯磊"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    for day in range(17, 30):  # through 12-17 … 12-29, past the 整改落实 deadline of 12-20
        clock.set(at(30 + day, 10))
        await delivery.tick(app.bot_data["runtime"])
    step_title = "第四季度整改落实"
    assert any(step_title in t and "截止" in t for t in api.texts(zheng.user_id))
    assert not any(step_title in t and "截止" in t for t in api.texts(feng.user_id))


async def test_the_organiser_overrides_an_assignment_from_the_command_line(
    quarter, runtime, settings, capsys
):
    from bot.__main__ import main

    # The command line runs its own event loop, as it does from a shell.
    argv = ["reviewers"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", settings.database_url)
        assert await asyncio.to_thread(main, [*argv, "set", "郑强", "D02"]) == 0
        assert "郑强 今后由 李建国 点评" in capsys.readouterr().out
        assert await asyncio.to_thread(main, [*argv, "set", "无此人", "李建国"]) == 1
        assert "无此人" in capsys.readouterr().out
        assert await asyncio.to_thread(main, [*argv, "set", "郑强", "郑强"]) == 1
        assert "郑强不能点评自己" in capsys.readouterr().out
        assert await asyncio.to_thread(main, [*argv, "set", "郑强", "市场管理党支部"]) == 1
        assert "点评人须是一位党员" in capsys.readouterr().out
        assert await asyncio.to_thread(main, [*argv, "list"]) == 0
        listing = capsys.readouterr().out
        assert "市场管理党支部：郑强 ← 李建国（已调整）" in listing
        assert "市场管理党支部：冯磊 ← 张明" in listing
        assert await asyncio.to_thread(main, [*argv, "reset", "郑强"]) == 0
        assert await asyncio.to_thread(main, [*argv, "list"]) == 0
        assert "市场管理党支部：郑强 ← 张明\n" in capsys.readouterr().out


async def test_a_reassigned_reviewee_is_out_of_reach_of_the_former_reviewer(
    quarter, chat, api, runtime
):
    known = await ids(runtime)
    zhang = quarter["张明"]
    await review_zheng(chat, zhang)  # a draft, up to the preview
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await reviewers.set_override(
            session,
            organisation_id=organisation.id,
            reviewee=reviewers.member_key(known["郑强"]),
            reviewer_id=known["李建国"],
            now=runtime.clock.now(),
        )
    review = await the_review(runtime, reviewers.member_key(known["郑强"]))
    await chat.press(zhang, f"rvs:{review.id}:send")
    assert "不由您点评" in toast(api)
    await chat.press(zhang, f"rv:member:0{known['郑强']}")  # another spelling of the same key
    assert "不由您点评" in toast(api)
    async with runtime.db.session() as session:
        assert len((await session.exec(select(Review))).all()) == 1
    assert (await the_review(runtime, review.reviewee)).status == ReviewStatus.DRAFT


async def test_a_note_on_a_carried_item_is_held_to_its_own_limit(quarter, chat, api, clock):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    clock.set(at(65, 10))
    await chat.send(zheng, "/summary")
    await chat.send(zheng, "长" * 600)
    assert "最多还能写 500 字" in api.last(zheng.user_id).text
