"""/help, /cancel outside any conversation, and the polite answers to everything else."""

from bot.core import access
from bot.core.access import Permission
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage import conversations


@gated(Permission.USE)
async def show_help(turn: Turn) -> None:
    """List what this person can do, by role."""
    turn.reply("help", name=turn.actor.name, commands=access.commands_for(turn.actor.roles))


@gated(Permission.USE)
async def cancel(turn: Turn) -> None:
    """Leave the conversation in progress (drafts stay saved), or say there is none."""
    state = None
    if turn.actor.in_conversation:
        state = await conversations.get_state(turn.session, member_id=turn.actor.member_id)
    if state is None:
        turn.reply("cancel_nothing")
        return
    await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    turn.reply("cancel_done", flow=state.flow)


@gated(Permission.USE)
async def not_understood(turn: Turn) -> None:
    """Text, photos, stickers or commands the bot has no use for here."""
    turn.reply("not_understood")


@gated(Permission.START, in_groups=True)
async def edit_not_taken(turn: Turn) -> None:
    """An edited message: what was sent stands, and whatever it now says is not acted on
    (editing `/pledge A | B` into `/pledge A2 | B` must not make a second pledge)."""
    turn.reply("edit_not_taken")


@gated(Permission.USE)
async def stale_button(turn: Turn) -> None:
    """A button that no longer means anything (old message, or forged data)."""
    turn.notice("button_stale")


FEATURE = Feature(commands=(Command("help", show_help), Command("cancel", cancel)))
