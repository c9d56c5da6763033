"""The translators' catalogues: complete, current, within the channels' limits, markup neutral."""

import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from test_messages import HOSTILE, SPECIAL_VALUES, Hostile, html_templates, values_for

from bot.channels.telegram.markup import LIMITS
from bot.channels.wecom.channel import LIMITS as WECOM
from bot.config import LOCALES
from bot.core.commendation import Reason
from messages import catalogues
from messages.render import EMPHASIS, SOURCE_LOCALE, TEMPLATES, Messages


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


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_reaches_wecom_in_parts_within_its_bytes(messages, locale):
    """WeCom takes 2,048 UTF-8 bytes of markdown a message: every message, with the longest
    values, is cut into parts within that, each part's emphasis closed (`**` paired)."""
    assert WECOM.flavour == "wecom" and WECOM.counted_in == "bytes"
    for name in html_templates(messages):
        values = values_for(messages, name)
        parts = messages.render_parts_as("wecom", WECOM.text_length, locale, name, **values)
        for part in parts:
            assert 0 < len(part.encode()) <= WECOM.text_length, name
            assert len(re.findall(r"(?<!\\)\*\*", part)) % 2 == 0, (name, part[:200])


def test_rules_and_formats_stay_in_code():
    for path in TEMPLATES.glob("*.j2"):
        text = path.read_text(encoding="utf-8")
        assert "strftime" not in text and "isoformat" not in text, path.name
        assert "1500" not in text, path.name  # the material limit: bot/core/commendation.py
        # Percentages through the `percent` filter, sizes through `megabytes`, flags as values.
        for spelled in ('"%.0f"', "* 100", "六成", " MB"):
            assert spelled not in text, (path.name, spelled)
        # A command is named through command("…"), so a channel can show its own way in.
        slash = re.findall(r"(?<![\w/:.[])/[a-z{]\S*", text)
        assert not slash, (path.name, slash)


# Entries whose digits show what to type or name a thing, not a rule: a date's or a command's
# format, a document's number, a port. (context, how the source begins)
EXAMPLES = {
    ("_cli.reviewers", ""),  # 第 004 号文件: the seed document's number
    ("_evaluation.evaluation_bad_date", ""),
    ("cli_bot_api_unreachable", ""),  # api.telegram.org's port 443
    ("cli_campaign_report.not_a_date", ""),
    ("cli_commendation.bad_input", ""),  # 名额如 1,2,3: the form of --prizes
    ("console_bad_clock", ""),
    ("console_help", ""),
    ("console_intro", ":who"),  # :clock +3d
    ("export_unknown_quarter", ""),
    ("pledge_ask_due", ""),
    ("pledge_bad_date", ""),
    ("pledge_format", ""),
}
_PLACEHOLDER = re.compile(r"%\(\w+\)s|\\\d")  # %(most)s and a regular expression's \1


def spelled_numbers(catalog) -> dict[tuple[str, str], list[str]]:
    """The digits in each source string that is not an example."""
    allowed = EXAMPLES
    found = {}
    for message in catalog:
        for source in message.id if isinstance(message.id, tuple | list) else (message.id,):
            if not source or any(
                message.context == context and source.startswith(beginning)
                for context, beginning in allowed
            ):
                continue
            digits = re.findall(r"\d+", _PLACEHOLDER.sub("", source))
            if digits:
                found[message.context, source] = digits
    return found


def test_templates_spell_no_limit(extracted):
    """Limits, thresholds and caps are values from the code; a template spells none."""
    assert not spelled_numbers(extracted), spelled_numbers(extracted)
    for path in TEMPLATES.glob("*.j2"):
        # How many of a list a message shows is the renderer's `shown`, how much of a value its
        # `cut`, and a size is formatted by a filter: never a number written in place.
        text = path.read_text(encoding="utf-8")
        slices = [s for s in re.findall(r"\[-?\d*:-?\d*\]", text) if re.search(r"\d", s)]
        spelled = re.findall(r"truncate\(\d|round\(\d|/ ?1024", text)
        assert not slices and not spelled, (path.name, slices, spelled)


def test_the_limit_check_catches_a_spelled_limit():
    catalog = Catalog(locale=SOURCE_LOCALE)
    catalog.add("评价等级要有 2 到 %(most)s 个。", context="_evaluation.evaluation_bad_scale")
    catalog.add("最多 %(most)s 个，例如 \\1", context="_evaluation.fine")
    assert spelled_numbers(catalog) == {
        ("_evaluation.evaluation_bad_scale", "评价等级要有 2 到 %(most)s 个。"): ["2"]
    }


# `[em]`, `[/em]` and anything a translator may have meant as one (`[EM]`, `[ /em]`, `[em`).
EMPHASIS_LIKE = re.compile(r"\[\s*/?\s*em\b[^\]\[]{0,3}\]?", re.I)


def emphasis_pairs(words: str) -> int | None:
    """How many `[em]…[/em]` the words hold; None if a marker is misspelt, unpaired or nested."""
    pairs, open_ = 0, False
    for mark in EMPHASIS_LIKE.findall(words):
        if mark == EMPHASIS[0] and not open_:
            open_ = True
        elif mark == EMPHASIS[1] and open_:
            open_, pairs = False, pairs + 1
        else:
            return None
    return None if open_ else pairs


def test_the_emphasis_check_catches_a_translators_slips():
    assert emphasis_pairs("[em]目标[/em]：%(goal)s，[em]措施[/em]") == 2
    assert emphasis_pairs("no emphasis") == 0
    for slip in (
        "[em]Goal: %(goal)s",
        "Goal[/em]",
        "[em][em]x[/em][/em]",
        "[EM]x[/EM]",
        "[em]x[/ em]",
        "[em x[/em]",
        "[/em]x[em]",
    ):
        assert emphasis_pairs(slip) is None, slip


def test_every_translation_keeps_its_sources_emphasis_and_no_channel_markup(extracted):
    """A translator writes `[em]…[/em]` where the source has it (rendered by each channel:
    bold in Telegram, `**…**` in WeCom, nothing in plain text), and no channel's own markup."""
    markup = re.compile(r"</?[a-z][a-z-]*[\s>/]|\*\*|\]\(|t\.me/|&[#\w]+;")
    for locale in catalogues.translated_locales():
        for message in catalogues.read(catalogues.po_path(locale), locale):
            if not message.id:
                continue
            sources = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            wanted = emphasis_pairs(sources[0])
            assert wanted is not None, ("source", message.context, sources[0])
            for words in (*sources, *strings):
                assert emphasis_pairs(words) == wanted, (locale, message.context, words)
                assert not markup.search(words), (locale, message.context, words)


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
