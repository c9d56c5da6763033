"""Digests, the workbook and the charts, through the channel contract on both databases. One
test stays on Telegram: a long digest split within Telegram's message limit (UTF-16 units)."""

import asyncio
import io
import re
import struct
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.ft2font import FT2Font
from openpyxl import load_workbook
from sqlmodel import col, delete, func, select

from bot import delivery
from bot.__main__ import main
from bot.channels.local.chat import Person
from bot.core import ballot_counting, charts, evaluation
from bot.core.digests import DigestAction
from bot.core.evaluation import MEMBERS, Rater
from messages.render import MESSAGE_LIMIT
from storage import accounts
from storage import people as people_queries
from storage.models import Branch, ChannelAccount, Member, Summary, SummaryStatus
from tests.conftest import bind_account, block_bot
from tests.test_evaluation import open_round
from tests.test_reminders import CAMPAIGN, at, load
from tests.test_reviews import ids
from tests.test_summaries import QUARTER

WEEKLY_KEYS = ("digest_branch", "digest_organisation")
MARKET = ("张明", "郑强", "王秀英", "冯磊", "何静", "许涛")  # 市场管理党支部, in roster order


@pytest.fixture
async def quarter(runtime, people):
    await load(runtime, QUARTER)
    return people


async def submit_summary(chat, person, command: str = "/summary") -> None:
    """/summary, an answer to every question, then submit (the form adapts to the member)."""
    await chat.send(person, command)
    for _ in range(8):
        offered = chat.last_with_buttons(person)
        if offered and any(
            label in text for text, _payload in offered.buttons for label in ("确认提交", "Submit")
        ):
            assert await chat.tap(person, "确认提交") or await chat.tap(person, "Submit")
            return
        await chat.send(person, "按时完成本季度各项工作")
    raise AssertionError(f"{person.name}'s summary never reached the confirmation")


async def submitted_in(runtime, branch: str) -> int:
    async with runtime.db.session() as session:
        branch_id = (await session.exec(select(Branch.id).where(Branch.name == branch))).one()
        return (
            await session.exec(
                select(func.count()).where(
                    Summary.branch_id == branch_id,
                    Summary.status == SummaryStatus.SUBMITTED,
                    Summary.member_id.is_not(None),
                )
            )
        ).one()


def plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def digest_line(text: str, start: str) -> str:
    return next(line for line in plain(text).splitlines() if line.strip().startswith(start))


def files(sent, person) -> list:
    """The files (documents and charts) the person received, oldest first."""
    return [item for item in sent.to(person) if item.kind == "file"]


def weekly(sent, person) -> list[str]:
    """The weekly digests the person received (from the outbox, where a message may bundle
    several, its key naming each), oldest first."""
    return [
        m.text
        for m in sent.to(person)
        if set(m.key.split(",")) & set(WEEKLY_KEYS) and "每周简报" in m.text
    ]


async def test_the_branch_digest_follows_the_quarter(quarter, chat, sent, runtime, clock):
    zhang = quarter["张明"]
    # Nothing done yet: every member is missing, names listed.
    await chat.send(zhang, "/digest")
    assert sent.keys(zhang) == ["digest_branch"]
    assert [payload for _label, payload in sent.last(zhang).buttons] == [
        DigestAction("chart").pack(),
        DigestAction("export").pack(),
    ]
    text = plain(sent.last(zhang).text)
    assert "市场管理党支部工作进展" in text and "当前阶段：全面推进" in text
    assert "第四季度自我小结 — 11月30日（还有 7 天）" in text
    assert "已交 0/6" in text and "支部小结尚未提交" in text
    assert set(digest_line(text, "尚未提交").split("：")[1].split("、")) == set(MARKET)
    assert "执法大队" not in text and "黄勇" not in text  # only his own branch

    # Half done.
    for name in ("郑强", "冯磊", "许涛"):
        await submit_summary(chat, quarter[name])
    assert await submitted_in(runtime, "市场管理党支部") == 3
    await chat.send(zhang, "/digest")
    text = plain(sent.last(zhang).text)
    assert "已交 3/6" in text
    assert set(digest_line(text, "尚未提交").split("：")[1].split("、")) == {
        "张明",
        "王秀英",
        "何静",
    }

    # All done, one of them after the deadline.
    for name in ("张明", "王秀英"):
        await submit_summary(chat, quarter[name])
    clock.set(at(30, 23, 30) + timedelta(hours=1))
    await submit_summary(chat, quarter["何静"])
    assert await submitted_in(runtime, "市场管理党支部") == 6
    await chat.send(zhang, "/digest")
    text = plain(sent.last(zhang).text)
    assert "已交 6/6（其中补交 1），全部交齐" in text and "尚未提交：" not in text


async def rate_everyone_in(runtime, branch: str, evaluation_round, levels: dict[str, int]) -> None:
    """Every member of the branch rates everyone they rate (the leadership team, the branch,
    its members): `levels[name]` on every item, 满意 for anyone not named."""
    who = await ids(runtime)
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        settings = evaluation.RoundSettings.of(evaluation_round)
        for name in MARKET:
            rater = Rater(f"member:{who[name]}", organisation.id, MEMBERS, who[branch])
            for view in await evaluation.targets_for(
                session, evaluation_round=evaluation_round, rater=rater
            ):
                items = settings.items_for(view.target.kind)
                outcome = await evaluation.cast(
                    session,
                    pending=runtime.pending,
                    round_id=evaluation_round.id,
                    rater=rater,
                    target=view.target.target,
                    choices=[levels.get(view.name, 0)] * len(items),
                    comment="",
                    now=runtime.clock.now(),
                )
                assert outcome == evaluation.Outcome.RECEIVED
    await ballot_counting.count_full_batches(runtime)


async def test_while_rating_and_after_the_round_closes(quarter, chat, sent, runtime, clock):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    evaluation_round = await open_round(runtime)
    await chat.send(zhang, "/digest")
    text = plain(sent.last(zhang).text)
    assert "群众评议：已评完 0/6" in text
    assert set(digest_line(text, "尚未评完").split("：")[1].split("、")) == set(MARKET)

    # 郑强 is rated 不满意 throughout, the others 满意: 5 raters each, at the threshold.
    levels = {name: 0 for name in MARKET} | {"郑强": 3}
    await rate_everyone_in(runtime, "市场管理党支部", evaluation_round, levels)
    await chat.send(zhang, "/digest")
    text = plain(sent.last(zhang).text)
    assert "群众评议：已评完 6/6" in text and "尚未评完" not in text
    assert "党员满意率" not in text  # no figure of any kind before the round closes

    clock.advance(timedelta(days=6))  # past the closing time
    await chat.send(zhang, "/evaluation")  # any update; the reminder job closes due rounds
    await delivery.tick(runtime)
    await chat.send(zhang, "/digest")
    text = plain(sent.last(zhang).text)
    # Five of six members satisfied on every item: 5/6 pooled.
    assert "党员满意率 83%（6 人达到公布人数）" in text
    # A member never reads another's figure in the digest, and nobody reads anything of 郑强's.
    assert "郑强" not in digest_line(text, "🗳")
    await chat.send(zheng, "/digest")
    assert sent.keys(zheng)[-1] == "not_allowed"


async def cast_on(
    runtime, evaluation_round, target: str, raters, *, level: int, kind: str = "member"
) -> None:
    """These members of 市场管理党支部 rate `target` (a member, or a branch) at `level` on
    every item."""
    who = await ids(runtime)
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        for rater in raters:
            outcome = await evaluation.cast(
                session,
                pending=runtime.pending,
                round_id=evaluation_round.id,
                rater=Rater(
                    f"member:{who[rater]}", organisation.id, MEMBERS, who["市场管理党支部"]
                ),
                target=f"{kind}:{who[target]}",
                choices=[level] * 6,
                comment="",
                now=runtime.clock.now(),
            )
            assert outcome == evaluation.Outcome.RECEIVED
    await ballot_counting.count_full_batches(runtime)


async def test_a_member_below_the_threshold_is_left_out_of_the_branch_figure(
    quarter, chat, sent, runtime, clock
):
    zhang = quarter["张明"]
    evaluation_round = await open_round(runtime)
    # Three raters for 郑强 (不满意): under the threshold of 5; five for 张明 (满意).
    await cast_on(runtime, evaluation_round, "郑强", ("张明", "冯磊", "许涛"), level=3)
    await cast_on(
        runtime, evaluation_round, "张明", ("郑强", "冯磊", "许涛", "何静", "王秀英"), level=0
    )
    clock.advance(timedelta(days=6))
    await delivery.tick(runtime)
    await chat.send(zhang, "/digest")
    line = digest_line(plain(sent.last(zhang).text), "🗳")
    # Only 张明 is over the threshold: 100%, and 郑强's 不满意 is nowhere in the figure.
    assert "党员满意率 100%（1 人达到公布人数，5 人评议人数不足未公布）" in line


async def test_a_branch_figure_beside_members_under_the_threshold_says_whose_raters_are_few(
    quarter, chat, sent, runtime, clock
):
    zhang = quarter["张明"]
    evaluation_round = await open_round(runtime)
    raters = ("郑强", "冯磊", "许涛", "何静", "王秀英")
    await cast_on(runtime, evaluation_round, "市场管理党支部", raters, level=0, kind="branch")
    clock.advance(timedelta(days=6))
    await delivery.tick(runtime)
    await chat.send(zhang, "/digest")
    line = digest_line(plain(sent.last(zhang).text), "🗳")
    assert "党员评议人数不足，未公布；支部满意率 100%" in line


async def test_the_organisation_digest_puts_the_branches_most_behind_first(
    quarter, chat, sent, runtime
):
    for name in MARKET:
        await submit_summary(chat, quarter[name])
    for name in ("刘芳", "孙伟"):
        await submit_summary(chat, quarter[name])
    wang = quarter["王志刚"]  # 党组书记
    await chat.send(wang, "/digest")
    assert sent.last(wang).key == "digest_organisation"
    text = plain(sent.last(wang).text)
    order = [text.index(f"{b}（") for b in ("执法大队党支部", "机关党支部", "市场管理党支部")]
    assert order == sorted(order)
    assert "1. 执法大队党支部（6 人）：小结 0/6" in text
    assert "市场管理党支部（6 人）：小结 6/6" in text
    assert "机关党支部（8 人）：小结 2/8" in text


async def test_who_may_read_a_digest_and_export(quarter, chat, sent, runtime):
    zheng = quarter["郑强"]
    await chat.send(zheng, "/digest")
    await chat.send(zheng, "/export")
    assert sent.keys(zheng) == ["not_allowed", "not_allowed"]
    assert "没有这项权限" in plain(sent.last(zheng).text)
    # A forged button press is refused the same way: a toast, and no file.
    await chat.press(zheng, DigestAction("export").pack())
    await chat.press(zheng, DigestAction("chart").pack())
    refused = runtime.messages.plain("zh_CN", "button_refused")
    assert sent.toasts(zheng) == [refused, refused]
    assert files(sent, zheng) == [] and len(sent.to(zheng)) == 2


async def test_the_workbook_holds_the_branch_and_nothing_else(quarter, chat, sent, runtime):
    zhang, zheng = quarter["张明"], quarter["郑强"]
    await submit_summary(chat, zheng)
    await chat.send(zheng, "/pledge 办好窗口业务 | 提前到岗")
    await chat.send(zhang, "/digest")
    assert await chat.tap(zhang, "导出 Excel")
    assert sent.toasts(zhang) == [runtime.messages.plain("zh_CN", "export_coming")]
    (document,) = files(sent, zhang)
    assert document.file_name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(document.content))
    assert book.sheetnames == [
        "党员名单",
        "公开承诺",
        "自我小结",
        "群众评议",
        "领导点评",
        "整改落实",
    ]
    members = list(book["党员名单"].values)
    assert members[0] == ("支部", "姓名", "类别", "职务", "已加入助手", "联系情况")
    assert [row[1] for row in members[1:]] == list(MARKET)
    assert {row[0] for row in members[1:]} == {"市场管理党支部"}
    assert members[1][3] == "支部书记"
    pledges = list(book["公开承诺"].values)
    assert pledges[1][1:4] == ("郑强", "办好窗口业务", "提前到岗")
    summaries = {row[1]: row for row in list(book["自我小结"].values)[1:]}
    assert summaries["郑强"][3] == "已提交" and summaries["郑强"][6] == "按时完成本季度各项工作"
    assert summaries["冯磊"][3] == "未提交" and summaries["冯磊"][6] is None
    assert summaries["（支部）"][3] == "未提交"
    # /export and /export 第四季度 are the same workbook, under the same name.
    await chat.send(zhang, "/export 第四季度")
    named = [document.file_name for document in files(sent, zhang)]
    assert len(named) == 2 and named[0] == named[1] and "第四季度" in named[0]
    # /export with a quarter the calendar does not have says so, and sends nothing.
    await chat.send(zhang, "/export 第九季度")
    assert sent.last(zhang).key == "export_unknown_quarter"
    assert "没有“第九季度”" in plain(sent.last(zhang).text) and len(files(sent, zhang)) == 2


async def test_the_workbook_shows_evaluation_figures_only_over_the_threshold(
    quarter, chat, sent, runtime, clock
):
    evaluation_round = await open_round(runtime)
    levels = {name: 0 for name in MARKET} | {"郑强": 3}
    await rate_everyone_in(runtime, "市场管理党支部", evaluation_round, levels)
    clock.advance(timedelta(days=6))
    await delivery.tick(runtime)
    organiser = quarter["周敏"]
    await chat.send(organiser, "/export")
    document = files(sent, organiser)[-1]
    rows = list(load_workbook(io.BytesIO(document.content)).worksheets[3].values)
    assert rows[0] == (
        "支部",
        "评议对象",
        "类别",
        "季度",
        "评议项目",
        "满意",
        "比较满意",
        "基本满意",
        "不满意",
        "满意率",
    )
    zheng = [r for r in rows if r[1] == "郑强"]
    assert len(zheng) == 7  # six items and the overall line
    assert zheng[0][5:] == (0, 0, 0, 5, 0)
    sheet = load_workbook(io.BytesIO(document.content)).worksheets[3]
    rates = [row[9] for row in sheet.iter_rows(min_row=2) if row[9].value is not None]
    assert rates and all(cell.number_format == "0%" for cell in rates)  # 83%, not 0.8333
    # Nobody rated the other branches' members: withheld, with no figure at all.
    huang = [r for r in rows if r[1] == "黄勇"]
    assert huang == [(*huang[0][:4], "评议人数不足，未公布", None, None, None, None, None)]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


async def test_the_chart_is_a_png_with_chinese_text(quarter, chat, sent, runtime):
    zhang = quarter["张明"]
    # Nothing in yet: a sentence, not a chart of empty bars.
    await chat.send(zhang, "/digest")
    assert await chat.tap(zhang, "查看图表")
    assert files(sent, zhang) == []
    assert "暂时没有可画的图表" in sent.toasts(zhang)[-1]
    await submit_summary(chat, quarter["郑强"])
    await chat.send(zhang, "/digest")
    assert await chat.tap(zhang, "查看图表")
    assert sent.toasts(zhang)[-1] == runtime.messages.plain("zh_CN", "digest_chart_coming")
    (photo,) = files(sent, zhang)
    # A secretary's chart is about the branch, and says so.
    assert photo.text == "市场管理党支部工作进度"
    width, height = png_size(photo.content)
    assert width == charts.WIDTH_INCHES * charts.DPI
    assert height == int((1.2 + charts.BAR_INCHES * 1 * 2**0.5) * charts.DPI)
    # Every character of the chart's text has a glyph in the font: no squares.
    face = FT2Font(charts.font().get_file())
    for text in ("各支部工作进度", "自我小结已交", "群众评议已评完", "市场管理党支部"):
        assert all(face.get_char_index(ord(c)) for c in text), text


def test_the_flag_line_is_named_in_the_legend():
    bars = [charts.Bar("组织领导情况", (0.5,)), charts.Bar("活动效果", (0.9,))]
    figure = charts.bar_figure(
        "满意率", ("满意率",), bars, flag_below=0.6, flag_label="60% 提示线（低于此建议补课）"
    )
    legend = figure.axes[0].get_legend()
    assert {t.get_text() for t in legend.get_texts()} == {"满意率", "60% 提示线（低于此建议补课）"}


async def crowd(runtime) -> None:
    """150 more branches with long names, and 大支部 of 500 members."""
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        now = runtime.clock.now()
        big = Branch(organisation_id=organisation.id, name="大支部")
        session.add(big)
        session.add_all(
            Branch(organisation_id=organisation.id, name=f"第{n:03d}党支部（名称较长的基层单位）")
            for n in range(150)
        )
        await session.flush()
        session.add_all(
            Member(
                organisation_id=organisation.id,
                name=f"党员{n:03d}",
                branch_id=big.id,
                created_at=now,
                updated_at=now,
            )
            for n in range(500)
        )


async def test_long_digests_are_split_and_big_branches_folded(
    quarter, chat, sent, runtime, channel
):
    await crowd(runtime)
    wang = quarter["王志刚"]
    await chat.send(wang, "/digest")
    parts = sent.to(wang)
    assert len(parts) > 1 and {part.key for part in parts} == {"digest_organisation"}
    assert all(len(part.text) <= sent.limits.text_length for part in parts)
    # The buttons come once, under the last part.
    assert [bool(part.buttons) for part in parts] == [False] * (len(parts) - 1) + [True]
    whole = plain("\n".join(sent.texts(wang)))
    assert all(f"第{n:03d}党支部" in whole for n in range(150))
    assert "大支部（500 人）：小结 0/500" in whole
    # The big branch's secretary sees the first names and a count, not 500 names.
    async with runtime.db.session() as session:
        member = (await session.exec(select(Member).where(Member.name == "党员000"))).one()
        member.roles = "member secretary"
    await bind_account(runtime, member.id, "777000001", channel)
    secretary = Person(777_000_001, "党员000", "zh-hans")
    await chat.send(secretary, "/digest")
    assert set(sent.keys(secretary)) == {"digest_branch"}
    missing = digest_line("\n".join(sent.texts(secretary)), "尚未提交")
    assert missing.endswith("等 500 人") and missing.count("、") == 11


async def test_a_long_digest_keeps_within_telegrams_limit(quarter, chat, api, runtime):
    await crowd(runtime)
    wang = quarter["王志刚"]
    await chat.send(wang, "/digest")
    parts = [c.text for c in api.sent(wang.user_id) if c.method == "sendMessage"]
    assert len(parts) > 1
    assert all(len(p.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT for p in parts)
    assert "大支部（500 人）：小结 0/500" in plain("\n".join(parts))


async def test_the_weekly_digest_goes_once_a_week_to_those_who_look_after_branches(
    quarter, chat, sent, runtime, clock
):
    clock.set(at(23, 9, 5))  # Monday
    await delivery.tick(runtime)
    await delivery.tick(runtime)
    zhang = quarter["张明"]
    assert weekly(sent, zhang) == [sent.last(zhang).text]
    assert "digest_branch" in sent.last(zhang).key.split(",")
    assert "已交 0/6" in sent.last(zhang).text
    assert [payload for _label, payload in sent.last(zhang).buttons] == [
        DigestAction("chart").pack(),
        DigestAction("export").pack(),
    ]
    assert len(weekly(sent, quarter["马俊"])) == 1
    for leader in ("王志刚", "周敏"):  # 党组书记 and the organiser: every branch
        assert (
            sum("digest_organisation" in key.split(",") for key in sent.keys(quarter[leader])) == 1
        )
        assert "各支部工作进展" in sent.last(quarter[leader]).text
    assert weekly(sent, quarter["郑强"]) == []
    clock.set(at(29, 9, 5))  # Sunday: nothing new
    await delivery.tick(runtime)
    assert len(weekly(sent, zhang)) == 1
    clock.set(at(30, 9, 5))  # the next Monday, and nobody has done anything: the short form
    await delivery.tick(runtime)
    found = weekly(sent, zhang)
    assert len(found) == 2 and "每周简报 · 11月30日" in found[1]
    assert "与上周相比没有新的变化：市场管理党支部（6 人）：小结 0/6" in plain(found[1])
    assert "尚未提交" not in found[1]
    await submit_summary(chat, quarter["郑强"])
    clock.set(at(37, 9, 5))  # something moved: the whole digest again
    await delivery.tick(runtime)
    found = weekly(sent, zhang)
    assert len(found) == 3 and "已交 1/6" in found[2] and "尚未提交" in found[2]


PHASES_ONLY = """
[campaign]
name = "测试活动"
timezone = "Asia/Shanghai"
digest_day = "周一"
{quiet}

[[phases]]
name = "全面推进"
start = 2026-11-01
end = 2026-12-31
"""


async def test_no_weekly_digest_when_there_is_nothing_to_say_unless_asked(
    runtime, people, sent, clock
):
    async with runtime.db.session() as session:
        huang = (await session.exec(select(Member).where(Member.name == "黄勇"))).one()
    await block_bot(runtime, huang.id)
    await load(runtime, PHASES_ONLY.replace("{quiet}", ""))
    clock.set(at(23, 9, 5))
    await delivery.tick(runtime)
    # 执法大队党支部 has someone to reach out to; 市场管理党支部 has nothing to act on.
    (ma,) = weekly(sent, people["马俊"])
    assert "黄勇" in ma
    assert weekly(sent, people["张明"]) == []
    await load(runtime, PHASES_ONLY.replace("{quiet}", "digest_when_quiet = true"))
    clock.set(at(30, 9, 5))
    await delivery.tick(runtime)
    (quiet,) = weekly(sent, people["张明"])
    assert "没有需要跟进的事项" in quiet


async def test_the_command_line_exports_a_quarter_for_one_branch(
    quarter, chat, runtime, monkeypatch, capsys, tmp_path
):
    await submit_summary(chat, quarter["黄勇"])
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    out = tmp_path / "执法大队.xlsx"
    arguments = ["export", "--quarter", "第四季度", "--branch", "执法大队党支部", "--out", str(out)]
    assert await asyncio.to_thread(main, arguments) == 0
    assert "已导出到" in capsys.readouterr().out
    book = load_workbook(out)
    names = [row[1] for row in list(book["党员名单"].values)[1:]]
    assert names == ["马俊", "黄勇", "林娜", "高志远", "罗斌", "谢婷"]
    summaries = {row[1]: row[3] for row in list(book["自我小结"].values)[1:]}
    assert summaries["黄勇"] == "已提交" and summaries["马俊"] == "未提交"
    # A quarter or a branch the organisation does not have: said, and nothing written.
    assert await asyncio.to_thread(main, [*arguments[:2], "第九季度", *arguments[3:]]) == 1
    assert "没有“第九季度”" in capsys.readouterr().out
    assert await asyncio.to_thread(main, [*arguments[:4], "无此支部", *arguments[5:]]) == 1
    assert "没有名为“无此支部”的支部" in capsys.readouterr().out


async def test_the_workbook_is_named_by_the_organisations_date(quarter, chat, sent, clock):
    zhang = quarter["张明"]
    clock.set(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 07:30 on 12-01 in Beijing
    await chat.send(zhang, "/export")
    (document,) = files(sent, zhang)
    assert document.file_name == "创先争优-第四季度-20261201.xlsx"


async def test_members_who_never_joined_are_not_counted_unreachable(quarter, chat, sent, runtime):
    async with runtime.db.session() as session:
        members = {m.name: m for m in (await session.exec(select(Member))).all()}
        # 林娜 and 谢婷 never bound an account.
        unbound = [members["林娜"].id, members["谢婷"].id]
        await session.exec(delete(ChannelAccount).where(col(ChannelAccount.member_id).in_(unbound)))
    await block_bot(runtime, members["黄勇"].id)
    wang = quarter["王志刚"]
    await chat.send(wang, "/digest")
    assert sent.last(wang).key == "digest_organisation"
    line = digest_line(sent.last(wang).text, "1. 执法大队党支部")
    assert line.endswith("；联系不上 1 人；尚未加入 2 人"), line
    async with runtime.db.session() as session:
        unbound = (
            await session.exec(select(Member.name).where(~accounts.is_bound(Member.id)))
        ).all()
    assert sorted(unbound) == ["林娜", "谢婷"]


async def test_in_week_one_a_branch_line_says_there_is_nothing_to_follow_up(
    runtime, people, chat, sent
):
    await load(runtime, CAMPAIGN)  # 动员部署: no summary or round yet
    organiser = people["周敏"]
    await chat.send(organiser, "/digest")
    line = digest_line(sent.last(organiser).text, "1.")
    assert line == "1. 市场管理党支部（6 人）：暂无需要跟进的事项"
    # And a secretary's /help does not speak of every branch.
    await chat.send(people["张明"], "/help")
    assert sent.last(people["张明"]).key == "help"
    assert "各支部" not in sent.last(people["张明"]).text
