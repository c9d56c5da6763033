"""The translators' catalogues: extract the words from the templates, update, compile.

`python -m messages catalogues` does all three: `messages.pot` from `templates/`, every
`locale/<locale>/LC_MESSAGES/messages.po` merged with it (new words empty, changed ones marked
fuzzy for a translator, unused ones dropped), and the `.mo` files the renderer reads.
`--add fr` starts a language.
"""

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from messages.render import CATALOGUES, DOMAIN, EMPHASIS, SOURCE_LOCALE, TEMPLATES

TEMPLATE_CATALOGUE = CATALOGUES / f"{DOMAIN}.pot"
# Comments starting so, just before a message, reach the translator (limits, where it appears).
COMMENT_TAG = "L10N:"
# The template's date is fixed, so that running the command without a change changes nothing.
UNCHANGING = datetime(2026, 1, 1, tzinfo=UTC)
# What a translator reads first, in the template and every language's catalogue.
HEADER = """\
# Translations of cxzy-bot (创先争优助手). The source language is Chinese.
#
# For translators:
# - [em]…[/em] marks words to emphasise: Telegram shows them bold, WeCom as **…**, plain
#   text not at all. Keep as many pairs as the source has, around the words that mean the
#   same; write no other markup (no <b>, no **, no links): each channel adds its own.
# - %(name)s is a value the bot puts in: keep every one, in any order; %% is a percent sign.
# - Commands (/pledge, or a WeCom keyword) come in as values: never write one yourself.
# - The comment above an entry says where it appears, and its limit where a channel has one.
#"""
# Beside every entry with emphasis.
EMPHASIS_NOTE = "[em]…[/em]: emphasis; keep it around the words that mean the same."
_JINJA = {
    "extensions": "jinja2.ext.i18n",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
    "newstyle_gettext": "true",
}


def extract() -> Catalog:
    """Every word of every template, with its context (the message it belongs to)."""
    catalog = Catalog(
        project="cxzy-bot",
        locale=SOURCE_LOCALE,
        fuzzy=False,
        creation_date=UNCHANGING,
        header_comment=HEADER,
    )
    found = extract_from_dir(
        TEMPLATES,
        method_map=[("**.j2", "jinja2.ext:babel_extract")],
        options_map={"**.j2": _JINJA},
        keywords=DEFAULT_KEYWORDS,
        comment_tags=(COMMENT_TAG,),
        strip_comment_tags=True,
    )
    for filename, _line, message, comments, context in found:
        source = message if isinstance(message, str) else message[0]
        catalog.add(
            message,
            locations=[(f"templates/{filename}", None)],
            auto_comments=[*comments, EMPHASIS_NOTE] if EMPHASIS[0] in source else comments,
            context=context,
        )
    return catalog


def po_path(locale: str) -> Path:
    return CATALOGUES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=100, include_lineno=False, ignore_obsolete=True)


def translated_locales() -> list[str]:
    return sorted(p.parent.parent.name for p in CATALOGUES.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def update(template: Catalog, add: tuple[str, ...] = ()) -> None:
    """Each language's catalogue merged with the template; a new language starts empty."""
    for locale in add:
        if not po_path(locale).exists():
            catalog = Catalog(locale=locale, project="cxzy-bot", header_comment=HEADER)
            catalog.update(template)
            write(catalog, po_path(locale))
    for locale in translated_locales():
        catalog = read(po_path(locale), locale)
        catalog.update(template, update_header_comment=False)
        catalog.header_comment = HEADER
        write(catalog, po_path(locale))


def compile_all() -> None:
    """The `.mo` files the renderer reads; fuzzy (unchecked) entries are left out."""
    for locale in translated_locales():
        catalog = read(po_path(locale), locale)
        with (po_path(locale).with_suffix(".mo")).open("wb") as file:
            write_mo(file, catalog, use_fuzzy=False)


def run(add: tuple[str, ...] = ()) -> None:
    template = extract()
    write(template, TEMPLATE_CATALOGUE)
    update(template, add)
    compile_all()
