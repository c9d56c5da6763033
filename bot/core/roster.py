"""Roster import: read a CSV or XLSX roster, validate every row, then apply it all or nothing."""

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import format_roles
from bot.core.text import normalise
from storage import accounts, people
from storage.models import (
    Branch,
    Category,
    ChannelAccount,
    Member,
    Organisation,
    Outsider,
    RaterGroup,
    Role,
)

# Column → the headers that name it (Chinese first; English and codes also accepted).
PEOPLE_COLUMNS = {
    "roster_id": ("编号", "id", "roster_id"),
    "name": ("姓名", "name"),
    "branch": ("支部", "branch"),
    "roles": ("角色", "role", "roles"),
    "category": ("类别", "category"),
    "locale": ("语言", "language", "locale"),
    # The member's WeCom account (userid, 账号 in WeCom's admin console): bound at once.
    "wecom": ("企业微信账号", "wecom", "wecom_userid"),
}
BRANCH_COLUMNS = {
    "name": ("支部", "branch", "name"),
    "is_organ": ("机关支部", "organ", "is_organ"),
    "liaison": ("联系班子成员", "liaison"),
}
REQUIRED_PEOPLE_COLUMNS = ("name", "branch")

ROLE_WORDS = {
    "党员": Role.MEMBER,
    "支部书记": Role.SECRETARY,
    "班子成员": Role.LEADER,
    "党组书记": Role.PARTY_SECRETARY,
    "管理员": Role.ORGANISER,
    **{role.value: role for role in Role},
}
CATEGORY_WORDS = {
    "普通党员": Category.ORDINARY,
    "党员领导干部": Category.LEADING_CADRE,
    "年老体弱": Category.ELDERLY,
    "年老体弱党员": Category.ELDERLY,
    **{category.value: category for category in Category},
}
RATER_GROUP_WORDS = {
    "局工作人员": RaterGroup.STAFF,
    "基层单位工作人员": RaterGroup.UNIT_STAFF,
    "市场经营户": RaterGroup.VENDOR,
    **{group.value: group for group in RaterGroup},
}
YES_WORDS = {"是", "yes", "y", "true", "1"}
NO_WORDS = {"否", "no", "n", "false", "0", ""}
LOCALE_WORDS = {"zh_CN": "zh_CN", "中文": "zh_CN", "zh": "zh_CN", "en": "en", "English": "en"}
# WeCom's userid: 1–64 letters, digits and _-@. (WeCom compares them without case).
WECOM_USERID_LONGEST = 64
WECOM_USERID = re.compile(rf"^[A-Za-z0-9_\-@.]{{1,{WECOM_USERID_LONGEST}}}$")
WECOM = "wecom"  # the channel its accounts are on
_SEPARATORS = str.maketrans({"、": " ", ",": " ", "，": " ", ";": " ", "；": " ", "/": " "})


@dataclass(frozen=True)
class RosterProblem:
    """One reason the file cannot be imported: where (sheet, row) and why (a reason code)."""

    sheet: str
    row: int
    reason: str
    value: str = ""


@dataclass(slots=True)
class PersonRow:
    row: int
    name: str
    branch: str
    roster_id: str | None
    roles: frozenset[Role]
    category: Category | None  # None for one of the masses
    rater_group: RaterGroup | None
    locale: str | None
    wecom: str | None = None  # the WeCom userid


@dataclass
class BranchRow:
    row: int
    name: str
    is_organ: bool
    liaison: str | None


@dataclass
class RosterFile:
    people: list[PersonRow] = field(default_factory=list)
    branches: list[BranchRow] | None = None


@dataclass
class ImportReport:
    problems: list[RosterProblem] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    deactivated: int = 0
    branches_added: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    name: str = ""  # the organisation's
    # The organisation's former name, when this import renamed it.
    renamed_from: str | None = None
    branches_given: bool = True
    # Members whose WeCom account this import bound or changed (None: no such column).
    wecom_accounts: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


# --- reading ---------------------------------------------------------------------------

# Rows of cells; a CSV file's are read from the file each time they are gone through, so a
# roster of a million people is never all in memory at once.
Table = Iterable[list[str]]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return normalise(str(value))  # as typed text is: a NUL or invisible name never gets in


class _CsvRows:
    """A CSV file's rows, read afresh from the file at every pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Excel on Chinese Windows saves CSV as GB18030; everything else as UTF-8 (maybe with
        # BOM). Checked here, a megabyte at a time, so a wrong file fails before anything.
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                with path.open(encoding=encoding) as text:
                    while text.read(1 << 20):
                        pass
                self.encoding = encoding
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError(f"{path}: neither UTF-8 nor GB18030")

    def __iter__(self) -> Iterator[list[str]]:
        with self.path.open(encoding=self.encoding, newline="") as text:
            for row in csv.reader(text):
                yield [_cell(value) for value in row]


def _read_workbook(path: Path) -> tuple[Table, Table | None]:
    from openpyxl import load_workbook  # loaded by an import from a workbook only

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = {sheet.title.strip(): sheet for sheet in workbook.worksheets}
        branch_sheet = next((sheets[n] for n in ("支部", "branches") if n in sheets), None)
        people_sheet = next(
            (sheets[n] for n in ("人员", "党员", "people", "roster") if n in sheets),
            next((s for s in workbook.worksheets if s is not branch_sheet), None),
        )

        def table(sheet) -> Table:
            return [[_cell(value) for value in row] for row in sheet.iter_rows(values_only=True)]

        people_rows = table(people_sheet) if people_sheet is not None else []
        return people_rows, table(branch_sheet) if branch_sheet is not None else None
    finally:
        workbook.close()


def read_tables(people_path: Path, branches_path: Path | None = None) -> tuple[Table, Table | None]:
    """The people table and, if there is one, the branches table of a roster."""
    if people_path.suffix.lower() in (".xlsx", ".xlsm"):
        people_table, branch_table = _read_workbook(people_path)
    else:
        people_table, branch_table = _CsvRows(people_path), None
    if branches_path is not None:
        branch_table = _CsvRows(branches_path)
    return people_table, branch_table


# --- validating ------------------------------------------------------------------------


def _columns(
    header: list[str], wanted: dict[str, tuple[str, ...]], sheet: str
) -> tuple[dict[str, int], list[RosterProblem]]:
    positions: dict[str, int] = {}
    problems = []
    lowered = [h.strip().lower() for h in header]
    for column, names in wanted.items():
        for name in names:
            if name.lower() in lowered:
                positions[column] = lowered.index(name.lower())
                break
    return positions, problems


def ignored_columns(header: list[str], wanted: dict[str, tuple[str, ...]]) -> list[str]:
    """Columns the bot does not use (备注, 联系电话…): left alone, and said so."""
    accepted = {name.lower() for names in wanted.values() for name in names}
    return [title for title in header if title.strip() and title.strip().lower() not in accepted]


def _header(table: Table) -> tuple[int, list[str]] | None:
    """The first non-blank row (its number from 1) and its cells."""
    return next(((n, row) for n, row in enumerate(table, start=1) if any(row)), None)


def _rows(table: Table, header_row: int) -> Iterable[tuple[int, list[str]]]:
    for number, row in enumerate(table, start=1):
        if number > header_row and any(row):
            yield number, row


def _words(text: str) -> list[str]:
    return [word for word in text.translate(_SEPARATORS).split() if word]


def parse_people(table: Table) -> tuple[list[PersonRow], list[RosterProblem]]:
    sheet = "people"
    header = _header(table)
    if header is None:
        return [], [RosterProblem(sheet, 1, "empty")]
    header_row, titles = header
    positions, problems = _columns(titles, PEOPLE_COLUMNS, sheet)
    for column in REQUIRED_PEOPLE_COLUMNS:
        if column not in positions:
            problems.append(
                RosterProblem(sheet, header_row, "missing_column", PEOPLE_COLUMNS[column][0])
            )
    if problems:
        return [], problems
    rows = []
    # One copy of each branch name and role set, however many rows repeat it.
    shared: dict = {}
    for number, row in _rows(table, header_row):

        def value(column: str, row=row) -> str:
            index = positions.get(column)
            return row[index].strip() if index is not None and index < len(row) else ""

        name, branch = value("name"), value("branch")
        branch = shared.setdefault(branch, branch)
        if not name:
            problems.append(RosterProblem(sheet, number, "missing_value", "姓名"))
        for text, limit in ((name, 100), (branch, 200), (value("roster_id"), 64)):
            if len(text) > limit:
                problems.append(RosterProblem(sheet, number, "too_long", text[:20]))
        roles: set[Role] = set()
        for word in _words(value("roles")):
            if word not in ROLE_WORDS:
                problems.append(RosterProblem(sheet, number, "unknown_role", word))
            else:
                roles.add(ROLE_WORDS[word])
        category_word = value("category")
        category, rater_group = None, None
        if category_word in RATER_GROUP_WORDS:
            rater_group = RATER_GROUP_WORDS[category_word]
            if roles - {Role.MEMBER}:
                problems.append(RosterProblem(sheet, number, "outsider_with_role", name))
        elif category_word in CATEGORY_WORDS or not category_word:
            category = CATEGORY_WORDS.get(category_word, Category.ORDINARY)
            if not branch:
                problems.append(RosterProblem(sheet, number, "missing_value", "支部"))
        else:
            problems.append(RosterProblem(sheet, number, "unknown_category", category_word))
        locale_word = value("locale")
        if locale_word and locale_word not in LOCALE_WORDS:
            problems.append(RosterProblem(sheet, number, "unknown_locale", locale_word))
        wecom = value("wecom")
        if wecom and not WECOM_USERID.match(wecom):
            problems.append(
                RosterProblem(sheet, number, "bad_wecom_id", wecom[:WECOM_USERID_LONGEST])
            )
        elif wecom and rater_group is not None:
            problems.append(RosterProblem(sheet, number, "outsider_with_wecom_id", name))
        rows.append(
            PersonRow(
                row=number,
                name=name,
                branch=branch,
                roster_id=value("roster_id") or None,
                roles=shared.setdefault(frozenset(roles), frozenset(roles)),
                category=category,
                rater_group=rater_group,
                locale=LOCALE_WORDS.get(locale_word),
                wecom=wecom or None,
            )
        )
    rows = [row for row in rows if row.name]
    if not problems and not any(row.category is not None for row in rows):
        problems.append(RosterProblem(sheet, header_row, "no_members"))
    ids = Counter(row.roster_id for row in rows if row.roster_id)
    names = Counter((row.branch, row.name) for row in rows if row.category is not None)
    userids = Counter(row.wecom.lower() for row in rows if row.wecom)
    for row in rows:
        if row.wecom and userids[row.wecom.lower()] > 1:
            problems.append(RosterProblem(sheet, row.row, "duplicate_wecom_id", row.wecom))
        if row.roster_id and ids[row.roster_id] > 1:
            problems.append(RosterProblem(sheet, row.row, "duplicate_id", row.roster_id))
        if row.category is not None and names[(row.branch, row.name)] > 1:
            problems.append(
                RosterProblem(sheet, row.row, "duplicate_name", f"{row.branch} {row.name}")
            )
    return rows, problems


def parse_branches(table: Table) -> tuple[list[BranchRow], list[RosterProblem]]:
    sheet = "branches"
    header = _header(table)
    if header is None:
        return [], [RosterProblem(sheet, 1, "empty")]
    header_row, titles = header
    positions, problems = _columns(titles, BRANCH_COLUMNS, sheet)
    if "name" not in positions:
        problems.append(
            RosterProblem(sheet, header_row, "missing_column", BRANCH_COLUMNS["name"][0])
        )
        return [], problems
    rows = []
    for number, row in _rows(table, header_row):

        def value(column: str, row=row) -> str:
            index = positions.get(column)
            return row[index].strip() if index is not None and index < len(row) else ""

        name, organ = value("name"), value("is_organ").lower()
        if not name:
            problems.append(RosterProblem(sheet, number, "missing_value", "支部"))
            continue
        if len(name) > 200:
            problems.append(RosterProblem(sheet, number, "too_long", name[:20]))
        if organ not in YES_WORDS | NO_WORDS:
            problems.append(RosterProblem(sheet, number, "unknown_flag", organ))
        rows.append(BranchRow(number, name, organ in YES_WORDS, value("liaison") or None))
    counts = Counter(row.name for row in rows)
    problems += [
        RosterProblem(sheet, row.row, "duplicate_branch", row.name)
        for row in rows
        if counts[row.name] > 1
    ]
    return rows, problems


def liaison_candidates(rows: list[PersonRow], key: str) -> list[PersonRow]:
    """The leadership members a liaison entry (a name or an id) can mean."""
    return [
        row
        for row in rows
        if row.roles & {Role.LEADER, Role.PARTY_SECRETARY} and key in (row.name, row.roster_id)
    ]


def validate(
    people_table: Table, branch_table: Table | None, known_branches: set[str]
) -> tuple[RosterFile, list[RosterProblem]]:
    """The parsed roster and every problem in it, checked against the branches already known."""
    people_rows, problems = parse_people(people_table)
    branch_rows = None
    if branch_table is not None:
        branch_rows, branch_problems = parse_branches(branch_table)
        problems += branch_problems
        known_branches = known_branches | {row.name for row in branch_rows}
    if not people_rows:  # the people table itself is unreadable: cross-checks would only add noise
        return RosterFile([], branch_rows), problems
    for row in people_rows:
        if row.branch and row.branch not in known_branches:
            problems.append(RosterProblem("people", row.row, "unknown_branch", row.branch))
    liaisons = {branch.liaison for branch in branch_rows or [] if branch.liaison}
    everyone = {key for row in people_rows for key in (row.name, row.roster_id) if key in liaisons}
    for branch in branch_rows or []:
        if not branch.liaison:
            continue
        leaders = liaison_candidates(people_rows, branch.liaison)
        if branch.liaison not in everyone:
            reason = "unknown_liaison"
        elif not leaders:
            reason = "liaison_not_leader"
        elif len(leaders) > 1:
            reason = "ambiguous_liaison"
        else:
            continue
        problems.append(RosterProblem("branches", branch.row, reason, branch.liaison))
    problems.sort(key=lambda p: (p.sheet != "branches", p.row))
    return RosterFile(people_rows, branch_rows), problems


# --- applying --------------------------------------------------------------------------


async def _organisation(
    session: AsyncSession, *, name: str | None, timezone: str, now: datetime, report: ImportReport
) -> Organisation | None:
    """The organisation, created on the first import (which must name it) and renamed when
    a later import names it differently; None when a first import gives no name."""
    organisation = await people.get_organisation(session)
    if organisation is None:
        if not name:
            report.problems.append(RosterProblem("organisation", 0, "no_organisation_name", ""))
            return None
        organisation = Organisation(name=name, timezone=timezone, created_at=now)
        session.add(organisation)
        await session.flush()
    elif name and name != organisation.name:
        report.renamed_from, organisation.name = organisation.name, name
    return organisation


async def import_roster(
    session: AsyncSession,
    *,
    people_table: Table,
    branch_table: Table | None,
    organisation_name: str | None,
    timezone: str,
    now: datetime,
    allow_removals: bool = False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ImportReport:
    """Validate the whole roster, then apply it in the caller's transaction, or nothing.

    A row with an id (编号) is the member with that id; a row without one is the member
    with that name in that branch. So an updated file keeps every member's channel accounts
    and history. People missing from the file are deactivated, never deleted; a file that
    would deactivate more than half of the members needs `allow_removals`. `progress` is
    told how many members are written, out of how many, as the writing goes.
    """
    report = ImportReport()
    organisation = await _organisation(
        session, name=organisation_name, timezone=timezone, now=now, report=report
    )
    if organisation is None:
        return report
    report.name, report.branches_given = organisation.name, branch_table is not None
    branches = {
        b.name: b for b in await people.list_branches(session, organisation_id=organisation.id)
    }
    roster, report.problems = validate(people_table, branch_table, set(branches))
    problems = report.problems
    report.ignored_columns = ignored_columns((_header(people_table) or (0, []))[1], PEOPLE_COLUMNS)
    if problems:
        return report
    existing = await people.list_members(
        session, organisation_id=organisation.id, active_only=False
    )
    matches = _match_members(roster.people, existing, {b.id: b.name for b in branches.values()})
    kept = {member.id for member in matches.values()}
    leaving = [m for m in existing if m.active and m.id not in kept]
    if not allow_removals and len(leaving) > max(len([m for m in existing if m.active]) // 2, 2):
        report.problems = [RosterProblem("people", 1, "too_many_removals", str(len(leaving)))]
        return report

    for row in roster.branches or []:
        branch = branches.get(row.name)
        if branch is None:
            branch = Branch(organisation_id=organisation.id, name=row.name, is_organ=row.is_organ)
            session.add(branch)
            branches[row.name] = branch
            report.branches_added += 1
        else:
            branch.is_organ = row.is_organ
    await session.flush()

    await _apply_members(
        session, organisation, branches, roster, matches, leaving, report, now, progress
    )
    await _apply_outsiders(session, organisation, branches, roster, report, now)
    await session.flush()
    if "wecom" in _columns((_header(people_table) or (0, []))[1], PEOPLE_COLUMNS, "people")[0]:
        report.wecom_accounts = await _apply_wecom_accounts(
            session, organisation, branches, roster, now
        )

    for row in roster.branches or []:
        liaison = None
        if row.liaison:
            (leader,) = liaison_candidates(roster.people, row.liaison)
            liaison = await people.member_id_by_name(
                session, branch_id=branches[leader.branch].id, name=leader.name
            )
        await people.set_liaison(session, branch_id=branches[row.name].id, member_id=liaison)
    await session.flush()
    return report


def _match_members(
    rows: list[PersonRow], existing: list[Member], branch_names: dict[int, str]
) -> dict[int, Member]:
    """Row number → the existing member it updates (rows absent here are new people).

    An id matches only the member with that id; a row without an id matches by branch and
    name, never a member someone else's row already took.
    """
    by_id = {m.roster_id: m for m in existing if m.roster_id}
    by_name: dict[tuple[str, str], list[Member]] = {}
    for member in existing:
        by_name.setdefault((branch_names[member.branch_id], member.name), []).append(member)
    matches: dict[int, Member] = {}
    taken: set[int] = set()
    for row in rows:
        if row.category is None or not row.roster_id or row.roster_id not in by_id:
            continue
        matches[row.row] = by_id[row.roster_id]
        taken.add(by_id[row.roster_id].id)
    for row in rows:
        if row.category is None or row.row in matches:
            continue
        candidates = [
            m
            for m in by_name.get((row.branch, row.name), [])
            if m.id not in taken and (not row.roster_id or not m.roster_id)
        ]
        candidates.sort(key=lambda m: not m.active)  # an active namesake first
        if candidates:
            matches[row.row] = candidates[0]
            taken.add(candidates[0].id)
    return matches


# Rows per statement: a province's roster has a million, and SQLite takes 32,766 parameters.
_CHUNK = 2000


async def _write(session, table, rows: list[dict], *, key: str | None = None) -> None:
    """Insert the rows (or, with `key`, update the members whose id is each row's `key` with
    the row's other columns) in a few multi-row statements. Not a plain executemany: that
    is a statement per row on PostgreSQL, and the roster version's trigger fires for each
    (SQLite cannot name the columns of a VALUES list, and runs a statement per row fast)."""
    if not rows:
        return
    if key is None:
        # With RETURNING, SQLAlchemy sends the rows as batches of multi-row VALUES.
        await session.exec(table.insert().returning(table.c.id), params=rows)
        return
    names = [name for name in rows[0] if name != key]
    if session.bind.dialect.name == "sqlite":  # a row at a time costs nothing there
        by_key = table.c.id == sqlalchemy.bindparam(key)
        await session.exec(table.update().where(by_key), params=rows)
        return
    given = sqlalchemy.values(
        sqlalchemy.column(key, sqlalchemy.Integer),
        *(sqlalchemy.column(name, table.c[name].type) for name in names),
        name="given",
    ).data([tuple(row[name] for name in (key, *names)) for row in rows])
    await session.exec(
        table.update()
        .where(table.c.id == given.c[key])
        .values({name: given.c[name] for name in names})
    )


async def _apply_members(
    session, organisation, branches, roster, matches, leaving, report, now, progress
) -> None:
    """Write the members a chunk of rows at a time (no object per member: a roster may hold
    a million), calling `progress(done, total)` after each chunk. The member objects loaded
    before leave the session (stale)."""
    rows = [row for row in roster.people if row.category is not None]
    table = Member.__table__
    # Names move in two steps, so two members may swap names without a clash in between.
    renamed = [
        {"member_id": member.id, "name": f"~renaming~{member.id}"}
        for row in rows
        if (member := matches.get(row.row)) is not None
        and (member.name, member.branch_id) != (row.name, branches[row.branch].id)
    ]
    leaving_rows = [{"member_id": m.id, "active": False, "updated_at": now} for m in leaving]
    for params in (renamed, leaving_rows):
        for start in range(0, len(params), _CHUNK):
            await _write(session, table, params[start : start + _CHUNK], key="member_id")
    report.deactivated = len(leaving)

    def member_values(row: PersonRow) -> dict:
        member = matches.get(row.row)
        common = {
            "name": row.name,
            "branch_id": branches[row.branch].id,
            "category": row.category.value,
            "roles": format_roles(set(row.roles)),
            "active": True,
            "updated_at": now,
        }
        if member is None:
            return {
                **common,
                "organisation_id": organisation.id,
                "roster_id": row.roster_id,
                "locale": row.locale,
                "reminders_muted": False,
                "created_at": now,
            }
        # The roster gives a default language; a member's own /lang choice stays theirs.
        return {
            **common,
            "member_id": member.id,
            "roster_id": row.roster_id or member.roster_id,
            "locale": member.locale or row.locale,
        }

    added = [row for row in rows if row.row not in matches]
    updated = [row for row in rows if row.row in matches]
    report.added, report.updated = len(added), len(updated)
    done = 0
    for key, chosen in ((None, added), ("member_id", updated)):
        # The parameters of one chunk at a time: a million dicts would not fit.
        for start in range(0, len(chosen), _CHUNK):
            chunk = chosen[start : start + _CHUNK]
            await _write(session, table, [member_values(row) for row in chunk], key=key)
            done += len(chunk)
            progress(done, len(rows))
    for member in [*matches.values(), *leaving]:
        if member in session:
            session.expunge(member)


async def _apply_outsiders(session, organisation, branches, roster, report, now) -> None:
    existing = await people.list_outsiders(session, organisation_id=organisation.id)
    unmatched = list(existing)

    def take(row: PersonRow, branch_id: int | None) -> Outsider | None:
        for outsider in unmatched:
            same_id = row.roster_id and outsider.roster_id == row.roster_id
            same_person = not row.roster_id and (
                outsider.rater_group,
                outsider.name,
                outsider.branch_id,
            ) == (row.rater_group, row.name, branch_id)
            if same_id or same_person:
                unmatched.remove(outsider)
                return outsider
        return None

    for row in roster.people:
        if row.rater_group is None:
            continue
        branch_id = branches[row.branch].id if row.branch else None
        outsider = take(row, branch_id)
        if outsider is None:
            outsider = Outsider(
                organisation_id=organisation.id,
                name=row.name,
                rater_group=row.rater_group,
                created_at=now,
                updated_at=now,
            )
            session.add(outsider)
            report.added += 1
        else:
            report.updated += 1
        outsider.roster_id = row.roster_id or outsider.roster_id
        outsider.name = row.name
        outsider.rater_group = row.rater_group
        outsider.branch_id = branch_id
        outsider.active = True
        outsider.updated_at = now
    for outsider in unmatched:
        if outsider.active:
            outsider.active = False
            outsider.updated_at = now
            report.deactivated += 1


async def _apply_wecom_accounts(session, organisation, branches, roster, now) -> int:
    """Each member given a userid gets that WeCom account: bound at once, `unseen` until they
    write (welcomed then). A userid held by someone else moves to the member the roster gives
    it to; a member given another userid than before gets the new one in place of the old.
    An empty cell leaves a member's account as it is. Returns how many accounts changed."""
    wanted = {
        (branches[row.branch].id, row.name): row.wecom
        for row in roster.people
        if row.wecom and row.category is not None
    }
    if not wanted:
        return 0
    ids = await people.active_member_ids(session, organisation_id=organisation.id)
    userid_of = {ids[key]: userid for key, userid in wanted.items()}
    pairs = list(userid_of.items())
    found: dict[int, ChannelAccount] = {}
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start : start + _CHUNK]
        for account in await accounts.accounts_held(
            session,
            channel=WECOM,
            member_ids=[member_id for member_id, _ in chunk],
            external_ids=[userid for _, userid in chunk],
        ):
            found[account.id] = account
    held = list(found.values())
    stale = [account for account in held if userid_of.get(account.member_id) != account.external_id]
    kept = {a.member_id for a in held if a not in stale}
    for account in stale:
        await session.delete(account)
    await session.flush()
    added = [
        ChannelAccount(
            member_id=member_id, channel=WECOM, external_id=userid, bound_at=now, unseen=True
        )
        for member_id, userid in userid_of.items()
        if member_id not in kept
    ]
    session.add_all(added)
    await session.flush()
    return len(added)
