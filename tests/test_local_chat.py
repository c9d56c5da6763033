"""The local chat, driven by a piped script exactly as a newcomer would type it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """\
/start
:who
:as 张明
/invites 郑强
/lang
:tap English
/help
:tap 1
:clock +3d
:clock 2099-01-01T09:00
:clock +1x
:as 郑强
/invites
:as stranger
/start
:quit
/help
"""


def run_demo(script: str, database: Path, *options: str) -> subprocess.CompletedProcess:
    """`python -m bot demo` in a process of its own, its standard input the script."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--database", f"sqlite:///{database}", *options],
        input=script,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def transcript(tmp_path_factory) -> subprocess.CompletedProcess:
    return run_demo(SCRIPT, tmp_path_factory.mktemp("demo") / "demo.db")


@pytest.mark.slow
def test_exits_cleanly_at_quit(transcript):
    assert transcript.returncode == 0, transcript.stderr
    assert "Traceback" not in transcript.stderr
    # Nothing after :quit is read.
    assert transcript.stdout.count("我能做什么") == 1 + 0  # the greeting lists /help once


@pytest.mark.slow
def test_identities_switch_and_blocks_name_the_recipient(transcript):
    out = transcript.stdout
    assert "── 王志刚 ──\n王志刚同志，欢迎回来" in out
    assert "* 王志刚  D01 机关党支部" in out
    assert "── 张明 ──\n已为这位同志生成新的专属链接" in out
    assert "── 郑强 ──\n这项功能由负责同志使用" in out
    assert "── 访客 ──\n您好！本助手为党组织的党员同志服务" in out


@pytest.mark.slow
def test_buttons_print_numbered_and_can_be_pressed(transcript):
    out = transcript.stdout
    assert "[1] 中文  [2] English" in out
    assert "── 张明 ──（已修改）\nDone: I will speak English with you from now on." in out
    assert "Hello, 张明. Here is what you can do:" in out
    assert "── 张明 ──（已修改）\n好的，今后我将使用中文与您交流。" in out


@pytest.mark.slow
def test_clock_moves_forward_only_and_says_so(transcript):
    out = transcript.stdout
    assert "（模拟时钟：2099-01-01 09:00）" in out
    assert "无法识别时间“+1x”" in out


def test_demo_refuses_nothing_when_stdin_is_empty(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["demo", "--database", f"sqlite:///{tmp_path / 'd.db'}"]) == 0
    assert "本地聊天已启动" in capsys.readouterr().out


def test_the_wecom_view_says_when_wecom_would_hold_a_reply(tmp_path, monkeypatch, capsys):
    import io

    # 31 questions within one simulated minute: WeCom takes 30 a minute for one member.
    script = ":as 郑强\n" + "帮助\n" * 31 + ":quit\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    database = f"sqlite:///{tmp_path / 'd.db'}"
    assert main(["demo", "--channel", "wecom", "--database", database]) == 0
    out = capsys.readouterr().out
    assert out.count("── 郑强 ──\n郑强同志，您好！您可以使用以下功能") == 31
    (note,) = re.findall(r"（企业微信每人每分钟最多收 30 条.*）", out)
    assert "下一条要等 60 秒才发出" in note
    assert out[: out.index(note)].count("── 郑强 ──") == 30  # said just before the 31st


def test_run_without_token_is_one_clear_line(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main(["run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "TELEGRAM_BOT_TOKEN" in error and "python -m bot demo" in error


def test_run_with_malformed_token_is_one_clear_line(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-a-token")
    assert main(["run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "python -m bot demo" in error


def saved_files(messages: list[str]) -> list[Path]:
    """The files the local chat saved from these messages, as it said where."""
    return [Path(path) for m in messages for path in re.findall(r"已保存到 (\S+)\]", m)]


def blocks(output: str) -> dict[str, list[str]]:
    """Each recipient's messages, as the local chat printed them."""
    found: dict[str, list[str]] = {}
    pieces = re.split(r"^── (.+?) ──(?:（已修改）)?$", output, flags=re.MULTILINE)
    for header, body in zip(pieces[1::2], pieces[2::2], strict=True):
        found.setdefault(header, []).append(body.split("\n\n（")[0].strip())
    return found


@pytest.mark.slow
def test_a_whole_campaign_moves_past_everyone_exactly_once(tmp_path):
    database = tmp_path / "campaign.db"
    # The demo's clock starts at the wall clock: +2d can land in the night, before the day's
    # reminders (quiet hours); the next 10:00 has sent them.
    result = run_demo(":clock +2d\n:clock 10:00\n:as 郑强\n:tap 1\n:clock +100d\n:quit\n", database)
    assert result.returncode == 0, result.stderr
    received = blocks(result.stdout)
    for name in ("王志刚", "张明", "郑强", "王秀英", "谢婷"):
        messages = received[name]
        assert len(messages) == len(set(messages)), name  # nothing twice
        for phase in ("动员部署", "全面推进", "深化提升", "总结完善"):
            assert sum(f"进入“{phase}”阶段" in m for m in messages) == 1, (name, phase)
    # 郑强 reported the self-check done from its reminder, so it never chased him.
    assert not any("自查 今天截止" in m or "自查 已于" in m for m in received["郑强"])
    assert any("自查 今天截止" in m for m in received["谢婷"])
    # 年老体弱: one gentle reminder per deadline; 整改落实 only for those with items to rectify,
    # 领导点评和群众评议 only once a round is opened (none was).
    assert sum("量力而行" in m for m in received["王秀英"]) == 2


@pytest.mark.slow
def test_pledges_and_a_summary_left_and_resumed(tmp_path):
    script = "\n".join(
        [
            ":as 郑强",
            "/pledge 办好窗口业务 | 每天提前十分钟到岗 | 2026-12-31",
            ":as 冯磊",
            "/pledge",
            "帮扶两户经营户",
            "每月走访一次",
            ":tap 不设时限",
            ":as 张明",
            "/pledge branch 建设学习型支部 | 每月集中学习一次",
            "/pledges branch",
            ":clock +9d",
            ":as 郑强",
            "/summary",
            ":tap 已兑现",
            "窗口零投诉",
            "本季度办件三百余件",
            ":clock +2d",  # he left in the middle; two days later…
            "/summary",
            "学习不够系统",
            ":tap 跳过",
            "制定学习计划",
            ":tap 确认提交",
            ":as 张明",
            "/summaries",
            ":tap 郑强",
            ":quit",
        ]
    )
    result = run_demo(script + "\n", tmp_path / "d.db")
    assert result.returncode == 0, result.stderr
    received = blocks(result.stdout)
    branch_list = next(m for m in received["张明"] if "本支部的公开承诺" in m)
    assert "郑强：办好窗口业务" in branch_list and "冯磊：帮扶两户经营户" in branch_list
    assert "【支部】建设学习型支部" in branch_list
    zheng = received["郑强"]
    assert any("欢迎回来，我们接着上次的地方继续" in m for m in zheng)
    assert any("自我小结已提交" in m for m in zheng)
    assert any("已提交 1 人" in m for m in received["张明"])
    assert any("郑强 · 自我小结" in m and "本季度办件三百余件" in m for m in received["张明"])


@pytest.mark.slow
def test_a_review_its_acknowledgement_and_a_rectification_closed(tmp_path):
    script = "\n".join(
        [
            ":clock +8d",  # the quarter's self-summaries have opened
            ":clock 10:00",  # in the day: the review is delivered at once, not after quiet hours
            ":as 张明",
            "/review",
            ":tap 郑强",
            "窗口服务热情周到",
            ":tap 跳过",
            ":tap 跳过",
            "每周集中学习一次",
            ":tap 发送点评",
            ":as 郑强",
            ":tap 已阅",
            "/rectify",
            ":tap 已完成",
            "每周三晚集中学习",
            ":as 张明",
            ":tap 确认完成",
            ":as 李建国",
            "/review",
            ":tap 张明",
            "支部工作抓得实",
            ":tap 跳过",
            ":tap 跳过",
            "按时上报支部材料",
            ":tap 发送点评",
            ":as 张明",
            ":tap 已阅",
            ":quit",
        ]
    )
    result = run_demo(script + "\n", tmp_path / "d.db")
    assert result.returncode == 0, result.stderr
    received = blocks(result.stdout)
    zheng, zhang = received["郑强"], received["张明"]
    assert any("张明对您的点评" in m and "✅ 已阅。" in m for m in zheng)
    assert any("郑强报告整改事项已完成" in m and "每周三晚集中学习" in m for m in zhang)
    assert any("已经点评人确认完成" in m for m in zheng)
    assert any("李建国对您的点评" in m and "✅ 已阅。" in m for m in zhang)


def _ballot(name: str, target: str, comment: str | None) -> list[str]:
    lines = [f":as {name}", "/rate", f":tap {target}", *[":tap 1"] * 6]
    return [*lines, comment if comment else ":tap 不写意见", ":tap 确认提交"]


@pytest.mark.slow
def test_a_mass_evaluation_from_opening_to_a_members_own_result(tmp_path):
    script = "\n".join(
        [
            ":clock +17d",  # the quarter's evaluation step has begun
            ":clock 10:00",
            ":as 周敏",  # the organiser
            "/evaluation",
            ":tap 开启群众评议",
            ":tap 确认开启",
            "/evaluation",
            ":tap 生成测评码",
            ":tap 市场经营户",
            ":as stranger",  # a market vendor, handed the first code
            ":link 1",
            ":tap 张明",
            *[":tap 1"] * 6,
            "张书记办事公道",
            ":tap 确认提交",
            *_ballot("郑强", "张明", "工作扎实"),
            *_ballot("冯磊", "张明", None),
            *_ballot("许涛", "张明", "带头作用好"),
            *_ballot("王秀英", "张明", None),
            ":as 张明",
            "/evaluation",
            ":as 周敏",
            "/evaluation",
            ":tap 结束评议",
            ":tap 确认结束",
            ":as 张明",
            "/results",
            ":quit",
        ]
    )
    result = run_demo(script + "\n", tmp_path / "d.db")
    assert result.returncode == 0, result.stderr
    received = blocks(result.stdout)
    zhou, zhang, vendor = received["周敏"], received["张明"], received["访客"]
    assert any("测评码 2 个" in m for m in zhou)
    assert any("欢迎参加" in m for m in vendor)
    assert any("对 张明 的评议已收到" in m for m in vendor)
    # While it runs, the secretary sees who has rated, never what anyone chose.
    progress = next(m for m in zhang if "尚未评完" in m)
    assert "党员已评完 0/6 人，4 人评了一部分；测评码已用完 0/2 个" in progress
    own = next(m for m in zhang if "群众评议结果" in m)
    assert "5 人评议" in own and "总体满意率 100%" in own
    assert "张书记办事公道" not in own  # three comments: fewer than five, so none is shown
    assert "意见不足 5 条" in own


@pytest.mark.slow
def test_a_secretarys_digest_changes_as_members_submit_and_the_export_arrives(tmp_path):
    script = "\n".join(
        [
            ":clock +9d",  # the quarter's self-summaries are open
            ":clock 10:00",
            ":as 张明",
            "/digest",
            ":as 郑强",
            "/summary",
            "窗口零投诉",
            "学习不够系统",
            ":tap 跳过",
            "制定学习计划",
            ":tap 确认提交",
            ":as 张明",
            "/digest",
            ":tap 导出 Excel",
            ":quit",
        ]
    )
    result = run_demo(script + "\n", tmp_path / "d.db")
    assert result.returncode == 0, result.stderr
    asked = [m for m in blocks(result.stdout)["张明"] if "市场管理党支部工作进展" in m]
    # The weekly digest also came on the Monday that passed; these are the two he asked for.
    digests = [m for m in asked if "每周简报" not in m]
    assert len(digests) == 2 and len(asked) > 2
    assert "已交 0/6" in digests[0] and "郑强" in digests[0].split("尚未提交：")[1]
    assert "已交 1/6" in digests[1] and "郑强" not in digests[1].split("尚未提交：")[1]
    (workbook,) = saved_files(blocks(result.stdout)["张明"])
    assert workbook.parent == tmp_path / "demo-files" and workbook.name.endswith(".xlsx")
    assert workbook.read_bytes()[:2] == b"PK"  # a workbook the newcomer can open


@pytest.mark.slow
def test_a_small_selection_from_nomination_to_the_compiled_document(tmp_path):
    script = "\n".join(
        [
            ":as 张明",
            "/commendation",
            ":tap 推荐：优秀共产党员",
            ":tap 郑强",
            "郑强同志扎根窗口一线，全年办件三百余件，零投诉。",
            ":clock +8d",  # the nominations have closed
            ":clock 10:00",
            ":as 王志刚",
            "/commendation",
            ":tap 开始评定",
            ":tap 一等奖",
            ":tap 提交评定",
            ":as 周敏",
            "/commendation",
            ":tap 确定名单",
            ":tap 仍然确定名单",  # the other graders have not submitted: named, then confirmed
            ":tap 公布",
            ":clock +1h",
            ":quit",
        ]
    )
    result = run_demo(script + "\n", tmp_path / "d.db")
    assert result.returncode == 0, result.stderr
    received = blocks(result.stdout)
    assert any("已推荐郑强" in m for m in received["张明"])
    assert any("您已被推荐参评" in m and "零投诉" in m for m in received["郑强"])
    assert any("王志刚 一等奖" in m for m in received["王志刚"])
    (compiled,) = saved_files(received["周敏"])
    assert compiled.name.endswith(".docx") and compiled.read_bytes()[:2] == b"PK"
    for name in ("郑强", "谢婷"):
        assert any("评选结果" in m and "一等奖：郑强" in m for m in received[name]), name


@pytest.mark.slow
def test_a_wecom_members_view_shows_what_wecom_received(tmp_path):
    answer = "本季度按时办结窗口业务，主动靠前服务经营户。" * 40  # 2,640 bytes
    script = "\n".join(
        [
            ":who",
            "帮助",  # a typed keyword, as on WeCom
            ":as 郑强",
            "/reminders",  # a slash command: its buttons come on a template card
            ":tap 2",
            ":clock +9d",  # the quarter's self-summaries are open
            ":clock 10:00",
            "小结",
            answer,
            *[":tap 跳过"] * 3,
            ":as 张明",
            "周报",
            ":tap 导出 Excel",
            ":as stranger",
            "/help",
            ":quit",
        ]
    )
    result = run_demo(script + "\n", tmp_path / "d.db", "--channel", "wecom")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "企业微信模式" in out and "应用菜单：日常（承诺、小结、整改" in out
    assert "  访客  stranger（不在名册中的企业微信成员）" in out
    received = blocks(out)
    assert "/pledge — 作出公开承诺" in received["王志刚"][0]
    # A card with its buttons, then the same card updated in place after the tap.
    assert (
        "── 郑强 ──\n┌─ 您目前接收全部通知和提醒。\n│ 夜间休息时间不会打扰您。\n"
        "└─ [1] 接收全部通知和提醒  [2] 只接收我自己的截止提醒" in out
    )
    assert "── 郑强 ──（卡片已更新）\n┌─ 已保存。您目前只接收自己的截止提醒" in out
    # The preview of his long answer comes as texts within 2,048 bytes, then its card.
    zheng = received["郑强"]
    start = zheng.index("请看一下您的自我小结全文：")
    parts = zheng[start + 1 : -1]
    assert len(parts) > 1 and all(len(part.encode()) <= 2048 for part in parts)
    assert answer in "".join(parts)
    assert zheng[-1] == "┌─ 请看一下您的自我小结全文：\n└─ [1] ✅ 确认提交  [2] 修改"
    # The workbook went through media/upload, and was saved where the newcomer can open it.
    (workbook,) = saved_files(received["张明"])
    assert workbook.name.endswith(".xlsx") and workbook.read_bytes()[:2] == b"PK"
    assert received["访客"] == [
        "您好！本助手为党组织的党员同志服务。\n"
        "请打开所在党支部发给您的个人专属链接完成绑定；如果还没有收到，请联系您的支部书记。"
    ]
