"""The last resort: log what went wrong with enough context, apologise briefly."""

import logging
import traceback

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import Forbidden
from telegram.ext import ContextTypes

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
    chat_id = update.effective_chat.id if update.effective_chat else None
    error = context.error
    if isinstance(error, SQLAlchemyError):
        # A database error's message quotes the rows it was reading or writing (a driver's
        # DETAIL names key values whatever hide_parameters says): its kind and where, only.
        logger.error(
            "error handling update %s (%s) in chat %s: %s\n%s",
            update.update_id,
            kind,
            chat_id,
            _kinds(error),
            "".join(traceback.format_tb(error.__traceback__)).rstrip(),
        )
    else:
        logger.error(
            "error handling update %s (%s) in chat %s",
            update.update_id,
            kind,
            chat_id,
            exc_info=error,
        )
    chat, user = update.effective_chat, update.effective_user
    if chat is None or chat.type != "private" or isinstance(context.error, Forbidden):
        return
    messages = context.bot_data["runtime"].messages
    locale = messages.locale_for(user.language_code if user else None)
    try:
        await chat.send_message(messages.render(locale, "error"), parse_mode=ParseMode.HTML)
    except Exception:  # the apology itself failed (blocked, network): nothing more to do
        logger.warning("could not apologise in chat %s", chat.id)


def _kinds(error: BaseException) -> str:
    """The error's class and those of its causes, e.g. OperationalError (OperationalError)."""
    names = [type(error).__name__]
    cause = error.__cause__ or error.__context__
    while cause is not None and len(names) < 4:
        names.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return " ← ".join(names)
