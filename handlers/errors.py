"""The last resort: log what went wrong with enough context, apologise briefly."""

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import Forbidden
from telegram.ext import ContextTypes

from handlers.gate import runtime_of

logger = logging.getLogger("bot.errors")


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception with the update's kind and ids (never its content), then apologise."""
    if not isinstance(update, Update):
        logger.error("error outside an update", exc_info=context.error)
        return
    kind = next(
        (
            name
            for name in ("message", "callback_query", "my_chat_member", "edited_message")
            if getattr(update, name, None)
        ),
        "other",
    )
    logger.error(
        "error handling update %s (%s) in chat %s",
        update.update_id,
        kind,
        update.effective_chat.id if update.effective_chat else None,
        exc_info=context.error,
    )
    chat, user = update.effective_chat, update.effective_user
    if chat is None or chat.type != "private" or isinstance(context.error, Forbidden):
        return
    messages = runtime_of(context).messages
    locale = messages.locale_for(user.language_code if user else None)
    try:
        await chat.send_message(messages.render(locale, "error"), parse_mode=ParseMode.HTML)
    except Exception:  # the apology itself failed (blocked, network): nothing more to do
        logger.warning("could not apologise in chat %s", chat.id)
