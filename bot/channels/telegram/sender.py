"""Telegram as a channel of the core: its limits, and the one place replies, files, toasts
and menus leave for the Bot API (bot.core.contract.Channel)."""

import asyncio
import functools
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from datetime import timedelta

from telegram import Bot, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import Application

from bot import delivery
from bot.channels.telegram import CHANNEL, menus, pacing
from bot.channels.telegram.markup import LIMITS, keyboard, start_link
from bot.core.access import Actor
from bot.core.contract import (
    Answering,
    FileRef,
    Inbound,
    Outgoing,
    OutgoingFile,
    Undelivered,
    Unreachable,
)

# How python-telegram-bot words a server error: Telegram's description, or the status's
# phrase and number. Not 504: the gateway gave up waiting, the server may have sent it.
_SERVER_ERROR = re.compile(
    r"^(Internal Server Error|Bad Gateway|Service Unavailable)|\(5(?!04)\d\d\)"
)


class TelegramChannel:
    """One per Application; built with it (bot.channels.telegram.app)."""

    name = CHANNEL
    limits = LIMITS

    def __init__(self, application: Application) -> None:
        self.application = application
        self._unpaced = asyncio.Lock()

    @property
    def bot(self) -> Bot:
        return self.application.bot

    async def send(self, outgoing: Sequence[Outgoing], answering: Answering | None) -> None:
        """Send in order; `answering` records each as handed over just before its request
        (a retry after a 429 records the same one again), then that all have been."""
        for position, item in enumerate(outgoing):
            before = functools.partial(answering.handing_over, position) if answering else None
            common = {
                "text": item.text,
                "parse_mode": ParseMode.HTML,
                "reply_markup": keyboard(item.buttons),
            }
            if item.edit is not None and await self._edit(item, before, common):
                continue
            await pacing.request(
                self.bot.send_message, before_request=before, chat_id=int(item.chat), **common
            )
        if answering is not None:
            await answering.finished()

    async def _edit(self, item: Outgoing, before, common: dict) -> bool:
        """Edit the pressed message; False when it is gone or too old (then send anew)."""
        try:
            await pacing.request(
                self.bot.edit_message_text,
                before_request=before,
                chat_id=int(item.chat),
                message_id=int(item.edit),
                **common,
            )
        except BadRequest as error:
            reason = error.message.lower()
            if "not modified" in reason:  # a second tap on the same button: already says this
                return True
            if "not found" in reason or "can't be edited" in reason:
                return False
            raise
        return True

    async def push(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """An outbox message: behind the replies, never retried here (the outbox decides).
        Without a pacer (local runs), one request at a time, in the order of the claim."""
        async with self._unpaced if self.bot.rate_limiter is None else nullcontext():
            try:
                await pacing.request(
                    self.bot.send_message,
                    before_request=before_request,
                    urgent=False,
                    retries=0,
                    chat_id=int(item.chat),
                    text=item.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(item.buttons),
                )
            except Forbidden as error:
                raise Unreachable(error.message) from error
            except BadRequest as error:
                if "chat not found" in error.message.lower():
                    raise Unreachable(error.message) from error
                raise
            except RetryAfter as error:
                wait = error.retry_after
                seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
                raise Undelivered("Telegram asked to wait", timedelta(seconds=seconds)) from error
            except NetworkError as error:
                if _certainly_not_delivered(error):
                    raise Undelivered(error.message) from error
                raise

    async def make_room(self, parts: Sequence[Outgoing]) -> None:
        """Telegram's limits are kept by waiting (the pacer), never by dropping."""

    async def send_file(self, item: OutgoingFile) -> None:
        method = self.bot.send_photo if item.kind == "photo" else self.bot.send_document
        field = "photo" if item.kind == "photo" else "document"
        content = InputFile(io.BytesIO(item.content), filename=item.name)
        extra = {"caption": item.caption} if item.caption else {}
        await pacing.request(method, chat_id=int(item.chat), **{field: content}, **extra)

    async def acknowledge(self, inbound: Inbound, notice: str | None) -> None:
        text = notice[: LIMITS.toast_length] if notice else None
        await self.bot.answer_callback_query(inbound.answer_token, text=text)

    async def download(self, file: FileRef) -> bytes:
        found = await self.bot.get_file(file.file_id)
        return bytes(await found.download_as_bytearray())

    def deep_link(self, payload: str) -> str:
        return start_link(self.bot.username, payload)

    async def publish_menu(self, chat: str, actor: Actor | None, *, clear: bool) -> None:
        runtime = self.application.bot_data["runtime"]
        await menus.publish_for(self.bot, runtime.messages, int(chat), actor, clear=clear)

    async def send_news(self) -> None:
        await delivery.send_now(self.application.bot_data["runtime"])


def _certainly_not_delivered(error: NetworkError) -> bool:
    """Telegram answered with a server error, or no connection was made: nothing arrived.
    A timeout or a connection lost mid-request may have delivered it."""
    return bool(_SERVER_ERROR.search(error.message)) or "httpx.ConnectError" in error.message
