"""WeCom as a channel of the core (bot.core.contract.Channel): texts within 2,048 bytes,
buttons as template cards, files through media/upload, WeCom's answers mapped to the
outbox's outcomes.

The core renders messages in the `wecom` flavour (messages.render: WeCom markdown, every
value escaped, commands named by the keywords members type) and cuts them at 2,048 bytes; they
go as markdown messages. A message with buttons ends in a `button_interaction` card (6 buttons
at most, more go on further cards; a card shows no markdown, so its text is the message
unmarked); a tap comes back with the card's task id and a response code, with which an edit
replaces the card in place (once, within 72 hours), or else is sent anew.
"""

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import httpx

from bot import delivery
from bot.channels.wecom.api import WeComAPI, WeComError
from bot.channels.wecom.inbound import CHANNEL
from bot.channels.wecom.pacing import MemberPace
from bot.core.access import Actor
from bot.core.contract import (
    Answering,
    FileRef,
    Inbound,
    Limits,
    Outgoing,
    OutgoingFile,
    Undelivered,
    Unreachable,
)
from bot.runtime import Runtime
from messages.render import unmarked

logger = logging.getLogger(__name__)

TEXT_BYTES = 2048  # text and markdown content (document 90236); WeCom truncates beyond
CARD_BUTTONS = 6  # button_interaction's button_list
CARD_TITLE_CHARACTERS = 36  # main_title.title: WeCom advises 26, and cuts what is too long
CARD_TEXT_BYTES = 1024  # beyond this a card's text goes first as texts, the card after
LIMITS = Limits(
    text_length=TEXT_BYTES,
    counted_in="bytes",
    buttons_per_message=CARD_BUTTONS,
    action_payload_bytes=1024,  # a card button's key
    button_label_length=10,  # advised; longer labels are cut on the screen, not refused
    toast_length=0,  # WeCom has no toast
    # No documented rate for message/send to everyone; WeCom answers 45009 when it is busy.
    messages_per_second=30,
    messages_per_chat_minute=30,
    flavour="wecom",
)
# WeCom's answers that certainly delivered nothing and ask to wait.
TRY_AGAIN = {
    -1: timedelta(seconds=30),  # system busy
    45009: timedelta(minutes=1),  # API frequency
    45033: timedelta(minutes=1),  # concurrent calls
    # The set-up, not the message: kept until the administrator mends it.
    60020: timedelta(minutes=10),  # this server's IP is not among the trusted IPs
    40001: timedelta(minutes=10),  # the secret is wrong
    40013: timedelta(minutes=10),  # the CorpID is wrong
}
TOKEN_WAIT = timedelta(minutes=1)  # gettoken did not answer (or refused): try again
# The member is not (or no longer) in the application's reach: all recipients invalid, unknown
# userid.
GONE = frozenset({81013, 60111})


def split_bytes(text: str, limit: int = TEXT_BYTES) -> list[str]:
    """Parts of at most `limit` UTF-8 bytes, cut between lines where a line fits, never
    inside a character; no part is blank."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        joined = f"{current}\n{line}" if current else line
        if len(joined.encode()) <= limit:
            current = joined
            continue
        parts.append(current)
        while len(line.encode()) > limit:
            cut = len(line.encode()[:limit].decode(errors="ignore"))
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    parts.append(current)
    return [part.strip("\n") for part in parts if part.strip()]


async def counted(pace: MemberPace, recipient: str, now: datetime, count: int) -> None:
    """Count an outbox message's parts before anything of it is sent: Undelivered (it waits
    in the outbox) beyond the recipient's limits, or if the count cannot be kept."""
    wait = pace.wait(recipient, now, count)
    if wait > timedelta(0):
        raise Undelivered("the recipient's message limit", wait)
    try:
        await pace.take(recipient, now, count)
    except Exception as error:
        raise Undelivered("the message count was not kept") from error


def _cut(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[: characters - 1] + "…"


class WeComChannel:
    """One per application; registers itself with the runtime."""

    name = CHANNEL
    limits = LIMITS
    robots = None  # the group robots (robots.py), when WECOM_ROBOTS names any

    def __init__(
        self,
        runtime: Runtime,
        api: WeComAPI,
        *,
        pace: MemberPace | None = None,
        wait: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.runtime = runtime
        self.api = api
        self.markdown = runtime.settings.wecom_message_format == "markdown"
        self.limits = replace(LIMITS, flavour="wecom" if self.markdown else "wecom_text")
        self.pace = pace or MemberPace()
        self._wait = wait
        # The cards tapped and not yet answered: task id → response code (usable once).
        self._codes: dict[str, str] = {}
        # Outbox messages go one at a time: WeCom refuses too many concurrent calls (45033),
        # and the outbox's writes around each request stay one at a time on SQLite too.
        self._one_push = asyncio.Lock()
        runtime.channels[CHANNEL] = self

    def _words(self, locale: str | None = None) -> dict:
        messages = self.runtime.messages
        return messages.words(
            locale or messages.default_locale, "_wecom", ("menu", "tapped", "typed", "choose")
        )

    # What one Outgoing becomes: texts, then cards.

    def _text(self, user: str, content: str) -> dict:
        return {"touser": user, "msgtype": "text", "text": {"content": content}}

    def _markdown(self, user: str, content: str) -> dict:
        return {"touser": user, "msgtype": "markdown", "markdown": {"content": content}}

    def _card(self, user: str, text: str, buttons: list[list[str]], task_id: str) -> dict:
        title, _, rest = text.strip().partition("\n")
        body = rest.strip() if len(title) <= CARD_TITLE_CHARACTERS else text.strip()
        card = {
            "card_type": "button_interaction",
            "main_title": {"title": _cut(title, CARD_TITLE_CHARACTERS)},
            "task_id": task_id,
            "button_list": [
                {"text": label, "style": 1, "key": payload} for label, payload in buttons
            ],
        }
        if body:
            card["sub_title_text"] = body
        return {"touser": user, "msgtype": "template_card", "template_card": card}

    def _card_text(self, item: Outgoing) -> str:
        """A card shows no markdown: its text is the message without it."""
        return (unmarked(item.text) if self.markdown else item.text).strip()

    def _texts(self, item: Outgoing) -> list[dict]:
        message = self._markdown if self.markdown else self._text
        return [message(item.chat, part) for part in split_bytes(item.text)]

    def _bodies(self, item: Outgoing) -> list[dict]:
        buttons = [button for row in item.buttons or () for button in row]
        if not buttons:
            return self._texts(item)
        plain = self._card_text(item)
        bodies = []
        if len(plain.encode()) > CARD_TEXT_BYTES:
            # The texts say it all; the card under them is titled by their last line (the
            # question its buttons answer), or asks to choose.
            bodies = self._texts(item)
            last = plain.rpartition("\n")[2].strip()
            plain = last if 0 < len(last) <= CARD_TITLE_CHARACTERS else self._words()["choose"]
        for start in range(0, len(buttons), CARD_BUTTONS):
            chunk = buttons[start : start + CARD_BUTTONS]
            bodies.append(self._card(item.chat, plain, chunk, new_task_id()))
            plain = plain.partition("\n")[0]  # further cards: the title and their buttons
        return bodies

    # Requests.

    async def _post(self, body: dict) -> None:
        user = body["touser"]
        answer = await self.api.send(body)
        if user.lower() in answer.get("invaliduser", "").split("|"):
            raise Unreachable("not in the application's reach")

    async def _paced(self, user: str) -> None:
        """A reply waits for the member's limits (again, if an outbox message took the slot
        it waited for), and is counted (in memory) as it goes."""
        clock = self.runtime.clock
        while (wait := self.pace.wait(user, waited_from := clock.now())) > timedelta(0):
            await self._wait(wait.total_seconds())
            if clock.now() <= waited_from:  # a view that only shows the wait (the local demo)
                break
        await self.pace.take(user, clock.now(), keep=False)

    async def send(self, outgoing: Sequence[Outgoing], answering: Answering | None) -> None:
        """Replies in order, each recorded as handed over just before its first request."""
        for position, item in enumerate(outgoing):
            recorded = False

            async def before(position: int = position) -> None:
                nonlocal recorded
                if answering is not None and not recorded:
                    recorded = True
                    await answering.handing_over(position)

            if item.edit is not None and await self._edit(item, before):
                continue
            for body in self._bodies(item):
                await self._paced(item.chat)
                await before()
                await self._post(body)
        if answering is not None:
            await answering.finished()

    async def _edit(self, item: Outgoing, before: Callable[[], Awaitable[None]]) -> bool:
        """Replace the tapped card with this message's card; False to send it anew (no
        code, the code used or expired, or a message a card cannot hold)."""
        code = self._codes.pop(item.edit, None)
        buttons = [button for row in item.buttons or () for button in row]
        plain = self._card_text(item)
        if code is None:
            return False
        if 0 < len(buttons) <= CARD_BUTTONS and len(plain.encode()) <= CARD_TEXT_BYTES:
            card = self._card(item.chat, plain, buttons, item.edit)["template_card"]
            update = {"template_card": card}
            replaced = True
        else:
            # The card's buttons give way to one word; the message itself comes anew.
            update = {"button": {"replace_name": self._words()["tapped"]}}
            replaced = False
        await before()
        try:
            await self.api.update_card({"userids": [item.chat], "response_code": code, **update})
        except WeComError as error:
            logger.info("card not updated (%s): sent anew", error.errcode)
            return False
        return replaced

    async def push(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """An outbox message. Beyond the member's limits it waits in the outbox (WeCom
        would drop it); WeCom's answers map to Undelivered and Unreachable only while
        nothing of it has arrived."""
        async with self._one_push:
            await self._push(self._bodies(item), before_request)

    async def make_room(self, parts: Sequence[Outgoing]) -> None:
        """All of an outbox message's parts counted against the member's limits, and a token
        at hand, before anything of it is sent: else Undelivered (it waits in the outbox)."""
        bodies = sum(len(self._bodies(part)) for part in parts)
        async with self._one_push:
            await counted(self.pace, parts[0].chat, self.runtime.clock.now(), bodies)
        try:
            await self.api.token()
        except (WeComError, httpx.HTTPError) as error:
            raise Undelivered("no access token", TOKEN_WAIT) from error

    async def _push(self, bodies: list[dict], before_request, post=None, gone=GONE) -> None:
        """Each body through `post` (message/send; a group robot's webhook), WeCom's answers
        to the first mapped to the outbox's outcomes (`gone`: the errcodes of "never")."""
        for index, body in enumerate(bodies):
            if index == 0 and before_request is not None:
                await before_request()
            try:
                await (post or self._post)(body)
            except WeComError as error:
                if index:
                    raise  # part of it arrived: never sent again
                if error.errcode in TRY_AGAIN:
                    raise Undelivered(error.errmsg, TRY_AGAIN[error.errcode]) from error
                if error.errcode in gone:
                    raise Unreachable(error.errmsg) from error
                raise
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                if index:
                    raise
                raise Undelivered("WeCom not reached") from error
            except httpx.HTTPStatusError as error:
                if index or error.response.status_code < 500:
                    raise
                raise Undelivered(f"HTTP {error.response.status_code}") from error

    async def announce(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """A group announcement, through the group's robot."""
        if self.robots is None:
            raise Unreachable("no group robots (WECOM_ROBOTS)")
        await self.robots.send(item, before_request=before_request)

    async def send_file(self, item: OutgoingFile) -> None:
        kind = "image" if item.kind == "photo" else "file"
        media_id = await self.api.upload(kind, item.name, item.content)
        await self._paced(item.chat)
        await self._post({"touser": item.chat, "msgtype": kind, kind: {"media_id": media_id}})
        for part in split_bytes(item.caption) if item.caption else ():
            await self._paced(item.chat)
            await self._post(self._text(item.chat, part))

    async def acknowledge(self, inbound: Inbound, notice: str | None) -> None:
        """No toast in WeCom: the tapped card keeps its code for the edit that follows; a
        notice replaces the card's buttons with its words instead."""
        task, code = inbound.pressed_message, inbound.answer_token
        if task is None or code is None:
            return
        if not notice:
            self._codes[task] = code
            return
        update = {"userids": [inbound.chat], "response_code": code}
        try:
            await self.api.update_card({**update, "button": {"replace_name": _cut(notice, 20)}})
        except WeComError as error:
            logger.info("card not updated (%s)", error.errcode)

    async def download(self, file: FileRef) -> bytes:
        return await self.api.media(file.file_id)

    def deep_link(self, payload: str) -> str:
        # WeCom opens no application with a payload: the words to send do the same.
        return str(self._words()["typed"](payload))

    async def publish_menu(self, chat: str, actor: Actor | None, *, clear: bool) -> None:
        """WeCom's menu is the application's, the same for everyone (publish_app_menu);
        /help lists what each person may do."""

    async def publish_app_menu(self) -> None:
        """menu/create, once at start, in the default language."""
        groups = self._words()["menu"]
        menu = {
            "button": [
                {
                    "name": name,
                    "sub_button": [
                        {"type": "click", "name": label, "key": command}
                        for label, command in entries
                    ],
                }
                for name, entries in groups
            ]
        }
        await self.api.create_menu(menu)

    async def send_news(self) -> None:
        await delivery.send_now(self.runtime)


def new_task_id() -> str:
    """Unique per application and ≤128 bytes of letters, digits and `_-@`."""
    return f"cxzy-{secrets.token_hex(12)}"
