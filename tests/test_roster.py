"""Roster import: whole-file validation with row numbers, all or nothing, bindings kept."""

import asyncio
import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot import demo
from bot.__main__ import main
from bot.services import roster
from storage import people
from storage.models import Branch, BranchLiaison, Member, Outsider

BRANCHES = [
    ["支部", "机关支部", "联系班子成员"],
    ["机关党支部", "是", ""],
    ["一支部", "否", "李四"],
]
PEOPLE = [
    ["编号", "姓名", "支部", "角色", "类别"],
    ["1", "张三", "机关党支部", "党组书记、班子成员", "党员领导干部"],
    ["2", "李四", "机关党支部", "班子成员", "党员领导干部"],
    ["3", "王五", "一支部", "支部书记", "普通党员"],
    ["4", "赵六", "一支部", "", "年老体弱"],
    ["5", "陈大姐", "一支部", "", "市场经营户"],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", newline="", encoding=encoding) as file:
        csv.writer(file).writerows(rows)
    return path


async def import_tables(runtime, people_rows, branch_rows=BRANCHES):
    async with runtime.db.session() as session:
        report = await roster.import_roster(
            session,
            people_table=people_rows,
            branch_table=branch_rows,
            organisation_name="测试局",
            timezone="Asia/Shanghai",
            now=runtime.clock.now(),
        )
        if not report.ok:
            await session.rollback()
    return report


async def members(runtime) -> dict[str, Member]:
    async with runtime.db.session() as session:
        return {m.name: m for m in (await session.exec(select(Member))).all()}


async def test_valid_csv_file_imports_everyone(runtime, tmp_path):
    people_file = write_csv(tmp_path / "p.csv", PEOPLE)
    branch_file = write_csv(tmp_path / "b.csv", BRANCHES)
    report = await import_tables(runtime, *roster.read_tables(people_file, branch_file))
    assert report.ok and (report.added, report.branches_added) == (5, 2)
    found = await members(runtime)
    assert set(found) == {"张三", "李四", "王五", "赵六"}
    assert set(found["张三"].roles.split()) == {"member", "leader", "party_secretary"}
    assert found["赵六"].category == "elderly"
    async with runtime.db.session() as session:
        outsider = (await session.exec(select(Outsider))).one()
        liaison = (await session.exec(select(BranchLiaison))).one()
        branch = await session.get(Branch, liaison.branch_id)
    assert (outsider.name, outsider.rater_group) == ("陈大姐", "vendor")
    assert branch.name == "一支部" and liaison.member_id == found["李四"].id


async def test_valid_xlsx_with_english_headers(runtime, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "people"
    sheet.append(["id", "name", "branch", "role", "category"])
    sheet.append([101, "Li Lei", "Branch One", "secretary", "ordinary"])
    sheet.append([102, "Han Meimei", "Branch One", None, "elderly"])
    branches = workbook.create_sheet("branches")
    branches.append(["branch", "organ"])
    branches.append(["Branch One", "no"])
    workbook.save(tmp_path / "roster.xlsx")
    report = await import_tables(runtime, *roster.read_tables(tmp_path / "roster.xlsx"))
    assert report.ok
    found = await members(runtime)
    assert found["Li Lei"].roster_id == "101" and "secretary" in found["Li Lei"].roles


async def test_gb18030_csv_from_chinese_excel(runtime, tmp_path):
    people_file = write_csv(tmp_path / "p.csv", PEOPLE, encoding="gb18030")
    branch_file = write_csv(tmp_path / "b.csv", BRANCHES, encoding="gb18030")
    assert (await import_tables(runtime, *roster.read_tables(people_file, branch_file))).ok
    assert "王五" in await members(runtime)


BAD_ROWS = [
    ("unknown_branch", ["9", "钱七", "不存在支部", "", "普通党员"], 7),
    ("duplicate_name", ["9", "王五", "一支部", "", "普通党员"], 7),
    ("unknown_category", ["9", "钱七", "一支部", "", "优秀党员"], 7),
    ("unknown_role", ["9", "钱七", "一支部", "队长", "普通党员"], 7),
    ("duplicate_id", ["1", "钱七", "一支部", "", "普通党员"], 7),
    ("missing_value", ["9", "", "一支部", "", "普通党员"], 7),
    ("outsider_with_role", ["9", "钱七", "一支部", "支部书记", "市场经营户"], 7),
]


@pytest.mark.parametrize(("reason", "row", "line"), BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
async def test_each_bad_row_is_reported_and_nothing_written(runtime, reason, row, line):
    report = await import_tables(runtime, [*PEOPLE, row])
    assert not report.ok
    assert any(p.reason == reason and p.row == line for p in report.problems), report.problems
    assert await members(runtime) == {}


async def test_missing_column_is_reported(runtime):
    report = await import_tables(runtime, [[c for c in r if c != r[2]] for r in PEOPLE])
    assert [(p.reason, p.row, p.value) for p in report.problems] == [("missing_column", 1, "支部")]


async def test_liaison_must_be_a_leader(runtime):
    branches = [BRANCHES[0], BRANCHES[1], ["一支部", "否", "王五"]]
    report = await import_tables(runtime, PEOPLE, branches)
    assert [(p.sheet, p.reason, p.row) for p in report.problems] == [
        ("branches", "liaison_not_leader", 3)
    ]


async def test_every_problem_is_reported_at_once(runtime):
    report = await import_tables(runtime, [*PEOPLE, *(row for _, row, _ in BAD_ROWS)])
    assert {p.reason for p in report.problems} >= {r for r, _, _ in BAD_ROWS} - {"duplicate_id"}


async def test_reimport_updates_in_place_and_keeps_bindings(runtime):
    assert (await import_tables(runtime, PEOPLE)).ok
    async with runtime.db.session() as session:
        wang = (await session.exec(select(Member).where(Member.name == "王五"))).one()
        wang.telegram_user_id = 4242
    updated = [row[:] for row in PEOPLE if row[1] != "赵六"]
    updated[3][4] = "年老体弱"  # 王五's category changes
    report = await import_tables(runtime, updated)
    assert report.ok and report.deactivated == 1 and report.added == 0
    found = await members(runtime)
    assert found["王五"].telegram_user_id == 4242
    assert found["王五"].category == "elderly"
    assert found["赵六"].active is False  # history kept, access gone
    async with runtime.db.session() as session:
        assert await people.get_member_by_telegram_id(session, telegram_user_id=4242) is not None


async def test_command_line_reports_rows_and_exits_nonzero(
    tmp_path, monkeypatch, capsys, database_url
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    bad = write_csv(tmp_path / "p.csv", [*PEOPLE, ["9", "钱七", "不存在支部", "", "普通党员"]])
    branches = write_csv(tmp_path / "b.csv", BRANCHES)
    assert (
        await asyncio.to_thread(main, ["roster", "import", str(bad), "--branches", str(branches)])
        == 1
    )
    assert "第 7 行：支部不存在（不存在支部）" in capsys.readouterr().out
    good = write_csv(tmp_path / "p.csv", PEOPLE)
    assert (
        await asyncio.to_thread(main, ["roster", "import", str(good), "--branches", str(branches)])
        == 0
    )
    assert "导入成功：新增 5 人" in capsys.readouterr().out


async def test_the_sample_roster_validates(runtime):
    report = await import_tables(runtime, *roster.read_tables(demo.DEMO_ROSTER, demo.DEMO_BRANCHES))
    assert report.ok and report.added == 24
