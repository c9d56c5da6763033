"""The channel contract: what a channel gives the core, and what the core gives a channel.

A channel (Telegram, WeCom, the local chat) turns its native events into an `Inbound`
(a member's words, a command, a pressed action, a file, joined or blocked, each with the
channel account it came from) and sends the core's `Outgoing` messages: text made from the
messages' templates, buttons carrying packed actions, files, and edits of an earlier message.
Each channel declares its `Limits` and renders within them; the core never learns a
channel's wire format.
"""

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from bot.core.access import Account, Actor


class Kind(enum.StrEnum):
    WORDS = "words"  # text, or anything else sent in the chat (`file` says if it is a file)
    COMMAND = "command"  # /word or a channel's equivalent (a menu entry, a keyword)
    ACTION = "action"  # a pressed button: `action` is its packed payload
    EDITED = "edited"  # an earlier message changed: never acted on
    JOINED = "joined"  # the member can be reached again
    BLOCKED = "blocked"  # the member blocked the bot or left
    MOVED = "moved"  # the channel gave the account a new id (`text`), e.g. a renamed userid


@dataclass(frozen=True)
class FileRef:
    """A file someone sent: the channel's id for it, what it is, and its name if it has one."""

    file_id: str
    kind: Literal["photo", "document"]
    name: str = ""
    size: int = 0


@dataclass(frozen=True)
class Inbound:
    """One event from a channel, in the core's words."""

    kind: Kind
    account: Account | None  # None: not from a person (another bot, a channel post)
    chat: str  # where answers go: the private chat, or a group
    private: bool  # the account's own chat with the bot
    chat_title: str = ""  # a group's name, where the channel gives one
    update_id: str = ""
    text: str = ""  # words as sent (normalised by the Turn)
    caption: str = ""  # a file's caption
    command: str = ""  # without the slash, lower case
    args: tuple[str, ...] = ()
    action: str = ""  # the pressed button's payload
    pressed_message: str | None = None  # the message the pressed button sits on
    answer_token: str | None = None  # the channel's handle to answer a pressed button
    file: FileRef | None = None
    language: str | None = None  # the person's app language, if the channel says
    other: bool = False  # a message of a kind the core has no use for (a sticker, a poll)


@dataclass(frozen=True)
class Limits:
    """What a channel allows; the core renders and splits within these."""

    text_length: int  # of one message
    counted_in: Literal["utf-16", "bytes", "characters"]
    buttons_per_message: int
    action_payload_bytes: int
    button_label_length: int
    toast_length: int
    messages_per_second: float  # to everyone
    messages_per_chat_minute: int  # to one chat
    flavour: str  # how messages are marked up for it: a name in messages.render.FLAVOURS


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one chat: plain data, so that the intake can keep it across
    a restart. `buttons` are rows of [label, packed action]; `edit` names the message to
    replace (a new message is sent if that one is gone)."""

    chat: str
    text: str
    buttons: list[list[list[str]]] | None = None
    edit: str | None = None
    key: str = ""  # the message's template: what it says, whatever the words


@dataclass(frozen=True)
class OutgoingFile:
    """A file for a chat (a workbook, a chart, a sheet of codes); never kept for a restart:
    it is made again when asked for again."""

    chat: str
    name: str
    content: bytes
    kind: Literal["photo", "document"] = "document"
    caption: str = ""


class Undelivered(Exception):
    """The channel certainly did not deliver the message (it asked to wait, or a server
    error): it may be sent again, after `wait` if the channel said how long."""

    def __init__(self, reason: str, wait: timedelta | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class Unreachable(Exception):
    """The person cannot be reached on this channel (blocked the bot, left, unknown)."""


class Answering(Protocol):
    """Records replies as handed over (bot.intake.Answering)."""

    async def handing_over(self, position: int) -> None: ...

    async def finished(self) -> None: ...


class Channel(Protocol):
    """What the core needs of a channel."""

    name: str
    limits: Limits

    async def send(self, outgoing: Sequence[Outgoing], answering: Answering | None) -> None:
        """Send in order, each recorded as handed over just before its request."""

    async def make_room(self, parts: Sequence[Outgoing]) -> None:
        """Before the first of an outbox message's parts goes: raise Undelivered unless all
        of them may go now (a channel that drops what goes beyond its limits), so that a
        member never gets half a message. A channel that waits instead does nothing."""

    async def push(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """Send one message of the outbox, after the replies waiting to go: `before_request`
        runs just before the request is made. Raises Undelivered or Unreachable; any other
        error means it may have arrived."""

    async def send_file(self, item: OutgoingFile) -> None: ...

    async def announce(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """Send one queued group announcement to the group chat `item.chat` names (WeCom: a
        group robot), as `push` does: raises Undelivered, or Unreachable for a group the
        channel does not know. Only channels that queue group announcements have it."""

    async def acknowledge(self, inbound: Inbound, notice: str | None) -> None:
        """Answer a pressed button (a toast with `notice`, or nothing to show)."""

    async def download(self, file: FileRef) -> bytes: ...

    def deep_link(self, payload: str) -> str:
        """A link that opens the bot with `payload` (an invite, an evaluation code)."""

    async def publish_menu(self, chat: str, actor: Actor | None, *, clear: bool) -> None:
        """Show this person the commands their roles allow."""

    async def send_news(self) -> None:
        """Send what the outbox holds now, not at the next tick."""
