"""Conversations that survive restarts: the member's current flow lives in the database.

A feature registers a step handler per flow with `@flow("name")`; any words (or file) in the
private chat go to the flow the member is in, or get a polite "not understood". Commands
keep working in the middle of a flow and never disturb its draft.
"""

from collections.abc import Awaitable, Callable

from bot.core.access import Permission
from handlers.gate import Turn, gated
from storage.conversations import Conversation

Step = Callable[[Turn, Conversation], Awaitable[None]]
_FLOWS: dict[str, Step] = {}


def flow(name: str) -> Callable[[Step], Step]:
    """Register the handler of one flow's messages."""

    def register(step: Step) -> Step:
        _FLOWS[name] = step
        return step

    return register


@gated(Permission.USE, on_loop=True)
async def route(turn: Turn) -> None:
    """Hand the message to the flow the member is in (known with who they are)."""
    state = turn.actor.conversation
    if state is None or state.flow not in _FLOWS:
        turn.reply("not_understood")
        return
    await _FLOWS[state.flow](turn, state)
