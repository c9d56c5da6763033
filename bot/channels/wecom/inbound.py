"""What WeCom pushes, in the core's words: decrypted callback XML → Inbound.

Pushed messages (document 90375: text, image, voice, video, location, link) and events
(90376: subscribe, unsubscribe, enter_agent, click, view, template_card_event …) come from
one member (`FromUserName`, their userid) in their chat with the application. The directory's
changes (90970 成员变更通知, `change_contact`, from "sys") name the member in `UserID`: one who
left the organisation (delete_user) can no longer be reached, a renamed userid (update_user
with NewUserID) keeps its binding. WeCom has no
slash commands: a member types "/word", or one of the typed keywords, or picks a menu entry
(a click event whose EventKey is the command's name).
"""

import hashlib
from dataclasses import dataclass
from xml.etree import ElementTree

from bot.core.access import Account
from bot.core.contract import FileRef, Inbound, Kind

CHANNEL = "wecom"
CHANGE_CONTACT = "change_contact"
# The words a member may type instead of a command (as the menu and /help name them).
KEYWORDS = {
    "承诺": "pledges",
    "小结": "summary",
    "评议": "rate",
    "点评": "review",
    "整改": "rectify",
    "周报": "digest",
    "帮助": "help",
}


class BadCallback(ValueError):
    """Not the XML WeCom sends."""


@dataclass(frozen=True)
class Pushed:
    """One decrypted callback: its fields, and the id that recognises WeCom's retries."""

    fields: dict[str, str]

    @classmethod
    def parse(cls, xml: bytes | str) -> "Pushed":
        try:
            root = ElementTree.fromstring(xml)
        except ElementTree.ParseError as error:
            raise BadCallback("not XML") from error
        fields = {child.tag: (child.text or "").strip() for child in root}
        # A card's selections nest; the pressed button is EventKey, all the core needs.
        if not fields.get("FromUserName") or not fields.get("MsgType"):
            raise BadCallback("no sender or type")
        return cls(fields)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def user(self) -> str:
        return self.get("FromUserName")

    @property
    def update_id(self) -> str:
        """Messages by MsgId; events by sender and time (document 90930), with the event's
        type, card and a tap's response code (new for every tap, the same in WeCom's retries)
        so that two events in one second stay two; hashed to fit the intake's 64 characters.
        Never the pressed button: a ballot's id is stored, its choice never."""
        if self.get("MsgType") != "event":
            return f"m:{self.get('MsgId')}"[:64]
        parts = (
            self.user,
            self.get("CreateTime"),
            self.get("Event"),
            self.get("TaskId"),
            self.get("ResponseCode"),
        )
        if self.get("Event") == CHANGE_CONTACT:  # from "sys": which member, and what changed
            parts += (self.get("ChangeType"), self.get("UserID"))
        return "e:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:48]

    @property
    def action(self) -> str | None:
        """A pressed card button's payload."""
        if self.get("MsgType") == "event" and self.get("Event") == "template_card_event":
            return self.get("EventKey")
        return None

    @property
    def words(self) -> str | None:
        return self.get("Content") if self.get("MsgType") == "text" else None


def command_of(text: str) -> tuple[str, tuple[str, ...]] | None:
    """ "/word args" or a typed keyword → (command, args); None for other words."""
    word, *args = text.split() or [""]
    if word.startswith("/") and len(word) > 1:
        return word[1:].lower(), tuple(args)
    if word in KEYWORDS:
        return KEYWORDS[word], tuple(args)
    return None


def inbound_of(pushed: Pushed) -> Inbound | None:
    """The core's event, or None for what nobody answers (entering the app, opening a link)."""
    user = pushed.user
    common = {
        "account": Account(CHANNEL, user),
        "chat": user,
        "private": True,
        "update_id": pushed.update_id,
    }
    kind = pushed.get("MsgType")
    if kind == "text":
        text = pushed.get("Content")
        command = command_of(text)
        if command is not None:
            return Inbound(Kind.COMMAND, text=text, command=command[0], args=command[1], **common)
        return Inbound(Kind.WORDS, text=text, **common)
    if kind == "image":
        photo = FileRef(pushed.get("MediaId"), "photo")
        return Inbound(Kind.WORDS, file=photo, **common)
    if kind != "event":
        return Inbound(Kind.WORDS, other=True, **common)  # voice, video, location, link
    event = pushed.get("Event")
    if event == CHANGE_CONTACT:
        return _directory_change(pushed)
    if event == "click":
        command = pushed.get("EventKey")
        return Inbound(Kind.COMMAND, text=f"/{command}", command=command.lower(), **common)
    if event == "template_card_event":
        return Inbound(
            Kind.ACTION,
            action=pushed.get("EventKey"),
            pressed_message=pushed.get("TaskId") or None,
            answer_token=pushed.get("ResponseCode") or None,
            **common,
        )
    if event in ("subscribe", "enter_agent"):  # following the application, or opening it
        return Inbound(Kind.JOINED, **common)
    if event == "unsubscribe":
        return Inbound(Kind.BLOCKED, **common)
    return None


def _directory_change(pushed: Pushed) -> Inbound | None:
    """A member who left the organisation, or whose userid changed; other changes of the
    directory (new members, departments) are the roster's business."""
    user, change = pushed.get("UserID"), pushed.get("ChangeType")
    if not user:
        return None
    common = {
        "account": Account(CHANNEL, user),
        "chat": user,
        "private": True,
        "update_id": pushed.update_id,
    }
    if change == "delete_user":
        return Inbound(Kind.BLOCKED, **common)
    if change == "update_user" and pushed.get("NewUserID"):
        return Inbound(Kind.MOVED, text=pushed.get("NewUserID"), **common)
    return None
