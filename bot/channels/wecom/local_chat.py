"""WeCom without WeCom, for `python -m bot demo --channel wecom`: the real WeCom application
(callback endpoint, WeComChannel, API client) runs against the local WeCom server
(local_server.py). What a person types or taps goes in as a signed, encrypted callback, as
WeCom would push it; what the local WeCom took (texts, template cards, card updates, files
through media/upload) is shown as the member's WeCom would show it.
"""

import html
import re
from collections.abc import Callable, Iterable
from datetime import datetime

from bot.channels.local.chat import Person, chosen, move_clock
from bot.channels.wecom.app import WeCom
from bot.channels.wecom.local_server import Delivered, LocalWeCom, Pusher
from bot.channels.wecom.pacing import PER_HOUR, PER_MINUTE
from bot.clock import ManualClock
from bot.jobs import SteppedJobs, periodic_jobs
from bot.runtime import Runtime

_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)


class WeComChat:
    """People's words and taps as WeCom's callbacks; what the application sent, printed."""

    def __init__(
        self,
        runtime: Runtime,
        fake: LocalWeCom,
        clock: ManualClock,
        *,
        names: Callable[[str], str],
        write: Callable[[str], None],
        keep_file: Callable[[str, bytes], str],
    ) -> None:
        self.runtime = runtime
        self.fake = fake
        self.clock = clock
        self.names = names
        self.write = write
        self.keep_file = keep_file
        self.jobs = SteppedJobs(runtime, periodic_jobs(runtime.settings), clock.now())
        self.wecom = WeCom.build(runtime, wait=self._held)
        self.pusher: Pusher | None = None
        self._shown = 0

    @classmethod
    async def open(
        cls, runtime: Runtime, fake: LocalWeCom, clock: ManualClock, userids: Iterable[str], **how
    ) -> "WeComChat":
        """The application started against `fake` (whose settings `runtime` has), which
        knows `userids` as members of the organisation."""
        fake.members |= set(userids)
        chat = cls(runtime, fake, clock, **how)
        await chat.wecom.start("127.0.0.1", 0)
        url = f"http://127.0.0.1:{chat.wecom.port}/wecom/callback"
        # Each start pushes with later times and message ids than the last one.
        chat.pusher = Pusher(url, created=int(clock.now().timestamp()))
        chat._shown = len(fake.timeline)
        return chat

    async def close(self) -> None:
        await self.wecom.stop()
        await self.pusher.close()
        await self.fake.stop()

    def _say(self, template: str, **values: object) -> str:
        locale = self.runtime.settings.default_locale
        return self.runtime.messages.render(locale, template, **values)

    # What a person does.

    async def _push(self, xml: str) -> None:
        await self.pusher.post(xml)
        await self.wecom.callbacks.idle()
        self.show_new()

    async def send(self, person: Person, text: str) -> None:
        """Words, a typed keyword or a /command, as a text message to the application."""
        await self._push(self.pusher.text(str(person.user_id), text))

    async def tap(self, person: Person, selector: str) -> bool:
        """Tap button N (from 1) of the newest card this person can still tap, or the one
        labelled (or uniquely partly labelled) `selector` on the newest card that has it:
        on WeCom every card stays in the chat, its buttons live until it is updated."""
        user = str(person.user_id)
        card = self.fake.last_card(user, None if selector.isdigit() else selector)
        buttons = card["button_list"] if card else []
        index = chosen([button["text"] for button in buttons], selector)
        if index is None:
            return False
        task = card["task_id"]
        code = self.fake.card_code(task)
        await self._push(self.pusher.tap(user, task, buttons[index]["key"], code))
        return True

    async def move_clock(self, spec: str) -> datetime:
        moment = await move_clock(self.clock, self.jobs, self.runtime.settings.zone, spec)
        self.show_new()
        return moment

    def sent_texts(self) -> list[str]:
        return [item.text for item in self.fake.delivered]

    def menu(self) -> list[tuple[str, list[str]]]:
        """The application's menu as published: each group's name and entries."""
        published = self.fake.menus[-1]["button"] if self.fake.menus else []
        return [(g["name"], [entry["name"] for entry in g["sub_button"]]) for g in published]

    # What the member sees.

    async def _held(self, seconds: float) -> None:
        """A reply beyond the member's limits: on WeCom it would wait this long."""
        self.show_new()
        self.write(
            self._say(
                "console_wecom_held.txt",
                seconds=round(seconds),
                per_minute=PER_MINUTE,
                per_hour=PER_HOUR,
            )
        )

    def show_new(self) -> None:
        for item in self.fake.timeline[self._shown :]:
            self.write(self.display(item))
        self._shown = len(self.fake.timeline)

    def display(self, item: Delivered) -> str:
        """One message or card update, as a block headed by its recipient."""
        header = f"── {self.names(item.user)} ──"
        body = item.body
        if item.msgtype in ("text", "markdown"):
            lines = [_LINK.sub(r"\2（\1）", html.unescape(body[item.msgtype]["content"]))]
        elif item.msgtype == "template_card":
            lines = self._card(body["template_card"])
        elif item.msgtype == "update":
            header += self._say("console_wecom_updated.txt")
            card = body["template_card"]
            replaced = card.get("replaced")
            lines = [f"└─ [{replaced['replace_name']}]"] if replaced else self._card(card)
        elif item.msgtype in ("file", "image"):
            media = body[item.msgtype]["media_id"]
            name = self.fake.upload_names.get(media) or media
            lines = [self.keep_file(name, self.fake.uploads[media])]
        else:
            lines = [f"[{item.msgtype}]"]
        return "\n".join([header, *lines]) + "\n"

    def _card(self, card: dict) -> list[str]:
        lines = [f"┌─ {card.get('main_title', {}).get('title', '')}"]
        text = card.get("sub_title_text", "")
        lines += [f"│ {line}" for line in text.split("\n")] if text else []
        buttons = card.get("button_list", [])
        labels = "  ".join(f"[{i}] {button['text']}" for i, button in enumerate(buttons, 1))
        lines.append(f"└─ {labels}")
        return lines
