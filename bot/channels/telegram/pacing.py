"""Telegram's send limits kept by construction: per chat and overall, and updates per chat.

Telegram allows about 30 messages a second overall, one a second in a private chat and 20 a
minute in a group; it answers more with 429. Every message here waits for a slot of its
chat, then for a slot of the whole bot. Slots are strictly spaced (a bucket that holds one
token), so no burst ever leaves, and a chat's slots are its own: a member who floods the bot
waits for their own replies while everyone else is answered. A 429 pauses only its chat
(or, without a chat, everything) for as long as Telegram says.

Time is the event loop's, so a loop with simulated time (the benchmarks', some tests')
paces in simulated seconds.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter, BaseUpdateProcessor

# Seconds between two messages: overall, in a private chat, in a group (20 a minute).
OVERALL_INTERVAL = 1 / 30
PRIVATE_INTERVAL = 1.0
GROUP_INTERVAL = 3.0
# How many chats' slots are kept before the idle ones are forgotten.
REMEMBERED_CHATS = 10_000


@dataclass(frozen=True)
class Pacing:
    """Per request (`rate_limit_args`): how often to retry a 429, and what to do just
    before the request is really made (the outbox marks its rows as being sent there)."""

    retries: int = 3
    before_request: Callable[[], Awaitable[object]] | None = None
    # Replies go before the outbox's messages: a member waiting for an answer is not kept
    # behind a broadcast.
    urgent: bool = True


async def request(
    method: Callable[..., Awaitable[Any]],
    /,
    *,
    before_request: Callable[[], Awaitable[object]] | None = None,
    urgent: bool = True,
    retries: int = 3,
    **kwargs: Any,
) -> Any:
    """Call a Bot method so that `before_request` runs just before its request is made: in
    the pacer, when the bot has one (`python -m bot run`), else at once (local runs)."""
    if method.__self__.rate_limiter is not None:
        pacing = Pacing(retries=retries, before_request=before_request, urgent=urgent)
        return await method(**kwargs, rate_limit_args=pacing)
    if before_request is not None:
        await before_request()
    return await method(**kwargs)


class _Slots:
    """Strictly spaced moments, `interval` apart, and a pause Telegram may ask for."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next = float("-inf")
        self.paused_until = float("-inf")

    def pause(self, until: float) -> None:
        self.paused_until = max(self.paused_until, until)


class _Overall(_Slots):
    """The bot's slots, granted one at a time when due: urgent requests first."""

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.waiting: tuple[deque, deque] = (deque(), deque())  # urgent, the others
        self._granting: asyncio.Task | None = None

    async def wait(self, urgent: bool) -> None:
        turn = asyncio.get_running_loop().create_future()
        self.waiting[0 if urgent else 1].append(turn)
        if self._granting is None or self._granting.done():
            self._granting = asyncio.create_task(self._grant())
        await turn

    async def _grant(self) -> None:
        while any(self.waiting):
            await _until(max(self.next, self.paused_until))
            if self.paused_until > _now():
                continue
            turn = (self.waiting[0] or self.waiting[1]).popleft()
            if not turn.done():  # its request was not abandoned meanwhile
                turn.set_result(None)
                self.next = _now() + self.interval


class _Chat(_Slots):
    """A chat's messages leave one at a time, each `interval` after the last really left
    (which may be later than its turn, when the bot's overall slots are busy)."""

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.turn = asyncio.Lock()


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _until(moment: float) -> None:
    delay = moment - _now()
    if delay > 0:
        await asyncio.sleep(delay)


def _is_message(endpoint: str) -> bool:
    """The calls Telegram counts against its limits: what puts or changes a message in a chat."""
    return endpoint.startswith(("send", "edit", "copy", "forward"))


class Pacer(BaseRateLimiter[Pacing]):
    """python-telegram-bot's rate limiter, keeping Telegram's limits instead of meeting 429s."""

    def __init__(
        self,
        *,
        overall_interval: float = OVERALL_INTERVAL,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
    ) -> None:
        self.overall = _Overall(overall_interval)
        self.private_interval = private_interval
        self.group_interval = group_interval
        self.chats: dict[int | str, _Chat] = {}
        self.last_sent = float("-inf")  # when the latest message really left
        self._forget_at = REMEMBERED_CHATS
        self.retried = 0  # 429s Telegram answered despite the pacing

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def _chat(self, chat_id: int | str) -> _Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            if len(self.chats) >= self._forget_at:
                self._forget_idle_chats()
            private = isinstance(chat_id, int) and chat_id > 0
            chat = _Chat(self.private_interval if private else self.group_interval)
            self.chats[chat_id] = chat
        return chat

    def _forget_idle_chats(self) -> None:
        """Chats whose last message is more than their interval ago need no memory."""
        now = _now()
        self.chats = {
            key: chat
            for key, chat in self.chats.items()
            if chat.turn.locked() or max(chat.next, chat.paused_until) > now
        }
        self._forget_at = max(REMEMBERED_CHATS, 2 * len(self.chats))

    async def _request(self, chat: _Chat | None, pacing: Pacing, send: Callable[[], Any]):
        """Wait for the chat's turn and slot, then the bot's; mark; keep the spacing at the
        very moment of the request (marking may have taken a moment); send."""
        if chat is not None:
            while True:
                await _until(max(chat.next, chat.paused_until))
                await self.overall.wait(pacing.urgent)
                if chat.paused_until <= _now():  # not paused by a 429 meanwhile
                    break
        else:
            await self.overall.wait(pacing.urgent)
        if pacing.before_request is not None:
            await pacing.before_request()
        at = max(_now(), self.last_sent + self.overall.interval)
        self.last_sent = at
        await _until(at)
        if chat is not None:
            chat.next = at + chat.interval
        return await send()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[Any] | None]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Pacing | None,
    ) -> bool | dict[str, Any] | list[Any] | None:
        pacing = rate_limit_args or Pacing()
        chat_id = data.get("chat_id")
        if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
            chat_id = int(chat_id)
        chat = self._chat(chat_id) if chat_id is not None else None
        attempt = 0
        while True:
            try:
                if not _is_message(endpoint):
                    return await callback(*args, **kwargs)
                if chat is None:
                    return await self._request(None, pacing, lambda: callback(*args, **kwargs))
                async with chat.turn:  # a chat's messages leave one at a time, in order
                    return await self._request(chat, pacing, lambda: callback(*args, **kwargs))
            except RetryAfter as error:
                self.retried += 1
                wait = error.retry_after
                seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
                (chat or self.overall).pause(_now() + seconds)
                attempt += 1
                if attempt > pacing.retries:
                    raise


class ChatByChat(BaseUpdateProcessor):
    """Updates of different chats run side by side; one chat's run one after another, in
    order, so a member's flood waits for itself and nobody else."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._chats: dict[int | None, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def _turn_of(self, key: int | None):
        lock, users = self._chats.get(key) or (asyncio.Lock(), 0)
        self._chats[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._chats[key]
            if users == 1:
                del self._chats[key]
            else:
                self._chats[key] = (lock, users - 1)

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        # The chat's turn first, then a place among the concurrent updates: a flood of one
        # chat never fills the places others need.
        key = None
        if isinstance(update, Update):
            chat, user = update.effective_chat, update.effective_user
            key = chat.id if chat else (user.id if user else None)
        async with self._turn_of(key):
            await super().process_update(update, coroutine)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
