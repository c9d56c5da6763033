"""The campaign calendar: the campaign file, its validation, and what is on when.

A campaign file (TOML) has a `[campaign]` table, `[[phases]]`, `[[quarters]]` (each becomes
three steps: 自我小结, 点评和群众评议, 整改落实) and `[[steps]]` (other dated steps). It is
validated whole, every problem reported with its line, and loaded in one transaction.
"""

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import Actor
from bot.core.actions import Action
from storage import calendar as calendar_queries
from storage.models import (
    Audience,
    Campaign,
    CampaignPhase,
    CampaignStep,
    Organisation,
    Role,
    StepDone,
    StepKind,
)

# How many days before a deadline its reminder may come (remind_days_before).
REMIND_DAYS = (0, 30)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_KEYS = {
    "campaign": {
        "name",
        "timezone",
        "remind_days_before",
        "reminder_time",
        "quiet_hours",
        "digest_day",
        "digest_when_quiet",
    },
    "phases": {"name", "start", "end", "announcement", "asks", "pledges"},
    "quarters": {
        "name",
        "summary_opens",
        "summary_due",
        "evaluation_opens",
        "evaluation_due",
        "rectification_due",
    },
    "steps": {"name", "opens", "due", "audience", "text"},
}
_QUARTER_ORDER = (
    "summary_opens",
    "summary_due",
    "evaluation_opens",
    "evaluation_due",
    "rectification_due",
)
# The weekday the digest goes to secretaries (Monday is 0); "off" sends none.
DIGEST_DAYS = {
    **{
        day: n
        for n, day in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())
    },
    **{day: n for n, day in enumerate("周一 周二 周三 周四 周五 周六 周日".split())},
    "off": None,
    "不发送": None,
}
AUDIENCE_WORDS = {
    "全体": Audience.EVERYONE,
    "全体党员": Audience.EVERYONE,
    "支部书记": Audience.SECRETARIES,
    "班子成员": Audience.LEADERS,
    **{audience.value: audience for audience in Audience},
}


@dataclass(frozen=True)
class CampaignProblem:
    line: int
    reason: str
    value: str = ""


@dataclass
class CampaignSpec:
    """A validated campaign file, ready to load."""

    campaign: dict
    phases: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)


class _Lines:
    """Finds the line of a table or key in the TOML text, for error messages."""

    def __init__(self, text: str) -> None:
        self._tables: dict[tuple[str, int], int] = {}
        self._keys: dict[tuple[str, int, str], int] = {}
        counts: dict[str, int] = {}
        current = ("", 0)
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            header = re.match(r"^\[\[?\s*([A-Za-z_]+)\s*\]\]?", stripped)
            if header:
                name = header.group(1)
                index = counts.get(name, 0)
                counts[name] = index + 1
                current = (name, index)
                self._tables[current] = number
                continue
            key = re.match(r"^([A-Za-z_]+)\s*=", stripped)
            if key:
                self._keys.setdefault((*current, key.group(1)), number)

    def of(self, table: str, index: int = 0, key: str | None = None) -> int:
        if key is not None and (table, index, key) in self._keys:
            return self._keys[(table, index, key)]
        return self._tables.get((table, index), 1)


def _clock(value: str) -> time | None:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


def _in_window(moment: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def parse_campaign(text: str) -> tuple[CampaignSpec | None, list[CampaignProblem]]:
    """The campaign file's content and every problem in it (each with its line)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        return None, [CampaignProblem(int(line.group(1)) if line else 1, "syntax", str(error))]
    lines = _Lines(text)
    problems: list[CampaignProblem] = []
    # Rows with a problem of their own are left out of the checks between rows (order,
    # overlap, names), so that every problem is reported in one pass without noise.
    broken: set[tuple[str, int]] = set()

    def problem(table: str, index: int, key: str | None, reason: str, value: object = "") -> None:
        problems.append(CampaignProblem(lines.of(table, index, key), reason, str(value)))
        broken.add((table, index))

    def sound(name: str) -> list[tuple[int, dict]]:
        return [(i, row) for i, row in enumerate(tables[name]) if (name, i) not in broken]

    for name in data:
        if name not in _KEYS:
            problem(name, 0, None, "unknown_key", name)
    campaign = data.get("campaign")
    if not isinstance(campaign, dict):
        problem("campaign", 0, None, "missing_table", "[campaign]")
        return None, problems
    tables = {name: data.get(name, []) for name in ("phases", "quarters", "steps")}
    for name, rows in tables.items():
        if not isinstance(rows, list):
            problem(name, 0, None, "not_a_list", f"[[{name}]]")
            tables[name] = []
    for name, rows in [("campaign", [campaign]), *tables.items()]:
        for index, row in enumerate(rows):
            for key in row:
                if key not in _KEYS[name]:
                    problem(name, index, key, "unknown_key", key)
            required = {
                "campaign": ("name",),
                "phases": ("name", "start", "end"),
                "steps": ("name", "due"),
            }
            for key in (*required.get(name, ()), *(_QUARTER_ORDER if name == "quarters" else ())):
                if key not in row:
                    problem(name, index, None, "missing_key", key)
            if name != "campaign" and "name" in row and not isinstance(row["name"], str):
                problem(name, index, "name", "not_text", row["name"])
            if "pledges" in row and not isinstance(row["pledges"], bool):
                problem(name, index, "pledges", "not_a_flag", row["pledges"])
            for key in ("start", "end", "opens", "due", *_QUARTER_ORDER):
                if key in row and (
                    not isinstance(row[key], date) or isinstance(row[key], datetime)
                ):
                    problem(name, index, key, "not_a_date", row[key])

    if "timezone" not in campaign:
        problem("campaign", 0, None, "missing_timezone", "timezone")
    else:
        try:
            ZoneInfo(str(campaign["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            problem("campaign", 0, "timezone", "unknown_timezone", campaign["timezone"])
    days = campaign.get("remind_days_before", 3)
    fewest, most = REMIND_DAYS
    if not isinstance(days, int) or not fewest <= days <= most:
        problem("campaign", 0, "remind_days_before", "bad_days", days)
    if str(campaign.get("digest_day", "monday")).lower() not in DIGEST_DAYS:
        problem("campaign", 0, "digest_day", "bad_digest_day", campaign.get("digest_day"))
    if not isinstance(campaign.get("digest_when_quiet", False), bool):
        problem("campaign", 0, "digest_when_quiet", "not_a_flag", campaign["digest_when_quiet"])
    if _clock(campaign.get("reminder_time", "09:00")) is None:
        problem("campaign", 0, "reminder_time", "bad_time", campaign.get("reminder_time"))
    quiet = str(campaign.get("quiet_hours", "21:00-08:00")).split("-")
    reminder_time = _clock(campaign.get("reminder_time", "09:00"))
    if len(quiet) != 2 or None in (_clock(quiet[0]), _clock(quiet[1])):
        problem("campaign", 0, "quiet_hours", "bad_time", campaign.get("quiet_hours"))
    elif reminder_time is not None and _in_window(
        reminder_time, _clock(quiet[0]), _clock(quiet[1])
    ):
        problem(
            "campaign",
            0,
            "reminder_time",
            "reminder_in_quiet_hours",
            campaign.get("reminder_time", "09:00"),
        )

    for name in ("phases", "quarters", "steps"):
        seen: set[str] = set()
        for index, row in sound(name):
            if row["name"] in seen:
                problem(name, index, "name", "duplicate_name", row["name"])
            seen.add(row["name"])
    phases = sorted(sound("phases"), key=lambda pair: pair[1]["start"])
    for position, (index, phase) in enumerate(phases):
        if phase["end"] < phase["start"]:
            problem("phases", index, "end", "reversed", f"{phase['start']} > {phase['end']}")
        if position and phase["start"] <= phases[position - 1][1]["end"]:
            problem(
                "phases",
                index,
                "start",
                "overlap",
                f"{phases[position - 1][1]['name']} / {phase['name']}",
            )
    for index, quarter in sound("quarters"):
        for earlier, later in zip(_QUARTER_ORDER, _QUARTER_ORDER[1:], strict=False):
            if quarter[later] < quarter[earlier]:
                problem(
                    "quarters",
                    index,
                    later,
                    "reversed",
                    f"{earlier} {quarter[earlier]} > {later} {quarter[later]}",
                )
    for index, step in sound("steps"):
        if step.get("opens", step["due"]) > step["due"]:
            problem("steps", index, "due", "reversed", f"{step['opens']} > {step['due']}")
        if str(step.get("audience", "everyone")) not in AUDIENCE_WORDS:
            problem("steps", index, "audience", "unknown_audience", step.get("audience"))
    problems.sort(key=lambda p: p.line)
    if problems:
        return None, problems
    return CampaignSpec(
        campaign, [phase for _, phase in phases], _steps(tables["quarters"], tables["steps"])
    ), []


def _steps(quarters: list[dict], steps: list[dict]) -> list[dict]:
    expanded = []
    for quarter in quarters:
        name = quarter["name"]
        expanded += [
            {
                "key": f"quarter:{name}:summary",
                "kind": StepKind.SUMMARY,
                "quarter": name,
                "name": name,
                "opens_on": quarter["summary_opens"],
                "due_on": quarter["summary_due"],
            },
            {
                "key": f"quarter:{name}:evaluation",
                "kind": StepKind.EVALUATION,
                "quarter": name,
                "name": name,
                "opens_on": quarter["evaluation_opens"],
                "due_on": quarter["evaluation_due"],
            },
            {
                "key": f"quarter:{name}:rectification",
                "kind": StepKind.RECTIFICATION,
                "quarter": name,
                "name": name,
                "opens_on": quarter["evaluation_due"],
                "due_on": quarter["rectification_due"],
            },
        ]
    for step in steps:
        expanded.append(
            {
                "key": f"step:{step['name']}",
                "kind": StepKind.TASK,
                "quarter": None,
                "name": step["name"],
                "opens_on": step.get("opens", step["due"]),
                "due_on": step["due"],
                "audience": AUDIENCE_WORDS[str(step.get("audience", "everyone"))],
                "text": step.get("text", ""),
            }
        )
    return expanded


@dataclass(frozen=True)
class LoadReport:
    phases: int
    steps: int
    retired: int
    # Nothing was loaded: the file would have dropped most of the calendar (as many phases
    # and steps as `retired`) and `allow_removals` was not given.
    refused: bool = False


async def load_campaign(
    session: AsyncSession,
    *,
    organisation_id: int,
    spec: CampaignSpec,
    now: datetime,
    allow_removals: bool = False,
) -> LoadReport:
    """Replace the organisation's calendar with the file's, keeping what reminders refer to.

    A file that would drop more than half of the phases and steps in place (a file with the
    wrong tables, or a half-finished one) is refused unless `allow_removals`, as the roster
    import refuses one that would deactivate most of the members."""
    in_place = [
        *(
            f"phase:{p.name}"
            for p in await calendar_queries.list_phases(session, organisation_id=organisation_id)
        ),
        *(
            s.key
            for s in await calendar_queries.list_steps(session, organisation_id=organisation_id)
        ),
    ]
    kept = {f"phase:{row['name']}" for row in spec.phases} | {row["key"] for row in spec.steps}
    dropped = len([key for key in in_place if key not in kept])
    if not allow_removals and dropped > max(len(in_place) // 2, 2):
        return LoadReport(len(spec.phases), len(spec.steps), dropped, refused=True)
    settings = spec.campaign
    quiet_start, quiet_end = str(settings.get("quiet_hours", "21:00-08:00")).split("-")
    campaign = await session.get(Campaign, organisation_id) or Campaign(
        organisation_id=organisation_id, name="", timezone="", loaded_at=now
    )
    campaign.name = settings["name"]
    campaign.timezone = settings["timezone"]
    campaign.remind_days_before = settings.get("remind_days_before", 3)
    campaign.reminder_time = settings.get("reminder_time", "09:00")
    campaign.quiet_start, campaign.quiet_end = quiet_start, quiet_end
    campaign.digest_weekday = DIGEST_DAYS[str(settings.get("digest_day", "monday")).lower()]
    campaign.digest_when_quiet = settings.get("digest_when_quiet", False)
    campaign.loaded_at = now
    session.add(campaign)

    phases = {
        p.name: p
        for p in await calendar_queries.list_phases(session, organisation_id=organisation_id)
    }
    for position, row in enumerate(spec.phases):
        phase = phases.pop(row["name"], None) or CampaignPhase(
            organisation_id=organisation_id,
            name=row["name"],
            position=position,
            starts_on=row["start"],
            ends_on=row["end"],
        )
        phase.position, phase.starts_on, phase.ends_on = position, row["start"], row["end"]
        phase.announcement = row.get("announcement", "").strip()
        phase.asks = row.get("asks", "").strip()
        phase.pledges = bool(row.get("pledges", False))
        session.add(phase)
    for stale in phases.values():
        await session.delete(stale)

    steps = {
        s.key: s
        for s in await calendar_queries.list_steps(
            session, organisation_id=organisation_id, active_only=False
        )
    }
    for row in spec.steps:
        step = steps.pop(row["key"], None)
        if step is None or step.due_on != row["due_on"]:
            known_since = now  # a new deadline, or a moved one, is known from now on
        else:
            known_since = step.known_since
        step = step or CampaignStep(organisation_id=organisation_id, known_since=now, **row)
        for name, value in row.items():
            setattr(step, name, value)
        step.active, step.known_since = True, known_since
        session.add(step)
    for retired in steps.values():
        retired.active = False
    await session.flush()
    return LoadReport(len(spec.phases), len(spec.steps), len(steps))


# --- when things happen ----------------------------------------------------------------


@dataclass(frozen=True)
class CampaignTime:
    """The campaign's timezone, reminder time and quiet hours, as arithmetic."""

    zone: ZoneInfo
    reminder_time: time
    quiet_start: time
    quiet_end: time
    remind_days_before: int

    @classmethod
    def of(cls, campaign: Campaign) -> "CampaignTime":
        return cls(
            ZoneInfo(campaign.timezone),
            _clock(campaign.reminder_time),
            _clock(campaign.quiet_start),
            _clock(campaign.quiet_end),
            campaign.remind_days_before,
        )

    def reminder_on(self, day: date) -> datetime:
        """The moment (UTC) reminders for `day` go out."""
        return datetime.combine(day, self.reminder_time, self.zone).astimezone(UTC)

    def end_of(self, day: date) -> datetime:
        return datetime.combine(day + timedelta(days=1), time(0), self.zone).astimezone(UTC)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def after_quiet(self, moment: datetime) -> datetime:
        """The end of the quiet hours `moment` falls in."""
        local = moment.astimezone(self.zone)
        end = datetime.combine(local.date(), self.quiet_end, self.zone)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)

    def is_quiet(self, now: datetime) -> bool:
        return _in_window(now.astimezone(self.zone).time(), self.quiet_start, self.quiet_end)


def applies_to(step: CampaignStep, actor_roles: frozenset[Role]) -> bool:
    """Whether a step asks something of a person with these roles."""
    if step.audience == Audience.SECRETARIES:
        return Role.SECRETARY in actor_roles
    if step.audience == Audience.LEADERS:
        return bool(actor_roles & {Role.LEADER, Role.PARTY_SECRETARY})
    return True


@dataclass(frozen=True)
class Deadline:
    step: CampaignStep
    days_left: int


@dataclass(frozen=True)
class Overview:
    campaign: Campaign | None
    phase: CampaignPhase | None
    next_phase: CampaignPhase | None
    deadlines: list[Deadline]


async def organisation_zone(session: AsyncSession, *, organisation_id: int) -> ZoneInfo:
    """The campaign's timezone, else the organisation's: every date a person sees is in it."""
    campaign = await session.get(Campaign, organisation_id)
    if campaign is not None:
        return ZoneInfo(campaign.timezone)
    return ZoneInfo((await session.get(Organisation, organisation_id)).timezone)


async def organisation_today(session: AsyncSession, *, organisation_id: int, now: datetime) -> date:
    """The organisation's date now (before 08:00 in Beijing, UTC still says yesterday)."""
    return now.astimezone(await organisation_zone(session, organisation_id=organisation_id)).date()


async def campaign_end(session: AsyncSession, *, organisation_id: int) -> date | None:
    """The last day the calendar covers (its last phase or deadline); None without one."""
    phases = await calendar_queries.list_phases(session, organisation_id=organisation_id)
    steps = await calendar_queries.list_steps(session, organisation_id=organisation_id)
    return max([p.ends_on for p in phases] + [s.due_on for s in steps], default=None)


async def pledge_window_open(session: AsyncSession, *, organisation_id: int, now: datetime) -> bool:
    """Pledges may be made and changed during the phases marked `pledges = true`; with no
    such phase (or no campaign yet), at any time."""
    campaign = await session.get(Campaign, organisation_id)
    if campaign is None:
        return True
    phases = await calendar_queries.list_phases(session, organisation_id=organisation_id)
    marked = [p for p in phases if p.pledges]
    today = CampaignTime.of(campaign).today(now)
    return not marked or any(p.starts_on <= today <= p.ends_on for p in marked)


async def overview(
    session: AsyncSession, *, actor: Actor, now: datetime, limit: int = 3
) -> Overview:
    """Where the campaign stands for this member: the phase, and their next deadlines."""
    campaign = await session.get(Campaign, actor.organisation_id)
    if campaign is None:
        return Overview(None, None, None, [])
    today = CampaignTime.of(campaign).today(now)
    phases = await calendar_queries.list_phases(session, organisation_id=actor.organisation_id)
    current = next((p for p in phases if p.starts_on <= today <= p.ends_on), None)
    upcoming = next((p for p in phases if p.starts_on > today), None)
    steps = await calendar_queries.list_steps(session, organisation_id=actor.organisation_id)
    done = await calendar_queries.done_steps(session, member_id=actor.member_id)
    deadlines = [
        Deadline(step, (step.due_on - today).days)
        for step in sorted(steps, key=lambda s: s.due_on)
        if step.due_on >= today and step.id not in done and applies_to(step, actor.roles)
    ][:limit]
    return Overview(campaign, current, upcoming, deadlines)


@dataclass(frozen=True)
class ReportStepDone(Action, prefix="done"):
    """The member says they have done a step (under its reminder)."""

    step_id: int


class Completion:
    DONE = "done"
    ALREADY = "already"
    NOT_YOURS = "not_yours"


async def report_done(session: AsyncSession, *, actor: Actor, step_id: int, now: datetime) -> str:
    """A member says they did a step the bot cannot see done by itself (a TASK)."""
    step = await session.get(CampaignStep, step_id)
    if (
        step is None
        or not step.active
        or step.organisation_id != actor.organisation_id
        or step.kind != StepKind.TASK
        or not applies_to(step, actor.roles)
    ):
        return Completion.NOT_YOURS
    existing = await session.exec(
        select(StepDone).where(StepDone.step_id == step_id, StepDone.member_id == actor.member_id)
    )
    if existing.first() is not None:
        return Completion.ALREADY
    session.add(StepDone(step_id=step_id, member_id=actor.member_id, done_at=now))
    await session.flush()
    return Completion.DONE
