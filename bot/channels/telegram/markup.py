"""Telegram's limits, and buttons as its inline keyboards."""

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.contract import Limits

LIMITS = Limits(
    text_length=4096,
    counted_in="utf-16",
    buttons_per_message=100,
    action_payload_bytes=64,
    button_label_length=40,
    toast_length=200,
    messages_per_second=30,
    messages_per_chat_minute=20,
    flavour="telegram",
)


def keyboard(buttons: Sequence[Sequence[Sequence[str]]] | None) -> InlineKeyboardMarkup | None:
    """Rows of [label, packed action] as an inline keyboard."""
    if not buttons:
        return None
    for row in buttons:
        for _label, data in row:
            if len(data.encode()) > LIMITS.action_payload_bytes:
                raise ValueError(
                    f"callback data over {LIMITS.action_payload_bytes} bytes: {data!r}"
                )
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in buttons
        ]
    )


def start_link(bot_username: str, payload: str) -> str:
    """A t.me link that opens the chat with the bot and sends /start with `payload`."""
    return f"https://t.me/{bot_username}?start={payload}"
