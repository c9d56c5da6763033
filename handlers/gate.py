"""The one door every handler goes through: who is asking, may they, one session, replies.

A handler is written as `async def callback(turn: Turn)` and wrapped with `@gated(...)`.
The gate opens the update's database session, identifies the sender, refuses politely
when the permission is missing, marks a stored update processed in the same transaction
(so it is processed once), and sends the handler's replies only after the session has
committed, so a failed update never leaves a half-told story in the chat.

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
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes, ConversationHandler

from bot import intake
from bot.channels.telegram import CHANNEL, pacing
from bot.core import access, preferences
from bot.core.access import Account, Actor, Permission
from bot.core.text import normalise
from bot.intake import Answering
from bot.runtime import Runtime

CALLBACK_DATA_LIMIT = 64
logger = logging.getLogger(__name__)

Buttons = Sequence[Sequence[tuple[str, str]]]


def runtime_of(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return context.application.bot_data["runtime"]


def keyboard(buttons: Buttons | None) -> InlineKeyboardMarkup | None:
    """Rows of (label, callback data); the data must fit Telegram's 64 bytes."""
    if not buttons:
        return None
    for row in buttons:
        for _label, data in row:
            if len(data.encode()) > CALLBACK_DATA_LIMIT:
                raise ValueError(f"callback data over {CALLBACK_DATA_LIMIT} bytes: {data!r}")
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in buttons
        ]
    )


@dataclass
class _Reply:
    template: str
    values: dict[str, Any]
    buttons: Buttons | None
    edit: bool


@dataclass
class Turn:
    """One update as a handler sees it."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    runtime: Runtime
    session: AsyncSession
    actor: Actor | None
    locale: str
    _replies: list[_Reply] = field(default_factory=list)
    _notice: str | None = None
    _afterwards: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    @property
    def now(self):
        return self.runtime.clock.now()

    # What a person wrote is normalised here, once for every feature (bot.core.text).
    @property
    def text(self) -> str:
        message = self.update.effective_message
        return normalise(message.text or "") if message else ""

    @property
    def evidence(self) -> tuple[str, str] | None:
        """A photo or document sent as evidence: (Telegram file id, kind)."""
        message = self.update.effective_message
        if message is None:
            return None
        if message.photo:
            return message.photo[-1].file_id, "photo"
        if message.document:
            return message.document.file_id, "document"
        return None

    @property
    def caption(self) -> str:
        message = self.update.effective_message
        return normalise(message.caption or "") if message else ""

    @property
    def args(self) -> list[str]:
        return [word for word in map(normalise, self.context.args or []) if word]

    @property
    def callback_data(self) -> str:
        query = self.update.callback_query
        return (query.data or "") if query else ""

    def reply(self, template: str, *, buttons: Buttons | None = None, **values: Any) -> None:
        """Send a new message rendered from `template` once the update has committed."""
        self._replies.append(_Reply(template, values, buttons, edit=False))

    def edit(self, template: str, *, buttons: Buttons | None = None, **values: Any) -> None:
        """Replace the message whose button was pressed (a new message if there is none)."""
        self._replies.append(_Reply(template, values, buttons, edit=True))

    def afterwards(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` once the update has committed and replied; its failure is only logged."""
        self._afterwards.append(action)

    def label(self, template: str, **values: Any) -> str:
        """A button label (plain text, not HTML)."""
        return self.runtime.messages.plain(self.locale, template, **values)

    def notice(self, template: str, **values: Any) -> None:
        """A short toast answering the pressed button."""
        self._notice = self.runtime.messages.plain(self.locale, template, **values)

    def outgoing(self) -> list["Outgoing"]:
        """The queued replies, rendered: what is sent once the update has committed."""
        chat = self.update.effective_chat
        if chat is None:
            return []
        query = self.update.callback_query
        pressed = query.message.message_id if query and query.message else None
        items = []
        for reply in self._replies:
            parts = self.runtime.messages.render_parts(self.locale, reply.template, **reply.values)
            markup = keyboard(reply.buttons)
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                items.append(
                    Outgoing(
                        chat.id,
                        part,
                        markup.to_dict() if markup and last else None,
                        pressed if reply.edit and index == 0 else None,
                    )
                )
        return items

    async def deliver(self, outgoing: list["Outgoing"], answering: Answering | None) -> None:
        """Answer the pressed button, then send the replies in order (each recorded as
        handed over just before its request, when the update came through the intake)."""
        query = self.update.callback_query
        if query is not None:
            await query.answer(self._notice[:200] if self._notice else None)
        await send_all(self.context.bot, outgoing, answering)


@dataclass(frozen=True)
class Outgoing:
    """One rendered reply: a new message, or an edit of the pressed one (a new message if
    that is gone). Plain data, so that the intake can keep it across a restart."""

    chat_id: int
    text: str
    markup: dict | None = None
    edit: int | None = None


async def send_all(bot, outgoing: Sequence[Outgoing], answering: Answering | None) -> None:
    """Send the replies in order; `answering` records each as handed over just before its
    request (a retry after a 429 records the same one again), then that all have been."""
    for position, item in enumerate(outgoing):
        before = functools.partial(answering.handing_over, position) if answering else None
        markup = InlineKeyboardMarkup.de_json(item.markup, bot) if item.markup else None
        common = {"text": item.text, "parse_mode": ParseMode.HTML, "reply_markup": markup}
        if item.edit is not None and await _edit(bot, item, before, common):
            continue
        await pacing.request(
            bot.send_message, before_request=before, chat_id=item.chat_id, **common
        )
    if answering is not None:
        await answering.finished()


async def _edit(bot, item: Outgoing, before, common: dict) -> bool:
    """Edit the pressed message; False when it is gone or too old (then send anew)."""
    try:
        await pacing.request(
            bot.edit_message_text,
            before_request=before,
            chat_id=item.chat_id,
            message_id=item.edit,
            **common,
        )
    except BadRequest as error:
        reason = error.message.lower()
        if "not modified" in reason:  # a second tap on the same button: already says this
            return True
        if "not found" in reason or "can't be edited" in reason:
            return False
        raise
    return True


Callback = Callable[[Turn], Awaitable[Any]]


def sender_account(update: Update) -> Account:
    """The Telegram account the update came from."""
    return Account(CHANNEL, str(update.effective_user.id))


def in_private_chat(update: Update) -> bool:
    """The update comes from the sender's own chat with the bot."""
    chat, user = update.effective_chat, update.effective_user
    return chat is not None and chat.type == chat.PRIVATE and chat.id == user.id


def gated(
    permission: Permission, *, in_groups: bool = False
) -> Callable[[Callback], Callable[..., Awaitable[Any]]]:
    """Wrap a handler in the access check, the update's session and its replies; unless
    `in_groups`, it answers only in the member's private chat."""

    def decorate(callback: Callback) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(callback)
        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Any:
            user = update.effective_user
            if user is None or user.is_bot:
                return None
            runtime = runtime_of(context)
            if not in_groups and not in_private_chat(update):
                await _refuse_outside_private_chat(update, runtime)
                return ConversationHandler.END
            async with runtime.db.session() as session:
                actor = await runtime.identities.identify(session, account=sender_account(update))
                locale = runtime.messages.locale_for(
                    actor.locale if actor else None, user.language_code
                )
                turn = Turn(update, context, runtime, session, actor, locale)
                if actor is not None and actor.unreachable and update.my_chat_member is None:
                    await preferences.set_reachable(
                        session, actor=actor, reachable=True, now=turn.now
                    )
                if access.allows(actor, permission):
                    result = await callback(turn)
                else:
                    if update.message is not None:
                        turn.reply("not_member" if actor is None else "not_allowed")
                    turn.notice("button_refused")
                    result = ConversationHandler.END
                outgoing = turn.outgoing()
                answering = await intake.mark_done(
                    session, replies=[asdict(item) for item in outgoing]
                )
            await turn.deliver(outgoing, answering)
            for action in turn._afterwards:
                try:
                    await action()
                except TelegramError as error:
                    logger.warning("after update %s: %s", update.update_id, error)
            return result

        handle.permission = permission  # type: ignore[attr-defined]
        return handle

    return decorate


async def _refuse_outside_private_chat(update: Update, runtime: Runtime) -> None:
    """A toast on the pressed button (only its presser sees it); nothing in the group."""
    query = update.callback_query
    if query is not None:
        locale = runtime.messages.locale_for(update.effective_user.language_code)
        await query.answer(runtime.messages.plain(locale, "private_only"))
