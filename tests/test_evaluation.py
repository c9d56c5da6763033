"""群众评议 through the real Application: rounds, ballots, codes, thresholds, frozen settings."""

import asyncio
import re
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot import delivery
from bot.__main__ import main
from bot.channels.local.chat import Person
from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_chat import LocalChat, telegram_user
from bot.core import ballot_counting, evaluation, evaluation_codes, evaluation_results
from bot.core.access import Account, Actor
from bot.core.evaluation import Outcome, Rater, RoundSettings
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
from tests.test_reminders import at, load
from tests.test_reviews import TWO_QUARTERS, ids, toast
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


# --- the ballot ----------------------------------------------------------------------------


async def test_a_member_rates_a_colleague_item_by_item(runtime, chat, api, people, running):
    zheng, zhang = people["郑强"], people["张明"]
    who = await ids(runtime)
    await chat.send(zheng, "/rate")
    listing = api.last(zheng.user_id).text
    # Seed 004: the leadership team, his own branch and its members; never himself.
    for name in ("王志刚", "李建国", "市场管理党支部", "张明", "王秀英"):
        assert name in listing
    assert "郑强" not in listing and "执法大队党支部" not in listing and "黄勇" not in listing
    assert await chat.tap(zheng, "张明")
    first = api.last(zheng.user_id)
    assert "1/6" in first.text and "参加创先争优活动情况" in first.text
    assert [b["text"] for b in first.buttons][:4] == ["满意", "比较满意", "基本满意", "不满意"]
    for level in (1, 2, 1, 1, 4, 2):
        assert await chat.tap(zheng, str(level))
    assert "意见建议" in api.last(zheng.user_id).text
    await chat.send(zheng, "希望多到市场一线走走")
    summary = api.last(zheng.user_id).text
    assert "工作作风情况：不满意" in summary and "希望多到市场一线走走" in summary
    assert "提交后不能再修改" in summary and "匿名" in summary
    assert await chat.tap(zheng, "确认提交")
    assert "已收到" in toast(api)
    received = api.texts(zheng.user_id)[-2]
    assert "已收到" in received and "每批至少 5 份" in received
    assert "还有 9 个对象待评议" in api.last(zheng.user_id).text
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
    assert "已经结束" in api.last(zhang.user_id).text


async def test_a_branch_is_rated_on_the_branch_items(runtime, chat, api, people, running):
    zhang = people["张明"]
    await chat.send(zhang, "/rate")
    assert await chat.tap(zhang, "市场管理党支部")
    assert "组织领导情况" in api.last(zhang.user_id).text


async def test_double_taps_and_stale_buttons_count_nothing_twice(
    runtime, chat, api, people, running
):
    zheng = people["郑强"]
    who = await ids(runtime)
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    item_message = api.last_keyboard(zheng.user_id)
    assert await chat.tap(zheng, "1")
    # The same button pressed again (a double tap) does not answer the next item.
    await chat.press(zheng, item_message.buttons[1]["callback_data"], item_message)
    assert "已经选过" in toast(api)
    for _ in range(5):
        assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "不写意见")
    confirm = api.last_keyboard(zheng.user_id)
    assert await chat.tap(zheng, "确认提交")
    await chat.press(zheng, confirm.buttons[0]["callback_data"], confirm)
    assert "失效" in toast(api)
    target = f"member:{who['张明']}"
    # Rated already (the ballot waits for its batch): the name is gone from the list, and a
    # forged tap on it is refused.
    assert "张明" not in api.last(zheng.user_id).text.split("待评议")[1]
    round_id = (await current(runtime)).id
    await chat.press(zheng, f"evt:{round_id}:{target}")
    assert "已经评议过" in toast(api)
    # A forged level on a made-up ballot is stale, never counted.
    await chat.press(zheng, "evb:deadbeef:0:0")
    assert "失效" in toast(api)
    await close_and_count(runtime, running)
    # Counted once; and as nobody else rated 张明, under k in all, no choice is written.
    assert await participation(runtime) == {(f"member:{who['郑强']}", target)}
    assert await counts(runtime, target) == {}


async def current(runtime) -> EvaluationRound:
    async with runtime.db.session() as session:
        return (await session.exec(select(EvaluationRound))).one()


async def test_nobody_rates_themselves_or_outside_the_rules(runtime, chat, api, people, running):
    zheng = people["郑强"]
    who = await ids(runtime)
    for forged in (
        f"member:{who['郑强']}",
        f"member:{who['黄勇']}",
        f"branch:{who['执法大队党支部']}",
    ):
        await chat.press(zheng, f"evt:{running.id}:{forged}")
        assert toast(api) == "按钮已失效" or "不" in toast(api) or toast(api)
        assert len(runtime.ballots) == 0
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
    runtime, chat, api, people, running
):
    from tests.conftest import STICKER

    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    for _ in range(6):
        assert await chat.tap(zheng, "2")
    await chat.send_payload(zheng, **STICKER)
    assert "请用文字发送" in api.last(zheng.user_id).text
    await chat.send(zheng, "长" * 301)
    assert "301" in api.last(zheng.user_id).text
    await chat.send(zheng, "短一些")
    assert "短一些" in api.last(zheng.user_id).text and "确认" in api.last(zheng.user_id).text


async def test_a_restart_mid_ballot_loses_only_the_unconfirmed_ballot(
    runtime, chat, api, people, running
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    assert await chat.tap(zheng, "1")
    # What a restart leaves of memory: nothing.
    runtime.ballots.discard(Account("telegram", str(zheng.user_id)))
    assert await chat.tap(zheng, "1")
    assert "失效" in toast(api) and "/rate" in toast(api)
    assert await participation(runtime) == set() and len(runtime.pending) == 0
    await rate(chat, zheng, "张明", [1] * 6)
    assert len(runtime.pending) == 1


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


async def test_no_ballot_is_taken_before_opening_or_after_closing(runtime, chat, api, people):
    zheng = people["郑强"]
    await open_round(
        runtime, opens_at=runtime.clock.now() + timedelta(days=1), closes=timedelta(days=1, hours=1)
    )
    await chat.send(zheng, "/rate")
    assert "将于" in api.last(zheng.user_id).text
    runtime.clock.advance(timedelta(days=1))
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    for _ in range(6):
        assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "不写意见")
    runtime.clock.advance(timedelta(hours=1))  # it closes while the ballot waits to be confirmed
    assert await chat.tap(zheng, "确认提交")
    assert "没有计入" in api.last(zheng.user_id).text and "结束" in api.last(zheng.user_id).text
    assert await participation(runtime) == set()


# --- evaluation codes ---------------------------------------------------------------------


def links_in(text: str) -> list[str]:
    return re.findall(r"https://t\.me/\w+\?start=(rate-[\w-]+)", text)


async def test_an_outsider_rates_with_a_code_once(runtime, chat, api, people, running, stranger):
    zhou = people["周敏"]  # the organiser
    await chat.send(zhou, "/evaluation")
    assert await chat.tap(zhou, "生成测评码")
    assert await chat.tap(zhou, "市场经营户")
    issued = [c for c in api.sent(zhou.user_id) if c.method == "sendMessage"][-1].text
    codes = links_in(issued)
    assert len(codes) == 2  # the roster lists two vendors of 市场管理党支部
    sheet = [c for c in api.sent(zhou.user_id) if c.method == "sendDocument"]
    assert len(sheet) == 1
    # The outsider follows the link: the members of the branch they serve, nobody else.
    await chat.send(stranger, f"/start {codes[0]}")
    listing = api.last(stranger.user_id).text
    assert "匿名" in "".join(api.texts(stranger.user_id))
    for name in ("张明", "郑强", "王秀英", "冯磊", "何静", "许涛"):
        assert name in listing
    assert "王志刚" not in listing and "市场管理党支部（党支部）" not in listing
    for name in ("张明", "郑强", "王秀英", "冯磊", "何静", "许涛"):
        await rate(chat, stranger, name, [1, 1, 2, 1, 1, 1], f"{name}服务好")
    assert "全部 6 项评议" in api.last(stranger.user_id).text
    assert len(runtime.pending) == 6 and await participation(runtime) == set()
    # Spent: the link is refused, for them and for anyone it is passed on to.
    await chat.send(stranger, f"/start {codes[0]}")
    assert "用完" in api.last(stranger.user_id).text
    await chat.send(stranger, "/start rate-not-a-real-code")
    assert "无效" in api.last(stranger.user_id).text
    # The other code is unused, but not for him: one code per person, so that nobody can make
    # up the raters' threshold alone. Someone else can use it.
    await chat.send(stranger, f"/start {codes[1]}")
    assert "已经使用过一个测评码" in api.last(stranger.user_id).text
    neighbour = Person(555_000_222, "Neighbour", "zh-hans")
    await chat.send(neighbour, f"/start {codes[1]}")
    assert "还有 6 个对象待评议" in api.last(neighbour.user_id).text
    await close_and_count(runtime, running)
    raters = {rater for rater, _ in await participation(runtime)}
    assert len(raters) == 1 and raters.pop().startswith("code:")


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
    runtime, chat, api, people, running
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
        assert "还在进行中" in api.last(person.user_id).text
    progress = people["周敏"]
    await chat.send(progress, "/evaluation")
    assert "党员已评完 0/6 人" in api.last(progress.user_id).text  # who rated, never what
    await chat.send(zhang, "/evaluation")
    assert "尚未评完" in api.last(zhang.user_id).text
    # The organiser closes the round.
    await chat.send(progress, "/evaluation")
    assert await chat.tap(progress, "结束评议")
    assert await chat.tap(progress, "确认结束")
    assert "已结束" in api.last(progress.user_id).text
    await chat.send(zhang, "/results")
    own = api.last(zhang.user_id).text
    assert "5 人评议" in own and "总体满意率 83%" in own
    assert "工作作风情况：满意 0 · 比较满意 0 · 基本满意 0 · 不满意 5，满意率 0%" in own
    assert all(f"{n}的意见" in own for n in MARKET if n != "张明")  # five comments: shown
    await chat.send(feng, "/results")
    hidden = api.last(feng.user_id).text
    assert "不足 5 人" in hidden and "说的话" not in hidden and "满意率" not in hidden
    # The secretary sees the branch: 冯磊 stays hidden, and the pooled figure counts only
    # those shown, so subtracting them from it cannot reveal him.
    assert await chat.tap(zhang, "本支部结果")
    branch = api.last(zhang.user_id).text
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
    await chat.press(zheng, "evr:branch")
    assert toast(api) == "这个按钮不适用于您的账号" and api.sent(zheng.user_id) == []


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
    runtime, app, api, people
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
    await delivery.tick(app.bot_data["runtime"])
    await delivery.tick(app.bot_data["runtime"])
    assert any("今天截止" in t for t in api.texts(people["郑强"].user_id))
    assert not any("今天截止" in t for t in api.texts(people["张明"].user_id))


async def test_opening_closing_and_results_are_announced_once(runtime, app, api, people):
    await open_round(runtime)
    zheng, zhang = people["郑强"], people["张明"]

    async def tick() -> None:
        await delivery.tick(app.bot_data["runtime"])

    await tick()
    await tick()
    assert sum("群众评议</b>开始了" in t for t in api.texts(zheng.user_id)) == 1
    await rate_everyone(runtime, "张明")  # 郑强 does not
    runtime.clock.advance(CLOSES - timedelta(days=2))
    await tick()
    await tick()
    assert sum("还有对象没有评完" in t for t in api.texts(zheng.user_id)) == 1
    assert not any("还有对象没有评完" in t for t in api.texts(zhang.user_id))
    runtime.clock.advance(timedelta(days=2))
    await tick()
    await tick()
    assert sum("结果已出" in t for t in api.texts(zheng.user_id)) == 1
    async with runtime.db.session() as session:
        assert (await session.exec(select(EvaluationRound))).one().closed_at is not None


async def test_branches_are_rated_by_their_members_only(runtime, chat, api, people, running):
    async with runtime.db.session() as session:
        branches = (await session.exec(select(Branch))).all()
    huang = people["黄勇"]
    await chat.send(huang, "/rate")
    listing = api.last(huang.user_id).text
    assert "执法大队党支部" in listing
    assert all(f"{b.name}（党支部）" not in listing for b in branches if b.name != "执法大队党支部")


async def test_cancel_drops_a_ballot_and_a_member_cannot_use_a_code(
    runtime, chat, api, people, running
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    for _ in range(6):
        assert await chat.tap(zheng, "1")
    await chat.send(zheng, "/cancel")
    assert "已放弃" in api.last(zheng.user_id).text and len(runtime.ballots) == 0
    await chat.send(zheng, "一句话")  # no longer a comment: nothing waits for it
    assert "已放弃" not in api.last(zheng.user_id).text
    assert await participation(runtime) == set()
    async with runtime.db.session() as session:
        from bot.core import evaluation_codes

        (token,) = await evaluation_codes.issue_codes(
            session, evaluation_round=running, rater_group="vendor", branch_id=None, count=1
        )
    await chat.send(zheng, f"/start {token}")
    assert (
        "/rate" in api.last(zheng.user_id).text
        and "测评码是留给群众的" in api.last(zheng.user_id).text
    )


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
    runtime, chat, api, people, running
):
    await load(runtime, QUARTER)
    zheng = people["郑强"]
    who = await ids(runtime)
    await stop_at_the_comment(chat, zheng, "张明")
    await chat.send(zheng, "/summary")
    said = api.texts(zheng.user_id)[-2:]
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
    runtime, chat, api, people, running
):
    await load(runtime, QUARTER)
    zheng = people["郑强"]
    who = await ids(runtime)
    await chat.send(zheng, "/summary")
    await chat.send(zheng, "窗口业务零投诉")  # 总结成绩
    first = api.next_message_id(zheng.user_id) - 1
    await stop_at_the_comment(chat, zheng, "张明")
    edited = {
        "message_id": first,
        "date": chat._stamp(),
        "edit_date": chat._stamp(),
        "chat": {"id": zheng.user_id, "type": "private", "first_name": zheng.name},
        "from": telegram_user(zheng),
        "text": "张明态度很差",
    }
    await chat.feed({"edited_message": edited})
    assert "修改已发出的消息不会被采用" in api.last(zheng.user_id).text
    await chat.send(zheng, "希望多到一线")
    assert "意见建议：希望多到一线" in api.last(zheng.user_id).text
    assert await chat.tap(zheng, "确认提交")
    await chat.feed(
        {"edited_message": {**edited, "text": "张明态度差", "edit_date": chat._stamp()}}
    )
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
    runtime, chat, api, people, running, clock
):
    zheng = people["郑强"]
    await chat.send(zheng, "/rate")
    assert await chat.tap(zheng, "张明")
    assert await chat.tap(zheng, "1")
    for _ in range(3):  # four and a half hours of other messages, none about the ballot
        clock.advance(timedelta(minutes=90))
        await chat.send(zheng, "你好")
    assert await chat.tap(zheng, "1")  # the ballot's next item, long after
    assert "已经失效" in toast(api)
    await chat.send(zheng, "/cancel")
    assert "已放弃" not in api.last(zheng.user_id).text


# --- batches, restarts and codes ---------------------------------------------------------------


@asynccontextmanager
async def restarted(runtime, api, chat):
    """The process dies and starts again on the same database: its memory is gone."""
    fresh = Runtime(
        settings=runtime.settings, db=runtime.db, clock=runtime.clock, messages=runtime.messages
    )
    application = build_application(fresh, request=api)
    async with application:
        again = LocalChat(application, api, runtime.clock)
        again._update_ids = chat._update_ids  # Telegram's update ids go on
        yield fresh, again


async def test_ballots_waiting_at_a_crash_are_lost_whole_and_asked_again(
    runtime, chat, api, people, running
):
    zheng = people["郑强"]
    who = await ids(runtime)
    target = f"member:{who['张明']}"
    await rate(chat, zheng, "张明", [1] * 6, "第一次的意见")
    assert len(runtime.pending) == 1
    async with restarted(runtime, api, chat) as (fresh, again):
        # Never written, so never half counted: he is, correctly, shown as not having rated.
        assert await participation(fresh) == set() and await counts(fresh, target) == {}
        await again.send(zheng, "/rate")
        assert "· 张明" in api.last(zheng.user_id).text
        await rate(again, zheng, "张明", [2] * 6, "第二次的意见")
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
    runtime, chat, api, people, running, stranger
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
    async with restarted(runtime, api, chat) as (fresh, again):
        await again.send(stranger, f"/start {second}")
        assert "已经使用过一个测评码" in api.last(stranger.user_id).text
        # Back to the code he used: his ballot was lost with the process, so 张明 is there.
        await again.send(stranger, f"/start {first}")
        assert "还有 6 个对象待评议" in api.last(stranger.user_id).text
        neighbour = Person(555_000_222, "Neighbour", "zh-hans")
        await again.send(neighbour, f"/start {second}")
        assert "还有 6 个对象待评议" in api.last(neighbour.user_id).text
    # What is kept says neither which account nor which code.
    async with runtime.db.session() as session:
        kept = " ".join(row.digest for row in (await session.exec(select(EvaluationCodeUse))).all())
        codes = (await session.exec(select(EvaluationCode))).all()
    assert len(kept.split()) == 4
    for secret in (str(stranger.user_id), str(neighbour.user_id), first, second):
        assert secret not in kept
    assert not any(f"code:{code.id}" in kept for code in codes)


async def test_results_say_how_many_raters_used_codes(runtime, chat, api, people, running):
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
    assert "5 人评议（其中 3 份来自测评码）" in api.last(people["张明"].user_id).text


async def test_a_ballot_that_expired_at_its_comment_says_so_and_takes_no_text(
    runtime, chat, api, people, running, clock
):
    await load(runtime, QUARTER)
    zheng = people["郑强"]
    who = await ids(runtime)
    await chat.send(zheng, "/summary")  # a self-summary is open, waiting for 总结成绩
    assert "总结成绩" in api.last(zheng.user_id).text
    await stop_at_the_comment(chat, zheng, "张明")
    clock.advance(timedelta(hours=3))
    await chat.send(zheng, "张明同志服务态度很好")
    told = api.last(zheng.user_id).text
    assert "已经自动作废" in told and "张明" in told and "3 个小时" not in told
    async with runtime.db.session() as session:
        summary = (
            await session.exec(select(Summary).where(Summary.member_id == who["郑强"]))
        ).one()
    assert "服务态度" not in summary.achievements  # never routed into the summary's draft
    assert len(runtime.pending) == 0 and await comments_on(runtime, f"member:{who['张明']}") == []
    # Said once: what he types next goes where it belongs again.
    await chat.send(zheng, "本季度窗口业务零投诉")
    async with runtime.db.session() as session:
        summary = await session.get(Summary, summary.id)
    assert summary.achievements == "本季度窗口业务零投诉"
