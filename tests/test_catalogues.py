"""The translators' catalogues: complete, current, within the channels' limits, markup neutral."""

import re

import pytest
from babel.messages.mofile import read_mo
from test_messages import HOSTILE, SPECIAL_VALUES, Hostile

from bot.channels.telegram.markup import LIMITS
from bot.config import LOCALES
from bot.core.commendation import Reason
from messages import catalogues
from messages.render import SOURCE_LOCALE, TEMPLATES, Messages


@pytest.fixture(scope="module")
def messages() -> Messages:
    from zoneinfo import ZoneInfo

    return Messages(timezone=ZoneInfo("Asia/Shanghai"))


def entries(catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted():
    return catalogues.extract()


def test_every_translation_has_every_entry_and_no_other(extracted):
    wanted = entries(extracted)
    assert catalogues.translated_locales() == [loc for loc in LOCALES if loc != SOURCE_LOCALE]
    for locale in catalogues.translated_locales():
        catalog = catalogues.read(catalogues.po_path(locale), locale)
        have = entries(catalog)
        assert not wanted - have, ("missing", sorted(wanted - have)[:10])
        assert not have - wanted, ("unused", sorted(have - wanted)[:10])


def test_english_is_a_full_translation():
    catalog = catalogues.read(catalogues.po_path("en"), "en")
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), ("untranslated", message.context, message.id)
        assert not message.fuzzy, ("fuzzy", message.context, message.id)


def written(message) -> tuple:
    """An entry as the `.po` and the `.mo` file both hold it (plural forms as tuples)."""

    def flat(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    return message.context, flat(message.id), flat(message.string)


def test_template_catalogue_and_compiled_files_are_current(extracted):
    """`python -m messages catalogues` was run after the last change of a template or wording."""
    template = catalogues.read(catalogues.TEMPLATE_CATALOGUE)
    assert entries(template) == entries(extracted)
    for locale in catalogues.translated_locales():
        source = catalogues.read(catalogues.po_path(locale), locale)
        with catalogues.po_path(locale).with_suffix(".mo").open("rb") as file:
            compiled = read_mo(file)
        assert {written(m) for m in compiled if m.id} == {written(m) for m in source if m.id}


def test_numbers_choose_the_plural_form(messages):
    from test_messages import STEP

    one = messages.render("en", "reminder_step_due_soon", name="A", step=STEP, days_left=1)
    two = messages.render("en", "reminder_step_due_soon", name="A", step=STEP, days_left=2)
    assert "(1 day left)" in one and "(2 days left)" in two
    zh = messages.render("zh_CN", "reminder_step_due_soon", name="A", step=STEP, days_left=1)
    assert "（还有 1 天）" in zh


def test_every_entry_says_where_it_appears(messages, extracted):
    """The context names the message (or the shared words) an entry belongs to."""
    names = set(messages.template_names()) | {p.stem for p in TEMPLATES.glob("_*.j2")}
    # "list": the separator of every list of names (、 in Chinese), one entry for all.
    names |= {"commands", "list"} | {name.removesuffix(".txt") for name in names}
    for message in extracted:
        if message.id:
            assert message.context and message.context.split(".")[0] in names, message.id


def limit_of(messages: Messages, name: str) -> int | None:
    """The limit a message's translator comment states (labels and toasts have one)."""
    found = re.search(r"L10N:.*at most (\d+) characters", messages.source(name))
    return int(found.group(1)) if found else None


def test_labels_and_toasts_tell_the_translator_their_limit(messages):
    for name in messages.template_names():
        if name.startswith("button_") or name.endswith("_toast"):
            assert limit_of(messages, name) in (LIMITS.button_label_length, LIMITS.toast_length)


# The longest values a label or a toast meets: a category name, a person's name, a count.
LONGEST = {"category_name": "长" * 12, "name": "长" * 8, "number": 99, "count": 99999}
# Values that choose among sentences: each is tried.
CHOICES = {
    "prize": ["first", "second", "third", "none"],
    "scope": ["all", "deadlines"],
    "several": [True, False],
    "on": [True, False],
    "outcome": ["received", "already", "closed", "other"],
    "refusal": [str(reason) for reason in Reason],
}


@pytest.mark.parametrize("locale", LOCALES)
def test_no_label_or_toast_exceeds_its_channel_limit(messages, locale):
    for name in messages.template_names():
        limit = limit_of(messages, name)
        if limit is None:
            continue
        used = messages.variables(name)
        values = {n: LONGEST.get(n, SPECIAL_VALUES.get(n, 1500)) for n in used}
        tries = [values] + [
            values | {key: option}
            for key, options in CHOICES.items()
            if key in used
            for option in options
        ]
        for given in tries:
            text = messages.plain(locale, name, **given)
            assert 0 < len(text) <= limit, (name, text)


def test_rules_and_formats_stay_in_code():
    for path in TEMPLATES.glob("*.j2"):
        text = path.read_text(encoding="utf-8")
        assert "strftime" not in text and "isoformat" not in text, path.name
        assert "1500" not in text, path.name  # the material limit: bot/core/commendation.py
        # A command is named through command("…"), so a channel can show its own way in.
        slash = re.findall(r"(?:^|[\s“（(])/[a-z{]\S*", text, re.M)
        assert not slash, (path.name, slash)


@pytest.mark.parametrize("locale", LOCALES)
def test_plain_flavour_has_no_markup_and_no_entities(messages, locale):
    values = {n: SPECIAL_VALUES.get(n, Hostile()) for n in messages.variables("pledge_saved")}
    html = messages.render(locale, "pledge_saved", **values)
    plain = messages.plain(locale, "pledge_saved", **values)
    assert "<b>" in html and "&lt;" in html
    assert "<b>" not in plain.replace(HOSTILE[:3], "") and "&lt;" not in plain
    assert HOSTILE[:40] in plain  # the value itself, unescaped


def test_an_installed_package_holds_every_template_and_catalogue():
    """pyproject's package data covers messages/ (a wheel, not only a checkout, finds them)."""
    import tomllib
    from pathlib import PurePosixPath

    root = TEMPLATES.parent
    config = tomllib.loads((root.parent / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["messages"]
    for path in root.rglob("*"):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".py":
            continue
        relative = PurePosixPath(path.relative_to(root).as_posix())
        assert any(
            relative.match(pattern) and len(relative.parts) == len(PurePosixPath(pattern).parts)
            for pattern in patterns
        ), relative
