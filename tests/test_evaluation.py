"""群众评议 through the channel contract: rounds, ballots, codes, thresholds, frozen settings.
One test stays on Telegram: evaluation codes given out as t.me links."""

import asyncio
import re
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

import handlers
from bot import delivery
from bot.__main__ import main
from bot.channels import local
from bot.channels.local.chat import LocalChat, Person
from bot.core import ballot_counting, evaluation, evaluation_codes, evaluation_results
from bot.core.access import Account, Actor
from bot.core.ballots import ChooseLevel, ChooseTarget
from bot.core.contract import Inbound, Kind
from bot.core.evaluation import Outcome, Rater, RoundSettings
from bot.core.evaluation_results import ShowResults
from bot.runtime import Runtime
from storage import people as people_queries
from storage.models import (
    Branch,
    EvaluationCode,
    EvaluationCodeUse,
    EvaluationComment,
    EvaluationParticipation,
    EvaluationRound,
    EvaluationTally,
    Member,
    Summary,
)
from tests.test_reminders import at, got, load
from tests.test_reviews import TWO_QUARTERS, ids
from tests.test_summaries import QUARTER

CLOSES = timedelta(days=5)


async def open_round(runtime, **options) -> EvaluationRound:
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        opened = await evaluation.open_round(
            session,
            organisation_id=organisation.id,
            quarter=options.pop("quarter", "第四季度"),
            closes_at=runtime.clock.now() + options.pop("closes", CLOSES),
            now=runtime.clock.now(),
            **options,
        )
    assert isinstance(opened, EvaluationRound), opened
    return opened


@pytest.fixture
async def running(runtime, people) -> EvaluationRound:
    return await open_round(runtime)


async def rate(chat, person, target: str, levels: list[int], comment: str | None = None) -> None:
    """/rate, the target, one tap per item (level numbers from 1), a comment or none, confirm."""
    await chat.send(person, "/rate")
    assert await chat.tap(person, target), target
    for level in levels:
        assert await chat.tap(person, str(level))
    if comment is None:
        assert await chat.tap(person, "1")  # 不写意见
    else:
        await chat.send(person, comment)
    assert await chat.tap(person, "1")  # 确认提交


async def counts(runtime, target: str) -> dict[tuple[int, int], int]:
    async with runtime.db.session() as session:
        rows = (
            await session.exec(select(EvaluationTally).where(EvaluationTally.target == target))
        ).all()
    return {(r.item, r.level): r.count for r in rows if r.count}


async def comments_on(runtime, target: str) -> list[str]:
    async with runtime.db.session() as session:
        rows = await session.exec(
            select(EvaluationComment.text).where(EvaluationComment.target == target)
        )
        return list(rows.all())


async def close_and_count(runtime, evaluation_round: EvaluationRound) -> None:
    """The organiser closes the round; what still waits for its batch is counted."""
    async with runtime.db.session() as session:
        await evaluation.close_round(
            session,
            evaluation_round=await session.get(EvaluationRound, evaluation_round.id),
            now=runtime.clock.now(),
        )
    assert await ballot_counting.count_ended_rounds(runtime) == 1


async def participation(runtime) -> set[tuple[str, str]]:
    async with runtime.db.session() as session:
        rows = (await session.exec(select(EvaluationParticipation))).all()
    return {(r.rater, r.target) for r in rows}


def labels(message) -> list[str]:
    return [label for label, _payload in message.buttons]


async def feed(chat, person, kind: Kind, **fields) -> None:
    """What the local chat's own methods do not send: an edit, a sticker."""
    account = Account(local.CHANNEL, str(person.user_id))
    inbound = Inbound(kind, account, str(person.user_id), True, language="zh-hans", **fields)
    await chat.routes.dispatch(inbound, chat.channel, chat.runtime)


# --- the ballot ----------------------------------------------------------------------------


async def test_a_member_rates_a_colleague_item_by_item(runtime, chat, sent, people, running):
    zheng, zhang = people["郑强"], people["张明"]
    who = await ids(runtime)
    await chat.send(zheng, "/rate")
    assert sent.keys(zheng) == ["rate_list"]
    listing = sent.last(zheng)
    # Seed 004: the leadership team, his own branch and its members; never himself.
    for name in ("王志刚", "李建国", "市场管理党支部", "张明", "王秀英"):
        assert name in listing.text
    assert "郑强" not in listing.text
    assert "执法大队党支部" not in listing.text and "黄勇" not in listing.text
    offered = dict(listing.buttons)
    assert offered["张明"] == ChooseTarget(running.id, "member", who["张明"]).pack()
    assert (
        offered["市场管理党支部"]
        == ChooseTarget(running.id, "branch", who["市场管理党支部"]).pack()
    )
    assert "郑强" not in offered and "黄勇" not in offered
    assert await chat.tap(zheng, "张明")
    first = sent.last(zheng)
    assert first.key == "ballot_item"
    assert "1/6" in first.text and "参加创先争优活动情况" in first.text
    assert labels(first)[:4] == ["满意", "比较满意", "基本满意", "不满意"]
    assert all(ChooseLevel.parse(payload) for _label, payload in first.buttons[:4])
    for level in (1, 2, 1, 1, 4, 2):
        assert await chat.tap(zheng, str(level))
    assert sent.last(zheng).key == "ballot_comment_ask"
    assert "意见建议" in sent.last(zheng).text
    await chat.send(zheng, "希望多到市场一线走走")
    summary = sent.last(zheng)
    assert summary.key == "ballot_summary"
    assert "工作作风情况：不满意" in summary.text and "希望多到市场一线走走" in summary.text
    assert "提交后不能再修改" in summary.text and "匿名" in summary.text
    assert await chat.tap(zheng, "确认提交")
    assert sent.toasts(zheng)[-1] == "已收到"
    assert sent.keys(zheng)[-2:] == ["ballot_received", "rate_list"]
    received = sent.texts(zheng)[-2]
    assert "已收到" in received and "每批至少 5 份" in received
    assert "还有 9 个对象待评议" in sent.last(zheng).text
    target = f"member:{who['张明']}"
    # One ballot waits in memory for four more on 张明: the database knows nothing of it.
    assert len(runtime.pending) == 1 and len(runtime.ballots) == 0
    assert await counts(runtime, target) == {} and await participation(runtime) == set()
    others = ["冯磊", "许涛", "何静", "王秀英"]  # four more, all 满意, make k
    await cast_many(runtime, running, others, target, [0] * 6, lambda name: "")
    await close_and_count(runtime, running)
    assert len(runtime.pending) == 0
    assert await counts(runtime, target) == {
        (0, 0): 5,
        (1, 1): 1,
        (1, 0): 4,
        (2, 0): 5,
        (3, 0): 5,
        (4, 3): 1,
        (4, 0): 4,
        (5, 1): 1,
        (5, 0): 4,
    }
    assert await comments_on(runtime, target) == ["希望多到市场一线走走"]
    assert len(await participation(runtime)) == 5
    # The round has ended: nothing more is taken.
    await chat.send(zhang, "/rate")
    assert sent.last(zhang).key == "evaluation_not_running"
    assert "已经结束" in sent.last(zhang).text


async def test_a_branch_is_rated_on_the_branch_items(runtime, chat, sent, people, running):
    zhang = people["张明"]
    await chat.send(zhang, "/rate")
    assert await chat.tap(zhang, "市场管理党支部")
    assert sent.last(zhang).key == "ballot_item"
    assert "组织领导情况" in sent.last(zhang).text


async def test_double_taps_and_stale_buttons_count_nothing_twice(
    runtime, chat, sent, people, running
):
    zheng = people["郑强"]
    who = await ids(runtime)
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    item_message = chat.last_with_buttons(zheng)
    assert await chat.tap(zheng, "1")
    # The same button pressed again (a double tap) does not answer the next item.
    await chat.press(zheng, item_message.buttons[1][1], item_message)
    assert "已经选过" in sent.toasts(zheng)[-1]
    for _ in range(5):
        assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "不写意见")
    confirm = chat.last_with_buttons(zheng)
    assert await chat.tap(zheng, "确认提交")
    await chat.press(zheng, confirm.buttons[0][1], confirm)
    assert "失效" in sent.toasts(zheng)[-1]
    assert sent.keys(zheng).count("ballot_received") == 1
    target = f"member:{who['张明']}"
    # Rated already (the ballot waits for its batch): the name is gone from the list, and a
    # forged tap on it is refused.
    assert "张明" not in sent.last(zheng).text.split("待评议")[1]
    assert "张明" not in labels(sent.last(zheng))
    round_id = (await current(runtime)).id
    await chat.press(zheng, ChooseTarget.of(round_id, target).pack())
    assert "已经评议过" in sent.toasts(zheng)[-1]
    # A forged level on a made-up ballot is stale, never counted.
    await chat.press(zheng, ChooseLevel("deadbeef", 0, 0).pack())
    assert "失效" in sent.toasts(zheng)[-1]
    await close_and_count(runtime, running)
    # Counted once; and as nobody else rated 张明, under k in all, no choice is written.
    assert await participation(runtime) == {(f"member:{who['郑强']}", target)}
    assert await counts(runtime, target) == {}


async def current(runtime) -> EvaluationRound:
    async with runtime.db.session() as session:
        return (await session.exec(select(EvaluationRound))).one()


async def test_nobody_rates_themselves_or_outside_the_rules(runtime, chat, sent, people, running):
    zheng = people["郑强"]
    who = await ids(runtime)
    # Not a target of his: refused with a toast, and no ballot is started.
    refused = runtime.messages.plain("zh_CN", "button_refused")
    for forged in (
        f"member:{who['郑强']}",
        f"member:{who['黄勇']}",
        f"branch:{who['执法大队党支部']}",
    ):
        await chat.press(zheng, ChooseTarget.of(running.id, forged).pack())
        assert sent.toasts(zheng)[-1] == refused, forged
        assert len(runtime.ballots) == 0 and sent.to(zheng) == []
    # The service refuses it too, whatever a channel sends.
    async with runtime.db.session() as session:
        rater = Rater(
            f"member:{who['郑强']}", running.organisation_id, "member", who["市场管理党支部"]
        )
        for target in (f"member:{who['郑强']}", f"member:{who['黄勇']}"):
            outcome = await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=running.id,
                rater=rater,
                target=target,
                choices=[0] * 6,
                comment="",
                now=runtime.clock.now(),
            )
            assert outcome is Outcome.NOT_YOURS
        # Choices off the scale or missing are refused.
        for choices in ([0] * 5, [0, 0, 0, 0, 0, 9]):
            outcome = await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=running.id,
                rater=rater,
                target=f"member:{who['张明']}",
                choices=choices,
                comment="",
                now=runtime.clock.now(),
            )
            assert outcome is Outcome.INVALID
    assert await participation(runtime) == set()


async def test_a_comment_too_long_is_refused_and_a_sticker_asked_again(
    runtime, chat, sent, people, running
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    for _ in range(6):
        assert await chat.tap(zheng, "2")
    await feed(chat, zheng, Kind.WORDS, other=True)  # a sticker, a poll
    assert sent.last(zheng).key == "ballot_comment_text_only"
    assert "请用文字发送" in sent.last(zheng).text
    await chat.send(zheng, "长" * 301)
    assert "301" in sent.last(zheng).text
    await chat.send(zheng, "短一些")
    assert sent.last(zheng).key == "ballot_summary"
    assert "短一些" in sent.last(zheng).text and "确认" in sent.last(zheng).text


async def test_a_restart_mid_ballot_loses_only_the_unconfirmed_ballot(
    runtime, chat, sent, people, running, channel
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    assert await chat.tap(zheng, "1")
    # What a restart leaves of memory: nothing.
    runtime.ballots.discard(Account(channel, str(zheng.user_id)))
    assert await chat.tap(zheng, "1")
    assert "失效" in sent.toasts(zheng)[-1] and "/rate" in sent.toasts(zheng)[-1]
    assert await participation(runtime) == set() and len(runtime.pending) == 0
    await rate(chat, zheng, "张明", [1] * 6)
    assert len(runtime.pending) == 1
    assert sent.keys(zheng)[-2:] == ["ballot_received", "rate_list"]


async def test_two_submissions_at_once_count_once(runtime, people, running):
    who = await ids(runtime)
    rater = Rater(f"member:{who['郑强']}", running.organisation_id, "member", who["市场管理党支部"])
    target = f"member:{who['张明']}"

    async def submit(comment: str) -> Outcome:
        async with runtime.db.session() as session:
            return await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=running.id,
                rater=rater,
                target=target,
                choices=[0] * 6,
                comment=comment,
                now=runtime.clock.now(),
            )

    outcomes = await asyncio.gather(submit("一"), submit("二"), submit("三"))
    assert sorted(outcomes) == sorted([Outcome.RECEIVED, Outcome.ALREADY, Outcome.ALREADY])
    await close_and_count(runtime, running)
    assert await participation(runtime) == {(rater.key, target)}


async def test_no_ballot_is_taken_before_opening_or_after_closing(runtime, chat, sent, people):
    zheng = people["郑强"]
    await open_round(
        runtime, opens_at=runtime.clock.now() + timedelta(days=1), closes=timedelta(days=1, hours=1)
    )
    await chat.send(zheng, "/rate")
    assert sent.last(zheng).key == "evaluation_not_running"
    assert "将于" in sent.last(zheng).text
    runtime.clock.advance(timedelta(days=1))
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    for _ in range(6):
        assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "不写意见")
    runtime.clock.advance(timedelta(hours=1))  # it closes while the ballot waits to be confirmed
    assert await chat.tap(zheng, "确认提交")
    assert sent.last(zheng).key == "ballot_not_counted"
    assert "没有计入" in sent.last(zheng).text and "结束" in sent.last(zheng).text
    assert await participation(runtime) == set()


# --- evaluation codes ---------------------------------------------------------------------


def codes_in(text: str) -> list[str]:
    """The codes a message gives out, as the local chat shows them: a /start line each."""
    return re.findall(r"/start (rate-[\w-]+)", text)


async def test_an_outsider_rates_with_a_code_once(runtime, chat, sent, people, running, stranger):
    zhou = people["周敏"]  # the organiser
    await chat.send(zhou, "/evaluation")
    assert await chat.tap(zhou, "生成测评码")
    assert await chat.tap(zhou, "市场经营户")
    (issued,) = [m for m in sent.to(zhou) if m.key == "evaluation_codes_issued"]
    codes = codes_in(issued.text)
    assert len(codes) == 2  # the roster lists two vendors of 市场管理党支部
    (sheet,) = [m for m in sent.to(zhou) if m.kind == "file"]
    assert sheet.file_name.endswith(".pdf") and sheet.content.startswith(b"%PDF")
    # The outsider follows the link: the members of the branch they serve, nobody else.
    await chat.send(stranger, f"/start {codes[0]}")
    assert sent.keys(stranger)[-1] == "rate_list"
    listing = sent.last(stranger).text
    assert "匿名" in "".join(sent.texts(stranger))
    for name in ("张明", "郑强", "王秀英", "冯磊", "何静", "许涛"):
        assert name in listing
    assert "王志刚" not in listing and "市场管理党支部（党支部）" not in listing
    assert set(labels(sent.last(stranger))) == {"张明", "郑强", "王秀英", "冯磊", "何静", "许涛"}
    for name in ("张明", "郑强", "王秀英", "冯磊", "何静", "许涛"):
        await rate(chat, stranger, name, [1, 1, 2, 1, 1, 1], f"{name}服务好")
    assert sent.keys(stranger).count("ballot_received") == 6
    assert "全部 6 项评议" in sent.last(stranger).text
    assert len(runtime.pending) == 6 and await participation(runtime) == set()
    # Spent: the link is refused, for them and for anyone it is passed on to.
    await chat.send(stranger, f"/start {codes[0]}")
    assert "用完" in sent.last(stranger).text
    await chat.send(stranger, "/start rate-not-a-real-code")
    assert "无效" in sent.last(stranger).text
    # The other code is unused, but not for him: one code per person, so that nobody can make
    # up the raters' threshold alone. Someone else can use it.
    await chat.send(stranger, f"/start {codes[1]}")
    assert "已经使用过一个测评码" in sent.last(stranger).text
    neighbour = Person(555_000_222, "Neighbour", "zh-hans")
    await chat.send(neighbour, f"/start {codes[1]}")
    assert sent.last(neighbour).key == "rate_list"
    assert "还有 6 个对象待评议" in sent.last(neighbour).text
    await close_and_count(runtime, running)
    raters = {rater for rater, _ in await participation(runtime)}
    assert len(raters) == 1 and raters.pop().startswith("code:")


async def test_codes_are_telegram_links_on_telegram(runtime, chat, api, people, running):
    zhou = people["周敏"]
    await chat.send(zhou, "/evaluation")
    assert await chat.tap(zhou, "生成测评码")
    assert await chat.tap(zhou, "市场经营户")
    issued = [c for c in api.sent(zhou.user_id) if c.method == "sendMessage"][-1].text
    assert len(re.findall(r"https://t\.me/\w+\?start=(rate-[\w-]+)", issued)) == 2
    assert len([c for c in api.sent(zhou.user_id) if c.method == "sendDocument"]) == 1


async def test_a_code_says_nothing_of_its_holder(runtime, people, running):
    async with runtime.db.session() as session:
        from bot.core import evaluation_codes
        from storage.models import EvaluationCode

        tokens = await evaluation_codes.issue_codes(
            session, evaluation_round=running, rater_group="vendor", branch_id=None, count=3
        )
        rows = (await session.exec(select(EvaluationCode))).all()
    columns = set(EvaluationCode.model_fields)
    assert columns == {"id", "round_id", "digest", "rater_group", "branch_id"}
    stored = " ".join(f"{r.id} {r.digest} {r.rater_group} {r.branch_id}" for r in rows)
    assert not any(token in stored for token in tokens)  # only digests: nobody can use them


# --- results and thresholds ------------------------------------------------------------------


async def cast_many(runtime, evaluation_round, raters: list[str], target: str, choices, comment):
    who = await ids(runtime)
    async with runtime.db.session() as session:
        for name in raters:
            member = await session.get(Member, who[name])
            rater = Rater(f"member:{member.id}", member.organisation_id, "member", member.branch_id)
            outcome = await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=evaluation_round.id,
                rater=rater,
                target=target,
                choices=list(choices),
                comment=comment(name),
                now=runtime.clock.now(),
            )
            assert outcome is Outcome.RECEIVED, (name, target, outcome)
    await ballot_counting.count_full_batches(runtime)


MARKET = ["张明", "郑强", "王秀英", "冯磊", "何静", "许涛"]


async def test_results_only_after_closing_and_above_the_thresholds(
    runtime, chat, sent, people, running
):
    who = await ids(runtime)
    zhang, feng, zheng = people["张明"], people["冯磊"], people["郑强"]
    # 张明 is rated by all five others; 冯磊 by only four (below 5), with four comments.
    await cast_many(
        runtime,
        running,
        [n for n in MARKET if n != "张明"],
        f"member:{who['张明']}",
        [0, 0, 1, 1, 3, 0],
        lambda name: f"{name}的意见",
    )
    await cast_many(
        runtime,
        running,
        ["张明", "郑强", "王秀英", "何静"],
        f"member:{who['冯磊']}",
        [3] * 6,
        lambda name: f"{name}说的话",
    )
    # While the round runs, nothing is shown to anyone, the organiser included.
    for person in (zhang, people["周敏"]):
        await chat.send(person, "/results")
        assert sent.last(person).key == "results_none"
        assert "还在进行中" in sent.last(person).text
    progress = people["周敏"]
    await chat.send(progress, "/evaluation")
    assert sent.last(progress).key == "evaluation_status"
    assert "党员已评完 0/6 人" in sent.last(progress).text  # who rated, never what
    await chat.send(zhang, "/evaluation")
    assert "尚未评完" in sent.last(zhang).text
    # The organiser closes the round.
    await chat.send(progress, "/evaluation")
    assert await chat.tap(progress, "结束评议")
    assert sent.last(progress).key == "evaluation_close_confirm"
    assert await chat.tap(progress, "确认结束")
    assert sent.last(progress).key == "evaluation_closed_now"
    assert "已结束" in sent.last(progress).text
    async with runtime.db.session() as session:
        assert (await session.get(EvaluationRound, running.id)).closed_at is not None
    await chat.send(zhang, "/results")
    assert sent.last(zhang).key == "results_view"
    own = sent.last(zhang).text
    assert "5 人评议" in own and "总体满意率 83%" in own
    assert "工作作风情况：满意 0 · 比较满意 0 · 基本满意 0 · 不满意 5，满意率 0%" in own
    assert all(f"{n}的意见" in own for n in MARKET if n != "张明")  # five comments: shown
    await chat.send(feng, "/results")
    hidden = sent.last(feng).text
    assert "不足 5 人" in hidden and "说的话" not in hidden and "满意率" not in hidden
    # The secretary sees the branch: 冯磊 stays hidden, and the pooled figure counts only
    # those shown, so subtracting them from it cannot reveal him.
    assert dict(chat.last_with_buttons(zhang).buttons)["本支部结果"] == ShowResults("branch").pack()
    assert await chat.tap(zhang, "本支部结果")
    assert sent.last(zhang).key == "results_view"
    branch = sent.last(zhang).text
    assert "计入 1 人" in branch and "因评议人数不足未计入" in branch
    assert "说的话" not in branch and "不满意 4" not in branch
    # Those under the threshold are one line with a count, not one line each.
    assert branch.count("评议人数不足 5 人") == 1 and "冯磊" in branch
    assert re.search(r"另有 \d+ 个对象评议人数不足 5 人", branch)
    async with runtime.db.session() as session:
        evaluation_round = await session.get(EvaluationRound, running.id)
        found = await evaluation_results.results(
            session, evaluation_round=evaluation_round, branch_id=who["市场管理党支部"]
        )
    total = next(t for t in found.totals if t.branch_id == who["市场管理党支部"])
    shown = [t for t in found.targets if t.shown and t.kind != "branch"]
    assert [t.name for t in shown] == ["张明"] and total.satisfaction == shown[0].satisfaction
    # A member cannot ask for the branch's results by a forged button.
    await chat.press(zheng, ShowResults("branch").pack())
    assert sent.toasts(zheng) == ["这个按钮不适用于您的账号"] and sent.to(zheng) == []


async def test_comments_have_their_own_threshold(runtime, people, running):
    who = await ids(runtime)
    await cast_many(
        runtime,
        running,
        [n for n in MARKET if n != "许涛"],
        f"member:{who['许涛']}",
        [1] * 6,
        lambda name: f"{name}的话" if name in ("张明", "郑强") else "",
    )
    await close_and_count(runtime, running)
    async with runtime.db.session() as session:
        evaluation_round = await session.get(EvaluationRound, running.id)
        found = await evaluation_results.results(
            session, evaluation_round=evaluation_round, target=f"member:{who['许涛']}"
        )
    (result,) = found.targets
    assert result.shown and result.raters == 5 and result.satisfaction == 1.0
    assert result.comments == [] and result.comments_withheld


async def test_low_satisfaction_is_flagged(runtime, people, running):
    who = await ids(runtime)
    await cast_many(
        runtime, running, [n for n in MARKET if n != "郑强"], f"member:{who['郑强']}", [2] * 6, str
    )
    await close_and_count(runtime, running)
    async with runtime.db.session() as session:
        evaluation_round = await session.get(EvaluationRound, running.id)
        (result,) = (
            await evaluation_results.results(
                session, evaluation_round=evaluation_round, target=f"member:{who['郑强']}"
            )
        ).targets
    assert result.flagged and result.satisfaction == 0.0 and all(i.flagged for i in result.items)


# --- settings --------------------------------------------------------------------------------


def test_settings_cannot_weaken_anonymity_or_break_the_ballot():
    assert RoundSettings.parse({"min_raters": 2})[1] == ["evaluation_threshold_too_low"]
    assert RoundSettings.parse({"min_commenters": 1})[1] == ["evaluation_threshold_too_low"]
    assert RoundSettings.parse({"scale": ["好"]})[1] == ["evaluation_bad_scale"]
    assert RoundSettings.parse({"who_rates": {"member": ["everyone"]}})[1] == [
        "evaluation_bad_who_rates"
    ]
    settings, problems = RoundSettings.parse(
        {"scale": ["好", "较好", "一般", "差"], "min_raters": 3, "items": {"branch": ["活动效果"]}}
    )
    assert not problems and settings.scale == ("好", "较好", "一般", "差")
    assert settings.items_for("branch") == ("活动效果",)
    assert settings.items_for("ordinary")[0] == "参加创先争优活动情况"  # the rest: seed 004


async def test_settings_are_frozen_once_the_round_opens(runtime, people, tmp_path, monkeypatch):
    later = await open_round(runtime, opens_at=runtime.clock.now() + timedelta(days=1))
    stricter = RoundSettings(scale=("好", "较好", "一般", "差"), min_raters=6)
    async with runtime.db.session() as session:
        evaluation_round = await session.get(EvaluationRound, later.id)
        assert await evaluation.configure(
            session, evaluation_round=evaluation_round, settings=stricter, now=runtime.clock.now()
        )
    runtime.clock.advance(timedelta(days=1))
    async with runtime.db.session() as session:
        evaluation_round = await session.get(EvaluationRound, later.id)
        assert RoundSettings.of(evaluation_round).scale == ("好", "较好", "一般", "差")
        assert not await evaluation.configure(
            session,
            evaluation_round=evaluation_round,
            settings=RoundSettings(min_raters=3),
            now=runtime.clock.now(),
        )
    # The command line says so too (it runs on the wall clock: this round opened long ago).
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        long_ago = await evaluation.open_round(
            session,
            organisation_id=organisation.id,
            quarter="去年",
            opens_at=datetime(2026, 1, 1, tzinfo=UTC),
            closes_at=datetime(2099, 1, 1, tzinfo=UTC),
            now=runtime.clock.now(),
            settings=stricter,
        )
    settings = tmp_path / "weaker.toml"
    settings.write_text("min_raters = 3\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    code = await asyncio.to_thread(
        main, ["evaluation", "configure", str(long_ago.id), "--settings", str(settings)]
    )
    assert code == 1
    async with runtime.db.session() as session:
        assert RoundSettings.of(await session.get(EvaluationRound, long_ago.id)).min_raters == 6


async def test_the_command_line_opens_a_round_from_the_calendar(
    runtime, people, monkeypatch, capsys
):
    await load(runtime, TWO_QUARTERS)
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    code = await asyncio.to_thread(main, ["evaluation", "open", "--quarter", "明年第一季度"])
    assert code == 0
    async with runtime.db.session() as session:
        (opened,) = (await session.exec(select(EvaluationRound))).all()
    # Closing at the end of the quarter's evaluation step (2027-01-25, Shanghai).
    assert opened.closes_at.isoformat() == "2027-01-25T16:00:00+00:00"
    assert await asyncio.to_thread(main, ["evaluation", "open", "--quarter", "明年第一季度"]) == 1
    assert "已有一轮群众评议尚未结束（明年第一季度）" in capsys.readouterr().out


async def test_the_command_line_opens_one_round_at_a_time_for_a_quarter_of_the_calendar(
    runtime, people, monkeypatch, capsys
):
    await load(runtime, TWO_QUARTERS)
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)

    def evaluation_cli(*args: str):
        return asyncio.to_thread(main, ["evaluation", *args])

    # A mistyped quarter, even with a closing date, is refused with the calendar's quarters.
    assert await evaluation_cli("open", "--quarter", "明年第1季度", "--closes", "2027-01-20") == 1
    out = capsys.readouterr().out
    assert "日程里没有这个季度" in out and "第四季度、明年第一季度" in out
    assert await evaluation_cli("open", "--quarter", "明年第1季度") == 1
    assert "--closes" not in capsys.readouterr().out  # a closing date would not help
    assert await evaluation_cli("open", "--quarter", "明年第一季度", "--closes", "2027-13-01") == 1
    out = capsys.readouterr().out
    assert "日期或时间的格式不对" in out and "month" not in out
    assert await evaluation_cli("open", "--quarter", "明年第一季度") == 0
    assert await evaluation_cli("open", "--quarter", "第四季度", "--closes", "2027-01-20") == 1
    assert "已有一轮群众评议尚未结束（明年第一季度）" in capsys.readouterr().out
    async with runtime.db.session() as session:
        assert len((await session.exec(select(EvaluationRound))).all()) == 1


async def test_codes_for_vendors_need_their_branch(runtime, people, monkeypatch, capsys, tmp_path):
    await load(runtime, TWO_QUARTERS)
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "cxzy_bot")
    assert await asyncio.to_thread(main, ["evaluation", "open", "--quarter", "明年第一季度"]) == 0
    capsys.readouterr()
    codes = ["evaluation", "codes", "--group", "vendor", "--count", "2"]
    assert await asyncio.to_thread(main, codes) == 1
    out = capsys.readouterr().out
    assert "请用 --branch 写明支部" in out and "https://t.me/" not in out
    pdf = tmp_path / "codes.pdf"
    args = [*codes, "--branch", "市场管理党支部", "--pdf", str(pdf)]
    assert await asyncio.to_thread(main, args) == 0
    assert capsys.readouterr().out.count("https://t.me/cxzy_bot?start=rate-") == 2
    assert "市场经营户（市场管理党支部）" in pdf_text(pdf.read_bytes())


def pdf_text(data: bytes) -> str:
    """The text drawn in a ReportLab PDF (ASCII85 + Flate streams; the CID font F2 draws
    UCS-2 strings, the others Latin-1)."""
    import base64
    import re
    import zlib

    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        content = zlib.decompress(base64.a85decode(stream.strip().removesuffix(b"~>")))
        for wide, literal in re.findall(rb"(/F2 [^()]*)?\(((?:\\.|[^\\)])*)\) Tj", content):
            raw = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else m[1],
                literal,
            )
            shown.append(raw.decode("utf-16-be" if wide else "latin-1"))
    return "\n".join(shown)


# --- notices ---------------------------------------------------------------------------------


async def rate_everyone(runtime, name: str) -> None:
    """The member rates every target they have in the open round."""
    who = await ids(runtime)
    async with runtime.db.session() as session:
        evaluation_round = (await session.exec(select(EvaluationRound))).one()
        rater = Rater.of_member(Actor.of(await session.get(Member, who[name])))
        for view in await evaluation.targets_for(
            session, evaluation_round=evaluation_round, rater=rater
        ):
            items = RoundSettings.of(evaluation_round).items_for(view.target.kind)
            outcome = await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=evaluation_round.id,
                rater=rater,
                target=view.target.target,
                choices=[0] * len(items),
                comment="",
                now=runtime.clock.now(),
            )
            assert outcome is Outcome.RECEIVED


async def test_whoever_has_rated_everyone_is_not_chased_for_the_evaluation_step(
    runtime, sent, people
):
    await load(runtime, TWO_QUARTERS)
    runtime.clock.set(at(32, 10))  # 2 December: the quarter's evaluation step opens
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        proposal = await evaluation.proposed_round(
            session, organisation_id=organisation.id, now=runtime.clock.now()
        )
        await evaluation.open_round(
            session,
            organisation_id=organisation.id,
            quarter=proposal.quarter,
            closes_at=proposal.closes_at,
            now=runtime.clock.now(),
        )
    await rate_everyone(runtime, "张明")
    runtime.clock.set(at(38, 10))  # its last day
    await delivery.tick(runtime)
    await delivery.tick(runtime)
    assert got(sent, people["郑强"], "reminder_step_due_today", "今天截止") == 1
    assert got(sent, people["张明"], "reminder_step_due_today") == 0
    assert not any("今天截止" in text for text in sent.texts(people["张明"]))


async def test_opening_closing_and_results_are_announced_once(runtime, sent, people):
    await open_round(runtime)
    zheng, zhang = people["郑强"], people["张明"]

    async def tick() -> None:
        await delivery.tick(runtime)

    await tick()
    await tick()
    assert got(sent, zheng, "reminder_evaluation_open", "群众评议开始了") == 1
    await rate_everyone(runtime, "张明")  # 郑强 does not
    runtime.clock.advance(CLOSES - timedelta(days=2))
    await tick()
    await tick()
    assert got(sent, zheng, "reminder_evaluation_closing", "还有对象没有评完") == 1
    assert got(sent, zhang, "reminder_evaluation_closing") == 0
    runtime.clock.advance(timedelta(days=2))
    await tick()
    await tick()
    assert got(sent, zheng, "reminder_evaluation_results", "结果已出") == 1
    async with runtime.db.session() as session:
        assert (await session.exec(select(EvaluationRound))).one().closed_at is not None


async def test_branches_are_rated_by_their_members_only(runtime, chat, sent, people, running):
    async with runtime.db.session() as session:
        branches = (await session.exec(select(Branch))).all()
    huang = people["黄勇"]
    await chat.send(huang, "/rate")
    listing = sent.last(huang)
    assert "执法大队党支部" in listing.text and "执法大队党支部" in labels(listing)
    others = [b.name for b in branches if b.name != "执法大队党支部"]
    assert all(f"{name}（党支部）" not in listing.text for name in others)
    assert not set(others) & set(labels(listing))


async def test_cancel_drops_a_ballot_and_a_member_cannot_use_a_code(
    runtime, chat, sent, people, running
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    for _ in range(6):
        assert await chat.tap(zheng, "1")
    await chat.send(zheng, "/cancel")
    assert sent.last(zheng).key == "ballot_dropped"
    assert "已放弃" in sent.last(zheng).text and len(runtime.ballots) == 0
    await chat.send(zheng, "一句话")  # no longer a comment: nothing waits for it
    assert sent.last(zheng).key != "ballot_dropped" and "已放弃" not in sent.last(zheng).text
    assert await participation(runtime) == set()
    async with runtime.db.session() as session:
        (token,) = await evaluation_codes.issue_codes(
            session, evaluation_round=running, rater_group="vendor", branch_id=None, count=1
        )
    await chat.send(zheng, f"/start {token}")
    assert "/rate" in sent.last(zheng).text and "测评码是留给群众的" in sent.last(zheng).text
    async with runtime.db.session() as session:
        assert (await session.exec(select(EvaluationCodeUse))).all() == []


def test_abandoned_ballots_and_codes_are_forgotten():
    from bot.core.ballots import IDLE_LIMIT, BallotBox

    box = BallotBox()
    rater = Rater("code:1", 1, "vendor", 1)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    box.seat_code(1, rater, 1, start)
    box.start(
        2, start, round_id=1, target="member:1", target_name="甲", items=("a",), scale=("好", "差")
    )
    assert len(box) == 1 and box.code_rater(1, start) == (rater, 1)
    later = start + IDLE_LIMIT + timedelta(minutes=1)
    box.seat_code(3, rater, 1, later)  # any use sweeps what was abandoned
    assert len(box) == 0 and box._seats.keys() == {3}


# --- a ballot never takes what belongs elsewhere ---------------------------------------------


async def stop_at_the_comment(chat, person, target: str) -> None:
    await chat.send(person, "/rate")
    assert await chat.tap(person, target)
    for _ in range(6):
        assert await chat.tap(person, "1")


async def test_a_command_drops_a_ballot_waiting_for_its_comment(
    runtime, chat, sent, people, running
):
    await load(runtime, QUARTER)
    zheng = people["郑强"]
    who = await ids(runtime)
    await stop_at_the_comment(chat, zheng, "张明")
    await chat.send(zheng, "/summary")
    assert sent.keys(zheng)[-2] == "ballot_dropped"
    said = sent.texts(zheng)[-2:]
    assert "已放弃对 张明 的评议" in said[0] and "总结成绩" in said[1]
    # What he types next is his summary, never an anonymous comment.
    await chat.send(zheng, "我郑强本季度在窗口服务中每天提前到岗")
    async with runtime.db.session() as session:
        summary = (
            await session.exec(select(Summary).where(Summary.member_id == who["郑强"]))
        ).one()
    assert summary.achievements == "我郑强本季度在窗口服务中每天提前到岗"
    assert await comments_on(runtime, f"member:{who['张明']}") == []
    assert await participation(runtime) == set()


async def test_an_edited_message_is_neither_a_comment_nor_an_answer(
    runtime, chat, sent, people, running
):
    await load(runtime, QUARTER)
    zheng = people["郑强"]
    who = await ids(runtime)
    await chat.send(zheng, "/summary")
    await chat.send(zheng, "窗口业务零投诉")  # 总结成绩
    await stop_at_the_comment(chat, zheng, "张明")
    await feed(chat, zheng, Kind.EDITED, text="张明态度很差")  # the 总结成绩 message, edited
    assert sent.last(zheng).key == "edit_not_taken"
    assert "修改已发出的消息不会被采用" in sent.last(zheng).text
    await chat.send(zheng, "希望多到一线")
    assert sent.last(zheng).key == "ballot_summary"
    assert "意见建议：希望多到一线" in sent.last(zheng).text
    assert await chat.tap(zheng, "确认提交")
    await feed(chat, zheng, Kind.EDITED, text="张明态度差")
    async with runtime.db.session() as session:
        summary = (
            await session.exec(select(Summary).where(Summary.member_id == who["郑强"]))
        ).one()
    assert summary.achievements == "窗口业务零投诉" and summary.problems == ""
    others = ["冯磊", "许涛", "何静", "王秀英"]
    await cast_many(runtime, running, others, f"member:{who['张明']}", [0] * 6, lambda name: "")
    await close_and_count(runtime, running)
    assert await comments_on(runtime, f"member:{who['张明']}") == ["希望多到一线"]


async def test_an_abandoned_ballot_expires_even_while_the_member_chats(
    runtime, chat, sent, people, running, clock
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    assert await chat.tap(zheng, "1")
    for _ in range(3):  # four and a half hours of other messages, none about the ballot
        clock.advance(timedelta(minutes=90))
        await chat.send(zheng, "你好")
    assert await chat.tap(zheng, "1")  # the ballot's next item, long after
    assert "已经失效" in sent.toasts(zheng)[-1]
    await chat.send(zheng, "/cancel")
    assert sent.last(zheng).key != "ballot_dropped" and "已放弃" not in sent.last(zheng).text


# --- batches, restarts and codes ---------------------------------------------------------------


@asynccontextmanager
async def restarted(runtime, chat):
    """The process dies and starts again on the same database: its memory is gone."""
    fresh = Runtime(
        settings=runtime.settings, db=runtime.db, clock=runtime.clock, messages=runtime.messages
    )
    again = LocalChat(fresh, handlers.routes(), runtime.clock)
    again._update_ids = chat._update_ids  # the channel's update ids go on
    yield fresh, again


async def test_ballots_waiting_at_a_crash_are_lost_whole_and_asked_again(
    runtime, chat, people, running
):
    zheng = people["郑强"]
    who = await ids(runtime)
    target = f"member:{who['张明']}"
    await rate(chat, zheng, "张明", [1] * 6, "第一次的意见")
    assert len(runtime.pending) == 1
    async with restarted(runtime, chat) as (fresh, again):
        # Never written, so never half counted: he is, correctly, shown as not having rated.
        assert await participation(fresh) == set() and await counts(fresh, target) == {}
        await again.send(zheng, "/rate")
        assert "· 张明" in again.channel.last(zheng).text
        assert "张明" in labels(again.channel.last(zheng))
        await rate(again, zheng, "张明", [2] * 6, "第二次的意见")
        assert "ballot_received" in again.channel.keys(zheng)
        others = ["冯磊", "许涛", "何静", "王秀英"]
        await cast_many(fresh, running, others, target, [0] * 6, lambda name: "")
        await close_and_count(fresh, running)
        # His second ballot, once; the first was never written.
        assert await counts(fresh, target) == {
            cell: n for item in range(6) for cell, n in (((item, 1), 1), ((item, 0), 4))
        }
        assert await comments_on(fresh, target) == ["第二次的意见"]
        assert (f"member:{who['郑强']}", target) in await participation(fresh)
    # The reminder before closing says why someone may find a name listed again.
    closing = runtime.messages.render(
        "zh_CN", "reminder_evaluation_closing", name="郑强", evaluation_round=running
    )
    assert "重启" in closing and "再评一次" in closing


async def test_one_code_per_account_holds_across_a_restart(
    runtime, chat, people, running, stranger
):
    who = await ids(runtime)
    async with runtime.db.session() as session:
        first, second = await evaluation_codes.issue_codes(
            session,
            evaluation_round=running,
            rater_group="vendor",
            branch_id=who["市场管理党支部"],
            count=2,
        )
    await chat.send(stranger, f"/start {first}")
    await rate(chat, stranger, "张明", [1] * 6)
    async with restarted(runtime, chat) as (fresh, again):
        sent = again.channel
        await again.send(stranger, f"/start {second}")
        assert "已经使用过一个测评码" in sent.last(stranger).text
        # Back to the code he used: his ballot was lost with the process, so 张明 is there.
        await again.send(stranger, f"/start {first}")
        assert sent.last(stranger).key == "rate_list"
        assert "还有 6 个对象待评议" in sent.last(stranger).text
        assert "张明" in labels(sent.last(stranger))
        neighbour = Person(555_000_222, "Neighbour", "zh-hans")
        await again.send(neighbour, f"/start {second}")
        assert "还有 6 个对象待评议" in sent.last(neighbour).text
    # What is kept says neither which account nor which code.
    async with runtime.db.session() as session:
        kept = " ".join(row.digest for row in (await session.exec(select(EvaluationCodeUse))).all())
        codes = (await session.exec(select(EvaluationCode))).all()
    assert len(kept.split()) == 4
    for secret in (str(stranger.user_id), str(neighbour.user_id), first, second):
        assert secret not in kept
    assert not any(f"code:{code.id}" in kept for code in codes)


async def test_results_say_how_many_raters_used_codes(runtime, chat, sent, people, running):
    who = await ids(runtime)
    target = f"member:{who['张明']}"
    async with runtime.db.session() as session:
        await evaluation_codes.issue_codes(
            session,
            evaluation_round=running,
            rater_group="vendor",
            branch_id=who["市场管理党支部"],
            count=3,
        )
        codes = (await session.exec(select(EvaluationCode))).all()
        for code in codes:
            outcome = await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=running.id,
                rater=Rater.of_code(code, running.organisation_id),
                target=target,
                choices=[0] * 6,
                comment="",
                now=runtime.clock.now(),
            )
            assert outcome is Outcome.RECEIVED
    await cast_many(runtime, running, ["郑强", "冯磊"], target, [1] * 6, lambda name: "")
    await close_and_count(runtime, running)
    await chat.send(people["张明"], "/results")
    assert sent.last(people["张明"]).key == "results_view"
    assert "5 人评议（其中 3 份来自测评码）" in sent.last(people["张明"]).text


async def test_a_ballot_that_expired_at_its_comment_says_so_and_takes_no_text(
    runtime, chat, sent, people, running, clock
):
    await load(runtime, QUARTER)
    zheng = people["郑强"]
    who = await ids(runtime)
    await chat.send(zheng, "/summary")  # a self-summary is open, waiting for 总结成绩
    assert "总结成绩" in sent.last(zheng).text
    await stop_at_the_comment(chat, zheng, "张明")
    clock.advance(timedelta(hours=3))
    await chat.send(zheng, "张明同志服务态度很好")
    assert sent.last(zheng).key == "ballot_expired"
    told = sent.last(zheng).text
    assert "已经自动作废" in told and "张明" in told and "3 个小时" not in told
    async with runtime.db.session() as session:
        summary = (
            await session.exec(select(Summary).where(Summary.member_id == who["郑强"]))
        ).one()
    assert "服务态度" not in summary.achievements  # never routed into the summary's draft
    assert len(runtime.pending) == 0 and await comments_on(runtime, f"member:{who['张明']}") == []
    # Said once: what he types next goes where it belongs again.
    await chat.send(zheng, "本季度窗口业务零投诉")
    assert sent.keys(zheng).count("ballot_expired") == 1
    async with runtime.db.session() as session:
        summary = await session.get(Summary, summary.id)
    assert summary.achievements == "本季度窗口业务零投诉"
