"""The local chat as a channel of its own: people in a terminal (or a test) type and tap, the
core answers through the same contract as every channel, and what it sends is recorded and
shown as plain text."""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import TYPE_CHECKING, Literal

from bot import delivery
from bot.channels.local import CHANNEL
from bot.clock import ManualClock
from bot.core.access import Account, Actor
from bot.core.contract import (
    Answering,
    FileRef,
    Inbound,
    Kind,
    Limits,
    Outgoing,
    OutgoingFile,
)
from bot.runtime import Runtime

if TYPE_CHECKING:
    from bot.jobs import SteppedJobs
    from handlers.routes import Routes

LIMITS = Limits(
    text_length=4096,
    counted_in="characters",
    buttons_per_message=100,
    action_payload_bytes=64,
    button_label_length=40,
    toast_length=200,
    messages_per_second=1000,
    messages_per_chat_minute=1000,
    flavour="telegram",
)
_TAG = re.compile(r"<[^>]+>")
_STEP = re.compile(r"^\+(\d+)([dhm])$")
_TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")


def plain(text: str) -> str:
    """The messages' markup as a terminal shows it."""
    return html.unescape(_TAG.sub("", text))


@dataclass(frozen=True)
class Person:
    """Someone at a chat client: an account id, a name, the app's language."""

    user_id: int
    name: str
    language_code: str = "zh-hans"
    description: str = ""


@dataclass
class Sent:
    """What the bot did in a chat: a message, an edit, a file or a toast."""

    kind: Literal["message", "edit", "file", "toast"]
    chat: str
    text: str = ""
    key: str = ""  # the message's template, for a reply or an outbox message
    buttons: list[list[str]] = field(default_factory=list)  # [label, payload], in order
    message_id: int = 0
    file_name: str = ""
    content: bytes = b""


class LocalChannel:
    """Records everything it is asked to send; `on_sent` sees each as it happens."""

    name = CHANNEL
    limits = LIMITS

    def __init__(self, runtime: Runtime, on_sent: Callable[[Sent], None] | None = None) -> None:
        self.runtime = runtime
        self.sent: list[Sent] = []
        self.files: dict[str, bytes] = {}
        self._on_sent = on_sent
        self._message_ids = count(1)
        runtime.channels[CHANNEL] = self

    def _record(self, item: Sent) -> None:
        self.sent.append(item)
        if self._on_sent is not None:
            self._on_sent(item)

    def _message(self, item: Outgoing, kind: str = "message") -> None:
        buttons = [button for row in item.buttons or () for button in row]
        message_id = int(item.edit) if kind == "edit" else next(self._message_ids)
        self._record(Sent(kind, item.chat, item.text, item.key, buttons, message_id))

    async def send(self, outgoing, answering: Answering | None) -> None:
        for position, item in enumerate(outgoing):
            if answering is not None:
                await answering.handing_over(position)
            edited = item.edit is not None and any(
                s.message_id == int(item.edit) and s.chat == item.chat for s in self.sent
            )
            self._message(item, "edit" if edited else "message")
        if answering is not None:
            await answering.finished()

    async def push(self, item: Outgoing, *, before_request=None) -> None:
        if before_request is not None:
            await before_request()
        self._message(item)

    async def make_room(self, parts) -> None:
        """A terminal takes everything."""

    async def send_file(self, item: OutgoingFile) -> None:
        self._record(
            Sent("file", item.chat, item.caption, file_name=item.name, content=item.content)
        )

    async def acknowledge(self, inbound: Inbound, notice: str | None) -> None:
        if notice:
            self._record(Sent("toast", inbound.chat, notice))

    async def download(self, file: FileRef) -> bytes:
        return self.files[file.file_id]

    def deep_link(self, payload: str) -> str:
        # No links in a terminal: the words that do the same when typed.
        return f"/start {payload}"

    async def publish_menu(self, chat: str, actor: Actor | None, *, clear: bool) -> None:
        """A terminal has no menu: /help lists what a person may do."""

    async def send_news(self) -> None:
        await delivery.send_now(self.runtime)

    # --- what a chat shows: for the console's transcripts and the tests ------------------

    def _in(self, chat: "Person | int | str | None", kinds: tuple[str, ...]) -> list[Sent]:
        wanted = None if chat is None else str(getattr(chat, "user_id", chat))
        return [
            item
            for item in self.sent
            if item.kind in kinds and (wanted is None or item.chat == wanted)
        ]

    def to(self, chat: "Person | int | str | None" = None) -> list[Sent]:
        """Messages, edits and files (not toasts) in a person's chat or a group, oldest first."""
        return self._in(chat, ("message", "edit", "file"))

    def last(self, chat: "Person | int | str | None" = None) -> Sent:
        """The newest message, edit or file in the chat (or anywhere)."""
        return self.to(chat)[-1]

    def texts(self, chat: "Person | int | str | None" = None) -> list[str]:
        return [item.text for item in self.to(chat)]

    def keys(self, chat: "Person | int | str | None" = None) -> list[str]:
        """Which messages were sent (their templates), whatever their words."""
        return [item.key for item in self.to(chat) if item.key]

    def toasts(self, chat: "Person | int | str | None" = None) -> list[str]:
        return [item.text for item in self._in(chat, ("toast",))]


class LocalChat:
    """Turns what a person does into the core's inputs and hands them to the routes."""

    def __init__(
        self,
        runtime: Runtime,
        routes: "Routes",
        clock: ManualClock,
        jobs: "SteppedJobs | None" = None,
        on_sent: Callable[[Sent], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.routes = routes
        self.clock = clock
        self.jobs = jobs
        self.channel = LocalChannel(runtime, on_sent)
        self._update_ids = count(1)

    async def _feed(self, person: Person, kind: Kind, **fields) -> None:
        inbound = Inbound(
            kind,
            Account(CHANNEL, str(person.user_id)),
            str(person.user_id),
            True,
            update_id=str(next(self._update_ids)),
            language=person.language_code,
            **fields,
        )
        await self.routes.dispatch(inbound, self.channel, self.runtime)

    async def send(self, person: Person, text: str) -> None:
        """Words, or a /command with its arguments."""
        if text.startswith("/") and len(text) > 1:
            word, *args = text.split()
            await self._feed(
                person, Kind.COMMAND, text=text, command=word[1:].lower(), args=tuple(args)
            )
        else:
            await self._feed(person, Kind.WORDS, text=text)

    async def send_document(self, person: Person, filename: str, content: bytes) -> None:
        file_id = f"local-{len(self.channel.files) + 1}"
        self.channel.files[file_id] = content
        document = FileRef(file_id, "document", filename, len(content))
        await self._feed(person, Kind.WORDS, file=document)

    def sent_texts(self) -> list[str]:
        """Every text the bot sent, oldest first."""
        return [item.text for item in self.channel.sent]

    def last_with_buttons(self, person: Person) -> Sent | None:
        chat = str(person.user_id)
        for item in reversed(self.channel.sent):
            if item.chat == chat and item.kind in ("message", "edit") and item.buttons:
                return item
        return None

    async def press(self, person: Person, payload: str, message: Sent | None = None) -> None:
        """Press a button carrying `payload` (which a forger may choose freely)."""
        message = message or self.last_with_buttons(person)
        await self._feed(
            person,
            Kind.ACTION,
            action=payload,
            pressed_message=str(message.message_id) if message else None,
        )

    async def tap(self, person: Person, selector: str) -> bool:
        """Press button N (from 1), or the one labelled (or uniquely partly labelled) `selector`."""
        message = self.last_with_buttons(person)
        index = (
            chosen([label for label, _payload in message.buttons], selector) if message else None
        )
        if index is None:
            return False
        await self.press(person, message.buttons[index][1], message)
        return True

    async def move_clock(self, spec: str) -> datetime:
        return await move_clock(self.clock, self.jobs, self.runtime.settings.zone, spec)


def chosen(labels: list[str], selector: str) -> int | None:
    """The index of button N (from 1), or of the one labelled (or uniquely partly labelled)
    `selector`; None if there is no such one button."""
    if selector.isdigit() and 1 <= int(selector) <= len(labels):
        return int(selector) - 1
    exact = [i for i, label in enumerate(labels) if label == selector]
    partial = [i for i, label in enumerate(labels) if selector and selector in label]
    matches = exact or partial
    return matches[0] if len(matches) == 1 else None


async def move_clock(clock: ManualClock, jobs: "SteppedJobs | None", zone, spec: str) -> datetime:
    """`+3d`, `+4h`, `+30m`, `10:00` (the next time the local clock shows it) or an ISO
    time; every job that fell due runs, in order."""
    step = _STEP.match(spec.strip())
    if _TIME_OF_DAY.fullmatch(spec.strip()):
        hour, minute = (int(part) for part in spec.strip().split(":"))
        local = clock.now().astimezone(zone)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
    elif step:
        amount, unit = int(step.group(1)), step.group(2)
        target = clock.now() + timedelta(
            days=amount * (unit == "d"),
            hours=amount * (unit == "h"),
            minutes=amount * (unit == "m"),
        )
    else:
        target = datetime.fromisoformat(spec.strip())
        if target.tzinfo is None:
            target = target.replace(tzinfo=zone)
    if target < clock.now():
        raise ValueError("the clock only moves forward")
    if jobs is not None:
        await jobs.run_until(target, clock.set)
    else:
        clock.set(target)
    return clock.now()


Printer = Callable[[str], None]


def printer_for(
    names: Callable[[str], str],
    write: Printer,
    keep_file: Callable[[str, bytes], str] | None = None,
    edited_mark: str = " (edited)",
) -> Callable[[Sent], None]:
    """Prints each thing sent as a block headed by its recipient (an edit's header marked
    with `edited_mark`); `keep_file` saves a file's content and says where (one line)."""

    def show(item: Sent) -> None:
        if item.kind == "toast":
            write(f"  ({plain(item.text)})")
            return
        header = f"── {names(item.chat)} ──"
        if item.kind == "edit":
            header += edited_mark
        lines = [header]
        if item.kind == "file":
            keep = keep_file(item.file_name, item.content) if keep_file else None
            lines.append(keep or f"[{item.file_name}]")
        if item.text:
            lines.append(plain(item.text))
        if item.buttons:
            lines.append("  ".join(f"[{i}] {b[0]}" for i, b in enumerate(item.buttons, 1)))
        write("\n".join(lines) + "\n")

    return show
