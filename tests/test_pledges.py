"""Public pledges: made by chat, public within the branch, changed only while the window is open.

All through the channel contract (the local channel); `feed` gives the tests what the local
chat has no typing for (an edit, a photo, a sticker), as any channel's inbound would."""

from datetime import UTC, datetime, timedelta

from sqlmodel import select

import handlers
from bot.channels import local
from bot.channels.local.chat import LocalChat, Person
from bot.core.access import Account
from bot.core.contract import FileRef, Inbound, Kind
from bot.core.pledges import NoDeadline, PledgeStep
from storage.models import Pledge, PledgeProgress, PledgeStatus
from tests.test_reminders import load

PLEDGE_WINDOW = """
[campaign]
name = "测试活动"
timezone = "Asia/Shanghai"

[[phases]]
name = "动员部署"
start = 2026-11-23
end = 2026-11-29
pledges = true

[[phases]]
name = "全面推进"
start = 2026-11-30
end = 2026-12-31
"""


async def feed(
    chat: LocalChat, person: Person, kind: Kind = Kind.WORDS, *, group: str = "", **fields
) -> None:
    """An inbound the local chat has no typing for (an edit, a photo, a sticker: `other`),
    in the person's private chat or in a `group` chat."""
    account = Account(local.CHANNEL, str(person.user_id))
    where = group or str(person.user_id)
    inbound = Inbound(kind, account, where, not group, language=person.language_code, **fields)
    await chat.routes.dispatch(inbound, chat.channel, chat.runtime)


def payloads(message) -> list[str]:
    return [payload for _label, payload in message.buttons]


def labels(message) -> list[str]:
    return [label for label, _payload in message.buttons]


async def pledges_in_db(runtime) -> list[Pledge]:
    async with runtime.db.session() as session:
        return list((await session.exec(select(Pledge).order_by(Pledge.id))).all())


async def make_pledge(
    chat, person, goal="按时办结窗口业务", measures="每天提前到岗", due="2026-12-31"
):
    await chat.send(person, "/pledge")
    await chat.send(person, goal)
    await chat.send(person, measures)
    await chat.send(person, due)


async def test_a_pledge_step_by_step(chat, sent, people, runtime):
    zheng = people["郑强"]
    await make_pledge(chat, zheng)
    assert sent.keys(zheng) == [
        "pledge_ask_goal",
        "pledge_ask_measures",
        "pledge_ask_due",
        "pledge_saved",
    ]
    assert "2026年12月31日" in sent.last(zheng).text
    (pledge,) = await pledges_in_db(runtime)
    assert (pledge.goal, pledge.measures, str(pledge.due_on)) == (
        "按时办结窗口业务",
        "每天提前到岗",
        "2026-12-31",
    )
    assert pledge.status == PledgeStatus.IN_PROGRESS and pledge.member_id is not None


async def test_a_pledge_in_one_message_and_without_deadline(chat, sent, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 帮扶两户经营户｜每月走访一次")
    assert sent.keys(zheng) == ["pledge_saved"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "学习党章")
    await chat.send(zheng, "每周一章")
    assert payloads(chat.last_with_buttons(zheng)) == [NoDeadline().pack()]
    assert await chat.tap(zheng, "不设时限")
    assert sent.last(zheng).key == "pledge_saved"
    assert [(p.goal, p.due_on) for p in await pledges_in_db(runtime)] == [
        ("帮扶两户经营户", None),
        ("学习党章", None),
    ]


async def test_branch_listing_shows_my_branch_only(chat, sent, people):
    await make_pledge(chat, people["郑强"], goal="郑强的承诺")
    await make_pledge(chat, people["黄勇"], goal="黄勇的承诺")  # 执法大队党支部
    await chat.send(people["张明"], "/pledge branch 建设学习型支部 | 每月集中学习")
    await chat.send(people["冯磊"], "/pledges branch")
    listing = sent.last(people["冯磊"])
    assert listing.key == "pledge_branch_list"
    assert "郑强：郑强的承诺" in listing.text and "【支部】建设学习型支部" in listing.text
    assert "黄勇" not in listing.text


async def test_only_a_secretary_records_the_branch_pledge(chat, sent, people, runtime):
    await chat.send(people["郑强"], "/pledge branch 支部目标 | 措施")
    refusal = sent.last(people["郑强"])
    assert refusal.key == "pledge_refused" and "由支部书记代表支部记录" in refusal.text
    assert await pledges_in_db(runtime) == []


async def test_edit_and_withdraw_while_the_window_is_open(chat, sent, people, runtime, clock):
    await load(runtime, PLEDGE_WINDOW)
    zheng = people["郑强"]
    await make_pledge(chat, zheng)
    (pledge,) = await pledges_in_db(runtime)
    await chat.send(zheng, "/pledges")
    assert sent.last(zheng).key == "pledge_list"
    assert payloads(sent.last(zheng)) == [PledgeStep(pledge.id, "open").pack()]
    assert await chat.tap(zheng, "1")
    assert sent.last(zheng).key == "pledge_detail"
    assert PledgeStep(pledge.id, "edit").pack() in payloads(sent.last(zheng))
    assert await chat.tap(zheng, "修改")
    await chat.send(zheng, "新的目标")
    await chat.send(zheng, "新的措施")
    assert await chat.tap(zheng, "不设时限")
    saved = sent.last(zheng)
    assert saved.key == "pledge_saved" and "承诺已修改" in saved.text and "新的目标" in saved.text
    (pledge,) = await pledges_in_db(runtime)
    assert (pledge.goal, pledge.due_on) == ("新的目标", None)
    await chat.send(zheng, "/pledges")
    assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "撤回")
    assert sent.last(zheng).key == "pledge_withdraw_confirm"
    assert payloads(sent.last(zheng))[0] == PledgeStep(pledge.id, "withdraw_yes").pack()
    assert await chat.tap(zheng, "确认撤回")
    assert sent.last(zheng).key == "pledge_withdrawn"
    assert (await pledges_in_db(runtime))[0].status == PledgeStatus.WITHDRAWN
    await chat.send(zheng, "/pledges")
    listing = sent.last(zheng)
    assert listing.key == "pledge_list" and "还没有作出公开承诺" in listing.text
    assert not listing.buttons


async def test_after_the_window_only_progress_is_recorded(chat, sent, people, runtime, clock):
    await load(runtime, PLEDGE_WINDOW)
    zheng = people["郑强"]
    await make_pledge(chat, zheng)
    (pledge,) = await pledges_in_db(runtime)
    clock.advance(timedelta(days=8))  # 全面推进: no more pledging
    await chat.send(zheng, "/pledges")
    await chat.tap(zheng, "1")
    detail = chat.last_with_buttons(zheng)
    assert labels(detail) == ["记录进展", "已兑现", "进行中", "未兑现"]
    assert payloads(detail) == [
        PledgeStep(pledge.id, step).pack() for step in ("progress", "kept", "inprogress", "notkept")
    ]
    await chat.press(zheng, PledgeStep(pledge.id, "withdraw").pack(), detail)  # stale or forged
    assert sent.last(zheng).key == "pledge_refused"
    assert "现在不是作出或修改承诺的阶段" in sent.last(zheng).text
    await chat.send(zheng, "/pledge 新承诺 | 新措施")
    assert sent.last(zheng).key == "pledge_refused"
    assert "现在不是作出或修改承诺的阶段" in sent.last(zheng).text
    await chat.press(zheng, PledgeStep(pledge.id, "progress").pack(), detail)
    assert sent.last(zheng).key == "pledge_ask_progress"
    await feed(chat, zheng, file=FileRef("evidence-1", "photo"), caption="本周接待群众30人")
    assert sent.last(zheng).key == "progress_saved"
    assert "进展已记录（含佐证材料）" in sent.last(zheng).text
    await chat.press(zheng, PledgeStep(pledge.id, "notkept").pack(), detail)
    assert sent.last(zheng).key == "pledge_ask_notkept"
    await chat.send(zheng, "窗口调整，改为线上办理")
    assert sent.last(zheng).key == "pledge_status_set"
    async with runtime.db.session() as session:
        progress = (await session.exec(select(PledgeProgress))).one()
        kept = await session.get(Pledge, pledge.id)
    assert (progress.note, progress.evidence_file_id, progress.evidence_kind) == (
        "本周接待群众30人",
        "evidence-1",
        "photo",
    )
    assert (kept.status, kept.status_note) == (PledgeStatus.NOT_KEPT, "窗口调整，改为线上办理")


async def test_someone_elses_pledge_buttons_are_refused(chat, sent, people, runtime):
    await make_pledge(chat, people["郑强"])
    (pledge,) = await pledges_in_db(runtime)
    feng = people["冯磊"]
    for step in ("withdraw_yes", "kept", "progress", "open"):
        await chat.press(feng, PledgeStep(pledge.id, step).pack())
        refusal = sent.last(feng)
        assert refusal.key == "pledge_refused" and "不在您可以操作的范围内" in refusal.text
    assert len(sent.to(feng)) == 4
    assert (await pledges_in_db(runtime))[0].status == PledgeStatus.IN_PROGRESS


async def test_bad_input_keeps_the_draft(chat, sent, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await feed(chat, zheng, other=True)  # a sticker
    assert sent.last(zheng).key == "text_needed"
    await chat.send(zheng, "长" * 600)
    assert sent.last(zheng).key == "text_too_long"
    assert "共 600 字，这里最多还能写 500 字" in sent.last(zheng).text
    await chat.send(zheng, "/help")  # a command in the middle does what it says…
    assert sent.last(zheng).key == "help"
    await chat.send(zheng, "目标")  # …and the conversation carries on
    assert sent.last(zheng).key == "pledge_ask_measures"


async def test_a_pledge_survives_a_restart_midway(chat, sent, people, runtime, clock):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "重启前写的目标")
    restarted = LocalChat(runtime, handlers.routes(), clock)  # new routes, new channel
    await restarted.send(zheng, "重启后写的措施")
    await restarted.send(zheng, "2026-12-31")
    assert restarted.channel.keys(zheng) == ["pledge_ask_due", "pledge_saved"]
    assert [p.goal for p in await pledges_in_db(runtime)] == ["重启前写的目标"]


async def test_cancel_leaves_the_pledge_unmade(chat, sent, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "目标")
    await chat.send(zheng, "/cancel")
    assert sent.last(zheng).key == "cancel_done"
    await chat.send(zheng, "这句话不再是措施")
    assert sent.last(zheng).key == "not_understood"
    assert await pledges_in_db(runtime) == []


async def test_an_edited_message_never_runs_a_command(chat, sent, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 办好窗口业务 | 提前到岗")
    await feed(chat, zheng, Kind.EDITED, text="/pledge 办好窗口业务二 | 提前到岗")
    assert sent.keys(zheng) == ["pledge_saved", "edit_not_taken"]
    # A message edited into a command does not run either, in a flow or outside one.
    await chat.send(zheng, "你好")
    await feed(chat, zheng, Kind.EDITED, text="/pledge 另一条承诺 | 另一项措施")
    assert sent.last(zheng).key == "edit_not_taken"
    assert "命令也不会再次执行" in sent.last(zheng).text
    await chat.send(zheng, "/pledge")
    await feed(chat, zheng, Kind.EDITED, text="/cancel")
    assert sent.last(zheng).key == "edit_not_taken"
    await chat.send(zheng, "flow 仍在：目标")
    assert sent.last(zheng).key == "pledge_ask_measures"
    assert [(p.goal, p.measures) for p in await pledges_in_db(runtime)] == [
        ("办好窗口业务", "提前到岗")
    ]


async def test_a_one_message_pledge_over_the_limit_is_refused_whole_and_kept(
    chat, sent, people, runtime
):
    zheng = people["郑强"]
    goal = "为群众办实事" * 666  # 3,996 characters: one message, eight times the limit
    await chat.send(zheng, f"/pledge {goal} | 每月走访一次")
    assert set(sent.keys(zheng)) == {"text_too_long"}
    refusal = "".join(sent.texts(zheng))
    assert "承诺目标共 3996 字，这里最多还能写 500 字，没有保存" in refusal
    assert goal in refusal.replace("\n", "")  # offered back in full, to be shortened
    assert await pledges_in_db(runtime) == []
    # The shortened goal is all that is asked for: the measures were kept.
    await chat.send(zheng, "为群众办实事")
    assert sent.last(zheng).key == "pledge_saved"
    (pledge,) = await pledges_in_db(runtime)
    assert (pledge.goal, pledge.measures, pledge.due_on) == ("为群众办实事", "每月走访一次", None)


async def test_a_reason_or_progress_over_the_limit_is_refused_not_cut(chat, sent, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 目标 | 措施")
    (pledge,) = await pledges_in_db(runtime)
    await chat.press(zheng, PledgeStep(pledge.id, "notkept").pack())
    await chat.send(zheng, "因" * 501)
    assert sent.last(zheng).key == "text_too_long"
    assert "情况说明共 501 字，这里最多还能写 500 字" in sent.last(zheng).text
    assert (await pledges_in_db(runtime))[0].status == PledgeStatus.IN_PROGRESS
    await chat.send(zheng, "窗口调整")
    assert sent.last(zheng).key == "pledge_status_set"
    kept = (await pledges_in_db(runtime))[0]
    assert (kept.status, kept.status_note) == (PledgeStatus.NOT_KEPT, "窗口调整")


async def test_a_deadline_lies_between_today_and_the_campaigns_end(
    chat, sent, people, runtime, clock
):
    await load(runtime, PLEDGE_WINDOW)  # the calendar ends on 2026-12-31
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 学习党章 | 每周一章 | 2020-01-01")
    bad = sent.last(zheng)
    assert bad.key == "pledge_bad_date" and "“2020-01-01”已经过去了" in bad.text
    assert payloads(bad) == [NoDeadline().pack()] and "不设时限" in labels(bad)[0]
    await chat.send(zheng, "9999-12-31")
    assert sent.last(zheng).key == "pledge_bad_date"
    assert "最晚可以定在 2026年12月31日" in sent.last(zheng).text
    await chat.send(zheng, "1999-01-01")
    assert sent.last(zheng).key == "pledge_bad_date" and "已经过去了" in sent.last(zheng).text
    assert await pledges_in_db(runtime) == []
    # As a member types a date: the month and day alone mean the next such day.
    await chat.send(zheng, "12月31日")
    assert sent.last(zheng).key == "pledge_saved"
    # The organisation's today: 07:30 in Beijing on 11-25 is still 11-24 in UTC.
    clock.set(datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    await chat.send(zheng, "/pledge 走访群众 | 每周两户 | 2026-11-24")
    assert sent.last(zheng).key == "pledge_bad_date" and "已经过去了" in sent.last(zheng).text
    await chat.send(zheng, "十一月二十五日前")
    assert sent.last(zheng).key == "pledge_saved"
    assert [str(p.due_on) for p in await pledges_in_db(runtime)] == ["2026-12-31", "2026-11-25"]


async def test_without_a_calendar_a_deadline_is_at_most_a_few_years_ahead(
    chat, sent, people, runtime
):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "目标")
    await chat.send(zheng, "措施")
    await chat.send(zheng, "2035年1月1日")
    assert sent.last(zheng).key == "pledge_bad_date" and "有些远了" in sent.last(zheng).text
    await chat.send(zheng, "明天吧")
    assert sent.last(zheng).key == "pledge_bad_date"
    assert "没能识别“明天吧”这个日期" in sent.last(zheng).text
    await chat.send(zheng, "２０２７年６月３０日")
    assert sent.last(zheng).key == "pledge_saved"
    assert [str(p.due_on) for p in await pledges_in_db(runtime)] == ["2027-06-30"]


async def test_text_is_normalised_at_the_door(chat, sent, people, runtime):
    zheng = people["郑强"]
    # A NUL byte (PostgreSQL refuses it) and other control characters are dropped, not fatal.
    await chat.send(zheng, "/pledge 帮扶\x00两户\x07经营户 | 每月\x1b走访")
    assert sent.last(zheng).key == "pledge_saved"
    # Text of invisible characters only is no text: asked again, and nothing invisible saved.
    await chat.send(zheng, "/pledge \u200b\u200d | \ufeff")
    assert sent.last(zheng).key == "pledge_format"
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "\u200b\u2060\u3000\u200b")
    assert sent.last(zheng).key == "text_needed"
    await chat.send(zheng, "\u200b学习党章\u200b")
    await chat.send(zheng, "每周一章\r\n每月交流")
    assert await chat.tap(zheng, "不设时限")
    assert [(p.goal, p.measures) for p in await pledges_in_db(runtime)] == [
        ("帮扶两户经营户", "每月走访"),
        ("学习党章", "每周一章\n每月交流"),
    ]
