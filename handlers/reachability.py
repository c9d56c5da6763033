"""A member blocks or unblocks the bot, or leaves: the channel tells us, and we stop or
start sending."""

from bot.core import preferences
from bot.core.access import Permission
from bot.core.contract import Kind
from handlers.gate import Turn, gated


@gated(Permission.USE)
async def private_chat_changed(turn: Turn) -> None:
    """Blocked: stop sending; joined again: they are back."""
    await preferences.set_reachable(
        turn.session,
        actor=turn.actor,
        reachable=turn.inbound.kind is Kind.JOINED,
        now=turn.now,
    )
