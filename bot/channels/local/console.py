"""`python -m bot demo`: chat with the bot in a terminal, or from a piped script."""

import asyncio
import re
import sys
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

import handlers
from bot.channels.local import CHANNEL
from bot.channels.local.chat import LocalChat, Person, printer_for
from bot.channels.wecom import local_server
from bot.channels.wecom.channel import CARD_BUTTONS, TEXT_BYTES
from bot.channels.wecom.inbound import CHANNEL as WECOM
from bot.channels.wecom.local_chat import WeComChat
from bot.channels.wecom.local_server import LocalWeCom
from bot.cli import demo
from bot.clock import ManualClock, SystemClock
from bot.config import Settings
from bot.jobs import SteppedJobs, periodic_jobs
from bot.runtime import Runtime

STRANGER = Person(7_099_999, "访客")
# A deep link to the bot, as an invite or an evaluation code carries it (bot.channels.local).
_START_LINK = re.compile(r"/start ([\w-]+)")


class Console:
    """Reads the local chat's lines and acts on them."""

    def __init__(
        self,
        chat: LocalChat | WeComChat,
        everyone: list[Person],
        runtime: Runtime,
        write: Callable[[str], None],
    ) -> None:
        self.chat = chat
        self.everyone = everyone
        # A database of the operator's own (demo --database) may have nobody bound yet.
        self.current = everyone[0] if everyone else STRANGER
        self.runtime = runtime
        self.write = write

    def say(self, template: str, **values: object) -> None:
        self.write(
            self.runtime.messages.render(self.runtime.settings.default_locale, template, **values)
        )

    def find(self, key: str) -> Person | None:
        if key in ("stranger", "访客"):
            return STRANGER
        for person in self.everyone:
            if key in (person.name, person.description.split(" ")[0]):
                return person
        return None

    async def handle(self, line: str) -> bool:
        """Act on one line; False when the chat should end."""
        line = line.strip()
        if not line:
            return True
        if line in (":quit", ":q"):
            return False
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command == ":who":
            channel = self.runtime.settings.channels[0]
            self.say("console_who.txt", people=self.everyone, current=self.current, channel=channel)
        elif command == ":as":
            person = self.find(argument)
            if person is None:
                self.say("console_unknown_person.txt", key=argument)
            else:
                self.current = person
                self.say("console_now_as.txt", person=person)
        elif command == ":tap":
            if not await self.chat.tap(self.current, argument):
                self.say("console_no_button.txt", selector=argument)
        elif command == ":link":
            payload = self._link(argument)
            if payload is None:
                self.say("console_no_link.txt", selector=argument)
            else:
                await self.chat.send(self.current, f"/start {payload}")
        elif command == ":clock":
            try:
                moment = await self.chat.move_clock(argument)
            except ValueError:
                self.say("console_bad_clock.txt", spec=argument)
            else:
                self.say("console_clock.txt", moment=moment)
        elif command.startswith(":"):
            self.say("console_help.txt")
        else:
            await self.chat.send(self.current, line)
        return True

    def _link(self, selector: str) -> str | None:
        """The Nth start link of the newest bot message that has any (as if it was tapped,
        or its QR code scanned, by whoever is speaking now)."""
        for text in reversed(self.chat.sent_texts()):
            found = _START_LINK.findall(text)
            if found:
                number = int(selector) if selector.isdigit() else 1
                return found[number - 1] if 0 < number <= len(found) else None
        return None


def files_folder(database_url: str) -> Path:
    """Where the local chat keeps the files the bot sends: beside a SQLite database, else in
    data/."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return Path(parsed.database).resolve().parent / "demo-files"
    return Path("data/demo-files").resolve()


def _file_keeper(folder: Path, runtime: Runtime):
    """Saves each file the bot sends under a numbered name, so a newcomer can open it."""
    numbers = count(1)

    def keep(filename: str, content: bytes) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{next(numbers):03d}-{Path(filename).name}"
        path.write_bytes(content)
        return runtime.messages.render(
            runtime.settings.default_locale, "console_file_saved.txt", name=filename, path=str(path)
        )

    return keep


def _lines(stream: TextIO):
    if stream.isatty():

        async def prompt() -> str | None:
            try:
                return await asyncio.to_thread(input, "> ")
            except EOFError:
                return None

        return prompt
    iterator = iter(stream)

    async def read() -> str | None:
        return next(iterator, None)

    return read


async def run_demo(
    settings: Settings,
    *,
    channel: str = CHANNEL,
    stdin: TextIO | None = None,
    write: Callable[[str], None] = print,
) -> int:
    """Seed the demo organisation if needed, then chat until :quit or end of input: through
    the local channel, or (`channel="wecom"`) as a WeCom member, through the real WeCom
    application and a local WeCom."""
    clock = ManualClock(SystemClock().now())
    # Hourly ticks keep :clock +30d quick; reminders go out on the hour anyway. Only the
    # chosen channel runs here, so it is where reminders go.
    update = {"reminder_tick_minutes": 60, "channel_order": channel}
    wecom = None
    if channel == WECOM:
        wecom = LocalWeCom()
        update |= local_server.settings(await wecom.start())
    runtime = Runtime.create(settings.model_copy(update=update), clock)
    await runtime.db.migrate()
    if await demo.seed(
        runtime, channel=channel
    ):  # never lay the demo's calendar over someone's own data
        await demo.seed_campaign(runtime)
        await demo.seed_selection(runtime)
    everyone = await demo.demo_people(runtime, channel=channel)
    names = {str(person.user_id): person.name for person in [*everyone, STRANGER]}
    folder = files_folder(settings.database_url)
    keep = _file_keeper(folder, runtime)
    if wecom is None:
        chat = LocalChat(
            runtime,
            handlers.routes(),
            clock,
            SteppedJobs(runtime, periodic_jobs(runtime.settings), clock.now()),
            on_sent=printer_for(
                lambda chat_id: names.get(chat_id, chat_id),
                write,
                keep,
                runtime.messages.render(runtime.settings.default_locale, "console_edited.txt"),
            ),
        )
    else:
        chat = await WeComChat.open(
            runtime,
            wecom,
            clock,
            names,
            names=lambda user: names.get(user, user),
            write=write,
            keep_file=keep,
        )
    console = Console(chat, everyone, runtime, write)
    read = _lines(stdin or sys.stdin)  # looked up now: it may have been replaced
    console.say(
        "console_intro.txt",
        current=console.current,
        text_bytes=TEXT_BYTES,
        card_buttons=CARD_BUTTONS,
        nobody_bound=not everyone,
        database=make_url(settings.database_url).database or settings.database_url,
        folder=str(folder),
        channel=channel,
        wecom_menu=None if wecom is None else chat.menu(),
    )
    try:
        while (line := await read()) is not None:
            if not await console.handle(line):
                break
    finally:
        if wecom is not None:
            await chat.close()
        await runtime.db.dispose()
    return 0
