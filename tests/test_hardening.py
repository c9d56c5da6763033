"""Hardening (issue 16): secrets at rest, refusals that hold for every role and process, and
hostile files and text."""

import asyncio
import csv

from bot.__main__ import main
from tests.conftest import import_roster

BRANCHES = [["支部", "机关支部"], ["机关党支部", "是"]]
FORMULA = '=HYPERLINK("http://evil.example/x","点我")'


async def test_the_invites_csv_never_carries_a_formula(
    runtime, tmp_path, monkeypatch, database_url
):
    people = [["编号", "姓名", "支部"], ["1", FORMULA, "机关党支部"], ["2", "-2+3", "机关党支部"]]
    assert (await import_roster(runtime, people, BRANCHES)).ok
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "branch_bot")
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["invites", "--csv", "links.csv"]) == 0
    with (tmp_path / "links.csv").open(encoding="utf-8-sig") as file:
        names = sorted(row[1] for row in list(csv.reader(file))[1:])
    assert names == ["'-2+3", "'" + FORMULA]
