"""Command menus per role, through set_my_commands scopes."""

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from bot.config import LOCALES
from bot.core import access
from bot.core.access import Actor
from messages.render import Messages
from storage.models import Role

MEMBER = frozenset({Role.MEMBER})


def _commands(messages: Messages, locale: str, names: list[str]) -> list[BotCommand]:
    descriptions = messages.command_descriptions(locale)
    return [BotCommand(name, descriptions[name]) for name in names]


async def publish_default(bot: Bot, messages: Messages) -> None:
    """The menu every private chat sees: a plain member's commands, in each language."""
    names = access.commands_for(MEMBER)
    for locale in LOCALES:
        await bot.set_my_commands(
            _commands(messages, locale, names),
            scope=BotCommandScopeDefault(),
            language_code=None if locale == messages.default_locale else locale.split("_")[0],
        )


async def publish_for(
    bot: Bot, messages: Messages, chat_id: int, actor: Actor, *, clear: bool = False
) -> None:
    """A member whose roles add commands gets their own menu in their own chat; with
    `clear`, a plain member loses any menu of their own (an account rebound after a change)."""
    names = access.commands_for(actor.roles)
    if names == access.commands_for(MEMBER):
        if clear:
            await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id))
        return
    locale = messages.locale_for(actor.locale)
    await bot.set_my_commands(
        _commands(messages, locale, names), scope=BotCommandScopeChat(chat_id)
    )
