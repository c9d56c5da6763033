"""Command line: demo, run, roster import, campaign load, reviewers, invites, evaluation."""

import argparse
import asyncio
import csv
import errno
import functools
import logging
import os
import re
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from bot import logs
from bot.channels.telegram.markup import start_link
from bot.clock import SystemClock
from bot.config import TOKEN_PATTERN, Settings, robot_keys
from bot.core.evaluation import MAX_CODES
from bot.runtime import Runtime
from messages.render import Messages

DEMO_DATABASE = "sqlite:///data/demo.db"
DEMO_WECOM_DATABASE = "sqlite:///data/demo-wecom.db"  # its people are bound on WeCom
SHANGHAI = ZoneInfo("Asia/Shanghai")  # for messages before the settings are known


def _parser(words: dict) -> argparse.ArgumentParser:
    """The command line, its help and argparse's own messages in the default locale."""
    say = words["help"]

    class Formatter(argparse.HelpFormatter):
        def add_usage(self, usage, actions, groups, prefix=None):
            # argparse passes "" when it builds a subcommand's prog from the usage line.
            prefix = words["usage"] if prefix is None else prefix
            super().add_usage(usage, actions, groups, prefix=prefix)

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, formatter_class=Formatter, add_help=False, **kwargs)
            self._positionals.title = words["titles"]["positionals"]
            self._optionals.title = words["titles"]["options"]
            self.add_argument("-h", "--help", action="help", help=say["help"])

        def error(self, message: str):
            for english, ours in words["errors"]:
                if re.fullmatch(english, message, flags=re.DOTALL):
                    message = re.sub(english, ours, message, flags=re.DOTALL)
                    break
            self.exit(2, words["error"] % (message, self.prog) + "\n")

    def group(parser: argparse.ArgumentParser, dest: str):
        name = words["titles"]["commands"]
        return parser.add_subparsers(dest=dest, required=True, metavar=name)

    parser = Parser(prog="python -m bot", description=say["description"])
    commands = group(parser, "command")

    demo = commands.add_parser("demo", help=say["demo"])
    demo.add_argument("--database", help=say["demo_database"] % DEMO_DATABASE)
    demo.add_argument(
        "--channel",
        choices=("local", "wecom"),
        default="local",
        help=say["demo_channel"] % DEMO_WECOM_DATABASE,
    )

    commands.add_parser("run", help=say["run"])

    roster = commands.add_parser("roster", help=say["roster"])
    load = group(roster, "roster_command").add_parser("import", help=say["roster_import"])
    load.add_argument("file", type=Path, help=say["roster_file"])
    load.add_argument("--branches", type=Path, help=say["roster_branches"])
    load.add_argument("--organisation", help=say["roster_organisation"])
    load.add_argument("--allow-removals", action="store_true", help=say["roster_allow_removals"])

    campaign = commands.add_parser("campaign", help=say["campaign"])
    calendar_load = group(campaign, "campaign_command").add_parser(
        "load", help=say["campaign_load"]
    )
    calendar_load.add_argument("file", type=Path, help=say["campaign_file"])
    calendar_load.add_argument(
        "--allow-removals", action="store_true", help=say["campaign_allow_removals"]
    )

    assignments = commands.add_parser("reviewers", help=say["reviewers"])
    assignment_commands = group(assignments, "reviewers_command")
    assignment_commands.add_parser("list", help=say["reviewers_list"])
    assign = assignment_commands.add_parser("set", help=say["reviewers_set"])
    assign.add_argument("reviewee", help=say["reviewee"])
    assign.add_argument("reviewer", help=say["reviewer"])
    reset = assignment_commands.add_parser("reset", help=say["reviewers_reset"])
    reset.add_argument("reviewee", help=say["reviewee"])

    rounds = commands.add_parser("evaluation", help=say["evaluation"])
    round_commands = group(rounds, "evaluation_command")
    round_commands.add_parser("list", help=say["evaluation_list"])
    opening = round_commands.add_parser("open", help=say["evaluation_open"])
    opening.add_argument("--quarter", required=True, help=say["evaluation_quarter"])
    opening.add_argument("--closes", help=say["evaluation_closes"])
    opening.add_argument("--opens", help=say["evaluation_opens"])
    opening.add_argument("--settings", type=Path, help=say["evaluation_settings"])
    configure = round_commands.add_parser("configure", help=say["evaluation_configure"])
    configure.add_argument("round", type=int, help=say["evaluation_round"])
    configure.add_argument("--settings", type=Path, required=True, help=say["evaluation_settings"])
    closing = round_commands.add_parser("close", help=say["evaluation_close"])
    closing.add_argument("round", type=int, nargs="?", help=say["evaluation_round"])
    codes = round_commands.add_parser("codes", help=say["evaluation_codes"])
    codes.add_argument("--group", required=True, help=say["evaluation_group"])
    codes.add_argument("--branch", help=say["evaluation_branch"])
    codes.add_argument("--count", type=int, required=True, help=say["evaluation_count"] % MAX_CODES)
    codes.add_argument("--qr", type=Path, help=say["evaluation_qr"])
    codes.add_argument("--pdf", type=Path, help=say["evaluation_pdf"])

    selections = commands.add_parser("commendation", help=say["commendation"])
    selection_commands = group(selections, "commendation_command")
    selection_commands.add_parser("list", help=say["commendation_list"])
    opening = selection_commands.add_parser("open", help=say["commendation_open"])
    opening.add_argument("--name", required=True, help=say["commendation_name"])
    opening.add_argument("--opens", help=say["commendation_opens"])
    opening.add_argument("--closes", required=True, help=say["commendation_closes"])
    opening.add_argument("--per-branch", type=int, default=1, help=say["commendation_per_branch"])
    opening.add_argument("--prizes", default="1,2,3", help=say["commendation_prizes"])
    opening.add_argument("--graders", required=True, help=say["commendation_graders"])
    opening.add_argument("--categories", help=say["commendation_categories"])
    closing = selection_commands.add_parser("close", help=say["commendation_close"])
    closing.add_argument("--selection", type=int, help=say["commendation_selection"])
    compiling = selection_commands.add_parser("compile", help=say["commendation_compile"])
    compiling.add_argument("--selection", type=int, help=say["commendation_selection"])
    compiling.add_argument("--out", type=Path, required=True, help=say["commendation_out"])

    exporting = commands.add_parser("export", help=say["export"])
    exporting.add_argument("--quarter", help=say["export_quarter"])
    exporting.add_argument("--branch", help=say["export_branch"])
    exporting.add_argument("--out", type=Path, required=True, help=say["export_out"])
    invites = commands.add_parser("invites", help=say["invites"])
    invites.add_argument("--branch", help=say["invites_branch"])
    invites.add_argument("--reissue", action="store_true", help=say["invites_reissue"])
    invites.add_argument("--csv", type=Path, help=say["invites_csv"])
    invites.add_argument("--qr", type=Path, help=say["invites_qr"])
    return parser


def _say(runtime: Runtime, template: str, **values: object) -> None:
    print(runtime.messages.render(runtime.settings.default_locale, template, **values))


def _progress_bar(runtime: Runtime, template: str, width: int = 24):
    """A `progress(done, total)` that redraws one line on standard error, ended at the total."""

    def progress(done: int, total: int) -> None:
        filled = width * done // max(total, 1)
        bar = "[" + "#" * filled + "." * (width - filled) + "]"
        line = runtime.messages.render(
            runtime.settings.default_locale, template, bar=bar, done=done, total=total
        )
        end = "\n" if done >= total else ""
        print(f"\r{line.strip()}", end=end, file=sys.stderr, flush=True)

    return progress


def _file_problem(runtime: Runtime, error: OSError, outputs: list[Path | None]) -> None:
    """One line for a file that could not be read or, if it is one of `outputs` (or inside
    one of them), written."""
    path = Path(str(error.filename)) if error.filename else None
    written = path is not None and any(
        output is not None and (path == output or output in path.parents) for output in outputs
    )
    _say(
        runtime,
        "cli_write_error.txt" if written else "cli_file_error.txt",
        path=str(path or ""),
        code=errno.errorcode.get(error.errno or 0, ""),
        error=error.strerror or str(error),
    )


async def _organisation(runtime: Runtime, session):
    """The organisation the roster made, or None (and the command line says so)."""
    from storage import people

    organisation = await people.get_organisation(session)
    if organisation is None:
        _say(runtime, "cli_no_organisation.txt")
    return organisation


async def _import_roster(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.core import roster

    await runtime.db.migrate()
    try:
        people_table, branch_table = roster.read_tables(args.file, args.branches)
    except OSError as error:
        _file_problem(runtime, error, [])
        return 2
    except (ValueError, zipfile.BadZipFile, KeyError) as error:
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
            progress=_progress_bar(runtime, "cli_roster_progress.txt"),
        )
        if not report.ok:
            await session.rollback()
    _say(
        runtime,
        "cli_roster_report.txt",
        report=report,
        wecom_id_longest=roster.WECOM_USERID_LONGEST,
    )
    return 0 if report.ok else 1


async def _load_campaign(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.core import calendar
    from storage import people

    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as error:
        _file_problem(runtime, error, [])
        return 2
    except UnicodeDecodeError as error:
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    spec, problems = calendar.parse_campaign(text)
    if problems:
        _say(
            runtime, "cli_campaign_report.txt", problems=problems, remind_days=calendar.REMIND_DAYS
        )
        return 1
    await runtime.db.migrate()
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            _say(runtime, "cli_no_organisation.txt")
            return 1
        report = await calendar.load_campaign(
            session,
            organisation_id=organisation.id,
            spec=spec,
            now=runtime.clock.now(),
            allow_removals=args.allow_removals,
        )
    _say(
        runtime,
        "cli_campaign_report.txt",
        problems=[],
        report=report,
        remind_days=calendar.REMIND_DAYS,
    )
    return 1 if report.refused else 0


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

    from bot.core import onboarding
    from bot.core.cells import inert
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
    link = functools.partial(start_link, username)
    rows = [(i.branch_name, i.member.name, i.link(link), i.expires_at) for i in issued]
    _say(runtime, "cli_invites.txt", rows=rows)
    fresh = [row for row in rows if row[2]]  # a link given out before cannot be written again
    try:
        if args.csv:
            with args.csv.open("w", newline="", encoding="utf-8-sig") as file:
                writer = csv.writer(file)
                writer.writerow(["支部", "姓名", "链接", "有效期至"])
                for branch, name, link, expires in fresh:
                    local = expires.astimezone(runtime.settings.zone).strftime("%Y-%m-%d %H:%M")
                    writer.writerow([inert(cell) for cell in (branch, name, link, local)])
        if args.qr:
            from bot.core.charts import font
            from bot.core.evaluation_codes import qr_png

            font_path = font(runtime.settings.chart_font).get_file()
            args.qr.mkdir(parents=True, exist_ok=True)
            for branch, name, link, _expires in fresh:
                safe = re.sub(r'[\\/:*?"<>|\s]+', "_", f"{branch}_{name}")
                png = qr_png(link, (name, branch), font_path)
                (args.qr / f"{safe}.png").write_bytes(png)
    except OSError as error:  # the links are printed above and stay valid
        _file_problem(runtime, error, [args.csv, args.qr])
        return 2
    return 0


async def _reviewers(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.core import reviewers

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
        if unknown:
            _say(runtime, "cli_unknown_person.txt", names=unknown)
            return 1
        if reviewer is not None and not reviewer[0].startswith("member:"):
            _say(runtime, "cli_reviewer_refused.txt", reason="not_member", name=args.reviewer)
            return 1
        if reviewer is not None and reviewer[0] == reviewee[0]:
            _say(runtime, "cli_reviewer_refused.txt", reason="self", name=args.reviewer)
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
    from bot.cli import commendation as commendation_cli
    from bot.core import commendation

    await runtime.db.migrate()
    words = runtime.messages.commendation_words(runtime.settings.default_locale)
    try:
        report = await commendation_cli.run(runtime, args, words=words)
    except OSError as error:
        _file_problem(runtime, error, [getattr(args, "out", None)])
        return 2
    _say(
        runtime,
        "cli_commendation.txt",
        problems=report.problems,
        name_limit=commendation.NAME_LIMIT,
        least_quota=commendation.LEAST_QUOTA,
        selections=report.selections,
        files=report.files,
    )
    return 1 if report.problems else 0


async def _export(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.core import export
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
        _file_problem(runtime, error, [args.out])
        return 2
    _say(runtime, "cli_exported.txt", path=str(args.out), size=len(data))
    return 0


async def _evaluation(runtime: Runtime, args: argparse.Namespace) -> int:
    from bot.cli import evaluation as evaluation_cli

    await runtime.db.migrate()
    username = None
    if args.evaluation_command == "codes":
        username = await _bot_username(runtime.settings)
        if username is None:
            _say(runtime, "cli_no_username.txt")
            return 2
    try:
        report = await evaluation_cli.run(runtime, args, bot_username=username)
    except OSError as error:
        _file_problem(runtime, error, [getattr(args, "qr", None), getattr(args, "pdf", None)])
        return 2
    except ValueError as error:  # a settings file that is not TOML
        _say(runtime, "cli_file_error.txt", error=str(error))
        return 2
    _say(runtime, "cli_evaluation.txt", **report.values())
    return 1 if report.problems else 0


def _run(runtime: Runtime) -> int:
    """Every configured channel in one process: Telegram, WeCom, or both."""
    settings = runtime.settings
    locale = settings.default_locale
    if settings.wecom_missing:
        _complain(runtime.messages, locale, "cli_wecom_missing.txt", name=settings.wecom_missing)
        return 2
    token = settings.telegram_bot_token
    if token and not TOKEN_PATTERN.match(token) or not token and not settings.wecom_configured:
        _complain(runtime.messages, locale, "cli_no_token.txt", set=bool(token))
        return 2
    if token:
        from bot.channels.telegram.polling import run_polling

        return run_polling(runtime, token)
    from bot.channels.wecom.run import run_alone

    return run_alone(runtime)


def _complain(messages: Messages, locale: str, template: str, **values: object) -> None:
    print(messages.render(locale, template, **values), file=sys.stderr)


def _database_reason(error: Exception) -> str:
    """The first line of what the database driver said, without SQLAlchemy's wrapping."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        locale = os.environ.get("DEFAULT_LOCALE", "zh_CN")
        messages = Messages(timezone=SHANGHAI, default_locale="en" if locale == "en" else "zh_CN")
        _complain(
            messages,
            messages.default_locale,
            "cli_bad_setting.txt",
            name=str(first["loc"][0]).upper(),
            reason=first["msg"],
        )
        return 2
    locale = settings.default_locale
    messages = Messages(timezone=settings.zone, default_locale=locale)
    args = _parser(messages.words(locale, "_cli", ("help", "usage", "titles", "errors", "error")))
    args = args.parse_args(argv)
    logs.configure(
        settings.log_level,
        secrets=[
            settings.telegram_bot_token,
            settings.evaluation_key,
            settings.wecom_secret,
            settings.wecom_aes_key,
            *robot_keys(settings.wecom_robots or "").values(),
        ],
    )
    if args.command == "demo":
        default = DEMO_WECOM_DATABASE if args.channel == "wecom" else DEMO_DATABASE
        settings = settings.model_copy(update={"database_url": args.database or default})
        logging.getLogger().setLevel(logging.WARNING)
    try:
        runtime = Runtime.create(settings, SystemClock())
    except (ValueError, ArgumentError):  # not a URL, or not SQLite nor PostgreSQL
        _complain(messages, locale, "cli_database_error.txt", url=settings.database_url, reason="")
        return 2
    except OSError as error:  # a SQLite file's folder that cannot be made
        _complain(
            messages, locale, "cli_database_error.txt", url=settings.database_url, reason=str(error)
        )
        return 2
    try:
        if args.command == "run":
            return _run(runtime)
        return asyncio.run(_command(runtime, args))
    except (OperationalError, InterfaceError) as error:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        _complain(
            messages, locale, "cli_database_error.txt", url=url, reason=_database_reason(error)
        )
        return 2
    except BrokenPipeError:
        # The reader went away (`invites | head`): what was done is done; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _command(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        if args.command == "demo":
            from bot.channels.local.console import run_demo

            return await run_demo(runtime.settings, channel=args.channel)
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


if __name__ == "__main__":
    sys.exit(main())
