"""/digest, /export and the digest's chart button: where the branch (or every branch) stands,
as a message, an Excel workbook and PNG charts."""

import asyncio
import io

from telegram import InputFile
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.core import calendar, charts, digests, evaluation_results, export
from bot.core.access import Permission
from bot.core.evaluation import RoundState
from handlers.gate import Turn, gated

BUTTONS = [[("button_digest_chart", "dg:chart"), ("button_digest_export", "dg:export")]]


def _buttons(turn: Turn):
    return [[(turn.label(label, several=True), data) for label, data in row] for row in BUTTONS]


@gated(Permission.REPORTS)
async def show_digest(turn: Turn) -> None:
    """The secretary's branch digest, or every branch for the party-group secretary and organiser."""
    scope = digests.scope_of(turn.actor)
    found = await digests.digest(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now, branch_id=scope
    )
    if scope is None:
        turn.reply(
            "digest_organisation",
            digest=found,
            branches=found.most_behind_first,
            weekly=False,
            unchanged=False,
            buttons=_buttons(turn),
        )
        return
    turn.reply(
        "digest_branch",
        digest=found,
        branch_digest=found.branch(scope),
        weekly=False,
        unchanged=False,
        export_hint=False,
        buttons=_buttons(turn),
    )


@gated(Permission.REPORTS)
async def send_chart(turn: Turn) -> None:
    """Progress per branch as a chart; after a round has closed, satisfaction per item too."""
    scope = digests.scope_of(turn.actor)
    found = await digests.digest(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now, branch_id=scope
    )
    pictures = []
    progress = digests.progress_shares(found)
    if progress:
        pictures.append(
            (
                turn.label(
                    "chart_progress_title", branch=found.branch(scope).name if scope else ""
                ),
                (turn.label("chart_series_summaries"), turn.label("chart_series_rated")),
                [charts.Bar(name, (summaries, rated)) for name, summaries, rated in progress],
                None,
                None,
            )
        )
    if found.evaluation_state == RoundState.CLOSED:
        evaluation_round = found.evaluation_round
        results = await evaluation_results.results(
            turn.session, evaluation_round=evaluation_round, branch_id=scope
        )
        items = digests.item_satisfaction(results)
        if items:
            pictures.append(
                (
                    turn.label("chart_satisfaction_title", quarter=evaluation_round.quarter),
                    (turn.label("chart_series_satisfaction"),),
                    [
                        charts.Bar(
                            turn.label("chart_item_label", kind=kind, item_name=item), (rate,)
                        )
                        for kind, item, rate in items
                    ],
                    results.settings.flag_below,
                    turn.label("chart_flag_line", rate=results.settings.flag_below),
                )
            )
    if not pictures:
        turn.notice("digest_no_chart")
        return
    turn.notice("digest_chart_coming")
    chat_id, bot = turn.update.effective_chat.id, turn.context.bot

    async def draw_and_send() -> None:
        for title, series, bars, flag_below, flag_label in pictures:
            png = await asyncio.to_thread(
                charts.bar_chart,
                title,
                series,
                bars,
                flag_below=flag_below,
                flag_label=flag_label,
                font_path=turn.runtime.settings.chart_font,
            )
            # The title as the caption too: it names what the picture shows in the chat list.
            await bot.send_photo(
                chat_id, InputFile(io.BytesIO(png), filename="chart.png"), caption=title
            )

    turn.afterwards(draw_and_send)


@gated(Permission.REPORTS)
async def send_export(turn: Turn) -> None:
    """The quarter's workbook (/export [quarter]) as a document: my branch, or every branch."""
    quarter = " ".join(turn.args).strip() or None
    scope = export.ExportScope(turn.actor.organisation_id, digests.scope_of(turn.actor), quarter)
    try:
        data = await export.workbook(
            turn.session,
            scope=scope,
            headings=turn.runtime.messages.export_headings(turn.locale),
            now=turn.now,
        )
        # Named after the quarter it holds, however it was asked for (/export or /export 季度).
        step = await export.quarter_step(
            turn.session, organisation_id=scope.organisation_id, quarter=quarter, now=turn.now
        )
    except export.UnknownQuarter:
        turn.reply("export_unknown_quarter", quarter=quarter)
        return
    turn.notice("export_coming")
    today = await calendar.organisation_today(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    filename = turn.label("export_filename", quarter=step.quarter if step else "", when=today)
    chat_id, bot = turn.update.effective_chat.id, turn.context.bot
    turn.afterwards(
        lambda: bot.send_document(chat_id, InputFile(io.BytesIO(data), filename=filename))
    )


def handlers() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("digest", show_digest, filters=private),
        CommandHandler("export", send_export, filters=private),
        CallbackQueryHandler(send_chart, pattern=r"^dg:chart$"),
        CallbackQueryHandler(send_export, pattern=r"^dg:export$"),
    ]
