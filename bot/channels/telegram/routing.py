"""python-telegram-bot's side of routing: every update is turned into an Inbound and handed
to the features' routes (handlers.routes); errors go to the last-resort handler."""

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

import handlers
from bot.channels.telegram import errors
from bot.channels.telegram.inbound import inbound_of
from bot.channels.telegram.sender import TelegramChannel


def register(application: Application) -> None:
    routes = handlers.routes()
    channel = TelegramChannel(application)
    application.bot_data["channel"] = channel
    application.bot_data["runtime"].channels[channel.name] = channel
    application.bot_data["routes"] = routes

    async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inbound = inbound_of(update, context.bot.username if context.bot._bot_user else None)
        if inbound is not None:
            await routes.dispatch(inbound, channel, context.bot_data["runtime"])

    application.add_handler(TypeHandler(Update, on_update))
    application.add_error_handler(errors.on_error)
