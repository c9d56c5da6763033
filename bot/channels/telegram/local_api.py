"""A Bot API that answers in-process: the local chat's, the tests' and the benchmarks'.

It plugs into python-telegram-bot as its `BaseRequest`, so the real `Bot` and `Application`
run unchanged; it records every call, answers like Telegram does, and can be told to fail
the way Telegram fails (429 with retry_after, 403 for a blocked user, timeouts), to keep
Telegram's send limits, and to drop the bot's process at a chosen call.
"""

import asyncio
import json
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

from messages.render import MESSAGE_LIMIT, TELEGRAM_TAGS, length

BOT_USER = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "创先争优助手",
    "username": "cxzy_demo_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}

_SENDS = {"sendMessage", "sendPhoto", "sendDocument"}
_EDITS = {"editMessageText", "editMessageReplyMarkup", "editMessageCaption"}


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")


def _valid_html(text: str) -> bool:
    """Only tags Telegram knows, properly nested, and no stray '<'."""
    stack: list[str] = []
    for closing, name in _TAG.findall(text):
        if name not in TELEGRAM_TAGS:
            return False
        if closing:
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack and "<" not in _TAG.sub("", text)


@dataclass
class Call:
    """One Bot API request as the bot made it."""

    method: str
    params: dict[str, Any]
    message_id: int | None = None

    @property
    def chat_id(self) -> int | None:
        chat = self.params.get("chat_id")
        return int(chat) if chat is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        return [button for row in markup.get("inline_keyboard", []) for button in row]


class ProcessDropped(BaseException):
    """The bot's process died here (kill -9): nothing after this point runs.

    A BaseException, so that no `except Exception` of the bot's records anything after it."""


@dataclass
class Limits:
    """Telegram's flood control: at most `overall` messages in any second, one a second in
    a private chat, `group` in any minute in a group; more is answered with 429."""

    overall: int = 30
    private_interval: float = 1.0
    group: int = 20
    # Seconds, from the event loop's clock (which a simulated loop moves).
    clock: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())


@dataclass
class _Drop:
    method: str | None
    after: int
    delivered: bool


@dataclass
class _Failure:
    method: str | None
    chat_id: int | None
    times: int
    status: int
    description: str
    retry_after: int | None = None
    after: int = 0


class LocalBotAPI(BaseRequest):
    """Records and answers Bot API calls without a network."""

    def __init__(
        self,
        *,
        now: Callable[[], float] = lambda: 0.0,
        on_call: Callable[[Call], None] | None = None,
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        self.now = now
        self.on_call = on_call
        self.limits = limits
        self._recent: deque[float] = deque()  # when the sends of the last second went out
        self._chat_sends: dict[int, deque[float]] = {}
        self.flood_refusals = 0
        self.flood_refusals_by_chat: dict[int | None, int] = {}
        self._drop: _Drop | None = None
        self.dropped = False
        self._updates: list[dict[str, Any]] = []  # for getUpdates, until acknowledged
        self._arrived: asyncio.Event | None = None
        self._all_acknowledged: asyncio.Event | None = None
        self.calls: list[Call] = []
        self._failures: list[_Failure] = []
        self._blocked: set[int] = set()
        self._message_ids: dict[int, count] = {}
        self._keyboards: dict[int, Call] = {}
        self._latest: dict[int, Call] = {}
        self._contents: dict[tuple[int, int], tuple[str, str]] = {}
        self._files: dict[str, bytes] = {}  # file id → content, for getFile and downloads

    # --- telling it how Telegram should behave -------------------------------------------

    def upload(self, content: bytes) -> str:
        """A file as if a user had sent it: its file id, which getFile and a download serve."""
        file_id = f"local-file-{len(self._files) + 1}"
        self._files[file_id] = content
        return file_id

    def fail(
        self,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        status: int = 429,
        retry_after: int | None = None,
        times: int = 1,
        description: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` matching calls fail with `status` (a 0 status: a timeout),
        once `after` matching calls have gone through."""
        description = description or {
            429: f"Too Many Requests: retry after {retry_after or 1}",
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: chat not found",
        }.get(status, "Internal Server Error")
        self._failures.append(
            _Failure(method, chat_id, times, status, description, retry_after or 1, after)
        )

    def deliver(self, update: dict[str, Any]) -> None:
        """An update Telegram holds for the bot's getUpdates until an offset acknowledges it
        (delivering one again is what a retrying channel does)."""
        self._updates.append(update)
        if self._arrived is not None:
            self._arrived.set()

    def unacknowledged(self) -> list[int]:
        return [update["update_id"] for update in self._updates]

    async def acknowledged(self) -> None:
        """Wait until the bot has acknowledged every update held for it."""
        while self._updates:
            self._all_acknowledged = self._all_acknowledged or asyncio.Event()
            self._all_acknowledged.clear()
            await self._all_acknowledged.wait()

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Long polling: what is held, or what arrives within the call's timeout."""
        if not self._updates:
            self._arrived = self._arrived or asyncio.Event()
            self._arrived.clear()
            timeout = float(params.get("timeout") or 0)
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                pass
        return self._updates[: int(params.get("limit") or 100)]

    def _acknowledge(self, params: dict[str, Any]) -> None:
        offset = int(params.get("offset") or 0)
        self._updates = [update for update in self._updates if update["update_id"] >= offset]
        if not self._updates and self._all_acknowledged is not None:
            self._all_acknowledged.set()

    def drop_process(
        self, *, method: str | None = None, after: int = 0, delivered: bool = False
    ) -> None:
        """Kill the bot at the `after`+1-th matching call: before it reaches Telegram, or
        (`delivered`) once Telegram has done it but before the bot hears the answer.
        Every later call fails the same way until `restart`."""
        self._drop = _Drop(method, after, delivered)

    def restart(self) -> None:
        """The bot's process is started again (Telegram kept what it had received)."""
        self._drop = None
        self.dropped = False

    def _dropping(self, call: Call) -> bool:
        drop = self._drop
        if self.dropped:
            return True
        if drop is None or drop.method not in (None, call.method):
            return False
        if drop.after > 0:
            drop.after -= 1
            return False
        self.dropped = True
        return True

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every send to them answers 403 until `unblock`."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    # --- reading what was sent -----------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """Messages, photos and documents sent (and edits made), optionally to one chat."""
        return [
            call
            for call in self.calls
            if call.method in _SENDS | _EDITS and (chat_id is None or call.chat_id == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [call.text for call in self.sent(chat_id)]

    def last(self, chat_id: int | None = None) -> Call:
        """The newest message sent to (or edited in) this chat, or anywhere."""
        if chat_id is not None and chat_id in self._latest:
            return self._latest[chat_id]
        return self.sent(chat_id)[-1]

    def next_message_id(self, chat_id: int) -> int:
        """Message ids run in one sequence per chat, the user's and the bot's messages alike."""
        return next(self._message_ids.setdefault(chat_id, count(1)))

    def last_keyboard(self, chat_id: int) -> Call | None:
        """The newest message with buttons sent to (or edited in) this chat."""
        return self._keyboards.get(chat_id)

    def clear(self) -> None:
        self.calls.clear()
        self._keyboards.clear()
        self._latest.clear()

    # --- BaseRequest ---------------------------------------------------------------------

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        if "/file/bot" in url:  # a download of a file getFile described
            content = self._files.get(url.rsplit("/", 1)[-1])
            return (200, content) if content is not None else (404, b"")
        api_method = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        if request_data and request_data.multipart_data:
            # Files are kept whole, so that tests (and the local chat) can open what was sent.
            for name, (filename, content, _mime) in request_data.multipart_data.items():
                params[name] = {"filename": filename, "size": len(content), "content": content}
        call = Call(api_method, params)
        if self._dropping(call):
            if self._drop is not None and self._drop.delivered:
                self._drop = None  # Telegram got this one; the process dies before the answer
                if call.method == "getUpdates":
                    self._acknowledge(params)
                else:
                    self._record(call, self._result(call))
            raise ProcessDropped(call.method)
        if call.method == "getUpdates":
            self._acknowledge(params)
            return 200, json.dumps({"ok": True, "result": await self._get_updates(params)}).encode()
        failure = self._failure_for(call)
        if failure is not None:
            if failure.status == 0:
                raise TimedOut()
            body: dict[str, Any] = {
                "ok": False,
                "error_code": failure.status,
                "description": failure.description,
            }
            if failure.status == 429:
                body["parameters"] = {"retry_after": failure.retry_after}
            return failure.status, json.dumps(body).encode()
        result = self._result(call)
        self._record(call, result)
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _record(self, call: Call, result: Any) -> None:
        if isinstance(result, dict):
            call.message_id = result.get("message_id")
        self.calls.append(call)
        if call.buttons and call.chat_id is not None:
            self._keyboards[call.chat_id] = call
        if call.method in _SENDS | _EDITS and call.chat_id is not None:
            self._latest[call.chat_id] = call
        if self.on_call is not None:
            self.on_call(call)

    def _flood_wait(self, call: Call) -> float:
        """0 if Telegram takes this message now, else the seconds it asks to wait."""
        limits = self.limits
        if limits is None or call.method not in _SENDS | _EDITS or call.chat_id is None:
            return 0.0
        now = limits.clock()
        # Floating-point slack, so that sends spaced exactly by the limit are taken.
        slack = 1e-6
        private = call.chat_id > 0
        window, allowed = (limits.private_interval, 1) if private else (60.0, limits.group)
        chat = self._chat_sends.setdefault(call.chat_id, deque())
        waits = []
        for sends, period, most in ((self._recent, 1.0, limits.overall), (chat, window, allowed)):
            while sends and sends[0] <= now - period + slack:
                sends.popleft()
            if len(sends) >= most:
                waits.append(sends[0] + period - now)
        if waits:
            self.flood_refusals += 1
            by_chat = self.flood_refusals_by_chat
            by_chat[call.chat_id] = by_chat.get(call.chat_id, 0) + 1
            return max(waits)
        self._recent.append(now)
        chat.append(now)
        return 0.0

    def _refusal(self, call: Call) -> str | None:
        """What Telegram would say is wrong with this call, if anything."""
        text = call.params.get("text")
        if call.method in ("sendMessage", "editMessageText"):
            if not text or not str(text).strip():
                return "Bad Request: message text is empty"
            if length(str(text)) > MESSAGE_LIMIT:
                return "Bad Request: message is too long"
            if call.params.get("parse_mode") == "HTML" and not _valid_html(str(text)):
                return "Bad Request: can't parse entities"
        if any(len(str(b.get("callback_data", "")).encode()) > 64 for b in call.buttons):
            return "Bad Request: BUTTON_DATA_INVALID"
        if call.method == "answerCallbackQuery" and len(str(call.params.get("text") or "")) > 200:
            return "Bad Request: MESSAGE_TOO_LONG"
        if call.method == "editMessageText":
            key = (call.chat_id, int(call.params.get("message_id", 0)))
            if key not in self._contents:
                return "Bad Request: message to edit not found"
            if self._contents[key] == (str(text), json.dumps(call.params.get("reply_markup"))):
                return "Bad Request: message is not modified"
        return None

    def _failure_for(self, call: Call) -> _Failure | None:
        refusal = self._refusal(call)
        if refusal is not None:
            return _Failure(call.method, call.chat_id, 1, 400, refusal)
        wait = self._flood_wait(call)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            return _Failure(
                call.method,
                call.chat_id,
                1,
                429,
                f"Too Many Requests: retry after {seconds}",
                seconds,
            )
        if call.method in _SENDS and call.chat_id in self._blocked:
            return _Failure(
                call.method, call.chat_id, 1, 403, "Forbidden: bot was blocked by the user"
            )
        for failure in self._failures:
            if (failure.method in (None, call.method)) and (
                failure.chat_id in (None, call.chat_id)
            ):
                if failure.after > 0:
                    failure.after -= 1
                    continue
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _result(self, call: Call) -> Any:
        if call.method == "getMe":
            return BOT_USER
        if call.method == "getFile":
            file_id = str(call.params.get("file_id"))
            content = self._files.get(file_id)
            return {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_size": len(content or b""),
                "file_path": file_id,
            }
        if call.method in _SENDS or (call.method in _EDITS and "chat_id" in call.params):
            message_id = call.params.get("message_id") or self.next_message_id(call.chat_id)
            self._contents[(call.chat_id, int(message_id))] = (
                str(call.params.get("text", "")),
                json.dumps(call.params.get("reply_markup")),
            )
            message: dict[str, Any] = {
                "message_id": message_id,
                "date": int(self.now()),
                "chat": {
                    "id": call.chat_id,
                    "type": "private" if (call.chat_id or 0) > 0 else "group",
                },
                "from": BOT_USER,
            }
            if "text" in call.params:
                message["text"] = call.params["text"]
            if "caption" in call.params:
                message["caption"] = call.params["caption"]
            if call.params.get("reply_markup"):
                markup = call.params["reply_markup"]
                message["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
            if call.method == "sendDocument":
                message["document"] = {"file_id": "local-doc", "file_unique_id": "local-doc"}
            if call.method == "sendPhoto":
                message["photo"] = [
                    {
                        "file_id": "local-photo",
                        "file_unique_id": "local-photo",
                        "width": 1,
                        "height": 1,
                    }
                ]
            return message
        return True
