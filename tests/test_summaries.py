"""Quarterly self-summaries by chat: drafts that survive anything, submitted once, seen by few.

All through the channel contract (the local channel)."""

import asyncio
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import event
from sqlmodel import select

import handlers
from bot import delivery
from bot.channels.local.chat import LocalChat
from bot.core import summaries
from bot.core.access import Actor
from bot.core.summaries import ReadSummary, SummaryPledgeStatus, SummaryStep
from storage.models import (
    Member,
    Pledge,
    PledgeStatus,
    StepDone,
    Summary,
    SummaryPledge,
    SummaryStatus,
)
from tests.test_pledges import feed, payloads
from tests.test_reminders import at, load
from tests.test_reviews import toast

QUARTER = """
[campaign]
name = "测试活动"
timezone = "Asia/Shanghai"

[[phases]]
name = "全面推进"
start = 2026-11-23
end = 2026-12-31

[[quarters]]
name = "第四季度"
summary_opens = 2026-11-23
summary_due = 2026-11-30
evaluation_opens = 2026-12-02
evaluation_due = 2026-12-08
rectification_due = 2026-12-20
"""


@pytest.fixture
async def quarter(runtime, people, chat):
    await load(runtime, QUARTER)
    await chat.send(people["郑强"], "/pledge 办好窗口业务 | 提前到岗")
    return people


async def the_summary(runtime, name="郑强") -> Summary:
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == name))).one()
        return (await session.exec(select(Summary).where(Summary.member_id == member.id))).one()


async def the_pledge(runtime) -> Pledge:
    async with runtime.db.session() as session:
        return (await session.exec(select(Pledge))).one()


async def write_up_to_confirm(chat, person):
    await chat.send(person, "/summary")
    assert await chat.tap(person, "已兑现")
    await chat.send(person, "每天都提前到岗")
    await chat.send(person, "窗口业务零投诉")
    await chat.send(person, "学习不够系统")
    assert await chat.tap(person, "跳过")
    await chat.send(person, "制定学习计划")


async def test_a_full_summary_is_written_previewed_and_submitted(quarter, chat, sent, runtime):
    zheng = quarter["郑强"]
    await write_up_to_confirm(chat, zheng)
    assert sent.keys(zheng)[1:] == [
        "summary_ask_pledge",
        "summary_ask_text",  # the pledge's note
        "summary_ask_text",  # 总结成绩
        "summary_ask_text",  # 查找问题
        "summary_ask_text",  # 分析原因, skipped
        "summary_ask_text",  # 下一步打算
        "summary_preview",
    ]
    summary = await the_summary(runtime)
    pledge = await the_pledge(runtime)
    assert SummaryPledgeStatus(summary.id, pledge.id, "kept").pack() in payloads(sent.to(zheng)[1])
    preview = sent.last(zheng)
    assert "窗口业务零投诉" in preview.text
    assert "办好窗口业务：已兑现（每天都提前到岗）" in preview.text
    assert SummaryStep(summary.id, "submit").pack() in payloads(preview)
    assert await chat.tap(zheng, "确认提交")
    assert sent.last(zheng).key == "summary_submitted" and "郑强同志" in sent.last(zheng).text
    summary = await the_summary(runtime)
    assert (summary.status, summary.late, summary.causes) == (SummaryStatus.SUBMITTED, False, "")
    async with runtime.db.session() as session:
        done = (await session.exec(select(StepDone))).all()
    assert (await the_pledge(runtime)).status == PledgeStatus.KEPT  # the 回头看 updates it
    assert [d.step_id for d in done] == [summary.step_id]
    # The secretary's workbook has the 回头看 too, not only the four answers.
    zhang = quarter["张明"]
    await chat.send(zhang, "/export")
    document = [item for item in sent.to(zhang) if item.kind == "file"][-1]
    rows = list(load_workbook(io.BytesIO(document.content))["自我小结"].values)
    assert rows[0][-1] == "回头看"
    assert next(r for r in rows if r[1] == "郑强")[-1] == "办好窗口业务：已兑现（每天都提前到岗）"


async def test_a_typed_answer_is_one_read_and_one_write(quarter, chat, api, runtime):
    """Who is answering and which conversation they are in are known from the updates
    before: a typed answer reads the summary with its notes and writes the answer with the
    next question, besides the roster's version every update reads."""
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    assert await chat.tap(zheng, "已兑现")
    await chat.send(zheng, "每天都提前到岗")
    statements = []

    def note(_connection, _cursor, statement, *_rest) -> None:
        statements.append(" ".join(statement.split()[:4]))

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", note)
    try:
        await chat.send(zheng, "窗口业务零投诉")
    finally:
        event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", note)
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT", "UPDATE"]
    assert "rosterversion" in statements[0] and statements[2].startswith("UPDATE summary SET")
    assert (await the_summary(runtime)).achievements == "窗口业务零投诉"
    assert "问题" in api.last(zheng.user_id).text  # on to the next question


async def test_a_conversation_left_and_taken_up_again(quarter, chat, api, runtime):
    """The conversation known with the member follows every state written: left with
    /cancel, words are not taken as answers; /summary takes it up where it stopped."""
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    assert await chat.tap(zheng, "已兑现")
    await chat.send(zheng, "/cancel")
    await chat.send(zheng, "每天都提前到岗")
    assert "没有理解" in api.last(zheng.user_id).text
    await chat.send(zheng, "/summary")
    await chat.send(zheng, "每天都提前到岗")
    async with runtime.db.session() as session:
        review = (await session.exec(select(SummaryPledge))).one()
    assert review.note == "每天都提前到岗"


async def test_a_summary_written_across_a_restart(quarter, chat, runtime, clock):
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    await chat.tap(zheng, "进行中")
    await chat.send(zheng, "过半")
    await chat.send(zheng, "重启前写的成绩")
    clock.advance(timedelta(days=2))  # the phone slept, the bot restarted
    fresh = LocalChat(runtime, handlers.routes(), clock)
    await fresh.send(zheng, "重启后写的问题")  # the flow is still there
    await fresh.send(zheng, "/summary")  # and /summary resumes too
    resumed = fresh.channel.last(zheng)
    assert resumed.key == "summary_ask_text" and "欢迎回来" in resumed.text
    await fresh.send(zheng, "原因")
    await fresh.send(zheng, "下一步")
    assert await fresh.tap(zheng, "确认提交")
    assert fresh.channel.last(zheng).key == "summary_submitted"
    summary = await the_summary(runtime)
    assert (summary.achievements, summary.problems, summary.status) == (
        "重启前写的成绩",
        "重启后写的问题",
        SummaryStatus.SUBMITTED,
    )


async def test_reopened_while_open_read_only_after_close(quarter, chat, sent, runtime, clock):
    zheng = quarter["郑强"]
    await write_up_to_confirm(chat, zheng)
    await chat.tap(zheng, "确认提交")
    summary = await the_summary(runtime)
    await chat.send(zheng, "/summary")
    assert SummaryStep(summary.id, "edit").pack() in payloads(sent.last(zheng))
    assert await chat.tap(zheng, "修改")  # reopen: answers are kept
    assert await chat.tap(zheng, "已兑现")
    assert await chat.tap(zheng, "保留原内容")
    await chat.send(zheng, "改过的成绩")
    for _ in range(3):
        assert await chat.tap(zheng, "保留原内容") or await chat.tap(zheng, "跳过")
    assert await chat.tap(zheng, "确认提交")
    assert sent.last(zheng).key == "summary_submitted"
    assert (await the_summary(runtime)).achievements == "改过的成绩"
    clock.set(at(31, 10))  # 12-01: the window has closed
    await chat.send(zheng, "/summary")
    view = sent.last(zheng)
    assert view.key == "summary_view" and "仅供查看" in view.text and not view.buttons
    await chat.press(zheng, SummaryStep(summary.id, "edit").pack())
    assert sent.toasts(zheng)[-1] == toast(runtime, "summary_closed")
    assert sent.last(zheng) is view


async def test_a_late_summary_is_taken_and_marked_late(quarter, chat, sent, runtime, clock):
    clock.set(at(32, 10))
    feng = quarter["冯磊"]
    await chat.send(feng, "/summary")
    assert sent.last(feng).key == "summary_ask_text"
    assert "现在提交也很好，会标注为补交" in sent.last(feng).text
    for answer in ("成绩", "问题", "原因", "下一步"):
        await chat.send(feng, answer)
    assert await chat.tap(feng, "确认提交")
    assert sent.last(feng).key == "summary_submitted" and "已标注为补交" in sent.last(feng).text
    assert (await the_summary(runtime, "冯磊")).late is True


async def test_bad_input_never_loses_the_draft(quarter, chat, sent, runtime):
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    await chat.send(zheng, "打字而不是按按钮")
    assert sent.last(zheng).key == "summary_use_buttons"
    await chat.tap(zheng, "已兑现")
    await chat.tap(zheng, "跳过")
    await feed(chat, zheng, other=True)  # a voice message
    assert sent.last(zheng).key == "text_needed"
    await chat.send(zheng, "成" * 1000)
    too_long = "问" * 600
    await chat.send(zheng, too_long)
    refusal = sent.last(zheng)
    assert refusal.key == "text_too_long"
    assert "共 600 字，这里最多还能写 500 字（小结全文不超过 1500 字）" in refusal.text
    assert too_long in refusal.text
    assert (await the_summary(runtime)).refused_text == too_long
    await chat.send(zheng, "/summary")  # coming back later, the refused text is offered again
    assert sent.last(zheng).key == "summary_ask_text" and too_long in sent.last(zheng).text
    await chat.send(zheng, "/phase")  # a command in the middle…
    await chat.send(zheng, "问" * 400)  # …and the shortened text is taken
    summary = await the_summary(runtime)
    assert (len(summary.achievements), len(summary.problems), summary.stage) == (
        1000,
        400,
        "causes",
    )


async def test_double_taps_and_two_phones_submit_once(quarter, chat, sent, runtime, clock):
    zheng = quarter["郑强"]
    await write_up_to_confirm(chat, zheng)
    keyboard = chat.last_with_buttons(zheng)
    submit = SummaryStep((await the_summary(runtime)).id, "submit").pack()
    assert keyboard.buttons[0][1] == submit
    await chat.press(zheng, submit, keyboard)
    await chat.press(zheng, submit, keyboard)
    assert sent.keys(zheng).count("summary_submitted") == 1
    assert sent.toasts(zheng)[-1] == toast(runtime, "summary_already_submitted")


async def test_concurrent_submissions_count_once(quarter, chat, runtime, clock):
    zheng = quarter["郑强"]
    await write_up_to_confirm(chat, zheng)
    summary_id = (await the_summary(runtime)).id

    async def submit() -> bool:
        async with runtime.db.session() as session:
            summary = await session.get(Summary, summary_id)
            member = await session.get(Member, summary.member_id)
            quarter_now = await summaries.current_quarter(
                session, organisation_id=1, now=clock.now()
            )
            return await summaries.submit(
                session,
                summary=summary,
                quarter=quarter_now,
                actor=Actor.of(member),
                now=clock.now(),
            )

    results = await asyncio.gather(submit(), submit(), return_exceptions=True)
    assert sum(r is True for r in results) == 1
    async with runtime.db.session() as session:
        assert len((await session.exec(select(StepDone))).all()) == 1


async def test_elderly_members_get_the_short_form(quarter, chat, sent, runtime):
    wang = quarter["王秀英"]
    await chat.send(wang, "/pledge 每周读报 | 和老同志一起")
    await chat.send(wang, "/summary")
    await chat.tap(wang, "进行中")  # no note asked
    assert sent.last(wang).key == "summary_ask_text" and "总结成绩" in sent.last(wang).text
    await chat.send(wang, "坚持读报")
    assert sent.last(wang).key == "summary_ask_text"
    assert "下一步打算" in sent.last(wang).text  # no 问题, no 原因
    await chat.tap(wang, "跳过")
    assert sent.last(wang).key == "summary_preview"
    assert sent.keys(wang)[-4:] == [
        "summary_ask_pledge",
        "summary_ask_text",
        "summary_ask_text",
        "summary_preview",
    ]


async def test_who_may_read_a_summary(quarter, chat, sent, runtime):
    zheng = quarter["郑强"]
    await write_up_to_confirm(chat, zheng)
    await chat.tap(zheng, "确认提交")
    summary = await the_summary(runtime)
    zhang = quarter["张明"]  # his branch secretary, and his reviewer
    await chat.send(zhang, "/summaries")
    overview = sent.last(zhang)
    assert overview.key == "summary_branch"
    assert "已提交 1 人" in overview.text and "尚未开始" in overview.text
    assert "冯磊" in overview.text
    assert ReadSummary(summary.id).pack() in payloads(overview)
    assert await chat.tap(zhang, "郑强")
    view = sent.last(zhang)
    assert view.key == "summary_view" and "郑强 · 自我小结" in view.text
    assert "窗口业务零投诉" in view.text
    assert "已截止" not in view.text  # the window is still open
    for outsider in ("冯磊", "马俊", "周敏"):  # a fellow member, another secretary, the organiser
        await chat.press(quarter[outsider], ReadSummary(summary.id).pack())
        assert "summary_view" not in sent.keys(quarter[outsider])
        assert not any("窗口业务零投诉" in t for t in sent.texts(quarter[outsider]))
    async with runtime.db.session() as session:
        liaison = (await session.exec(select(Member).where(Member.name == "李建国"))).one()
        secretary = (await session.exec(select(Member).where(Member.name == "张明"))).one()
        assert await summaries.may_read(session, actor=Actor.of(secretary), summary=summary)
        assert not await summaries.may_read(session, actor=Actor.of(liaison), summary=summary)


async def test_a_draft_left_for_a_day_gets_one_nudge(quarter, chat, sent, runtime, clock):
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    await chat.tap(zheng, "已兑现")
    for hours in (20, 6, 24, 24):
        clock.advance(timedelta(hours=hours))
        await delivery.tick(runtime)
    # A reminder message may carry several reminders: its key lists them all.
    (nudge,) = [m for m in sent.to(zheng) if "reminder_summary_draft" in m.key.split(",")]
    assert "还差几步就完成了" in nudge.text
    async with runtime.db.session() as session:
        assert len((await session.exec(select(SummaryPledge))).all()) == 1


async def test_the_secretary_writes_the_branch_summary_the_same_way(quarter, chat, sent, runtime):
    zhang = quarter["张明"]
    await chat.send(zhang, "/pledge branch 建设学习型支部 | 每月集中学习")
    await chat.send(zhang, "/summary branch")
    assert await chat.tap(zhang, "进行中")
    for answer in ("已学习三次", "支部学习到课率高", "个别同志参加少", "工学矛盾", "灵活安排"):
        await chat.send(zhang, answer)
    assert await chat.tap(zhang, "确认提交")
    assert sent.last(zhang).key == "summary_submitted"
    async with runtime.db.session() as session:
        branch_summary = (
            await session.exec(select(Summary).where(Summary.member_id.is_(None)))
        ).one()
    assert (
        branch_summary.owner.startswith("branch:")
        and branch_summary.status == SummaryStatus.SUBMITTED
    )
    await chat.send(quarter["郑强"], "/summary branch")
    assert sent.last(quarter["郑强"]).key == "not_allowed"
    assert "没有这项权限" in sent.last(quarter["郑强"]).text


async def test_summary_text_is_normalised_at_the_door(quarter, chat, sent, runtime):
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    assert await chat.tap(zheng, "已兑现")
    await chat.send(zheng, "每天都\x00提前到岗")  # PostgreSQL refuses a NUL byte
    await chat.send(zheng, "\u200b\u200c\u2060")  # 总结成绩 of invisible characters only
    assert sent.last(zheng).key == "text_needed"
    await chat.send(zheng, "窗口业务\x00零投诉\x0c")
    summary = await the_summary(runtime)
    async with runtime.db.session() as session:
        (note,) = (await session.exec(select(SummaryPledge))).all()
    assert (summary.achievements, note.note) == ("窗口业务零投诉", "每天都提前到岗")


async def test_a_pledge_button_sent_before_the_upgrade_still_works(quarter, chat, runtime):
    zheng = quarter["郑强"]
    await chat.send(zheng, "/summary")
    summary = await the_summary(runtime)
    pledge = await the_pledge(runtime)
    # The button as the version before the channel contract packed it.
    await chat.press(zheng, f"sum:{summary.id}:p:{pledge.id}:kept")
    async with runtime.db.session() as session:
        [answer] = (await session.exec(select(SummaryPledge))).all()
    assert answer.status == PledgeStatus.KEPT
