"""Messages for every channel: one template per message, its words from gettext catalogues.

`templates/<feature>.j2` hold each message once, as a `{% block %}`; its words are looked up in
`locale/<locale>/LC_MESSAGES/messages.mo` (Chinese, the source language, needs none). A channel
asks for a markup flavour: Telegram HTML, WeCom markdown, or plain text for places without
markup.
"""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from jinja2 import BytecodeCache, Environment, FileSystemLoader, StrictUndefined, meta
from markupsafe import Markup

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
CATALOGUES = HERE / "locale"
DOMAIN = "messages"
SOURCE_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")
MESSAGE_LIMIT = 4096
# How many entries of a long list a message shows before "等": a presentational choice that keeps
# the message within a chat message's limit with the longest names, the same for every caller,
# so it is a renderer global (`shown.digest`), never a number written in a template.
SHOWN = {
    "digest": 12,  # names under each heading of a digest
    "overdue": 30,  # a branch's members behind on a step
    "not_done": 50,  # a branch's members who have not finished rating
    "withheld": 12,  # targets whose results are withheld
    "waiting": 40,  # reviewees and members not yet heard from
    "notes": 2,  # the latest progress notes under a rectification item
}
# How many characters of a value a short text shows (`value | truncate(cut.item)`): a label must
# leave room for its words within the channels' label limits.
CUT = {
    "step_title": 24,  # a step's title on a "done" button
    "item": 12,  # a rectification item on its buttons
    "chart_item": 18,  # an evaluation item under a chart's bar
    "chart_item_long": 24,  # the same, longer, for a translation that offers it (item_name2)
}
# The tags Telegram's HTML parse mode accepts.
TELEGRAM_TAGS = frozenset(
    "b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre blockquote".split()
)
# Dates in words, per locale (CLDR patterns); numeric dates are the same everywhere.
DATE_PATTERNS = {
    "zh_CN": {"full_date": "y年M月d日", "day_month": "M月d日"},
    "en": {"full_date": "d MMMM y", "day_month": "d MMMM"},
}

_TAG = re.compile(r"<(/?)([a-z][a-z-]*)([^>]*)>")
_ATOM = re.compile(r"<[^>]*>|&#?\w+;|[^<&]")
_BLOCK = re.compile(r"\{% block (\w+) %\}\n(.*?)\{% endblock %\}", re.S)


# The translators' notation for emphasis inside the catalogues' words: no channel's markup.
EMPHASIS = ("[em]", "[/em]")


def emphasised(words: str) -> str:
    """A translation's `[em]…[/em]` as the renderer's HTML, before any value goes in (so a
    value that spells `[em]` stays words)."""
    start, end = EMPHASIS
    return words.replace(start, "<b>").replace(end, "</b>")


# How templates mark values; every flavour renders these tags of escaped HTML, then `finish`es.
MARKUP = {
    "emphasis": lambda value: Markup("<b>%s</b>") % value,
    "preformatted": lambda value: Markup("<pre>%s</pre>") % value,
    "code": lambda value: Markup("<code>%s</code>") % value,
    "hyperlink": lambda url: Markup('<a href="%s">%s</a>') % (url, url),
}


@dataclass(frozen=True)
class Flavour:
    """How one kind of channel shows what templates ask for: commands, emphasis, links.

    Templates name a command with `command("pledge")` and mark values with the filters
    `emphasis`, `preformatted`, `code` and `hyperlink` (`MARKUP`); inside the catalogues' words
    emphasis is `[em]…[/em]`. Every flavour renders them as escaped HTML with those few tags
    (cut there into messages, a part's tags closed and reopened in the next); `finish` turns
    it into what the channel shows, and `measure` counts what a part of it takes of the
    channel's limit.
    """

    name: str
    command: Callable[[str], str]
    finish: Callable[[str], str]
    measure: Callable[[str], int]


def length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (𠮷 or an emoji count two)."""
    return len(text.encode("utf-16-le")) // 2


def _plain_text(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def _slash(name: str) -> str:
    return f"/{name}"


@cache
def _wecom_keywords() -> dict[str, str]:
    """Command → the word a WeCom member types for it, as the channel reads them."""
    from bot.channels.wecom.inbound import KEYWORDS  # the channel's table; loaded when used

    return {command: keyword for keyword, command in KEYWORDS.items()}


def _wecom_command(name: str) -> str:
    """A WeCom member types the keyword where there is one (the menu has them all too)."""
    keyword = _wecom_keywords().get(name)
    return f"「{keyword}」" if keyword else _slash(name)


# WeCom markdown (document 90236): what words and values must not start.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<])")
_MARKDOWN_LINE_START = re.compile(r"^([ \t]*)([#>])", re.M)
# What a link's address keeps as it is; the rest (spaces, brackets, <>, `) is %-encoded.
_URL_SAFE = "/:?=&#%~+,;@!$'*-._"
_MARKDOWN_MARK = re.compile(r"\\(.)|\*\*|`|\]\([^)]*\)|\[", re.S)


def wecom_markdown(text: str) -> str:
    """The renderer's HTML as WeCom markdown: `**emphasis**`, `` `code` ``, `[url](url)`;
    preformatted text as it is; every character of the words and values that markdown
    would take as markup is escaped with a backslash."""
    out: list[str] = []
    links: list[str] = []
    code = False
    at = 0
    for tag in [*_TAG.finditer(text), None]:
        words = html.unescape(text[at : tag.start() if tag else len(text)])
        out.append(words.replace("`", "'") if code else _MARKDOWN_SPECIAL.sub(r"\\\1", words))
        if tag is None:
            break
        at = tag.end()
        closing, name, attributes = tag.groups()
        if name in ("b", "strong"):
            out.append("**")
        elif name == "code":
            out.append("`")
            code = not closing
        elif name == "a" and closing:
            out.append(links.pop() if links else "")
        elif name == "a":
            href = re.search(r'href="([^"]*)"', attributes)
            url = html.unescape(href.group(1)) if href else ""
            # A link WeCom opens; anything else (the words to send instead of a deep link)
            # stays words.
            opens = url.startswith(("https://", "http://"))
            links.append(f"]({quote(url, safe=_URL_SAFE)})" if opens else "")
            out.append("[" if opens else "")
    return _MARKDOWN_LINE_START.sub(r"\1\\\2", "".join(out))


def unmarked(markdown: str) -> str:
    """WeCom markdown made by `wecom_markdown` as plain text (a card shows no markdown)."""
    return _MARKDOWN_MARK.sub(lambda mark: mark.group(1) or "", markdown)


@cache
def _wecom_atom_bytes(atom: str) -> int:
    return len(wecom_markdown(atom).encode())


def _plain_bytes(text: str) -> int:
    """What the HTML takes of WeCom's 2,048 bytes as plain text."""
    return len(_plain_text(text).encode())


def _wecom_bytes(text: str) -> int:
    """What the HTML takes of WeCom's 2,048 bytes once it is markdown (a character or an
    entity as `split` weighs them one by one: remembered)."""
    if len(text) <= 8:
        return _wecom_atom_bytes(text)
    return len(wecom_markdown(text).encode())


FLAVOURS = {
    "telegram": Flavour("telegram", command=_slash, finish=lambda text: text, measure=length),
    "plain": Flavour("plain", command=_slash, finish=_plain_text, measure=length),
    "wecom": Flavour("wecom", command=_wecom_command, finish=wecom_markdown, measure=_wecom_bytes),
    "wecom_text": Flavour(
        "wecom_text", command=_wecom_command, finish=_plain_text, measure=_plain_bytes
    ),
}


def parts_of(flavour: str, text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The renderer's HTML (`Messages.markup`) cut into parts of at most `limit`, as the
    flavour counts, each finished for the channel."""
    chosen = FLAVOURS[flavour]
    return [chosen.finish(part) for part in split(text, limit, chosen.measure)]


class _Compiled(BytecodeCache):
    """Compiled templates shared by every environment (locales and flavours compile alike)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _Compiled()


@cache
def _translations(locale: str) -> NullTranslations:
    if locale == SOURCE_LOCALE:
        return NullTranslations()
    return Translations.load(CATALOGUES, [locale], DOMAIN)


@cache
def message_index() -> dict[str, tuple[str, str]]:
    """Message name → (template file, block); `*.txt.j2` hold plain text for the command line."""
    index = {}
    for path in sorted(TEMPLATES.glob("[!_]*.j2")):
        suffix = ".txt" if path.name.endswith(".txt.j2") else ""
        for block in _BLOCK.findall(path.read_text(encoding="utf-8")):
            index[block[0] + suffix] = (path.name, block[0])
    return index


class Messages:
    """Renders a message in a locale and a flavour, with every value HTML-escaped."""

    def __init__(self, *, timezone: ZoneInfo, default_locale: str = SOURCE_LOCALE) -> None:
        self.default_locale = default_locale
        self._zone = timezone
        self._environments: dict[tuple[str, str], Environment] = {}

    def _environment(self, locale: str, flavour: str = "telegram") -> Environment:
        key = (locale, flavour)
        if key not in self._environments:
            self._environments[key] = self._build(locale, FLAVOURS[flavour])
        return self._environments[key]

    def _build(self, locale: str, flavour: Flavour) -> Environment:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            extensions=["jinja2.ext.i18n"],
            # HTML for the chat; `*.txt.j2` are plain text for the command line.
            autoescape=lambda name: not (name or "").endswith(".txt.j2"),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates change with a deploy, not while running
            bytecode_cache=_COMPILED,
        )
        words = _translations(locale)
        env.install_gettext_callables(
            gettext=lambda s: emphasised(words.gettext(s)),
            ngettext=lambda s, p, n: emphasised(words.ngettext(s, p, n)),
            pgettext=lambda c, s: emphasised(words.pgettext(c, s)),
            npgettext=lambda c, s, p, n: emphasised(words.npgettext(c, s, p, n)),
            newstyle=True,
        )
        env.globals["command"] = flavour.command
        env.globals["shown"] = SHOWN
        env.globals["cut"] = CUT
        env.filters.update(MARKUP)
        env.filters["date"] = self._format_date
        env.filters["datetime"] = self._format_datetime
        patterns = DATE_PATTERNS[locale]
        for name, pattern in patterns.items():
            env.filters[name] = lambda day, pattern=pattern: format_date(
                day, pattern, locale=locale
            )
        env.filters["percent"] = lambda rate: format_percent(rate, locale=locale)
        env.filters["megabytes"] = lambda size: (
            f"{format_decimal(size / 2**20, '#,##0.#', locale=locale)} MB"
        )
        env.filters["kilobytes"] = lambda size: (
            f"{format_decimal(size / 2**10, '0.0', locale=locale)} KB"
        )
        env.filters["compact_date"] = lambda day: day.strftime("%Y%m%d")
        return env

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

    def _locale(self, locale: str) -> str:
        return locale if locale in LOCALES else self.default_locale

    def markup(self, flavour: str, locale: str, template: str, /, **values: object) -> str:
        """One message as the renderer's escaped HTML, with the flavour's commands: what
        `parts_of` cuts and finishes (messages sent together are joined in this form)."""
        env = self._environment(self._locale(locale), flavour)
        file, block = message_index()[template]
        compiled = env.get_template(file)
        return "".join(compiled.blocks[block](compiled.new_context(values))).strip()

    def render_as(self, flavour: str, locale: str, template: str, /, **values: object) -> str:
        """One message in a channel's markup flavour; may be longer than one message."""
        return FLAVOURS[flavour].finish(self.markup(flavour, locale, template, **values))

    def render(self, locale: str, template: str, /, **values: object) -> str:
        """One message, as Telegram HTML; may be longer than one message (see `split`)."""
        return self.render_as("telegram", locale, template, **values)

    def plain(self, locale: str, template: str, /, **values: object) -> str:
        """Text for places without markup (button labels, notices, the local chat)."""
        return self.render_as("plain", locale, template, **values)

    def render_parts_as(
        self, flavour: str, limit: int, locale: str, template: str, /, **values: object
    ) -> list[str]:
        """The rendered message cut into parts of at most `limit` (as the flavour counts)."""
        return parts_of(flavour, self.markup(flavour, locale, template, **values), limit)

    def command_descriptions(self, locale: str) -> dict[str, str]:
        """Command → its one-line description, from `commands.j2`."""
        return dict(self.words(locale, "commands", ("descriptions",))["descriptions"])

    def words(self, locale: str, template: str, names: tuple[str, ...]) -> dict:
        """Data a template defines with `{% set %}` (sheet headings, prize names), by name."""
        module = self._environment(self._locale(locale)).get_template(f"{template}.j2").module
        return {name: getattr(module, name) for name in names}

    def export_headings(self, locale: str) -> dict:
        """The workbook's sheet names, headings and words, from `_export_headings.j2`."""
        return self.words(locale, "_export_headings", ("sheets", "columns", "wide", "words"))

    def commendation_words(self, locale: str) -> dict:
        """Prize names and the compilation's words, from `_commendation.j2`."""
        return self.words(locale, "_commendation", ("prizes", "compilation", "branch"))

    def template_names(self) -> list[str]:
        """Every message's name."""
        return sorted(message_index())

    def source(self, name: str) -> str:
        """One message's template text."""
        file, block = message_index()[name]
        text = (TEMPLATES / file).read_text(encoding="utf-8")
        return dict(_BLOCK.findall(text))[block]

    def variables(self, name: str) -> set[str]:
        """The values a message's template uses (besides the renderer's own)."""
        env = self.environment
        return meta.find_undeclared_variables(env.parse(self.source(name))) - set(env.globals)

    @property
    def environment(self) -> Environment:
        return self._environment(self.default_locale)


def _pieces(text: str, longest: int, measure: Callable[[str], int]) -> list[str]:
    """Lines (with their newline); a longer line is cut between atoms, at a space if it can
    (in one pass: a line may be a whole long value)."""
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        if measure(line) <= longest:
            pieces.append(line)
            continue
        start, size, last_space = 0, 0, 0
        for atom in _ATOM.finditer(line):
            weight = measure(atom.group())
            if size + weight > longest and atom.start() > start:
                at_space = last_space - start > (atom.start() - start) // 2
                cut = last_space if at_space else atom.start()
                pieces.append(line[start:cut])
                start, size = cut, measure(line[cut : atom.start()])
            size += weight
            if atom.group() == " ":
                last_space = atom.end()
        pieces.append(line[start:])
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


def split(
    text: str, limit: int = MESSAGE_LIMIT, measure: Callable[[str], int] = length
) -> list[str]:
    """Cut HTML into messages of at most `limit` (as `measure` counts: by default Telegram's
    UTF-16 units), between lines where possible.

    Tags open at a cut are closed at the end of one part and reopened at the start of the
    next, so every part is valid on its own and no tag or entity is ever cut in two.
    """
    if measure(text) <= limit:
        return [text]
    parts: list[str] = []
    stack: list[tuple[str, str]] = []
    current = ""
    reopened = ""

    def closing(tags: list[tuple[str, str]]) -> str:
        return "".join(f"</{name}>" for name, _ in reversed(tags))

    for piece in _pieces(text, limit // 2, measure):
        after = _apply_tags(stack, piece)
        if current != reopened and measure(current + piece + closing(after)) > limit:
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
