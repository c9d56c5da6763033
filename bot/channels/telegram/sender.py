"""Telegram as a channel of the core: its limits, and the one place replies, files, toasts
and menus leave for the Bot API (bot.core.contract.Channel)."""

import functools
import io
from collections.abc import Sequence

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import Application

from bot import delivery
from bot.channels.telegram import menus, pacing
from bot.channels.telegram.inbound import CHANNEL
from bot.core.access import Actor
from bot.core.contract import Answering, FileRef, Inbound, Limits, Outgoing, OutgoingFile

LIMITS = Limits(
    text_length=4096,
    counted_in="utf-16",
    buttons_per_message=100,
    action_payload_bytes=64,
    button_label_length=40,
    toast_length=200,
    messages_per_second=30,
    messages_per_chat_minute=20,
)


def keyboard(buttons: Sequence[Sequence[Sequence[str]]] | None) -> InlineKeyboardMarkup | None:
    """Rows of [label, packed action] as an inline keyboard."""
    if not buttons:
        return None
    for row in buttons:
        for _label, data in row:
            if len(data.encode()) > LIMITS.action_payload_bytes:
                raise ValueError(f"callback data over {LIMITS.action_payload_bytes} bytes: {data!r}")
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in buttons
        ]
    )


class TelegramChannel:
    """One per Application; built with it (bot.channels.telegram.app)."""

    name = CHANNEL
    limits = LIMITS

    def __init__(self, application: Application) -> None:
        self.application = application

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
        return f"https://t.me/{self.bot.username}?start={payload}"

    async def publish_menu(self, chat: str, actor: Actor | None, *, clear: bool) -> None:
        runtime = self.application.bot_data["runtime"]
        await menus.publish_for(self.bot, runtime.messages, int(chat), actor, clear=clear)

    async def send_news(self) -> None:
        await delivery.send_now(self.application)
