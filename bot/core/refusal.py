"""One shape for every "no": what the core says instead of doing what was asked."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Refusal:
    """The message that says why (a template of messages/) and its values; `toast` when the
    answer to a pressed button is a short notice only, the message in view staying as it is."""

    message: str
    values: dict[str, Any] = field(default_factory=dict)
    toast: bool = False

    @property
    def reason(self) -> Any:
        return self.values.get("reason")


TOO_LONG = "text_too_long"


def over(text: str, allowed: int, **more: Any) -> Refusal | None:
    """The refusal of a text over `allowed` characters, or None for one within it."""
    return too_long(text, allowed, **more) if len(text) > allowed else None


def too_long(text: str, allowed: int, **more: Any) -> Refusal:
    """A text over its limit: refused whole (never cut), shown back with its count so that
    it can be shortened."""
    return Refusal(TOO_LONG, {"length": len(text), "allowed": allowed, "text": text, **more})
