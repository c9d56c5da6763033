"""python-telegram-bot handlers, one module per feature; each callback is thin."""

from telegram.ext import Application

from bot.channels.telegram import errors
from handlers import (
    campaign,
    commendation,
    conversation,
    digests,
    evaluation,
    help,
    invites,
    language,
    pledges,
    rating,
    reachability,
    rectification,
    reviews,
    start,
    summaries,
)


def register(application: Application) -> None:
    """Every handler, in the order they are tried; catch-alls come last."""
    # An edited message is answered, and stops, before anything else can act on it.
    application.add_handlers(help.edit_handlers(), group=-2)
    # A ballot waiting for its comment takes the next message before anything else does.
    application.add_handlers(rating.first_handlers(), group=-1)
    for feature in (
        start,
        invites,
        language,
        campaign,
        reachability,
        pledges,
        summaries,
        reviews,
        rectification,
        rating,
        evaluation,
        digests,
        commendation,
    ):
        application.add_handlers(feature.handlers())
    # Messages that are not commands go to the conversation the member is in.
    application.add_handlers(conversation.handlers())
    # Help also holds the catch-alls (/cancel outside a conversation, unknown text, stale buttons).
    application.add_handlers(help.handlers())
    application.add_error_handler(errors.on_error)
