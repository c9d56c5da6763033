"""Telegram's side of the durable intake (bot/intake.py), for polling and webhooks alike.

python-telegram-bot's Updater puts each update it fetched into the update queue and only then
asks for the next ones with the offset that acknowledges them to Telegram; its webhook
answers Telegram only after the same put. So the queue stores the update on `put`, and the
Application marks it done once processed.
"""

import asyncio
import json
from collections import Counter
from typing import TYPE_CHECKING

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application

from bot.channels.telegram.inbound import account_of
from bot.core.contract import Outgoing
from bot.intake import Intake, holds_ballot, is_ballot_action
from bot.runtime import Runtime

if TYPE_CHECKING:
    from bot.channels.telegram.sender import TelegramChannel


class DurableQueue(asyncio.Queue):
    """The Application's update queue: an update is stored before `put` returns; a
    duplicate is dropped there."""

    def __init__(self, runtime: Runtime, intake: Intake) -> None:
        super().__init__()
        self.runtime = runtime
        self.intake = intake
        self._ballot_taps: Counter[int] = Counter()  # ballot buttons queued, by account

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and not await self._store(item):
            return
        await super().put(item)

    async def _store(self, update: Update) -> bool:
        user, chat, message = update.effective_user, update.effective_chat, update.effective_message
        query = update.callback_query
        account = user.id if user else None
        action = query.data if query else None
        private = chat is not None and chat.type == ChatType.PRIVATE
        words = None
        if private and message is not None and query is None:
            words = message.text or message.caption or ""
        ballot = holds_ballot(
            self.runtime.ballots,
            account=account_of(user) if user else None,  # as the ballot box knows it
            action=action,
            private_words=words,
            ballot_queued=bool(account and self._ballot_taps[account]),
            now=self.runtime.clock.now(),
            edited=update.edited_message is not None,
        )
        payload = None if ballot else json.dumps(update.to_dict(), ensure_ascii=False)
        if not await self.intake.accept(str(update.update_id), payload):
            return False
        if account is not None and is_ballot_action(action):
            self._ballot_taps[account] += 1
        return True

    def processed(self, update: Update) -> None:
        query, user = update.callback_query, update.effective_user
        if query is not None and user is not None and is_ballot_action(query.data):
            self._ballot_taps[user.id] -= 1
            if self._ballot_taps[user.id] <= 0:
                del self._ballot_taps[user.id]

    async def recover(self, channel: "TelegramChannel") -> tuple[int, int]:
        """After a restart: the replies a dead process had not handed over are sent, and
        what it stored and did not process goes first in the queue (stored already).
        Returns how many of each."""
        unsent = await self.intake.unsent_replies()
        for answering, replies in unsent:
            await channel.send([_stored(reply) for reply in replies], answering)
        stored = await self.intake.waiting()
        for _update_id, payload in stored:
            super().put_nowait(Update.de_json(json.loads(payload), channel.bot))
        return len(unsent), len(stored)


class DurableApplication(Application):
    """Marks each update of the intake done once processed. A handler's gate marks it done
    in its own transaction already; this covers updates no gated handler took. Nothing is
    marked if the process dies meanwhile (a BaseException passes by)."""

    async def process_update(self, update: object) -> None:
        queue = self.update_queue
        if not isinstance(update, Update) or not isinstance(queue, DurableQueue):
            await super().process_update(update)
            return
        update_id = str(update.update_id)
        try:
            with queue.intake.processing(update_id):
                await super().process_update(update)
        finally:
            queue.processed(update)
        await queue.intake.done(update_id)


def _stored(reply: dict) -> Outgoing:
    """A stored reply; one stored before the channel contract (chat_id, an inline keyboard's
    markup, edit a message id) may still wait after an upgrade."""
    if "chat_id" not in reply:
        return Outgoing(**reply)
    markup = reply["markup"] or {}
    buttons = [
        [[button["text"], button["callback_data"]] for button in row]
        for row in markup.get("inline_keyboard", [])
    ]
    edit = reply["edit"]
    return Outgoing(
        str(reply["chat_id"]), reply["text"], buttons or None, None if edit is None else str(edit)
    )
