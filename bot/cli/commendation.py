"""`python -m bot commendation …`: the organiser opens a selection, lists them, closes its
nominations early, and writes the compiled deeds of a confirmed one to a .docx file."""

import argparse
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core import commendation
from bot.runtime import Runtime
from storage import people
from storage.models import Selection


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    selections: list[tuple[Selection, str, int]] = field(default_factory=list)  # stage, nominees
    files: list[str] = field(default_factory=list)


def _moment(text: str, zone: ZoneInfo, *, end_of_day: bool) -> datetime:
    """A date (its start, or the end of it) or a date and time, in the organisation's zone."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return datetime.combine(day + timedelta(days=end_of_day), time(0), zone)


def _categories(text: str | None) -> list[dict] | None:
    """ "先进基层党组织:branch,优秀共产党员:member" → the categories (None: the defaults)."""
    if not text:
        return None
    found = []
    for index, part in enumerate(p for p in text.split(",") if p.strip()):
        name, _, of = part.strip().rpartition(":")
        found.append({"key": f"c{index + 1}", "name": name.strip(), "of": of.strip()})
    return found


async def run(runtime: Runtime, args: argparse.Namespace, *, words: dict) -> Report:
    report = Report()
    now = runtime.clock.now()
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            report.problems.append("no_organisation")
            return report
        zone = ZoneInfo(organisation.timezone)
        if args.commendation_command == "open":
            try:
                prizes = tuple(int(n) for n in args.prizes.split(","))
                opens = _moment(args.opens, zone, end_of_day=False) if args.opens else now
                closes = _moment(args.closes, zone, end_of_day=True)
            except ValueError:
                report.problems.append("bad_input")
                return report
            opened = await commendation.open_selection(
                session,
                organisation_id=organisation.id,
                name=args.name,
                opens_at=opens,
                closes_at=closes,
                per_branch=args.per_branch,
                prizes=(*prizes, 0, 0, 0)[:3],
                graders=[
                    g.strip() for g in args.graders.replace("，", ",").split(",") if g.strip()
                ],
                categories=_categories(args.categories),
                now=now,
            )
            if isinstance(opened, list):
                report.problems = opened
                await session.rollback()
                return report
        selections = await commendation.all_of(session, organisation_id=organisation.id)
        if args.commendation_command == "close":
            chosen = next((s for s in selections if args.selection in (None, s.id)), None)
            if chosen is None or not commendation.close_nominations(chosen, now):
                report.problems.append("not_nominating")
                return report
        if args.commendation_command == "compile":
            chosen = next((s for s in selections if args.selection in (None, s.id)), None)
            found = chosen and await commendation.compiled(
                session, selection=chosen, now=now, words=words
            )
            if not found:
                report.problems.append("not_confirmed")
                return report
            args.out.write_bytes(found.content)
            report.files.append(str(args.out))
        for selection in selections:
            count = len(await commendation.nominations(session, selection=selection))
            report.selections.append((selection, commendation.stage_of(selection, now), count))
    return report
