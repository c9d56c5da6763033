"""Public pledges: made by chat, public within the branch, changed only while the window is open."""

from datetime import UTC, datetime

from sqlmodel import select

from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_api import LocalBotAPI
from bot.channels.telegram.local_chat import LocalChat
from storage.models import Pledge, PledgeProgress, PledgeStatus
from tests.conftest import STICKER
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


async def test_a_pledge_step_by_step(chat, api, people, runtime):
    zheng = people["郑强"]
    await make_pledge(chat, zheng)
    assert "承诺已记录" in api.last(zheng.user_id).text
    (pledge,) = await pledges_in_db(runtime)
    assert (pledge.goal, pledge.measures, str(pledge.due_on)) == (
        "按时办结窗口业务",
        "每天提前到岗",
        "2026-12-31",
    )
    assert pledge.status == PledgeStatus.IN_PROGRESS and pledge.member_id is not None


async def test_a_pledge_in_one_message_and_without_deadline(chat, api, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 帮扶两户经营户｜每月走访一次")
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "学习党章")
    await chat.send(zheng, "每周一章")
    assert await chat.tap(zheng, "不设时限")
    assert [p.due_on for p in await pledges_in_db(runtime)] == [None, None]


async def test_branch_listing_shows_my_branch_only(chat, api, people):
    await make_pledge(chat, people["郑强"], goal="郑强的承诺")
    await make_pledge(chat, people["黄勇"], goal="黄勇的承诺")  # 执法大队党支部
    await chat.send(people["张明"], "/pledge branch 建设学习型支部 | 每月集中学习")
    await chat.send(people["冯磊"], "/pledges branch")
    listing = api.last(people["冯磊"].user_id).text
    assert "郑强：郑强的承诺" in listing and "【支部】建设学习型支部" in listing
    assert "黄勇" not in listing


async def test_only_a_secretary_records_the_branch_pledge(chat, api, people, runtime):
    await chat.send(people["郑强"], "/pledge branch 支部目标 | 措施")
    assert "由支部书记代表支部记录" in api.last(people["郑强"].user_id).text
    assert await pledges_in_db(runtime) == []


async def test_edit_and_withdraw_while_the_window_is_open(chat, api, people, runtime, clock):
    await load(runtime, PLEDGE_WINDOW)
    zheng = people["郑强"]
    await make_pledge(chat, zheng)
    await chat.send(zheng, "/pledges")
    assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "修改")
    await chat.send(zheng, "新的目标")
    await chat.send(zheng, "新的措施")
    assert await chat.tap(zheng, "不设时限")
    assert "承诺已修改" in api.last(zheng.user_id).text
    (pledge,) = await pledges_in_db(runtime)
    assert (pledge.goal, pledge.due_on) == ("新的目标", None)
    await chat.send(zheng, "/pledges")
    assert await chat.tap(zheng, "1")
    assert await chat.tap(zheng, "撤回")
    assert await chat.tap(zheng, "确认撤回")
    assert (await pledges_in_db(runtime))[0].status == PledgeStatus.WITHDRAWN
    await chat.send(zheng, "/pledges")
    assert "还没有作出公开承诺" in api.last(zheng.user_id).text


async def test_after_the_window_only_progress_is_recorded(chat, api, people, runtime, clock):
    from datetime import timedelta

    await load(runtime, PLEDGE_WINDOW)
    zheng = people["郑强"]
    await make_pledge(chat, zheng)
    (pledge,) = await pledges_in_db(runtime)
    clock.advance(timedelta(days=8))  # 全面推进: no more pledging
    await chat.send(zheng, "/pledges")
    await chat.tap(zheng, "1")
    detail = api.last_keyboard(zheng.user_id)
    assert [b["text"] for b in detail.buttons] == ["记录进展", "已兑现", "进行中", "未兑现"]
    await chat.press(zheng, f"pledge:{pledge.id}:withdraw", detail)  # a stale or forged button
    assert "现在不是作出或修改承诺的阶段" in api.last(zheng.user_id).text
    await chat.send(zheng, "/pledge 新承诺 | 新措施")
    assert "现在不是作出或修改承诺的阶段" in api.last(zheng.user_id).text
    await chat.press(zheng, f"pledge:{pledge.id}:progress", detail)
    await chat.send_payload(
        zheng,
        photo=[{"file_id": "evidence-1", "file_unique_id": "e1", "width": 9, "height": 9}],
        caption="本周接待群众30人",
    )
    assert "进展已记录（含佐证材料）" in api.last(zheng.user_id).text
    await chat.press(zheng, f"pledge:{pledge.id}:notkept", detail)
    await chat.send(zheng, "窗口调整，改为线上办理")
    async with runtime.db.session() as session:
        progress = (await session.exec(select(PledgeProgress))).one()
        kept = await session.get(Pledge, pledge.id)
    assert (progress.note, progress.evidence_file_id, progress.evidence_kind) == (
        "本周接待群众30人",
        "evidence-1",
        "photo",
    )
    assert (kept.status, kept.status_note) == (PledgeStatus.NOT_KEPT, "窗口调整，改为线上办理")


async def test_someone_elses_pledge_buttons_are_refused(chat, api, people, runtime):
    await make_pledge(chat, people["郑强"])
    (pledge,) = await pledges_in_db(runtime)
    feng = people["冯磊"]
    for action in ("withdraw_yes", "kept", "progress", "open"):
        await chat.press(feng, f"pledge:{pledge.id}:{action}")
        assert "不在您可以操作的范围内" in api.last(feng.user_id).text
    assert (await pledges_in_db(runtime))[0].status == PledgeStatus.IN_PROGRESS


async def test_bad_input_keeps_the_draft(chat, api, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send_payload(zheng, **STICKER)
    assert "需要您输入文字" in api.last(zheng.user_id).text
    await chat.send(zheng, "长" * 600)
    assert "共 600 字，这里最多还能写 500 字" in api.last(zheng.user_id).text
    await chat.send(zheng, "/help")  # a command in the middle does what it says…
    assert "您可以使用以下功能" in api.last(zheng.user_id).text
    await chat.send(zheng, "目标")  # …and the conversation carries on
    assert "具体措施" in api.last(zheng.user_id).text


async def test_a_pledge_survives_a_restart_midway(chat, api, people, runtime, clock):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "重启前写的目标")
    fresh_api = LocalBotAPI(now=lambda: clock.now().timestamp())
    restarted = build_application(runtime, request=fresh_api)
    async with restarted:
        fresh_chat = LocalChat(restarted, fresh_api, clock)
        await fresh_chat.send(zheng, "重启后写的措施")
        await fresh_chat.send(zheng, "2026-12-31")
    assert "承诺已记录" in fresh_api.last(zheng.user_id).text
    assert [p.goal for p in await pledges_in_db(runtime)] == ["重启前写的目标"]


async def test_cancel_leaves_the_pledge_unmade(chat, api, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "目标")
    await chat.send(zheng, "/cancel")
    assert "已取消" in api.last(zheng.user_id).text
    await chat.send(zheng, "这句话不再是措施")
    assert "没有理解" in api.last(zheng.user_id).text
    assert await pledges_in_db(runtime) == []


async def test_an_edited_message_never_runs_a_command(chat, api, people, runtime):
    zheng = people["郑强"]
    sent = await chat.send(zheng, "/pledge 办好窗口业务 | 提前到岗")
    await chat.edit(zheng, sent, "/pledge 办好窗口业务二 | 提前到岗")
    assert "修改已发出的消息不会被采用" in api.last(zheng.user_id).text
    # A message edited into a command does not run either, in a flow or outside one.
    hello = await chat.send(zheng, "你好")
    await chat.edit(zheng, hello, "/pledge 另一条承诺 | 另一项措施")
    assert "命令也不会再次执行" in api.last(zheng.user_id).text
    await chat.send(zheng, "/pledge")
    await chat.edit(zheng, hello, "/cancel")
    await chat.send(zheng, "flow 仍在：目标")
    assert "具体措施" in api.last(zheng.user_id).text
    assert [(p.goal, p.measures) for p in await pledges_in_db(runtime)] == [
        ("办好窗口业务", "提前到岗")
    ]


async def test_a_one_message_pledge_over_the_limit_is_refused_whole_and_kept(
    chat, api, people, runtime
):
    zheng = people["郑强"]
    goal = "为群众办实事" * 666  # 3,996 characters: one Telegram message, eight times the limit
    await chat.send(zheng, f"/pledge {goal} | 每月走访一次")
    refusal = "".join(call.text for call in api.sent(zheng.user_id)[-2:])
    assert "承诺目标共 3996 字，这里最多还能写 500 字，没有保存" in refusal
    assert goal in refusal.replace("\n", "")  # offered back in full, to be shortened
    assert await pledges_in_db(runtime) == []
    # The shortened goal is all that is asked for: the measures were kept.
    await chat.send(zheng, "为群众办实事")
    assert "承诺已记录" in api.last(zheng.user_id).text
    (pledge,) = await pledges_in_db(runtime)
    assert (pledge.goal, pledge.measures, pledge.due_on) == ("为群众办实事", "每月走访一次", None)


async def test_a_reason_or_progress_over_the_limit_is_refused_not_cut(chat, api, people, runtime):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 目标 | 措施")
    (pledge,) = await pledges_in_db(runtime)
    await chat.press(zheng, f"pledge:{pledge.id}:notkept")
    await chat.send(zheng, "因" * 501)
    assert "情况说明共 501 字，这里最多还能写 500 字" in api.last(zheng.user_id).text
    assert (await pledges_in_db(runtime))[0].status == PledgeStatus.IN_PROGRESS
    await chat.send(zheng, "窗口调整")
    kept = (await pledges_in_db(runtime))[0]
    assert (kept.status, kept.status_note) == (PledgeStatus.NOT_KEPT, "窗口调整")


async def test_a_deadline_lies_between_today_and_the_campaigns_end(
    chat, api, people, runtime, clock
):
    await load(runtime, PLEDGE_WINDOW)  # the calendar ends on 2026-12-31
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge 学习党章 | 每周一章 | 2020-01-01")
    assert "“2020-01-01”已经过去了" in api.last(zheng.user_id).text
    assert "不设时限" in api.last(zheng.user_id).buttons[0]["text"]
    await chat.send(zheng, "9999-12-31")
    assert "最晚可以定在 2026年12月31日" in api.last(zheng.user_id).text
    await chat.send(zheng, "1999-01-01")
    assert "已经过去了" in api.last(zheng.user_id).text
    assert await pledges_in_db(runtime) == []
    # As a member types a date: the month and day alone mean the next such day.
    await chat.send(zheng, "12月31日")
    assert "承诺已记录" in api.last(zheng.user_id).text
    # The organisation's today: 07:30 in Beijing on 11-25 is still 11-24 in UTC.
    clock.set(datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    await chat.send(zheng, "/pledge 走访群众 | 每周两户 | 2026-11-24")
    assert "已经过去了" in api.last(zheng.user_id).text
    await chat.send(zheng, "十一月二十五日前")
    assert [str(p.due_on) for p in await pledges_in_db(runtime)] == ["2026-12-31", "2026-11-25"]


async def test_without_a_calendar_a_deadline_is_at_most_a_few_years_ahead(
    chat, api, people, runtime
):
    zheng = people["郑强"]
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "目标")
    await chat.send(zheng, "措施")
    await chat.send(zheng, "2035年1月1日")
    assert "有些远了" in api.last(zheng.user_id).text
    await chat.send(zheng, "明天吧")
    assert "没能识别“明天吧”这个日期" in api.last(zheng.user_id).text
    await chat.send(zheng, "２０２７年６月３０日")
    assert [str(p.due_on) for p in await pledges_in_db(runtime)] == ["2027-06-30"]


async def test_text_is_normalised_at_the_door(chat, api, people, runtime):
    zheng = people["郑强"]
    # A NUL byte (PostgreSQL refuses it) and other control characters are dropped, not fatal.
    await chat.send(zheng, "/pledge 帮扶\x00两户\x07经营户 | 每月\x1b走访")
    assert "承诺已记录" in api.last(zheng.user_id).text
    # Text of invisible characters only is no text: asked again, and nothing invisible saved.
    await chat.send(zheng, "/pledge \u200b\u200d | \ufeff")
    assert "一条消息写承诺的格式" in api.last(zheng.user_id).text
    await chat.send(zheng, "/pledge")
    await chat.send(zheng, "\u200b\u2060\u3000\u200b")
    assert "需要您输入文字" in api.last(zheng.user_id).text
    await chat.send(zheng, "\u200b学习党章\u200b")
    await chat.send(zheng, "每周一章\r\n每月交流")
    assert await chat.tap(zheng, "不设时限")
    assert [(p.goal, p.measures) for p in await pledges_in_db(runtime)] == [
        ("帮扶两户经营户", "每月走访"),
        ("学习党章", "每周一章\n每月交流"),
    ]
