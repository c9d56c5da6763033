"""/phase, /reminders and the "done" button on a reminder."""

from bot.core import calendar, preferences
from bot.core.access import Permission
from bot.core.calendar import ReportStepDone
from bot.core.preferences import ReminderChoice
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature


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
    muted = turn.action.choice == "deadlines"
    await preferences.mute_reminders(turn.session, actor=turn.actor, muted=muted)
    turn.edit("reminder_settings", muted=muted, changed=True, buttons=_choices(turn))


def _choices(turn: Turn):
    return [
        [(turn.label("button_reminders_all"), ReminderChoice("all"))],
        [(turn.label("button_reminders_deadlines"), ReminderChoice("deadlines"))],
    ]


@gated(Permission.USE)
async def report_done(turn: Turn) -> None:
    """The member says they have done a step (the data is re-checked, never trusted)."""
    step_id = turn.action.step_id
    outcome = await calendar.report_done(
        turn.session, actor=turn.actor, step_id=step_id, now=turn.now
    )
    turn.notice(f"step_{outcome}")
    if outcome == calendar.Completion.DONE:
        turn.reply("step_done_thanks", name=turn.actor.name)


FEATURE = Feature(
    commands=(Command("phase", show_phase), Command("reminders", show_reminder_settings)),
    actions={ReminderChoice: set_reminders, ReportStepDone: report_done},
)
