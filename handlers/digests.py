"""/digest, /export and the digest's chart button: where the branch (or every branch) stands,
as a message, an Excel workbook and PNG charts."""

import asyncio

from bot.core import charts, digests, export
from bot.core.access import Permission
from bot.core.contract import OutgoingFile
from bot.core.digests import DigestAction
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature


def _buttons(turn: Turn):
    return [
        [
            (turn.label("button_digest_chart", several=True), digests.CHARTS),
            (turn.label("button_digest_export", several=True), digests.WORKBOOK),
        ]
    ]


@gated(Permission.REPORTS)
async def show_digest(turn: Turn) -> None:
    """The secretary's branch digest, or every branch for the party-group secretary and organiser."""
    scope, found = await digests.for_reader(turn.session, actor=turn.actor, now=turn.now)
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


def _pictures(turn: Turn, shown: digests.Charts) -> list[tuple]:
    """(title, series, bars, flag_below, flag_label) of each chart, in the reader's words."""
    pictures = []
    if shown.progress:
        pictures.append(
            (
                turn.label("chart_progress_title", branch=shown.branch),
                (turn.label("chart_series_summaries"), turn.label("chart_series_rated")),
                [charts.Bar(name, (summaries, rated)) for name, summaries, rated in shown.progress],
                None,
                None,
            )
        )
    if shown.items:
        pictures.append(
            (
                turn.label("chart_satisfaction_title", quarter=shown.quarter),
                (turn.label("chart_series_satisfaction"),),
                [
                    charts.Bar(turn.label("chart_item_label", kind=kind, item_name=item), (rate,))
                    for kind, item, rate in shown.items
                ],
                shown.flag_below,
                turn.label("chart_flag_line", rate=shown.flag_below),
            )
        )
    return pictures


@gated(Permission.REPORTS)
async def pressed(turn: Turn) -> None:
    """A button under a digest: its charts, or the workbook."""
    await (_send_chart if turn.action.want == "chart" else _send_export)(turn)


async def _send_chart(turn: Turn) -> None:
    """Progress per branch as a chart; after a round has closed, satisfaction per item too."""
    shown = await digests.charts_for(turn.session, actor=turn.actor, now=turn.now)
    if not shown:
        turn.notice("digest_no_chart")
        return
    turn.notice("digest_chart_coming")
    pictures = _pictures(turn, shown)
    chat, channel, font_path = turn.inbound.chat, turn.channel, turn.runtime.settings.chart_font

    async def draw_and_send() -> None:
        for title, series, bars, flag_below, flag_label in pictures:
            png = await asyncio.to_thread(
                charts.bar_chart,
                title,
                series,
                bars,
                flag_below=flag_below,
                flag_label=flag_label,
                font_path=font_path,
            )
            # The title as the caption too: it names what the picture shows in the chat list.
            await channel.send_file(OutgoingFile(chat, "chart.png", png, "photo", title))

    turn.afterwards(draw_and_send)


async def _send_export(turn: Turn) -> None:
    """The quarter's workbook (/export [quarter]) as a document: my branch, or every branch."""
    quarter = " ".join(turn.args).strip() or None
    try:
        found = await export.for_reader(
            turn.session,
            actor=turn.actor,
            quarter=quarter,
            headings=turn.runtime.messages.export_headings(turn.locale),
            now=turn.now,
        )
    except export.UnknownQuarter:
        turn.reply("export_unknown_quarter", quarter=quarter)
        return
    turn.notice("export_coming")
    # Named after the quarter it holds, however it was asked for (/export or /export 季度).
    filename = turn.label("export_filename", quarter=found.quarter, when=found.day)
    turn.send_file(filename, found.content)


FEATURE = Feature(
    commands=(
        Command("digest", show_digest),
        Command("export", gated(Permission.REPORTS)(_send_export)),
    ),
    actions={DigestAction: pressed},
)
