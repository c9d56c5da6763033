"""A newcomer's first steps at the command line: the README's set-up with the shipped samples,
and every mistake on the way answered with one clear line in the user's language."""

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.cli import demo
from storage import people

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> int:
    return asyncio.to_thread(main, list(args))


@pytest.fixture
def at_command_line(monkeypatch, tmp_path, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "cxzy_bot")
    monkeypatch.delenv("DEFAULT_LOCALE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_the_xlsx_sample_imports_with_its_branches_sheet(at_command_line, runtime, capsys):
    sample = demo.SAMPLES / "demo_roster.xlsx"
    assert await cli("roster", "import", str(sample), "--organisation", "示范局") == 0
    said = capsys.readouterr()
    assert "导入成功：新增 24 人，更新 0 人，停用 0 人，新增支部 3 个" in said.out
    # The members are written with a progress bar, redrawn on one line of standard error.
    assert said.err.endswith("\r正在写入名册 [########################] 20 / 20 人\n")
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        branches = await people.list_branches(session, organisation_id=organisation.id)
    assert organisation.name == "示范局" and len(branches) == 3


async def test_a_csv_roster_without_its_branches_gets_a_hint(at_command_line, capsys):
    sample = demo.SAMPLES / "demo_roster.csv"
    assert await cli("roster", "import", str(sample), "--organisation", "示范局") == 1
    out = capsys.readouterr().out
    assert "支部不存在" in out and "--branches" in out
    branches = demo.SAMPLES / "demo_branches.csv"
    args = (
        "roster",
        "import",
        str(sample),
        "--branches",
        str(branches),
        "--organisation",
        "示范局",
    )
    assert await cli(*args) == 0


async def test_the_organisation_is_named_on_the_first_import_and_renamed_later(
    at_command_line, runtime, capsys
):
    sample = str(demo.SAMPLES / "demo_roster.xlsx")
    assert await cli("roster", "import", sample) == 1
    assert "首次导入请用 --organisation 写明单位名称" in capsys.readouterr().out
    async with runtime.db.session() as session:
        assert await people.get_organisation(session) is None
    assert await cli("roster", "import", sample, "--organisation", "本单位") == 0
    assert await cli("roster", "import", sample, "--organisation", "市城管局") == 0
    assert "单位名称已由“本单位”改为“市城管局”" in capsys.readouterr().out
    assert await cli("roster", "import", sample) == 0  # no name given: the name stays
    async with runtime.db.session() as session:
        assert (await people.get_organisation(session)).name == "市城管局"


def test_help_and_usage_errors_follow_the_default_locale(monkeypatch, capsys):
    monkeypatch.delenv("DEFAULT_LOCALE", raising=False)
    with pytest.raises(SystemExit):
        main(["roster", "import", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("用法：python -m bot roster import") and "导入时必填" in out
    with pytest.raises(SystemExit) as exit_:
        main(["evaluation", "open"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert (
        error == "错误：缺少必需的参数：--quarter（查看用法：python -m bot evaluation open --help）"
    )
    monkeypatch.setenv("DEFAULT_LOCALE", "en")
    with pytest.raises(SystemExit):
        main(["evaluation", "open"])
    assert "the following arguments are required: --quarter" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/cxzy", "not a url", "postgresql://postgres@127.0.0.1:1/none"]
)
def test_a_database_that_cannot_be_used_is_one_line(url, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "cxzy_bot")
    assert main(["invites"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("无法使用数据库") and "\n" not in error and "DATABASE_URL" in error


def test_a_postgresql_database_not_yet_created_is_one_line(monkeypatch, capsys, tmp_path):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs TEST_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url.rsplit("/", 1)[0] + "/no_such_database_21")
    assert main(["export", "--out", "x.xlsx"]) == 2
    error = capsys.readouterr().err.strip()
    assert "no_such_database_21" in error and "does not exist" in error and "\n" not in error


async def test_demo_on_a_database_where_nobody_is_bound_starts_as_a_visitor(
    at_command_line, runtime, monkeypatch, capsys, database_url
):
    sample = str(demo.SAMPLES / "demo_roster.xlsx")
    assert await cli("roster", "import", sample, "--organisation", "市城管局") == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(":who\n/start\n:quit\n"))
    assert await cli("demo", "--database", database_url) == 0
    out = capsys.readouterr().out
    assert "还没有人绑定账号" in out and "当前身份：访客" in out
    assert "── 访客 ──" in out
    async with runtime.db.session() as session:  # the demo's calendar is not laid over it
        from storage.models import Campaign

        organisation = await people.get_organisation(session)
        assert await session.get(Campaign, organisation.id) is None


@pytest.mark.slow
def test_invites_piped_into_head_ends_quietly(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "TELEGRAM_BOT_USERNAME": "cxzy_bot",
    }
    sample = demo.SAMPLES / "demo_roster.xlsx"
    python = sys.executable
    subprocess.run(
        [python, "-m", "bot", "roster", "import", str(sample), "--organisation", "示范局"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        f"{python} -m bot invites | head -1",
        shell=True,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.stdout.count("\n") == 1 and "https://t.me/cxzy_bot?start=" in result.stdout
    assert result.stderr == ""


@pytest.mark.slow
def test_the_demo_runs_from_a_plain_install(tmp_path):
    """Not editable: the samples must travel inside the package."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--database", f"sqlite:///{tmp_path / 'd.db'}"],
        input=":who\n:quit\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(target)},
    )
    assert result.returncode == 0, result.stderr
    assert "张明  D09 市场管理党支部 / 支部书记" in result.stdout


async def test_an_output_that_cannot_be_written_says_so(at_command_line, runtime, capsys):
    sample = str(demo.SAMPLES / "demo_roster.xlsx")
    assert await cli("roster", "import", sample, "--organisation", "示范局") == 0
    capsys.readouterr()
    missing = at_command_line / "no-such-folder" / "报表.xlsx"
    assert await cli("export", "--out", str(missing)) == 2
    out = capsys.readouterr().out.strip()
    assert out == f"无法写入文件 {missing}：找不到这个文件或所在文件夹。请换一个可写的位置再试。"
    (at_command_line / "taken").write_text("")  # a file where the QR folder should go
    assert await cli("invites", "--qr", str(at_command_line / "taken")) == 2
    assert "无法写入文件" in capsys.readouterr().out


async def test_invite_qr_codes_carry_the_members_name_and_branch(at_command_line, capsys):
    from PIL import Image

    sample = str(demo.SAMPLES / "demo_roster.xlsx")
    assert await cli("roster", "import", sample, "--organisation", "示范局") == 0
    assert await cli("invites", "--branch", "市场管理党支部", "--qr", "qr") == 0
    image = Image.open(at_command_line / "qr" / "市场管理党支部_郑强.png").convert("L")
    assert image.height > image.width  # room under the code for the caption
    caption = image.crop((0, image.width, image.width, image.height))
    assert caption.getextrema()[0] < 128  # something is printed there


def test_who_describes_the_demo_people_in_words(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEFAULT_LOCALE", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(":who\n:quit\n"))
    assert main(["demo", "--database", f"sqlite:///{tmp_path / 'd.db'}"]) == 0
    out = capsys.readouterr().out
    assert "张明  D09 市场管理党支部 / 支部书记" in out
    assert "王秀英  D11 市场管理党支部 / 年老体弱党员" in out
    assert not any(code in out for code in ("secretary", "leader", "organiser", "elderly"))
    assert "删除该文件即可从头开始" in out and str(tmp_path / "demo-files") in out


async def test_a_file_that_cannot_be_read_says_so_in_words(at_command_line, capsys):
    assert await cli("roster", "import", "名册.xlsx", "--organisation", "示范局") == 2
    assert capsys.readouterr().out.strip() == "无法读取文件 名册.xlsx：找不到这个文件或所在文件夹"
