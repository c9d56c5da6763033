"""`python -m bot run`: the bot on Telegram, by long polling."""

import logging
import sys

from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from bot.app import build_application, periodic_jobs
from bot.clock import SystemClock
from bot.config import Settings
from bot.intake import Intake
from bot.jobs import schedule
from bot.pacing import ChatByChat, Pacer
from bot.runtime import Runtime
from bot.services.access import Actor
from bot.telegram_intake import CHANNEL, DurableQueue
from handlers import menus
from storage import people

logger = logging.getLogger(__name__)


async def _publish_menus(application: Application, runtime: Runtime) -> None:
    await menus.publish_default(application.bot, runtime.messages)
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        members = (
            await people.list_members(session, organisation_id=organisation.id)
            if organisation
            else []
        )
    for member in members:
        if member.telegram_user_id is None:
            continue
        try:
            await menus.publish_for(
                application.bot, runtime.messages, member.telegram_user_id, Actor.of(member)
            )
        except TelegramError as error:  # one blocked secretary must not stop the bot starting
            logger.warning("menu for member %s not set: %s", member.id, error)


def run_polling(settings: Settings, token: str) -> int:
    runtime = Runtime.create(settings, SystemClock())
    application = build_application(
        runtime,
        rate_limiter=Pacer(),
        token=token,
        api_base_url=settings.telegram_api_base_url,
        intake=Intake(runtime.db, CHANNEL),
        update_processor=ChatByChat(),
    )

    async def post_init(app: Application) -> None:
        await runtime.db.migrate()
        queue: DurableQueue = app.update_queue
        answered, waiting = await queue.recover(app.bot)
        if answered or waiting:
            logger.info(
                "after a restart: replies to %d updates sent, %d updates processed first",
                answered,
                waiting,
            )
        await _publish_menus(app, runtime)
        schedule(app, periodic_jobs(runtime.settings))
        logger.info("bot @%s is running", app.bot.username)

    async def post_shutdown(_app: Application) -> None:
        await runtime.db.dispose()

    application.post_init = post_init
    application.post_shutdown = post_shutdown
    try:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    except InvalidToken:
        print(
            "error: Telegram rejected TELEGRAM_BOT_TOKEN. Check it with @BotFather, "
            "or try the bot without Telegram: python -m bot demo",
            file=sys.stderr,
        )
        return 2
    return 0
