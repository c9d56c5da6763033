"""Builds the python-telegram-bot Application: the Telegram channel, its routes, the runtime."""

from telegram.ext import Application, ApplicationBuilder, BaseRateLimiter, BaseUpdateProcessor
from telegram.request import BaseRequest

from bot import logs
from bot.channels.telegram import routing
from bot.channels.telegram.intake import DurableApplication, DurableQueue
from bot.intake import Intake
from bot.runtime import Runtime

# Local runs (demo, tests, benchmarks) need a token-shaped string; no request leaves the process.
LOCAL_TOKEN = "1000000:local-demo-token-not-used-for-any-request"


def build_application(
    runtime: Runtime,
    *,
    request: BaseRequest | None = None,
    rate_limiter: BaseRateLimiter | None = None,
    token: str | None = None,
    api_base_url: str | None = None,
    intake: Intake | None = None,
    update_processor: BaseUpdateProcessor | None = None,
    polling: bool = False,
) -> Application:
    """The Application with every handler; `request` answers the Bot API locally if given
    (and, with `polling`, an Updater fetches updates from it). With an `intake`, every
    update is stored before it is acknowledged (bot/intake.py)."""
    builder: ApplicationBuilder = Application.builder().token(token or LOCAL_TOKEN)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
        if not polling:
            builder = builder.updater(None)
    if intake is not None:
        builder = builder.application_class(DurableApplication).update_queue(
            DurableQueue(runtime, intake)
        )
    if update_processor is not None:
        builder = builder.concurrent_updates(update_processor)
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    if api_base_url:
        base = api_base_url.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    # Before anything is built: python-telegram-bot logs the API URL (with the token) then.
    logs.cap_libraries()
    application = builder.build()
    application.bot_data["runtime"] = runtime
    routing.register(application)
    return application
