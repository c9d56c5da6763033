"""Command line: demo, run, roster import, campaign load, reviewers, invites, evaluation."""

import argparse
import asyncio
import csv
import logging
import re
import sys
import zipfile
from pathlib import Path

from pydantic import ValidationError

from bot import logs
from bot.clock import SystemClock
from bot.config import TOKEN_PATTERN, Settings
from bot.runtime import Runtime

DEMO_DATABASE = "sqlite:///data/demo.db"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="创先争优 campaign assistant"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="chat with the bot locally, as the demo organisation")
    demo.add_argument("--database", default=DEMO_DATABASE, help=f"default {DEMO_DATABASE}")

    commands.add_parser("run", help="run against Telegram (long polling) with TELEGRAM_BOT_TOKEN")

    roster = commands.add_parser("roster", help="the organisation's roster")
    roster_commands = roster.add_subparsers(dest="roster_command", required=True)
    load = roster_commands.add_parser("import", help="import a CSV or XLSX roster")
    load.add_argument("file", type=Path)
    load.add_argument("--branches", type=Path, help="a CSV of branches (XLSX: a 支部 sheet)")
    load.add_argument("--organisation", default="本单位", help="name, when creating it")
    load.add_argument(
        "--allow-removals",
        action="store_true",
        help="let the file deactivate over half the members",
    )

    campaign = commands.add_parser("campaign", help="the campaign calendar")
    campaign_commands = campaign.add_subparsers(dest="campaign_command", required=True)
    calendar_load = campaign_commands.add_parser(
        "load", help="validate and load a campaign file (TOML)"
    )
    calendar_load.add_argument("file", type=Path)

    assignments = commands.add_parser("reviewers", help="who reviews whom (seed 004)")
    assignment_commands = assignments.add_subparsers(dest="reviewers_command", required=True)
    assignment_commands.add_parser("list", help="every reviewee and their reviewer")
    assign = assignment_commands.add_parser("set", help="give one reviewee another reviewer")
    assign.add_argument("reviewee", help="a member's name or roster id, or a branch's name")
    assign.add_argument("reviewer", help="a member's name or roster id")
    reset = assignment_commands.add_parser("reset", help="back to the roster's rule")
    reset.add_argument("reviewee", help="a member's name or roster id, or a branch's name")

    rounds = commands.add_parser("evaluation", help="群众评议 rounds and evaluation codes")
    round_commands = rounds.add_subparsers(dest="evaluation_command", required=True)
    round_commands.add_parser("list", help="every round, with who has rated (never what)")
    opening = round_commands.add_parser("open", help="set up a round for a quarter")
    opening.add_argument("--quarter", required=True, help="the quarter, as in the campaign file")
    opening.add_argument(
        "--closes", help="closing date or time (default: the end of the quarter's evaluation)"
    )
    opening.add_argument("--opens", help="opening time (default: now)")
    opening.add_argument("--settings", type=Path, help="a TOML file of round settings")
    configure = round_commands.add_parser("configure", help="new settings, before it opens")
    configure.add_argument("round", type=int)
    configure.add_argument("--settings", type=Path, required=True)
    closing = round_commands.add_parser("close", help="close the running round now")
    closing.add_argument("round", type=int, nargs="?")
    codes = round_commands.add_parser("codes", help="one-time evaluation codes (测评码)")
    codes.add_argument(
        "--group", required=True, help="staff / unit_staff / vendor (or 局工作人员…)"
    )
    codes.add_argument("--branch", help="the branch the group rates the members of")
    codes.add_argument("--count", type=int, required=True, help="at most 500")
    codes.add_argument("--qr", type=Path, help="also write a QR-code PNG per code here")
    codes.add_argument("--pdf", type=Path, help="also write a printable PDF sheet here")

    selections = commands.add_parser("commendation", help="评选表彰: selections and their results")
    selection_commands = selections.add_subparsers(dest="commendation_command", required=True)
    selection_commands.add_parser("list", help="every selection, its stage and nominees")
    opening = selection_commands.add_parser("open", help="open a selection")
    opening.add_argument("--name", required=True)
    opening.add_argument("--opens", help="when nominations open (default: now)")
    opening.add_argument("--closes", required=True, help="when nominations close (a date: its end)")
    opening.add_argument(
        "--per-branch", type=int, default=1, help="nominees per branch and category"
    )
    opening.add_argument("--prizes", default="1,2,3", help="first,second,third prizes per category")
    opening.add_argument(
        "--graders", required=True, help="the leading group: names, comma-separated"
    )
    opening.add_argument(
        "--categories", help="名称:branch|member, … (default 先进基层党组织 and 优秀共产党员)"
    )
    compiling = selection_commands.add_parser("compile", help="the deeds of the commended, .docx")
    compiling.add_argument("--selection", type=int, help="its number (default: the latest)")
    compiling.add_argument("--out", type=Path, required=True)

    exporting = commands.add_parser("export", help="the quarter's figures as an Excel workbook")
    exporting.add_argument("--quarter", help="as the campaign file names it; default: the current")
    exporting.add_argument("--branch", help="only this branch; default: every branch")
    exporting.add_argument("--out", type=Path, required=True, help="the .xlsx file to write")
    invites = commands.add_parser("invites", help="print personal invite links")
    invites.add_argument("--branch", help="only this branch")
    invites.add_argument("--reissue", action="store_true", help="replace the live invites")
    invites.add_argument("--csv", type=Path, help="also write the links to this CSV file")
    invites.add_argument("--qr", type=Path, help="also write a QR-code PNG per member here")
    return parser


def _say(runtime: Runtime, template: str, **values: object) -> None:
    print(runtime.messages.render(runtime.settings.default_locale, template, **values))


async def _organisation(runtime: Runtime, session):
    """The organisation the roster made, or None (and the command line says so)."""
    from storage import people

    organisation = await people.get_organisation(session)
    if organisation is None:
        _say(runtime, "cli_no_organisation.txt")
    return organisation


async def _import_roster(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.services import roster

    await runtime.db.migrate()
    try:
        people_table, branch_table = roster.read_tables(args.file, args.branches)
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as error:
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    async with runtime.db.session() as session:
        report = await roster.import_roster(
            session,
            people_table=people_table,
            branch_table=branch_table,
            organisation_name=args.organisation,
            timezone=runtime.settings.timezone,
            now=runtime.clock.now(),
            allow_removals=args.allow_removals,
        )
        if not report.ok:
            await session.rollback()
    _say(runtime, "cli_roster_report.txt", report=report)
    return 0 if report.ok else 1


async def _load_campaign(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.services import calendar
    from storage import people

    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    spec, problems = calendar.parse_campaign(text)
    if problems:
        _say(runtime, "cli_campaign_report.txt", problems=problems)
        return 1
    await runtime.db.migrate()
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            _say(runtime, "cli_no_organisation.txt")
            return 1
        report = await calendar.load_campaign(
            session, organisation_id=organisation.id, spec=spec, now=runtime.clock.now()
        )
    _say(runtime, "cli_campaign_report.txt", problems=[], report=report)
    return 0


async def _bot_username(settings: Settings) -> str | None:
    if settings.telegram_bot_username:
        return settings.telegram_bot_username
    if settings.telegram_bot_token and TOKEN_PATTERN.match(settings.telegram_bot_token):
        from telegram import Bot

        async with Bot(settings.telegram_bot_token) as bot:
            return bot.username
    return None


async def _invites(runtime: Runtime, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from bot.services import onboarding
    from bot.services.cells import inert
    from storage import people

    username = await _bot_username(runtime.settings)
    if username is None:
        _say(runtime, "cli_no_username.txt")
        return 2
    await runtime.db.migrate()
    async with runtime.db.session() as session:
        branch_id = None
        if args.branch:
            organisation = await people.get_organisation(session)
            branch = organisation and await people.get_branch_by_name(
                session, organisation_id=organisation.id, name=args.branch
            )
            if not branch:
                _say(runtime, "cli_unknown_branch.txt", branch=args.branch)
                return 1
            branch_id = branch.id
        issued = await onboarding.issue_invites(
            session,
            now=runtime.clock.now(),
            valid_for=timedelta(days=runtime.settings.invite_days),
            branch_id=branch_id,
            reissue=args.reissue,
        )
    rows = [(i.branch_name, i.member.name, i.link(username), i.expires_at) for i in issued]
    _say(runtime, "cli_invites.txt", rows=rows)
    fresh = [row for row in rows if row[2]]  # a link given out before cannot be written again
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8-sig") as file:
            writer = csv.writer(file)
            writer.writerow(["支部", "姓名", "链接", "有效期至"])
            for branch, name, link, expires in fresh:
                local = expires.astimezone(runtime.settings.zone).strftime("%Y-%m-%d %H:%M")
                writer.writerow([inert(cell) for cell in (branch, name, link, local)])
    if args.qr:
        import qrcode

        args.qr.mkdir(parents=True, exist_ok=True)
        for branch, name, link, _expires in fresh:
            safe = re.sub(r'[\\/:*?"<>|\s]+', "_", f"{branch}_{name}")
            qrcode.make(link).save(args.qr / f"{safe}.png")
    return 0


async def _reviewers(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.services import reviewers

    await runtime.db.migrate()
    async with runtime.db.session() as session:
        organisation = await _organisation(runtime, session)
        if organisation is None:
            return 1
        if args.reviewers_command == "list":
            rows = await reviewers.assignment_table(session, organisation_id=organisation.id)
            _say(runtime, "cli_reviewers.txt", rows=rows)
            return 0
        reviewee = await reviewers.find_reviewee(
            session, organisation_id=organisation.id, text=args.reviewee
        )
        reviewer = (
            await reviewers.find_reviewee(
                session, organisation_id=organisation.id, text=args.reviewer
            )
            if args.reviewers_command == "set"
            else None
        )
        unknown = [
            text
            for text, found in (
                (args.reviewee, reviewee),
                (getattr(args, "reviewer", ""), reviewer),
            )
            if text and not found
        ]
        if reviewer is not None and (
            not reviewer[0].startswith("member:") or reviewer[0] == (reviewee or ("",))[0]
        ):
            unknown.append(args.reviewer)
        if unknown:
            _say(runtime, "cli_unknown_person.txt", names=unknown)
            return 1
        await reviewers.set_override(
            session,
            organisation_id=organisation.id,
            reviewee=reviewee[0],
            reviewer_id=reviewers.parse_key(reviewer[0])[1] if reviewer else None,
            now=runtime.clock.now(),
        )
        _say(
            runtime, "cli_reviewer_set.txt", reviewee=reviewee[1], reviewer=reviewer and reviewer[1]
        )
    return 0


async def _commendation(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot import commendation_cli

    await runtime.db.migrate()
    words = runtime.messages.commendation_words(runtime.settings.default_locale)
    try:
        report = await commendation_cli.run(runtime, args, words=words)
    except OSError as error:
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    _say(
        runtime,
        "cli_commendation.txt",
        problems=report.problems,
        selections=report.selections,
        files=report.files,
    )
    return 1 if report.problems else 0


async def _export(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.services import export
    from storage import people

    await runtime.db.migrate()
    async with runtime.db.session() as session:
        organisation = await _organisation(runtime, session)
        if organisation is None:
            return 1
        branch_id = None
        if args.branch:
            branch = await people.get_branch_by_name(
                session, organisation_id=organisation.id, name=args.branch
            )
            if branch is None:
                _say(runtime, "cli_unknown_branch.txt", branch=args.branch)
                return 1
            branch_id = branch.id
        locale = runtime.settings.default_locale
        try:
            data = await export.workbook(
                session,
                scope=export.ExportScope(organisation.id, branch_id, args.quarter),
                headings=runtime.messages.export_headings(locale),
                now=runtime.clock.now(),
            )
        except export.UnknownQuarter:
            _say(runtime, "cli_unknown_quarter.txt", quarter=args.quarter)
            return 1
    try:
        args.out.write_bytes(data)
    except OSError as error:
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    _say(runtime, "cli_exported.txt", path=str(args.out), size=len(data))
    return 0


async def _evaluation(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot import evaluation_cli

    await runtime.db.migrate()
    username = None
    if args.evaluation_command == "codes":
        username = await _bot_username(runtime.settings)
        if username is None:
            _say(runtime, "cli_no_username.txt")
            return 2
    try:
        report = await evaluation_cli.run(runtime, args, bot_username=username)
    except (OSError, ValueError) as error:
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    _say(runtime, "cli_evaluation.txt", **report.values())
    return 1 if report.problems else 0


def _run_telegram(settings: Settings) -> int:
    token = settings.telegram_bot_token
    if not token or not TOKEN_PATTERN.match(token):
        problem = "is not set" if not token else "does not look like a bot token (digits:letters)"
        print(
            f"error: TELEGRAM_BOT_TOKEN {problem}. Get one from @BotFather, "
            "or try the bot without Telegram: python -m bot demo",
            file=sys.stderr,
        )
        return 2
    from bot.telegram import run_polling

    return run_polling(settings, token)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        print(f"error: setting {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    logs.configure(
        settings.log_level, secrets=[settings.telegram_bot_token, settings.evaluation_key]
    )
    if args.command == "demo":
        from bot.console import run_demo

        logging.getLogger().setLevel(logging.WARNING)
        return asyncio.run(run_demo(settings.model_copy(update={"database_url": args.database})))
    if args.command == "run":
        return _run_telegram(settings)
    runtime = Runtime.create(settings, SystemClock())

    async def command() -> int:
        try:
            if args.command == "roster":
                return await _import_roster(runtime, args)
            if args.command == "campaign":
                return await _load_campaign(runtime, args)
            if args.command == "reviewers":
                return await _reviewers(runtime, args)
            if args.command == "evaluation":
                return await _evaluation(runtime, args)
            if args.command == "export":
                return await _export(runtime, args)
            if args.command == "commendation":
                return await _commendation(runtime, args)
            return await _invites(runtime, args)
        finally:
            await runtime.db.dispose()

    return asyncio.run(command())


if __name__ == "__main__":
    sys.exit(main())
