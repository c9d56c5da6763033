"""/lang: choose the language the bot speaks to me."""

from bot.config import LOCALES
from bot.core import preferences
from bot.core.access import Permission
from bot.core.preferences import LanguageChoice
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature

CHOICES = {"zh_CN": "中文", "en": "English"}


@gated(Permission.USE)
async def ask(turn: Turn) -> None:
    """Offer the languages as buttons, or switch straight away with /lang en."""
    if turn.args:
        await _switch(turn, turn.args[0])
        return
    turn.reply(
        "language_choose", buttons=[[(CHOICES[code], LanguageChoice(code)) for code in LOCALES]]
    )


@gated(Permission.USE)
async def choose(turn: Turn) -> None:
    """A language button was pressed."""
    await _switch(turn, turn.action.locale, edit=True)


async def _switch(turn: Turn, locale: str, *, edit: bool = False) -> None:
    if not await preferences.set_locale(turn.session, actor=turn.actor, locale=locale):
        turn.reply("language_unknown", choices=list(CHOICES.values()))
        return
    turn.locale = locale
    (turn.edit if edit else turn.reply)("language_set")


FEATURE = Feature(commands=(Command("lang", ask),), actions={LanguageChoice: choose})
