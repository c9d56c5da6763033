"""The one door every handler goes through: who is asking, may they, one session, replies.

A handler is written as `async def callback(turn: Turn)` and wrapped with `@gated(...)`; it
knows no channel. The gate opens the update's database session, identifies the sender by
their channel account, refuses politely when the permission is missing, marks a stored
update processed in the same transaction (so it is processed once), and hands the handler's
replies to the channel only after the session has committed, so a failed update never
leaves a half-told story in the chat.

Everything but a few group commands (`in_groups`) belongs to the member's private chat: a
button pressed on a bot message in a group (a forger can press any) gets only a toast, so
no ballot, result or organiser's view is ever written into the group.
"""

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import intake
from bot.core import access, calendar, onboarding, preferences
from bot.core.access import Account, Actor, Permission
from bot.core.actions import Action, Button
from bot.core.contract import Channel, FileRef, Inbound, Kind, Outgoing, OutgoingFile
from bot.core.refusal import Refusal
from bot.core.text import normalise
from bot.runtime import Runtime
from storage import db

logger = logging.getLogger(__name__)

Buttons = Sequence[Sequence[tuple[str, Action]]]


@dataclass
class _Reply:
    template: str
    values: dict[str, Any]
    buttons: Buttons | None
    edit: bool


@dataclass
class Turn:
    """One update as a handler sees it."""

    inbound: Inbound
    channel: Channel
    runtime: Runtime
    session: AsyncSession
    actor: Actor | None
    locale: str
    _replies: list[_Reply] = field(default_factory=list)
    _files: list[OutgoingFile] = field(default_factory=list)
    _notice: str | None = None
    _afterwards: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    @property
    def now(self):
        return self.runtime.clock.now()

    @property
    def account(self) -> Account:
        return self.inbound.account

    # What a person wrote is normalised here, once for every feature (bot.core.text).
    @property
    def text(self) -> str:
        return normalise(self.inbound.text)

    @property
    def evidence(self) -> FileRef | None:
        """A photo or document sent as evidence."""
        return self.inbound.file

    @property
    def caption(self) -> str:
        return normalise(self.inbound.caption)

    @property
    def args(self) -> list[str]:
        return [word for word in map(normalise, self.inbound.args) if word]

    @property
    def action(self) -> Action | None:
        """The pressed button's action (None for a payload no action takes)."""
        return Action.parse(self.inbound.action) if self.inbound.action else None

    def reply(self, template: str, *, buttons: Buttons | None = None, **values: Any) -> None:
        """Send a new message rendered from `template` once the update has committed."""
        self._replies.append(_Reply(template, values, buttons, edit=False))

    def edit(self, template: str, *, buttons: Buttons | None = None, **values: Any) -> None:
        """Replace the message whose button was pressed (a new message if there is none)."""
        self._replies.append(_Reply(template, values, buttons, edit=True))

    def send_file(
        self, name: str, content: bytes, *, kind: str = "document", caption: str = ""
    ) -> None:
        """A file for this chat, sent after the replies (made again if asked again)."""
        self._files.append(OutgoingFile(self.inbound.chat, name, content, kind, caption))

    def refuse(self, refusal: Refusal, *, buttons: Buttons | None = None, **more: Any) -> None:
        """Say why not: a toast, or a message (with `more` values and `buttons` if given)."""
        if refusal.toast:
            self.notice(refusal.message, **refusal.values, **more)
        else:
            self.reply(refusal.message, buttons=buttons, **refusal.values, **more)

    def afterwards(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` once the update has committed and replied; its failure is only logged."""
        self._afterwards.append(action)

    def label(self, template: str, **values: Any) -> str:
        """A button label (plain text, not HTML)."""
        return self.runtime.messages.plain(self.locale, template, **values)

    def notice(self, template: str, **values: Any) -> None:
        """A short toast answering the pressed button."""
        self._notice = self.runtime.messages.plain(self.locale, template, **values)

    def offered(self, rows: Sequence[Sequence[Button]]) -> Buttons:
        """A service's buttons, their labels in this person's language."""
        return [[(self.label(b.label, **b.values), b.action) for b in row] for row in rows]

    def deep_link(self, payload: str) -> str:
        """A link that opens this channel's chat with the bot carrying `payload`."""
        return self.channel.deep_link(payload)

    def send_news(self) -> None:
        """The other side hears of it now (the outbox is sent), not at the next tick."""
        self.afterwards(self.channel.send_news)

    def packed(self, buttons: Buttons | None) -> list[list[list[str]]] | None:
        """Rows of [label, payload]; a payload over the channel's limit is a bug, not input."""
        if not buttons:
            return None
        limit = self.channel.limits.action_payload_bytes
        rows = []
        for row in buttons:
            packed_row = []
            for label, action in row:
                payload = action.pack()
                if len(payload.encode()) > limit:
                    raise ValueError(f"action payload over {limit} bytes: {payload!r}")
                packed_row.append([label, payload])
            rows.append(packed_row)
        return rows

    def outgoing(self) -> list[Outgoing]:
        """The queued replies, rendered in the channel's flavour and cut to its limit: what is
        sent once the update has committed."""
        pressed = self.inbound.pressed_message
        limits = self.channel.limits
        items = []
        for reply in self._replies:
            parts = self.runtime.messages.render_parts_as(
                limits.flavour, limits.text_length, self.locale, reply.template, **reply.values
            )
            buttons = self.packed(reply.buttons)
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                items.append(
                    Outgoing(
                        self.inbound.chat,
                        part,
                        buttons if last else None,
                        pressed if reply.edit and index == 0 else None,
                        reply.template,
                    )
                )
        return items

    async def deliver(self, outgoing: list[Outgoing], answering: intake.Answering | None) -> None:
        """Answer the pressed button, send the replies in order (each recorded as handed
        over just before its request, when the update came through the intake), then files."""
        if self.inbound.kind is Kind.ACTION:
            await self.channel.acknowledge(self.inbound, self._notice)
        await self.channel.send(outgoing, answering)
        for item in self._files:
            await self.channel.send_file(item)


Callback = Callable[[Turn], Awaitable[Any]]
Handler = Callable[[Inbound, Channel, Runtime], Awaitable[None]]


def gated(
    permission: Permission, *, in_groups: bool = False, on_loop: bool = False
) -> Callable[[Callback], Handler]:
    """Wrap a handler in the access check, the update's session and its replies; unless
    `in_groups`, it answers only in the member's private chat. With `on_loop`, the handler's
    statements each touch a handful of rows by key, and SQLite runs them on the event loop's
    thread (see `storage.db.on_loop`); the identity lookup always does."""

    def decorate(callback: Callback) -> Handler:
        @functools.wraps(callback)
        async def handle(inbound: Inbound, channel: Channel, runtime: Runtime) -> None:
            if inbound.account is None:
                return
            if not in_groups and not inbound.private:
                await _refuse_outside_private_chat(inbound, channel, runtime)
                return
            async with runtime.db.session() as session:
                await db.on_loop(session)
                actor = await runtime.identities.identify(session, account=inbound.account)
                if not on_loop:
                    await db.on_loop(session, on=False)
                locale = runtime.messages.locale_for(
                    actor.locale if actor else None, inbound.language
                )
                turn = Turn(inbound, channel, runtime, session, actor, locale)
                # What the channel says of the account (blocked, renamed) is not the person
                # writing; anything else is.
                from_person = inbound.kind not in (Kind.BLOCKED, Kind.MOVED)
                if actor is not None and actor.unreachable and from_person:
                    await preferences.set_reachable(
                        session, actor=actor, reachable=True, now=turn.now
                    )
                if actor is not None and actor.unseen and from_person:
                    # Bound by the roster (WeCom's directory): their first message is welcomed,
                    # as an invite would have been (/start greets on its own).
                    await onboarding.seen(session, account=actor.account)
                    if inbound.command != "start":
                        await welcome(turn, actor)
                if access.allows(actor, permission):
                    await callback(turn)
                else:
                    if inbound.kind in (Kind.WORDS, Kind.COMMAND):
                        turn.reply("not_member" if actor is None else "not_allowed")
                    turn.notice("button_refused")
                outgoing = turn.outgoing()
                answering = await intake.mark_done(
                    session, replies=[asdict(item) for item in outgoing]
                )
            await turn.deliver(outgoing, answering)
            for action in turn._afterwards:
                try:
                    await action()
                except Exception as error:  # noqa: BLE001 — the update itself has succeeded
                    logger.warning("after update %s: %s", inbound.update_id, error)

        handle.permission = permission  # type: ignore[attr-defined]
        return handle

    return decorate


async def welcome(turn: Turn, actor: Actor) -> None:
    """A newly bound member: what they can do, and where the campaign stands (announcements
    went out before they joined)."""
    turn.reply("welcome", name=actor.name, commands=access.commands_for(actor.roles))
    view = await calendar.overview(turn.session, actor=actor, now=turn.now)
    if view.campaign is not None:
        turn.reply("phase", view=view, elderly=actor.category == "elderly")


async def _refuse_outside_private_chat(inbound: Inbound, channel: Channel, runtime: Runtime):
    """A toast on the pressed button (only its presser sees it); nothing in the group."""
    if inbound.kind is Kind.ACTION:
        locale = runtime.messages.locale_for(inbound.language)
        await channel.acknowledge(inbound, runtime.messages.plain(locale, "private_only"))
