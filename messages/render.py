"""Templates to Telegram HTML: one Jinja2 environment, escaping on, long texts split safely."""

import html
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent
LOCALES = ("zh_CN", "en")
MESSAGE_LIMIT = 4096
# The tags Telegram's HTML parse mode accepts.
TELEGRAM_TAGS = frozenset(
    "b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre blockquote".split()
)

_TAG = re.compile(r"<(/?)([a-z][a-z-]*)([^>]*)>")
_ATOM = re.compile(r"<[^>]*>|&#?\w+;|[^<&]")


class Messages:
    """Renders `messages/<locale>/<name>.j2` with every value HTML-escaped."""

    def __init__(self, *, timezone: ZoneInfo, default_locale: str = "zh_CN") -> None:
        self.default_locale = default_locale
        self._zone = timezone
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            # HTML for the chat; `*.txt.j2` are plain text for the command line.
            autoescape=lambda name: not (name or "").endswith(".txt.j2"),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates change with a deploy, not while running
        )
        self._env.filters["date"] = self._format_date
        self._env.filters["datetime"] = self._format_datetime

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self._zone)

    def _format_date(self, moment: datetime) -> str:
        return self._local(moment).strftime("%Y-%m-%d")

    def _format_datetime(self, moment: datetime) -> str:
        return self._local(moment).strftime("%Y-%m-%d %H:%M")

    def locale_for(self, *candidates: str | None) -> str:
        """The first candidate that names a locale we have (Telegram codes like zh-hans too)."""
        for candidate in candidates:
            if not candidate:
                continue
            code = candidate.replace("-", "_").lower()
            if code.startswith("zh"):
                return "zh_CN"
            if code.startswith("en"):
                return "en"
        return self.default_locale

    def render(self, locale: str, template: str, /, **values: object) -> str:
        """One message, as Telegram HTML; may be longer than one message (see `split`)."""
        if locale not in LOCALES:
            locale = self.default_locale
        text = self._env.get_template(f"{locale}/{template}.j2").render(**values)
        return text.strip()

    def plain(self, locale: str, template: str, /, **values: object) -> str:
        """Text for places without HTML (button labels, notices): rendered, then unescaped."""
        return html.unescape(self.render(locale, template, **values))

    def render_parts(self, locale: str, template: str, /, **values: object) -> list[str]:
        """The rendered message cut into pieces Telegram accepts."""
        return split(self.render(locale, template, **values))

    def command_descriptions(self, locale: str) -> dict[str, str]:
        """Command → its one-line description, from `<locale>/commands.j2`."""
        return dict(self._env.get_template(f"{locale}/commands.j2").module.descriptions)

    def words(self, locale: str, template: str, names: tuple[str, ...]) -> dict:
        """Data a template defines with `{% set %}` (sheet headings, prize names), by name."""
        if locale not in LOCALES:
            locale = self.default_locale
        module = self._env.get_template(f"{locale}/{template}.j2").module
        return {name: getattr(module, name) for name in names}

    def export_headings(self, locale: str) -> dict:
        """The workbook's sheet names, headings and words, from `<locale>/_export_headings.j2`."""
        return self.words(locale, "_export_headings", ("sheets", "columns", "wide", "words"))

    def commendation_words(self, locale: str) -> dict:
        """Prize names and the compilation's words, from `<locale>/_commendation.j2`."""
        return self.words(locale, "_commendation", ("prizes", "compilation", "branch"))

    def template_names(self) -> list[str]:
        """Every template name, as present in the default locale."""
        return sorted(
            p.name.removesuffix(".j2") for p in (TEMPLATES / self.default_locale).glob("*.j2")
        )

    def source(self, locale: str, name: str) -> str:
        return (TEMPLATES / locale / f"{name}.j2").read_text(encoding="utf-8")

    @property
    def environment(self) -> Environment:
        return self._env


def length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (𠮷 or an emoji count two)."""
    return len(text.encode("utf-16-le")) // 2


def _pieces(text: str, longest: int) -> list[str]:
    """Lines (with their newline); a longer line is cut between atoms, at a space if it can."""
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        while length(line) > longest:
            cut, size = 0, 0
            last_space = 0
            for atom in _ATOM.finditer(line):
                if size + length(atom.group()) > longest and cut:
                    break
                size += length(atom.group())
                cut = atom.end()
                if atom.group() == " ":
                    last_space = cut
            if last_space > len(line[:cut]) // 2:
                cut = last_space
            pieces.append(line[:cut])
            line = line[cut:]
        if line:
            pieces.append(line)
    return pieces


def _apply_tags(stack: list[tuple[str, str]], piece: str) -> list[tuple[str, str]]:
    stack = list(stack)
    for match in _TAG.finditer(piece):
        closing, name = match.group(1), match.group(2)
        if closing:
            for index in range(len(stack) - 1, -1, -1):
                if stack[index][0] == name:
                    del stack[index]
                    break
        else:
            stack.append((name, match.group()))
    return stack


def split(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut HTML into messages of at most `limit` characters, between lines where possible.

    Tags open at a cut are closed at the end of one part and reopened at the start of the
    next, so every part is valid on its own and no tag or entity is ever cut in two.
    """
    if length(text) <= limit:
        return [text]
    parts: list[str] = []
    stack: list[tuple[str, str]] = []
    current = ""
    reopened = ""

    def closing(tags: list[tuple[str, str]]) -> str:
        return "".join(f"</{name}>" for name, _ in reversed(tags))

    for piece in _pieces(text, limit // 2):
        after = _apply_tags(stack, piece)
        if current != reopened and length(current + piece + closing(after)) > limit:
            parts.append(current.rstrip("\n") + closing(stack))
            reopened = "".join(tag for _, tag in stack)
            current = reopened
        if current == reopened and not piece.strip():
            continue  # a part never starts with blank lines
        current += piece
        stack = after
    if current != reopened:
        parts.append(current.rstrip("\n") + closing(stack))
    return [part for part in parts if _TAG.sub("", part).strip()]
