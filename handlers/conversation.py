"""Conversations that survive restarts: the member's current flow lives in the database.

A feature registers a step handler per flow with `@flow("name")`; any non-command message in
a private chat goes to the flow the member is in, or gets a polite "not understood". Commands
keep working in the middle of a flow and never disturb its draft.
"""

from collections.abc import Awaitable, Callable

from telegram.ext import BaseHandler, MessageHandler, filters

from bot.core.access import Permission
from handlers.gate import Turn, gated
from storage import conversations
from storage.models import ChatState

Step = Callable[[Turn, ChatState], Awaitable[None]]
_FLOWS: dict[str, Step] = {}


def flow(name: str) -> Callable[[Step], Step]:
    """Register the handler of one flow's messages."""

    def register(step: Step) -> Step:
        _FLOWS[name] = step
        return step

    return register


@gated(Permission.USE)
async def route(turn: Turn) -> None:
    """Hand the message to the flow the member is in."""
    state = None
    if turn.actor.in_conversation:
        state = await conversations.get_state(turn.session, member_id=turn.actor.member_id)
    if state is None or state.flow not in _FLOWS:
        turn.reply("not_understood")
        return
    await _FLOWS[state.flow](turn, state)


def handlers() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    # New messages only: an edit of an earlier message is not the next answer.
    new_message = private & filters.UpdateType.MESSAGE
    return [MessageHandler(new_message & ~filters.COMMAND & ~filters.StatusUpdate.ALL, route)]
