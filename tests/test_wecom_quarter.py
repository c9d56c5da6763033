# ruff: noqa: F811 — test_wecom's fixtures are imported, then asked for by name
"""A whole quarter through WeCom: a member, a secretary and the organiser, driven through the
real callback endpoint with signed, encrypted callbacks, against the local WeCom
(bot/channels/wecom/local_server.py); the clock is the injected ManualClock, and the
periodic jobs run as it moves (bot.jobs.SteppedJobs).

Also the bad input the issue lists that tests/test_wecom.py does not cover yet.
"""

import logging
import re
from datetime import timedelta

import pytest
from sqlmodel import delete, select

from bot.channels.local.chat import move_clock
from bot.channels.wecom.channel import TEXT_BYTES
from bot.channels.wecom.inbound import CHANNEL
from bot.cli import demo
from bot.jobs import SteppedJobs, periodic_jobs
from bot.logs import LIBRARY_CAPS
from storage.models import ChannelAccount, EvaluationRound, IntakeUpdate, Member
from tests.test_evaluation_anonymity import LEADER, open_round_with_a_code
from tests.test_wecom import (  # noqa: F401 — fixtures, used by name
    fake,
    members,
    people,
    pusher,
    say,
    tap,
    texts,
    wecom,
)


@pytest.fixture
async def quarter(wecom, members, runtime):
    """The demo organisation bound on WeCom, its campaign laid from today."""
    await demo.seed_campaign(runtime)
    return SteppedJobs(wecom.channel.runtime, periodic_jobs(runtime.settings), runtime.clock.now())


async def clock_to(runtime, jobs: SteppedJobs, spec: str) -> None:
    """Move the clock (`+3d`, `10:00`…), every job that fell due running on the way."""
    await move_clock(runtime.clock, jobs, runtime.settings.zone, spec)


def everything(fake, user: str) -> str:
    """All a member received: messages, and the cards as updated after a tap."""
    shown = [item.text for item in fake.to(user)]
    for update in fake.updates:
        if update["userids"] == [user]:
            card = update.get("template_card") or {}
            shown.append(card.get("main_title", {}).get("title", ""))
            shown.append(card.get("sub_title_text", ""))
    return "\n".join(shown)


async def test_a_quarter_for_a_member_a_secretary_and_the_organiser_through_wecom(
    quarter, pusher, wecom, fake, members, runtime, caplog
):
    # Everything ours logs, at any level; the libraries as far as the bot ever lets them.
    caplog.set_level(logging.DEBUG)
    for library, cap in LIBRARY_CAPS.items():
        caplog.set_level(cap, logger=library)
    jobs = quarter
    zhang, zhou = members["张明"], members["周敏"]  # the secretary, the organiser
    zheng = "ZhengQiang"  # the member, whose WeCom account is not bound yet
    fake.members.add(zheng)
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "郑强"))).one()
        await session.exec(
            delete(ChannelAccount).where(
                ChannelAccount.member_id == member.id, ChannelAccount.channel == CHANNEL
            )
        )

    # Onboarding: the secretary asks for his invite; WeCom shows the words to send.
    await say(pusher, wecom, pusher.text(zhang, "/invites 郑强"))
    (code,) = re.findall(r"/start ([\w-]+)", texts(fake, zhang)[-1])
    await say(pusher, wecom, pusher.text(zheng, f"/start {code}"))
    assert any("郑强同志，欢迎您" in text for text in texts(fake, zheng))
    async with runtime.db.session() as session:
        bound = (
            await session.exec(select(ChannelAccount).where(ChannelAccount.external_id == zheng))
        ).one()
    assert bound.member_id == member.id and bound.channel == CHANNEL

    # A pledge, in one message; 承诺 lists it, each pledge with its buttons on a card.
    await say(
        pusher, wecom, pusher.text(zheng, "/pledge 办好窗口业务 | 每天提前十分钟到岗 | 2026-12-31")
    )
    await say(pusher, wecom, pusher.text(zheng, "承诺"))
    assert "办好窗口业务" in everything(fake, zheng)

    # The self-summary, once the quarter's summaries open.
    await clock_to(runtime, jobs, "+9d")
    await clock_to(runtime, jobs, "10:00")
    await say(pusher, wecom, pusher.text(zheng, "小结"))
    await tap(pusher, wecom, fake, zheng, "已兑现")
    for words in ("窗口零投诉", "本季度办件三百余件", "学习不够系统"):
        await say(pusher, wecom, pusher.text(zheng, words))
    await tap(pusher, wecom, fake, zheng, "跳过")
    await say(pusher, wecom, pusher.text(zheng, "制定学习计划"))
    await tap(pusher, wecom, fake, zheng, "确认提交")
    assert "自我小结已提交" in everything(fake, zheng)

    # The secretary's review (点评): 郑强 reads it (已阅), reports the rectification done,
    # and the secretary confirms it.
    await say(pusher, wecom, pusher.text(zhang, "点评"))
    await tap(pusher, wecom, fake, zhang, "郑强")
    await say(pusher, wecom, pusher.text(zhang, "窗口服务热情周到"))
    await tap(pusher, wecom, fake, zhang, "跳过")
    await tap(pusher, wecom, fake, zhang, "跳过")
    await say(pusher, wecom, pusher.text(zhang, "每周集中学习一次"))
    await tap(pusher, wecom, fake, zhang, "发送点评")
    await tap(pusher, wecom, fake, zheng, "已阅")
    assert texts(fake, zheng)[-1].endswith("✅ 已阅。")
    assert fake.updates[-1]["button"]["replace_name"] == "已阅，谢谢"
    await say(pusher, wecom, pusher.text(zheng, "整改"))
    await tap(pusher, wecom, fake, zheng, "已完成")
    await say(pusher, wecom, pusher.text(zheng, "每周三晚集中学习"))
    await tap(pusher, wecom, fake, zhang, "确认完成")
    assert "已经点评人确认完成" in everything(fake, zheng)

    # 群众评议: the organiser opens the round; members rate their secretary through cards.
    await clock_to(runtime, jobs, "+8d")
    await clock_to(runtime, jobs, "10:00")
    await say(pusher, wecom, pusher.text(zhou, "/evaluation"))
    await tap(pusher, wecom, fake, zhou, "开启群众评议")
    await tap(pusher, wecom, fake, zhou, "确认开启")
    updates_before = len(fake.updates)
    raters = [zheng] + [members[name] for name in ("冯磊", "许涛", "王秀英", "何静")]
    comments = {zheng: "张书记办事公道", members["许涛"]: "带头作用好"}
    chosen = [
        key
        for rater in raters
        for key in await ballot(pusher, wecom, fake, rater, "张明", comments.get(rater))
    ]
    assert any("对 张明 的评议已收到" in text for text in texts(fake, zheng))
    # A ballot's card, as it changes after each tap, is shown to the rater alone.
    for update in fake.updates[updates_before:]:
        assert len(update["userids"]) == 1 and update["userids"][0] in raters
    # The secretary sees who has rated, never what anyone chose.
    await say(pusher, wecom, pusher.text(zhang, "/evaluation"))
    progress = texts(fake, zhang)[-1]
    assert "党员已评完" in progress and "满意" not in progress
    await say(pusher, wecom, pusher.text(zhou, "/evaluation"))
    await tap(pusher, wecom, fake, zhou, "结束评议")
    await tap(pusher, wecom, fake, zhou, "确认结束")
    await say(pusher, wecom, pusher.text(zhang, "/results"))
    results = texts(fake, zhang)[-1]
    assert "5 人评议" in results and "总体满意率 100%" in results
    assert "张书记办事公道" not in results  # two comments: fewer than five, so none is shown
    # Nothing of a ballot reached a log.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not any(key in logged for key in chosen)
    assert not any(comment in logged for comment in comments.values())
    async with runtime.db.session() as session:
        stored = "\n".join(str(row.payload) for row in (await session.exec(select(IntakeUpdate))))
    assert not any(comment in stored for comment in comments.values())

    # The weekly digest came to the secretary on Mondays; 周报 asks for it, and its
    # workbook goes out through media/upload.
    assert any("每周简报" in item.text for item in fake.to(zhang))
    await say(pusher, wecom, pusher.text(zhang, "周报"))
    await tap(pusher, wecom, fake, zhang, "导出 Excel")
    (workbook,) = [item for item in fake.to(zhang) if item.msgtype == "file"]
    media = workbook.body["file"]["media_id"]
    assert fake.upload_names[media].endswith(".xlsx") and fake.uploads[media][:2] == b"PK"

    # 评选表彰: the secretary nominates 郑强, a grader grades, the organiser confirms and
    # announces; the compiled deeds go to the organiser through media/upload.
    await demo.seed_selection(runtime)
    await say(pusher, wecom, pusher.text(zhang, "/commendation"))
    await tap(pusher, wecom, fake, zhang, "推荐：优秀共产党员")
    await tap(pusher, wecom, fake, zhang, "郑强")
    await say(pusher, wecom, pusher.text(zhang, "郑强同志扎根窗口一线，全年办件三百余件，零投诉。"))
    await clock_to(runtime, jobs, "+8d")  # the nominations have closed
    assert any("您已被推荐参评" in item.text for item in fake.to(zheng))
    await clock_to(runtime, jobs, "10:00")
    wang = members["王志刚"]
    await say(pusher, wecom, pusher.text(wang, "/commendation"))
    await tap(pusher, wecom, fake, wang, "开始评定")
    await tap(pusher, wecom, fake, wang, "一等奖")
    await tap(pusher, wecom, fake, wang, "提交评定")
    await say(pusher, wecom, pusher.text(zhou, "/commendation"))
    await tap(pusher, wecom, fake, zhou, "确定名单")
    await tap(pusher, wecom, fake, zhou, "仍然确定名单")
    await tap(pusher, wecom, fake, zhou, "公布")
    await clock_to(runtime, jobs, "+1h")
    for user in (zheng, members["谢婷"]):
        assert any("评选结果" in t and "一等奖：郑强" in t for t in texts(fake, user)), user
    (compiled,) = [item for item in fake.to(zhou) if item.msgtype == "file"]
    media = compiled.body["file"]["media_id"]
    assert fake.upload_names[media].endswith(".docx") and fake.uploads[media][:2] == b"PK"
    # Every text within WeCom's 2,048 bytes, every card within its 6 buttons.
    for item in fake.delivered:
        if item.msgtype == "text":
            assert len(item.text.encode()) <= TEXT_BYTES
        assert len(item.buttons) <= 6


async def ballot(pusher, wecom, fake, user: str, target: str, comment: str | None) -> list[str]:
    """One member's ballot through cards: the target, the first level on every item, a
    comment or none, confirmed; the payloads of the levels chosen."""
    await say(pusher, wecom, pusher.text(user, "评议"))
    await tap(pusher, wecom, fake, user, target)
    chosen = []
    while any(key.startswith("evb:") for _label, key in buttons(fake, user)):
        chosen.append(await tap(pusher, wecom, fake, user, "1"))
    if comment:
        await say(pusher, wecom, pusher.text(user, comment))
    else:
        await tap(pusher, wecom, fake, user, "1")  # 不写意见
    await tap(pusher, wecom, fake, user, "1")  # 确认提交
    return chosen


def buttons(fake, user: str) -> list[tuple[str, str]]:
    card = fake.last_card(user) or {}
    return [(button["text"], button["key"]) for button in card.get("button_list", ())]


# --- bad input ---------------------------------------------------------------------------------


async def test_an_old_card_tapped_after_its_step_has_passed_changes_nothing(
    quarter, pusher, wecom, fake, members, runtime
):
    zhou = members["周敏"]
    runtime.clock.advance(timedelta(days=17))  # the evaluation step has begun
    await say(pusher, wecom, pusher.text(zhou, "/evaluation"))
    await tap(pusher, wecom, fake, zhou, "开启群众评议")
    (confirm,) = [c for c in fake.timeline if c.msgtype == "update" and "确认开启" in str(c.body)]
    await tap(pusher, wecom, fake, zhou, "确认开启")
    # The confirmation card, tapped again days later (WeCom still shows its button).
    runtime.clock.advance(timedelta(days=2))
    before = len(texts(fake, zhou))
    card = confirm.body["template_card"]
    task, key = card["task_id"], card["button_list"][0]["key"]
    await say(pusher, wecom, pusher.tap(zhou, task, key, fake.card_code(task)))
    # Nothing opens twice: the card's button gives way, and a polite message says why.
    assert fake.updates[-1]["button"]["replace_name"] == "已选择"
    assert texts(fake, zhou)[-1] == "没能开启评议：\n· 这个季度已经有一轮群众评议了。"
    async with runtime.db.session() as session:
        assert len((await session.exec(select(EvaluationRound))).all()) == 1
    assert len(texts(fake, zhou)) == before + 1


async def test_a_ballot_tap_wecom_pushes_again_counts_once(pusher, wecom, fake, members, runtime):
    await open_round_with_a_code(runtime)
    li = members["李建国"]
    await say(pusher, wecom, pusher.text(li, "评议"))
    await tap(pusher, wecom, fake, li, LEADER)
    card = fake.last_card(li)
    assert "第 1/" in card["sub_title_text"]
    level = card["button_list"][0]["key"]
    pressed = pusher.tap(li, card["task_id"], level, fake.card_code(card["task_id"]))
    # No answer within 5 seconds, as WeCom saw it: the same event, its response code and
    # all, three more times; the card moves on by one item, updated once.
    updates = len(fake.updates)
    assert await say(pusher, wecom, pressed, times=4) == [200] * 4
    (update,) = fake.updates[updates:]
    assert "第 2/" in update["template_card"]["sub_title_text"]


async def test_a_member_writing_more_than_2048_bytes_reads_it_back_whole(
    quarter, pusher, wecom, fake, members, runtime
):
    zheng = members["郑强"]
    runtime.clock.advance(timedelta(days=9))  # the self-summaries are open
    answer = "本季度按时办结窗口业务，主动靠前服务经营户。" * 40  # 880 characters, 2,640 bytes
    assert len(answer.encode()) > TEXT_BYTES
    await say(pusher, wecom, pusher.text(zheng, "小结"))
    await say(pusher, wecom, pusher.text(zheng, answer))
    for _ in range(3):
        await tap(pusher, wecom, fake, zheng, "跳过")
    received = fake.to(zheng)
    assert all(len(item.text.encode()) <= TEXT_BYTES for item in received)
    # The preview is longer than a card holds: texts first, cut within WeCom's limit and
    # never inside a character, then the card with its buttons.
    start = max(
        i
        for i, item in enumerate(received)
        if item.msgtype == "text" and item.text.startswith("请看一下")
    )
    *parts, card = received[start:]
    assert len(parts) > 1 and all(part.msgtype == "text" for part in parts)
    # The card carries the buttons and the preview's last words (its title a line of them).
    body = card.body["template_card"].get("sub_title_text", "")
    assert card.msgtype == "template_card" and any("确认提交" in label for label, _ in card.buttons)
    assert answer in "".join(part.text for part in parts) + body
    await tap(pusher, wecom, fake, zheng, "确认提交")
    assert "自我小结已提交" in texts(fake, zheng)[-1]
