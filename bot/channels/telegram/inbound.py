"""Telegram's updates in the core's words (bot.core.contract.Inbound)."""

from telegram import ChatMember, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import filters

from bot.channels.telegram import CHANNEL
from bot.core.access import Account
from bot.core.contract import FileRef, Inbound, Kind


def account_of(user) -> Account:
    return Account(CHANNEL, str(user.id))


def inbound_of(update: Update, bot_username: str | None) -> Inbound | None:
    """The update as an Inbound; None for what the core never sees (other bots, channel
    posts, service messages, a command addressed to another bot)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot or chat is None:
        return None
    private = chat.type == ChatType.PRIVATE and chat.id == user.id
    common = {
        "account": account_of(user),
        "chat": str(chat.id),
        "private": private,
        "chat_title": chat.title or "",
        "update_id": str(update.update_id),
        "language": user.language_code,
    }
    if update.my_chat_member is not None:
        blocked = update.my_chat_member.new_chat_member.status == ChatMember.BANNED
        return Inbound(Kind.BLOCKED if blocked else Kind.JOINED, **common)
    if (query := update.callback_query) is not None:
        pressed = str(query.message.message_id) if query.message else None
        return Inbound(
            Kind.ACTION,
            **common,
            action=query.data or "",
            pressed_message=pressed,
            answer_token=query.id,
        )
    if update.edited_message is not None:
        return Inbound(Kind.EDITED, **common, text=update.edited_message.text or "")
    message = update.message
    if message is None or filters.StatusUpdate.ALL.check_update(update):
        return None
    text = message.text or ""
    if command := _command(message, bot_username):
        name, args = command
        return Inbound(Kind.COMMAND, **common, text=text, command=name, args=tuple(args))
    if text.startswith("/") and message.entities and message.entities[0].offset == 0:
        return None  # a command addressed to another bot in a group
    return Inbound(
        Kind.WORDS,
        **common,
        text=text,
        caption=message.caption or "",
        file=_file(message),
        other=not text and _file(message) is None,
    )


def _command(message: Message, bot_username: str | None) -> tuple[str, list[str]] | None:
    """(name, args) of a /command at the start of the message, if it is addressed to us."""
    entities = message.entities or ()
    if not entities or entities[0].type != MessageEntityType.BOT_COMMAND:
        return None
    if entities[0].offset != 0:
        return None
    text = message.text or ""
    word = text[1 : entities[0].length]
    name, _, addressee = word.partition("@")
    if addressee and (bot_username is None or addressee.lower() != bot_username.lower()):
        return None
    return name.lower(), text[entities[0].length :].split()


def _file(message: Message) -> FileRef | None:
    if message.photo:
        photo = message.photo[-1]
        return FileRef(photo.file_id, "photo", "", photo.file_size or 0)
    if message.document:
        document = message.document
        return FileRef(
            document.file_id, "document", document.file_name or "", document.file_size or 0
        )
    return None
