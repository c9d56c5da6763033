"""`python -m bot run`: the bot on Telegram, by long polling."""

import asyncio
import logging
import sys

from telegram import Bot, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from bot.channels.telegram import CHANNEL, menus
from bot.channels.telegram.app import build_application
from bot.channels.telegram.intake import DurableQueue
from bot.channels.telegram.jobs import schedule
from bot.channels.telegram.pacing import ChatByChat, Pacer
from bot.core.access import Actor
from bot.intake import Intake
from bot.jobs import periodic_jobs
from bot.runtime import Runtime
from storage import accounts, people

logger = logging.getLogger(__name__)


async def _publish_menus(application: Application, runtime: Runtime) -> None:
    await menus.publish_default(application.bot, runtime.messages)
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        bound = (
            await accounts.members_on(session, organisation_id=organisation.id, channel=CHANNEL)
            if organisation
            else []
        )
    for member, account in bound:
        try:
            await menus.publish_for(
                application.bot,
                runtime.messages,
                int(account.external_id),
                Actor.of(member, account=account),
            )
        except TelegramError as error:  # one blocked secretary must not stop the bot starting
            logger.warning("menu for member %s not set: %s", member.id, error)


DISPOSE_WAIT = 5  # seconds

# Waits between attempts to reach the Bot API: doubling, then once a minute.
_BACKOFF = (1, 2, 4, 8, 15, 30, 60)


async def _reach_bot_api(runtime: Runtime, bot: Bot) -> None:
    """Return once the Bot API answers; until then say why not and try again, backing off.

    A service started before the network (or a self-hosted Bot API server) is up should wait
    for it, not die with a traceback."""
    settings = runtime.settings
    attempt = 0
    while True:
        try:
            await bot.initialize()  # which asks getMe
            return
        except InvalidToken:
            raise
        except NetworkError as error:  # TimedOut and 5xx answers are NetworkErrors too
            wait = _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
            print(
                runtime.messages.render(
                    settings.default_locale,
                    "cli_bot_api_unreachable.txt",
                    url=settings.telegram_api_base_url or "https://api.telegram.org",
                    reason=str(error),
                    wait=wait,
                ),
                file=sys.stderr,
                flush=True,
            )
            attempt += 1
            await asyncio.sleep(wait)


def run_polling(runtime: Runtime, token: str) -> int:
    """Telegram by long polling; WeCom too, in the same loop, when it is configured."""
    settings = runtime.settings
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
        answered, waiting = await queue.recover(app.bot_data["channel"])
        if answered or waiting:
            logger.info(
                "after a restart: replies to %d updates sent, %d updates processed first",
                answered,
                waiting,
            )
        await _publish_menus(app, runtime)
        schedule(app, periodic_jobs(runtime.settings))
        if settings.wecom_configured:
            from bot.channels.wecom.run import start

            app.bot_data["wecom"] = await start(runtime)
        logger.info("bot @%s is running", app.bot.username)

    async def post_shutdown(app: Application) -> None:
        if "wecom" in app.bot_data:
            await app.bot_data["wecom"].stop()
        # Stopped in the middle of starting (Ctrl-C while a restart's work is recovered), a
        # connection may still be out: what was not committed is rolled back by the database,
        # so waiting longer for it helps nothing.
        try:
            await asyncio.wait_for(runtime.db.dispose(), DISPOSE_WAIT)
        except TimeoutError:
            logger.warning("database connections still busy at shutdown; leaving them")

    async def reachable() -> None:
        try:
            await _reach_bot_api(runtime, application.bot)
        finally:
            await application.bot.shutdown()  # run_polling starts it again in its own loop

    application.post_init = post_init
    application.post_shutdown = post_shutdown
    try:
        asyncio.run(reachable())
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    except InvalidToken:
        print(
            runtime.messages.render(settings.default_locale, "cli_token_rejected.txt"),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
