"""Actions: what a button asks for, each defined once as a small typed class.

A service that offers a button builds an action; the channel packs it into its button's
payload (`pack`), and whatever comes back, a forger's payload included, is parsed by `parse`
into the one action it names or into nothing. Packed, an action is its prefix and its fields
joined by ":" (`pledge:12:kept`): short enough for Telegram's 64 bytes and WeCom's button
keys, and the same text as before the classes existed, so buttons already sent (and outbox
rows written before an upgrade) still work.

Field types say what a field may hold: `int` (up to nine digits), `str` (a word of up to
20 letters, digits or _), `Literal[...]` (one of the choices), `Annotated[str, pattern]`
(a word matching the pattern), and `X | None = None` as the last field (left out when None).
"""

import re
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Self, get_args, get_origin

_INT = r"\d{1,9}"
_WORD = r"\w{1,20}"


def _pattern(annotation: Any) -> tuple[str, bool]:
    """The regular expression of one field, and whether it may be left out."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _pattern(inner[0])[0], True
    if origin is Literal:
        return "|".join(re.escape(str(choice)) for choice in get_args(annotation)), False
    if origin is typing.Annotated:
        return get_args(annotation)[1], False
    if annotation is int:
        return _INT, False
    if annotation is str:
        return _WORD, False
    raise TypeError(f"an action field cannot be {annotation!r}")


@dataclass(frozen=True)
class Action:
    """Base of every action; a subclass names its prefix: `class X(Action, prefix="x")`."""

    prefix: ClassVar[str]
    _shape: ClassVar[re.Pattern[str]]
    _registry: ClassVar[dict[str, type["Action"]]] = {}

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix in Action._registry:
            raise TypeError(f"action prefix {prefix!r} is taken by {Action._registry[prefix]}")
        cls.prefix = prefix
        Action._registry[prefix] = cls

    @classmethod
    def _compiled(cls) -> re.Pattern[str]:
        # Built on first use: the dataclass decorator runs after __init_subclass__.
        if "_shape" not in cls.__dict__:
            hints = typing.get_type_hints(cls, include_extras=True)
            shape = re.escape(cls.prefix)
            for spec in fields(cls):
                pattern, optional = _pattern(hints[spec.name])
                part = f":(?P<{spec.name}>{pattern})"
                shape += f"(?:{part})?" if optional else part
            cls._shape = re.compile(shape)
        return cls._shape

    def pack(self) -> str:
        values = [getattr(self, spec.name) for spec in fields(self)]
        return ":".join([self.prefix, *(str(value) for value in values if value is not None)])

    @classmethod
    def parse(cls, payload: str) -> "Action | None":
        """The action a payload names, or None (unknown, malformed or forged beyond use).
        On a subclass, only that class's actions are taken."""
        candidates = [cls] if cls is not Action else Action._registry.values()
        for candidate in sorted(candidates, key=lambda c: -len(c.prefix)):
            if found := candidate._read(payload):
                return found
        return None

    @classmethod
    def _read(cls, payload: str) -> Self | None:
        match = cls._compiled().fullmatch(payload)
        if match is None:
            return None
        hints = typing.get_type_hints(cls)
        values = {}
        for spec in fields(cls):
            raw = match.group(spec.name)
            values[spec.name] = None if raw is None else _typed(hints[spec.name], raw)
        return cls(**values)


def _typed(annotation: Any, raw: str) -> Any:
    inner = [a for a in get_args(annotation) if a is not type(None)]
    if annotation is int or (inner and inner[0] is int):
        return int(raw)
    return raw


@dataclass(frozen=True)
class Button:
    """A button a service offers: its label's template (and values), and its action."""

    label: str
    action: Action
    values: dict[str, Any] = field(default_factory=dict)
