"""Telegram without Telegram: people type, the real Application answers, the local Bot API
records (and the tests read what it recorded).

It turns what a person does (a message, a command, a button press) into the update payload
Telegram would send, and feeds it to `Application.process_update`; the tests and the
benchmarks drive the bot through the same class.
"""

from datetime import datetime
from itertools import count
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.channels.local.chat import Person, chosen, move_clock, plain
from bot.channels.telegram.local_api import BOT_USER, Call, LocalBotAPI
from bot.clock import ManualClock
from bot.jobs import SteppedJobs


def telegram_user(person: Person) -> dict[str, Any]:
    """The person as Telegram's User object."""
    return {
        "id": person.user_id,
        "is_bot": False,
        "first_name": person.name,
        "language_code": person.language_code,
    }


class LocalChat:
    """Feeds people's actions to the Application as real update payloads."""

    def __init__(
        self,
        application: Application,
        api: LocalBotAPI,
        clock: ManualClock,
        jobs: SteppedJobs | None = None,
        *,
        queued: bool = False,
    ) -> None:
        self.application = application
        self.api = api
        self.clock = clock
        self.jobs = jobs
        # Queued: updates go through the update queue, as the Updater puts them (the
        # Application must be running), instead of being processed one by one here.
        self.queued = queued
        self._update_ids = count(1)

    def _stamp(self) -> int:
        return int(self.clock.now().timestamp())

    async def feed(self, payload: dict[str, Any]) -> None:
        """Feed one update payload, as Telegram would deliver it."""
        payload["update_id"] = next(self._update_ids)
        update = Update.de_json(payload, self.application.bot)
        if self.queued:
            await self.application.update_queue.put(update)
        else:
            await self.application.process_update(update)

    def _text_message(self, person: Person, message_id: int, text: str) -> dict[str, Any]:
        """A private text message; a leading /word is a bot command, as Telegram marks it."""
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": self._stamp(),
            "chat": {"id": person.user_id, "type": "private", "first_name": person.name},
            "from": telegram_user(person),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return message

    async def send(self, person: Person, text: str) -> int:
        """A private text message; returns its id (to edit it later)."""
        message_id = self.api.next_message_id(person.user_id)
        await self.feed({"message": self._text_message(person, message_id, text)})
        return message_id

    async def edit(self, person: Person, message_id: int, text: str) -> None:
        """The person edits a message they sent earlier to read `text`."""
        edited = {**self._text_message(person, message_id, text), "edit_date": self._stamp()}
        await self.feed({"edited_message": edited})

    async def send_payload(self, person: Person, **content: Any) -> None:
        """A private message of another kind (a photo, a sticker…): `content` is its fields."""
        message = {
            "message_id": self.api.next_message_id(person.user_id),
            "date": self._stamp(),
            "chat": {"id": person.user_id, "type": "private", "first_name": person.name},
            "from": telegram_user(person),
            **content,
        }
        await self.feed({"message": message})

    async def send_document(self, person: Person, filename: str, content: bytes) -> None:
        """A private message carrying a file, as a user uploads one."""
        file_id = self.api.upload(content)
        document = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_name": filename,
            "file_size": len(content),
        }
        await self.send_payload(person, document=document)

    def last_with_buttons(self, person: Person) -> Call | None:
        return self.api.last_keyboard(person.user_id)

    async def press(
        self,
        person: Person,
        data: str,
        message: Call | None = None,
        in_chat: dict[str, Any] | None = None,
    ) -> None:
        """Press a button carrying `data` (which a forger may choose freely), on a message of
        the person's private chat or of `in_chat` (a group's {"id", "type", "title"})."""
        message = message or self.last_with_buttons(person)
        payload: dict[str, Any] = {
            "id": str(next(self._update_ids)),
            "from": telegram_user(person),
            "chat_instance": f"local-{person.user_id}",
            "data": data,
        }
        # A button always sits on a message; a forger's press names any message id.
        payload["message"] = {
            "message_id": message.message_id if message else 1,
            "date": self._stamp(),
            "chat": in_chat or {"id": person.user_id, "type": "private", "first_name": person.name},
            "from": BOT_USER,
            # As Telegram delivers it: the text with its markup parsed away, and the buttons.
            "text": plain(message.text) if message else "",
        }
        if message is not None and message.buttons:
            payload["message"]["reply_markup"] = {
                "inline_keyboard": [[button] for button in message.buttons]
            }
        await self.feed({"callback_query": payload})

    async def tap(self, person: Person, selector: str) -> bool:
        """Press button N (from 1), or the one labelled (or uniquely partly labelled) `selector`."""
        message = self.last_with_buttons(person)
        index = chosen([b["text"] for b in message.buttons], selector) if message else None
        if index is None:
            return False
        await self.press(person, message.buttons[index]["callback_data"], message)
        return True

    async def move_clock(self, spec: str) -> datetime:
        zone = self.application.bot_data["runtime"].settings.zone
        return await move_clock(self.clock, self.jobs, zone, spec)
