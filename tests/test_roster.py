"""Roster import: whole-file validation with row numbers, all or nothing, bindings kept.

Accounts are bound on the test's `channel` (the local channel: no test here is Telegram's)."""

import asyncio
import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot.__main__ import main
from bot.cli import demo
from bot.core import roster
from storage.models import Branch, BranchLiaison, Member, Outsider
from tests.conftest import account_ids, bind_account, import_roster

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
    return await import_roster(runtime, people_rows, branch_rows)


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


async def test_reimport_updates_in_place_and_keeps_bindings(runtime, channel):
    assert (await import_tables(runtime, PEOPLE)).ok
    async with runtime.db.session() as session:
        wang = (await session.exec(select(Member).where(Member.name == "王五"))).one()
    await bind_account(runtime, wang.id, "4242", channel)
    updated = [row[:] for row in PEOPLE if row[1] != "赵六"]
    updated[3][4] = "年老体弱"  # 王五's category changes
    report = await import_tables(runtime, updated)
    assert report.ok and report.deactivated == 1 and report.added == 0
    found = await members(runtime)
    assert (await account_ids(runtime, channel))[found["王五"].id] == 4242
    assert found["王五"].category == "elderly"
    assert found["赵六"].active is False  # history kept, access gone


async def test_command_line_reports_rows_and_exits_nonzero(
    tmp_path, monkeypatch, capsys, database_url
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    bad = write_csv(tmp_path / "p.csv", [*PEOPLE, ["9", "钱七", "不存在支部", "", "普通党员"]])
    branches = write_csv(tmp_path / "b.csv", BRANCHES)
    assert (
        await asyncio.to_thread(
            main,
            ["roster", "import", str(bad), "--branches", str(branches), "--organisation", "测试局"],
        )
        == 1
    )
    assert "第 7 行：支部不存在（不存在支部）" in capsys.readouterr().out
    good = write_csv(tmp_path / "p.csv", PEOPLE)
    assert (
        await asyncio.to_thread(
            main,
            [
                "roster",
                "import",
                str(good),
                "--branches",
                str(branches),
                "--organisation",
                "测试局",
            ],
        )
        == 0
    )
    assert "导入成功：新增 5 人" in capsys.readouterr().out


async def test_the_sample_roster_validates(runtime):
    report = await import_tables(runtime, *roster.read_tables(demo.DEMO_ROSTER, demo.DEMO_BRANCHES))
    assert report.ok and report.added == 24


async def bind(runtime, name: str, account_id: int, channel: str) -> None:
    async with runtime.db.session() as session:
        member = (
            await session.exec(select(Member).where(Member.name == name, Member.active))
        ).one()
    await bind_account(runtime, member.id, str(account_id), channel)


async def all_members(runtime) -> list[Member]:
    async with runtime.db.session() as session:
        return list((await session.exec(select(Member).order_by(Member.id))).all())


async def test_a_newcomer_never_inherits_a_former_members_account(runtime, channel):
    assert (await import_tables(runtime, PEOPLE)).ok
    await bind(runtime, "赵六", 333, channel)
    newcomer = [row[:] for row in PEOPLE]
    newcomer[4][0] = "44"  # a different 赵六 with a new id joins; id 4 leaves
    assert (await import_tables(runtime, newcomer)).ok
    zhaos = [m for m in await all_members(runtime) if m.name == "赵六"]
    bound = await account_ids(runtime, channel)
    assert [(m.roster_id, m.active, bound.get(m.id)) for m in zhaos] == [
        ("4", False, 333),
        ("44", True, None),
    ]


async def test_two_namesakes_moving_and_arriving_stay_two_people(runtime):
    assert (await import_tables(runtime, PEOPLE)).ok
    moved = [row[:] for row in PEOPLE] + [["45", "王五", "一支部", "", "普通党员"]]
    moved[3][2] = "机关党支部"  # the old 王五 (id 3) moves branch, a new 王五 takes his place
    report = await import_tables(runtime, moved)
    assert report.ok and (report.added, report.updated) == (1, 5)  # 5: four members, one outsider
    wangs = {(m.roster_id, m.active) for m in await all_members(runtime) if m.name == "王五"}
    assert wangs == {("3", True), ("45", True)}


async def test_members_may_swap_names(runtime):
    assert (await import_tables(runtime, PEOPLE)).ok
    swapped = [row[:] for row in PEOPLE]
    swapped[3][1], swapped[4][1] = "赵六", "王五"
    assert (await import_tables(runtime, swapped)).ok
    by_id = {m.roster_id: m.name for m in await all_members(runtime)}
    assert (by_id["3"], by_id["4"]) == ("赵六", "王五")


async def test_a_renamed_member_can_bind_the_same_account_again(
    runtime, chat, sent, clock, channel
):
    from datetime import timedelta

    from bot.channels.local.chat import Person
    from bot.core import onboarding

    no_ids = [row[1:] for row in PEOPLE]
    assert (await import_tables(runtime, no_ids)).ok
    await bind(runtime, "王五", 77, channel)
    renamed = [row[:] for row in no_ids]
    renamed[3][0] = "王武"  # no id column: the new spelling is a new roster entry
    assert (await import_tables(runtime, renamed)).ok
    async with runtime.db.session() as session:
        (invite,) = await onboarding.issue_invites(
            session, now=clock.now(), valid_for=timedelta(days=1), member_name="王武"
        )
    await chat.send(Person(77, "Wang"), f"/start {invite.token}")
    assert sent.keys(77) == ["welcome"] and "王武同志，欢迎您" in sent.last(77).text
    bound = await account_ids(runtime, channel)
    owners = {m.name: bound.get(m.id) for m in await all_members(runtime)}
    assert owners == {"张三": None, "李四": None, "王五": None, "赵六": None, "王武": 77}


async def test_a_header_only_file_is_refused(runtime):
    assert (await import_tables(runtime, PEOPLE)).ok
    report = await import_tables(runtime, PEOPLE[:1])
    assert [p.reason for p in report.problems] == ["no_members"]
    assert all(m.active for m in await all_members(runtime))


async def test_removing_most_members_needs_to_be_asked_for(runtime):
    assert (await import_tables(runtime, PEOPLE)).ok
    no_liaison = [BRANCHES[0], BRANCHES[1], ["一支部", "否", ""]]
    report = await import_tables(runtime, PEOPLE[:2], no_liaison)
    assert [p.reason for p in report.problems] == ["too_many_removals"]
    async with runtime.db.session() as session:
        report = await roster.import_roster(
            session,
            people_table=PEOPLE[:2],
            branch_table=no_liaison,
            organisation_name="测试局",
            timezone="Asia/Shanghai",
            now=runtime.clock.now(),
            allow_removals=True,
        )
    assert report.ok and report.deactivated == 4  # three members and the outsider


async def test_a_liaison_name_shared_with_an_ordinary_member_is_ambiguous_only_among_leaders(
    runtime,
):
    namesake = [*PEOPLE, ["6", "李四", "一支部", "", "普通党员"]]
    assert (await import_tables(runtime, namesake)).ok  # only one 李四 is a leader
    async with runtime.db.session() as session:
        liaison = (await session.exec(select(BranchLiaison))).one()
        leader = await session.get(Member, liaison.member_id)
    assert leader.roster_id == "2"
    two_leaders = [*PEOPLE, ["6", "李四", "一支部", "班子成员", "党员领导干部"]]
    report = await import_tables(runtime, two_leaders)
    assert [(p.reason, p.row) for p in report.problems] == [("ambiguous_liaison", 3)]


async def test_namesake_outsiders_without_ids_stay_two(runtime):
    twins = [*PEOPLE, ["", "陈大姐", "一支部", "", "市场经营户"]]
    twins[5][0] = ""
    assert (await import_tables(runtime, twins)).ok
    again = await import_tables(runtime, twins)
    assert again.ok and again.deactivated == 0 and again.added == 0
    async with runtime.db.session() as session:
        outsiders = (await session.exec(select(Outsider).where(Outsider.active))).all()
    assert len(outsiders) == 2


async def test_a_members_own_language_choice_survives_reimport(runtime):
    with_language = [[*row, "语言" if index == 0 else "en"] for index, row in enumerate(PEOPLE)]
    assert (await import_tables(runtime, with_language)).ok
    async with runtime.db.session() as session:
        wang = (await session.exec(select(Member).where(Member.name == "王五"))).one()
        wang.locale = "zh_CN"  # he chose Chinese with /lang
    assert (await import_tables(runtime, with_language)).ok
    found = await members(runtime)
    assert found["王五"].locale == "zh_CN" and found["赵六"].locale == "en"


async def test_columns_the_bot_does_not_use_are_left_alone(runtime):
    extra = [[*row, "备注" if index == 0 else "x"] for index, row in enumerate(PEOPLE)]
    report = await import_tables(runtime, extra)
    assert report.ok and report.ignored_columns == ["备注"]


async def test_a_workbook_without_a_people_sheet_is_reported_not_crashed(runtime, tmp_path):
    workbook = Workbook()
    workbook.active.title = "支部"
    workbook.active.append(["支部"])
    workbook.save(tmp_path / "only_branches.xlsx")
    report = await import_tables(runtime, *roster.read_tables(tmp_path / "only_branches.xlsx"))
    assert [p.reason for p in report.problems] == ["empty"]
