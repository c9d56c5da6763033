"""Leaders' reviews (领导点评) and the rectification (整改落实) that follows, through the bot.

Through the channel contract (the local channel); one short test stays on Telegram: a review
for someone who blocked the bot there, which the Bot API's 403 marks as unreachable."""

import asyncio
import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

import handlers
from bot import delivery
from bot.channels.local.chat import LocalChat
from bot.core import rectification, reviewers
from bot.core.rectification import JudgeItem, ReportItem
from bot.core.reviews import AcknowledgeReview, ReadReview, ReviewStep, StartReview
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
from tests.conftest import block_bot, blocked_since
from tests.test_pledges import payloads
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


def toast(runtime, key: str) -> str:
    """A toast's words, by its message."""
    return runtime.messages.plain("zh_CN", key)


def keyed(sent, person, key: str) -> list:
    """The person's messages that say `key` (a reminder message may carry several)."""
    return [item for item in sent.to(person) if key in item.key.split(",")]


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


async def test_review_list_shows_what_is_done_and_pending(quarter, chat, sent, runtime):
    zhang = quarter["张明"]
    await chat.send(quarter["郑强"], "/summary")  # a draft is not a submitted summary
    await chat.send(zhang, "/review")
    listing = sent.last(zhang)
    assert listing.key == "review_list"
    assert "您负责点评以下 5 位" in listing.text
    assert "郑强（普通党员）：小结未交，尚未点评" in listing.text
    assert "王秀英（年老体弱党员）" in listing.text and "马俊" not in listing.text
    known = await ids(runtime)
    assert StartReview("member", known["郑强"]).pack() in payloads(listing)
    await chat.send(quarter["冯磊"], "/review")  # an ordinary member reviews nobody
    assert sent.last(quarter["冯磊"]).key == "not_allowed"
    assert "暂时没有这项权限" in sent.last(quarter["冯磊"]).text


async def test_a_review_written_across_a_restart_is_delivered_and_acknowledged(
    quarter, chat, sent, runtime, clock
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await chat.send(zheng, "/pledge 办好窗口业务 | 提前到岗")
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    material = sent.to(zhang)[-2]
    assert material.key == "review_material" and sent.last(zhang).key == "review_ask"
    assert "点评材料：郑强" in material.text and "办好窗口业务" in material.text
    assert "还没有提交" in material.text
    await chat.send(zhang, "窗口服务热情周到")
    clock.advance(timedelta(hours=3))  # the bot restarts in the middle
    fresh = LocalChat(runtime, handlers.routes(), clock)
    await fresh.send(zhang, "学习还不够系统")
    assert await fresh.tap(zhang, "跳过")
    await fresh.send(zhang, "1、每周集中学习一次\n2、按时参加组织生活")
    preview = fresh.channel.last(zhang)
    assert preview.key == "review_preview"
    assert "窗口服务热情周到" in preview.text and "形成 2 项整改事项" in preview.text
    assert "2026年12月20日前完成" in preview.text  # the quarter's 整改落实 deadline
    review = await the_review(runtime, reviewers.member_key((await ids(runtime))["郑强"]))
    assert ReviewStep(review.id, "send").pack() in payloads(preview)
    assert await fresh.tap(zhang, "发送点评")
    assert fresh.channel.last(zhang).key == "review_sent"
    received = fresh.channel.last(zheng)
    assert received.key == "review_received"
    assert "张明对您的点评" in received.text and "1. 每周集中学习一次" in received.text
    assert received.buttons == [["✅ 已阅", AcknowledgeReview(review.id).pack()]]
    review = await the_review(runtime, review.reviewee)
    assert review.status == ReviewStatus.SENT
    assert (review.achievements, review.problems, review.direction) == (
        "窗口服务热情周到",
        "学习还不够系统",
        "",
    )
    await fresh.tap(zheng, "已阅")
    await fresh.press(zheng, AcknowledgeReview(review.id).pack(), received)  # a double tap
    assert fresh.channel.toasts(zheng) == [toast(runtime, "review_acknowledged")] * 2
    acknowledged = fresh.channel.last(zheng)  # the review itself, its button gone
    assert acknowledged.kind == "edit" and acknowledged.message_id == received.message_id
    assert "✅ 已阅。" in acknowledged.text and not acknowledged.buttons
    await fresh.send(zhang, "/reviews")
    overview = fresh.channel.last(zhang)
    assert overview.key == "review_overview" and "已点评 1，已送达 1，已阅 1" in overview.text
    review = await the_review(runtime, review.reviewee)
    assert review.status == ReviewStatus.ACKNOWLEDGED
    items = await items_of(runtime)
    assert [i.text for i in items] == ["每周集中学习一次", "按时参加组织生活"]
    assert {i.due_on for i in items} == {date(2026, 12, 20)}


async def test_rectification_from_report_to_confirmation_and_reopening(
    quarter, chat, sent, runtime
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    first, _second = await items_of(runtime)
    await chat.send(zheng, "/rectify")
    listing = sent.last(zheng)
    assert listing.key == "rectify_list" and "1. 每周集中学习一次" in listing.text
    assert ReportItem(first.id, "progress").pack() in payloads(listing)
    assert await chat.tap(zheng, "1. 记录进展")
    assert sent.last(zheng).key == "rectify_ask_note"
    await chat.send(zheng, "已制定学习计划")
    assert sent.last(zheng).key == "rectify_saved" and "进展已记录" in sent.last(zheng).text
    # The secretary's workbook carries the progress notes beside the item.
    await chat.send(zhang, "/export")
    document = [item for item in sent.to(zhang) if item.kind == "file"][-1]
    rows = list(load_workbook(io.BytesIO(document.content))["整改落实"].values)
    assert rows[0][-1] == "进展情况"
    assert rows[1][2] == "每周集中学习一次" and rows[1][-1].endswith(" 已制定学习计划")
    await chat.send(zheng, "/rectify")
    assert await chat.tap(zheng, "1. ✅ 已完成")
    await chat.send(zheng, "每周三晚集中学习，已坚持四周")
    item = (await items_of(runtime))[0]
    assert item.status == RectificationStatus.DONE
    reported = sent.last(zhang)
    assert reported.key == "rectification_reported"
    assert "郑强报告整改事项已完成" in reported.text and "已坚持四周" in reported.text
    assert payloads(reported) == [
        JudgeItem(first.id, "confirm").pack(),
        JudgeItem(first.id, "reopen").pack(),
    ]
    assert await chat.tap(zhang, "重新打开")
    await chat.send(zhang, "请把学习笔记也整理出来")
    assert (await items_of(runtime))[0].status == RectificationStatus.OPEN
    reopened = sent.last(zheng)
    assert reopened.key == "rectification_reopened" and "请把学习笔记也整理出来" in reopened.text
    assert await chat.tap(zheng, "已完成")  # from the reopening message itself
    await chat.send(zheng, "笔记已整理")
    assert sent.last(zhang).key == "rectification_reported"
    assert "笔记已整理" in sent.last(zhang).text
    assert await chat.tap(zhang, "确认完成")
    await chat.tap(zhang, "确认完成")  # a double tap confirms once
    assert "状态已经变了" in sent.toasts(zhang)[-1]
    assert (await items_of(runtime))[0].status == RectificationStatus.CONFIRMED
    assert sent.keys(zheng).count("rectification_confirmed") == 1
    assert "已经点评人确认完成" in sent.last(zheng).text
    await chat.send(zheng, "/rectify")
    listing = sent.last(zheng).text
    assert "每周集中学习一次" not in listing and "按时参加组织生活" in listing


async def test_open_items_are_reminded_once_before_and_after_the_due_date(
    quarter, chat, sent, runtime, clock
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    for day in range(24, 32):
        clock.set(at(day, 10))
        await delivery.tick(runtime)
    for day in range(1, 31):
        clock.set(at(30 + day, 10))
        await delivery.tick(runtime)
    (due_soon,) = keyed(sent, zheng, "rectification_due_soon")
    (overdue,) = keyed(sent, zheng, "rectification_overdue")
    assert "将于 12月20日 到期" in due_soon.text and "还有 3 天" in due_soon.text
    assert "原定 12月20日 完成" in overdue.text


async def test_open_items_carry_over_into_next_quarters_summary(
    quarter, chat, sent, runtime, clock
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    clock.set(at(65, 10))  # 2027-01-04: the next quarter's summary opens
    await chat.send(zheng, "/summary")
    ask = sent.last(zheng)
    assert ask.key == "summary_ask_text"
    assert "整改回头看" in ask.text and "按时参加组织生活" in ask.text
    await chat.send(zheng, "每次都按时参加了")
    for answer in ("成绩", "问题", "原因", "下一步"):
        await chat.send(zheng, answer)
    preview = sent.last(zheng)
    assert preview.key == "summary_preview" and "整改回头看" in preview.text
    assert "按时参加组织生活：每次都按时参加了" in preview.text
    assert await chat.tap(zheng, "确认提交")
    async with runtime.db.session() as session:
        noted = (await session.exec(select(SummaryRectification))).one()
        assert noted.note == "每次都按时参加了"
    # the next review shows the reviewer what became of it
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    material = sent.to(zhang)[-2]
    assert material.key == "review_material"
    assert "以往点评提出的整改" in material.text and "每次都按时参加了" in material.text


async def test_who_may_read_a_review(quarter, chat, sent, runtime):
    zhang = quarter["张明"]
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    review = await the_review(runtime, reviewers.member_key((await ids(runtime))["郑强"]))
    for reader in ("郑强", "张明", "周敏"):  # reviewee, reviewer and secretary, organiser
        await chat.press(quarter[reader], ReadReview(review.id).pack())
        view = sent.last(quarter[reader])
        assert view.key == "review_view" and "张明对郑强的点评" in view.text, reader
    for outsider in ("冯磊", "马俊", "李建国"):  # a fellow member, another secretary, a leader
        await chat.press(quarter[outsider], ReadReview(review.id).pack())
        assert "review_view" not in sent.keys(quarter[outsider])
        assert not any("窗口服务热情周到" in t for t in sent.texts(quarter[outsider]))
        assert sent.toasts(quarter[outsider]) == [toast(runtime, "button_refused")]


async def test_reviewing_someone_not_mine_is_refused_even_with_forged_buttons(
    quarter, chat, sent, runtime
):
    known = await ids(runtime)
    ma = quarter["马俊"]  # a secretary, but of another branch
    await chat.press(ma, StartReview("member", known["郑强"]).pack())
    assert sent.toasts(ma)[-1] == toast(runtime, "review_not_yours")
    await review_zheng(chat, quarter["张明"])
    review = await the_review(runtime, reviewers.member_key(known["郑强"]))
    await chat.press(ma, ReviewStep(review.id, "send").pack())
    assert (await the_review(runtime, review.reviewee)).status == ReviewStatus.DRAFT
    await chat.press(quarter["郑强"], AcknowledgeReview(review.id).pack())  # a draft
    assert sent.toasts(quarter["郑强"])[-1] == toast(runtime, "button_refused")
    await chat.press(ma, ReportItem(999, "done").pack())
    assert sent.toasts(ma)[-1] == toast(runtime, "button_refused")
    assert sent.to(ma) == [] and sent.to(quarter["郑强"]) == []


async def test_an_empty_review_cannot_be_sent_and_long_parts_are_kept(quarter, chat, sent, runtime):
    zhang = quarter["张明"]
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "郑强")
    await chat.send(zhang, "长" * 1001)
    refusal = sent.last(zhang)
    assert refusal.key == "text_too_long"
    assert "共 1001 字" in refusal.text and "最多还能写 1000 字" in refusal.text
    await chat.send(zhang, "/review")  # back later: the refused text is offered again
    assert await chat.tap(zhang, "郑强")
    assert sent.last(zhang).key == "review_ask"
    assert "上次这段文字超过了字数" in sent.last(zhang).text
    assert await chat.tap(zhang, "跳过")
    assert sent.last(zhang).key == "review_asked_for"
    assert "肯定成绩能保护和调动" in sent.last(zhang).text  # asked for once more
    assert await chat.tap(zhang, "这次不写")
    await chat.tap(zhang, "跳过")
    await chat.tap(zhang, "跳过")
    await chat.tap(zhang, "跳过")
    assert await chat.tap(zhang, "这次不写")
    assert sent.last(zhang).key == "review_preview"
    assert "点评还是空的" in sent.last(zhang).text
    await chat.tap(zhang, "发送点评")
    assert sent.toasts(zhang)[-1] == toast(runtime, "review_empty")
    review = await the_review(runtime, reviewers.member_key((await ids(runtime))["郑强"]))
    assert review.status == ReviewStatus.DRAFT


async def test_guidance_differs_for_leading_cadres_and_elderly_members(quarter, chat, sent):
    zhang, wang = quarter["张明"], quarter["王志刚"]
    await chat.send(zhang, "/review")
    assert await chat.tap(zhang, "王秀英")
    assert sent.last(zhang).key == "review_ask" and "重在关心和鼓励" in sent.last(zhang).text
    await chat.send(wang, "/review")
    assert await chat.tap(wang, "李建国")
    for part in ("成绩", "问题", "方向"):
        await chat.send(wang, part)
    assert sent.last(wang).key == "review_ask" and "具体、可检查" in sent.last(wang).text


async def test_the_liaison_reviews_the_branch_and_its_secretary_answers(
    quarter, chat, sent, runtime
):
    li, zhang = quarter["李建国"], quarter["张明"]
    await chat.send(li, "/review")
    listing = sent.last(li)
    assert "市场管理党支部（支部）" in listing.text and "张明（普通党员）" in listing.text
    known = await ids(runtime)
    assert StartReview("branch", known["市场管理党支部"]).pack() in payloads(listing)
    assert await chat.tap(li, "市场管理党支部")
    await chat.send(li, "支部学习抓得紧")
    await chat.tap(li, "跳过")
    await chat.tap(li, "跳过")
    await chat.send(li, "健全三会一课记录")
    assert await chat.tap(li, "发送点评")
    received = sent.last(zhang)
    assert received.key == "review_received"
    assert "李建国对市场管理党支部的点评" in received.text
    assert await chat.tap(zhang, "已阅")
    await chat.send(zhang, "/rectify")
    assert "健全三会一课记录" in sent.last(zhang).text
    await chat.send(quarter["郑强"], "/rectify")  # a branch's items are its secretary's
    assert sent.last(quarter["郑强"]).key == "rectify_list"
    assert "健全三会一课记录" not in sent.last(quarter["郑强"]).text


async def test_a_review_of_someone_who_blocked_the_bot_waits_in_the_outbox(
    quarter, chat, sent, runtime
):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    known = await ids(runtime)
    await block_bot(runtime, known["郑强"])
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    assert sent.last(zhang).key == "review_sent"
    assert "review_received" not in sent.keys(zheng)
    review = await the_review(runtime, reviewers.member_key(known["郑强"]))
    assert review.status == ReviewStatus.SENT  # sent by the reviewer; /reviews shows it undelivered
    await chat.send(zhang, "/reviews")
    assert "已点评 1，已送达 0" in sent.last(zhang).text


async def test_telegrams_403_marks_the_reviewee_unreachable(quarter, chat, api, runtime):
    """The adapter's part: a blocked chat's 403 makes the account unreachable."""
    zhang, zheng = quarter["张明"], quarter["郑强"]
    api.block(zheng.user_id)
    await review_zheng(chat, zhang)
    await chat.tap(zhang, "发送点评")
    assert not any("张明对您的点评" in t for t in api.texts(zheng.user_id))
    member_id = (await ids(runtime))["郑强"]
    assert await blocked_since(runtime, member_id, "telegram") is not None
    await chat.send(zhang, "/reviews")
    assert "已点评 1，已送达 0" in api.last(zhang.user_id).text


def test_requirements_split_into_one_item_per_line_or_number():
    assert rectification.split_items("2026年12月前完成。") == ["2026年12月前完成"]
    assert rectification.split_items("12.31前完成学习") == ["12.31前完成学习"]
    assert rectification.split_items("1、甲；2、乙\n（3）丙\n\n- 丁") == ["甲", "乙", "丙", "丁"]


async def test_only_those_with_open_items_are_chased_for_the_rectification_step(
    quarter, chat, sent, runtime, clock
):
    zhang, zheng, feng = quarter["张明"], quarter["郑强"], quarter["冯磊"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    for day in range(17, 30):  # through 12-17 … 12-29, past the 整改落实 deadline of 12-20
        clock.set(at(30 + day, 10))
        await delivery.tick(runtime)
    step_title = "第四季度整改落实"
    assert any(step_title in t and "截止" in t for t in sent.texts(zheng))
    assert not any(step_title in t and "截止" in t for t in sent.texts(feng))


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
    quarter, chat, sent, runtime
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
    await chat.press(zhang, ReviewStep(review.id, "send").pack())
    assert sent.toasts(zhang) == [toast(runtime, "review_not_yours")]
    await chat.press(zhang, f"rv:member:0{known['郑强']}")  # another spelling of the same key
    assert sent.toasts(zhang) == [toast(runtime, "review_not_yours")] * 2
    async with runtime.db.session() as session:
        assert len((await session.exec(select(Review))).all()) == 1
    assert (await the_review(runtime, review.reviewee)).status == ReviewStatus.DRAFT


async def test_a_note_on_a_carried_item_is_held_to_its_own_limit(quarter, chat, sent, clock):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await review_zheng(chat, zhang, requirements="按时参加组织生活")
    await chat.tap(zhang, "发送点评")
    clock.set(at(65, 10))
    await chat.send(zheng, "/summary")
    await chat.send(zheng, "长" * 600)
    assert sent.last(zheng).key == "text_too_long"
    assert "最多还能写 500 字" in sent.last(zheng).text
