"""A member blocks or unblocks the bot, or leaves: the channel tells us, and we stop or
start sending; or the channel gave their account a new id, which keeps their binding."""

from bot.core import onboarding, preferences
from bot.core.access import Permission
from bot.core.contract import Kind
from handlers.gate import Turn, gated


@gated(Permission.USE)
async def private_chat_changed(turn: Turn) -> None:
    """Blocked: stop sending; joined again: they are back; moved: the new id is theirs."""
    if turn.inbound.kind is Kind.MOVED:
        await onboarding.move_account(
            turn.session, account=turn.account, external_id=turn.inbound.text
        )
        return
    await preferences.set_reachable(
        turn.session,
        actor=turn.actor,
        reachable=turn.inbound.kind is Kind.JOINED,
        now=turn.now,
    )
