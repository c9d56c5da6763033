"""/phase, /reminders and the "done" button on a reminder."""

import re

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.core import calendar, preferences
from bot.core.access import Permission
from handlers.gate import Turn, gated


@gated(Permission.USE)
async def show_phase(turn: Turn) -> None:
    """Where the campaign stands, what it asks of me, and my next deadlines."""
    view = await calendar.overview(turn.session, actor=turn.actor, now=turn.now)
    turn.reply("phase", view=view, elderly=turn.actor.category == "elderly")


@gated(Permission.USE)
async def show_reminder_settings(turn: Turn) -> None:
    """Whether I get announcements as well as my own deadline reminders."""
    muted = await preferences.reminders_muted(turn.session, actor=turn.actor)
    turn.reply("reminder_settings", muted=muted, changed=False, buttons=_choices(turn))


@gated(Permission.USE)
async def set_reminders(turn: Turn) -> None:
    """One of the two reminder buttons was pressed."""
    muted = turn.callback_data == "remind:deadlines"
    await preferences.mute_reminders(turn.session, actor=turn.actor, muted=muted)
    turn.edit("reminder_settings", muted=muted, changed=True, buttons=_choices(turn))


def _choices(turn: Turn):
    return [
        [(turn.label("button_reminders_all"), "remind:all")],
        [(turn.label("button_reminders_deadlines"), "remind:deadlines")],
    ]


@gated(Permission.USE)
async def report_done(turn: Turn) -> None:
    """The member says they have done a step (the data is re-checked, never trusted)."""
    step_id = int(re.fullmatch(r"done:(\d{1,9})", turn.callback_data).group(1))
    outcome = await calendar.report_done(
        turn.session, actor=turn.actor, step_id=step_id, now=turn.now
    )
    turn.notice(f"step_{outcome}")
    if outcome == calendar.Completion.DONE:
        turn.reply("step_done_thanks", name=turn.actor.name)


def handlers() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("phase", show_phase, filters=private),
        CommandHandler("reminders", show_reminder_settings, filters=private),
        CallbackQueryHandler(set_reminders, pattern=r"^remind:(all|deadlines)$"),
        CallbackQueryHandler(report_done, pattern=r"^done:\d{1,9}$"),
    ]
