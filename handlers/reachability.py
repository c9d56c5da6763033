"""A member blocks or unblocks the bot: Telegram tells us with a my_chat_member update."""

from telegram import ChatMember
from telegram.ext import BaseHandler, ChatMemberHandler

from bot.core import preferences
from bot.core.access import Permission
from handlers.gate import Turn, gated


@gated(Permission.USE)
async def private_chat_changed(turn: Turn) -> None:
    """Kicked means blocked: stop sending; a member again means they are back (the gate
    leaves out the bot's membership of group chats)."""
    change = turn.update.my_chat_member
    blocked = change.new_chat_member.status == ChatMember.BANNED
    await preferences.set_reachable(
        turn.session, actor=turn.actor, reachable=not blocked, now=turn.now
    )


def handlers() -> list[BaseHandler]:
    return [ChatMemberHandler(private_chat_changed, ChatMemberHandler.MY_CHAT_MEMBER)]
