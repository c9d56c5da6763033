"""`python -m bot evaluation …`: the organiser's 群众评议 at the command line."""

import argparse
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.channels.telegram.markup import start_link
from bot.core import evaluation, evaluation_codes
from bot.core.evaluation import CodeGroup, CodeOrder, RoundSettings
from bot.core.roster import RATER_GROUP_WORDS
from bot.runtime import Runtime
from storage import calendar as calendar_queries
from storage import evaluation as queries
from storage import people
from storage.models import Campaign, EvaluationRound


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    rounds: list = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def values(self) -> dict:
        return {
            "problems": self.problems,
            "rounds": self.rounds,
            "links": self.links,
            "files": self.files,
        }


@dataclass(frozen=True)
class RoundLine:
    evaluation_round: EvaluationRound
    state: str
    progress: list


def _settings(path: Path | None) -> tuple[RoundSettings | None, list[str]]:
    if path is None:
        return RoundSettings(), []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: {error}") from error
    return RoundSettings.parse(data)


def _moment(text: str, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A date (its end, or its start) or a time, in the campaign's timezone."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text) + timedelta(days=end_of_day)
        return datetime.combine(day, time(0), zone)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


async def run(runtime: Runtime, args: argparse.Namespace, *, bot_username: str | None) -> Report:
    report = Report()
    now = runtime.clock.now()
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            report.problems.append("evaluation_no_organisation")
            return report
        campaign = await session.get(Campaign, organisation.id)
        zone = ZoneInfo(campaign.timezone if campaign else organisation.timezone)
        command = args.evaluation_command
        if command == "open":
            settings, problems = _settings(args.settings)
            refusals = await _opening_refusals(session, organisation.id, args.quarter, now)
            problems += refusals
            quarter_known = not any(p.startswith("evaluation_unknown_quarter") for p in refusals)
            proposal = await evaluation.proposed_round(
                session, organisation_id=organisation.id, now=now, quarter=args.quarter
            )
            closes_at = opens_at = None
            try:
                if args.closes:
                    closes_at = _moment(args.closes, zone, end_of_day=True)
                if args.opens:
                    opens_at = _moment(args.opens, zone, end_of_day=False)
            except ValueError:
                problems.append("evaluation_bad_date")
            if closes_at is None and proposal is not None:
                closes_at = proposal.closes_at
            elif closes_at is None and not args.closes and quarter_known:
                problems.append("evaluation_no_quarter")
            if problems:
                report.problems = problems
                return report
            opened = await evaluation.open_round(
                session,
                organisation_id=organisation.id,
                quarter=args.quarter,
                closes_at=closes_at,
                opens_at=opens_at,
                now=now,
                settings=settings,
            )
            if isinstance(opened, list):
                report.problems = opened
                await session.rollback()
                return report
        elif command == "configure":
            settings, problems = _settings(args.settings)
            evaluation_round = await session.get(EvaluationRound, args.round)
            if evaluation_round is None or evaluation_round.organisation_id != organisation.id:
                problems.append("evaluation_no_round")
            elif not problems and not await evaluation.configure(
                session, evaluation_round=evaluation_round, settings=settings, now=now
            ):
                problems.append("evaluation_frozen")
            if problems:
                report.problems = problems
                return report
        elif command == "close":
            evaluation_round = await _running(session, organisation.id, args.round, now)
            if evaluation_round is None:
                report.problems.append("evaluation_no_round")
                return report
            await evaluation.close_round(session, evaluation_round=evaluation_round, now=now)
        elif command == "codes":
            await _codes(session, runtime, organisation.id, args, bot_username, report)
            if report.problems:
                return report
        for evaluation_round in await queries.rounds_of(session, organisation_id=organisation.id):
            report.rounds.append(
                RoundLine(
                    evaluation_round,
                    evaluation.state_of(evaluation_round, now).value,
                    await evaluation.participation(session, evaluation_round=evaluation_round),
                )
            )
    return report


async def _opening_refusals(session, organisation_id: int, quarter: str, now) -> list[str]:
    """One round at a time, and only for a quarter of the calendar (when it has quarters):
    a mistyped quarter must not open a second round beside the real one."""
    problems = []
    for evaluation_round in await queries.rounds_of(session, organisation_id=organisation_id):
        if not evaluation.has_ended(evaluation_round, now):
            problems.append(f"evaluation_round_running:{evaluation_round.quarter}")
    steps = await calendar_queries.list_steps(session, organisation_id=organisation_id)
    quarters = list(dict.fromkeys(step.quarter for step in steps if step.quarter))
    if quarters and quarter.strip() not in quarters:
        problems.append(f"evaluation_unknown_quarter:{'、'.join(quarters)}")
    return problems


async def _running(session, organisation_id: int, round_id: int | None, now):
    """The round to close: the one named (unless counted already), else the one open now."""
    if round_id is None:
        return await evaluation.open_now(session, organisation_id=organisation_id, now=now)
    for evaluation_round in await queries.rounds_of(session, organisation_id=organisation_id):
        if evaluation_round.id == round_id:
            state = evaluation.state_of(evaluation_round, now)
            return evaluation_round if state != evaluation.RoundState.CLOSED else None
    return None


async def _codes(
    session, runtime: Runtime, organisation_id, args, bot_username, report: Report
) -> None:
    """Codes for the group (and branch) named, by the same rule as the organiser's button
    (bot.core.evaluation.order_codes); the sheet says whom they are for in the words of the
    messages, as the chat does."""
    now, locale = runtime.clock.now(), runtime.settings.default_locale
    group = RATER_GROUP_WORDS.get(args.group.strip())
    if group is None:
        report.problems.append("evaluation_unknown_group")
    branch = None
    if args.branch:
        branch = await people.get_branch_by_name(
            session, organisation_id=organisation_id, name=args.branch
        )
        if branch is None:
            report.problems.append("evaluation_unknown_branch")
    if report.problems:
        return
    chosen = CodeGroup(group, branch.id if branch else None, branch.name if branch else "")
    order = await evaluation.order_codes(
        session, organisation_id=organisation_id, group=chosen, count=args.count, now=now
    )
    if not isinstance(order, CodeOrder):
        report.problems = order
        return
    tokens = await evaluation_codes.issue_codes(
        session,
        evaluation_round=order.evaluation_round,
        rater_group=group,
        branch_id=chosen.branch_id,
        count=order.count,
    )
    report.links = [start_link(bot_username, token) for token in tokens]
    if args.qr:
        args.qr.mkdir(parents=True, exist_ok=True)
        for number, url in enumerate(report.links, start=1):
            path = args.qr / f"code-{number:03d}.png"
            path.write_bytes(evaluation_codes.qr_png(url))
        report.files.append(str(args.qr))
    if args.pdf:
        # The sheet is read by people, in words: 市场经营户, never `vendor`.
        caption = runtime.messages.plain(
            locale, "evaluation_group", group=group, branch=chosen.branch_name
        )
        title = runtime.messages.plain(
            locale, "evaluation_codes_sheet", quarter=order.evaluation_round.quarter
        )
        args.pdf.write_bytes(evaluation_codes.pdf_sheet(title, caption, report.links))
        report.files.append(str(args.pdf))
