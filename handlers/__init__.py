"""python-telegram-bot handlers, one module per feature; each callback is thin."""

from telegram.ext import Application

from handlers import campaign, errors, help, invites, language, reachability, start


def register(application: Application) -> None:
    """Every handler, in the order they are tried; catch-alls come last."""
    for feature in (start, invites, language, campaign, reachability):
        application.add_handlers(feature.handlers())
    # Help also holds the catch-alls (/cancel outside a conversation, unknown text, stale buttons).
    application.add_handlers(help.handlers())
    application.add_error_handler(errors.on_error)
