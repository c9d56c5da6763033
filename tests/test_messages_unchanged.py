"""Every message renders the same text as before its move into catalogues (issue 18).

tests/payloads/messages_before.json holds each message rendered in both locales, twice (the
values of test_messages.py, and the same with every flag flipped), written once before the move.
Long hostile values are shortened in the comparison so the file stays readable.
"""

import json
import re
from pathlib import Path

import pytest
from test_messages import HOSTILE, SPECIAL_VALUES, Hostile

from bot.config import LOCALES
from bot.core.digests import UNCHANGED_BRANCHES

FIXTURE = Path(__file__).parent / "payloads" / "messages_before.json"
_ESCAPED = "&lt;b&gt;&amp;amp; &lt;/a&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;&#39;"
FLIPPED = {name: not value for name, value in SPECIAL_VALUES.items() if isinstance(value, bool)}
FLIPPED |= {
    "part": "achievements",
    "category": "leading_cadre",
    "state": "closed",
    "selection_stage": "nominating",
    "refusal": "not_open",
    "outcome": "done",
    "reason": "too_long",
    "scope": "deadlines",
    "flow": "review",
    "field": "problems",
    "stage": "grading",
    "kind": "branch",
    "days_left": 0,
    "number": 1,
    "pledge_part": "measures",
}
VARIANTS = {"given": {}, "flipped": FLIPPED}


def shorten(text: str) -> str:
    """Hostile values and their repetitions, written short."""
    text = text.replace(_ESCAPED, "‹H›").replace(HOSTILE[:44], "‹h›")
    text = text.replace(_ESCAPED[:-12], "‹e›")
    text = re.sub(r"长{3,}", lambda m: f"长×{len(m.group())}", text)
    text = re.sub(
        r"(.{2,80}?)\1{3,}", lambda m: f"‹{m.group(1)}×{len(m.group()) // len(m.group(1))}›", text
    )
    lines, out = text.split("\n"), []
    for line in lines:
        if out and out[-1][0] == line:
            out[-1][1] += 1
        else:
            out.append([line, 1])
    return "\n".join(line if n == 1 else f"{line} ‹×{n}›" for line, n in out)


# invites_ambiguous lists branch names; test_messages.py gives it the digest's branches.
OVERRIDES = {"invites_ambiguous": {"branches": [HOSTILE[:40]] * 3}}
# What callers pass in one variant only: an unchanged week's digest of every branch gets the
# branches most behind, no longer all of them cut in the template (bot/core/digest_notices.py).
VARIANT_OVERRIDES = {
    ("digest_organisation", "flipped"): {
        "branches": SPECIAL_VALUES["branches"][:UNCHANGED_BRANCHES]
    },
}


def value(message: str, name: str, variant: str):
    given = OVERRIDES.get(message, {}) | VARIANTS[variant]
    given |= VARIANT_OVERRIDES.get((message, variant), {})
    return given.get(name, SPECIAL_VALUES.get(name, Hostile()))


def render_all(messages, names: dict[str, list[str]]) -> dict:
    rendered = {}
    for name, used in sorted(names.items()):
        used = set(used) | messages.variables(name)
        for variant in VARIANTS:
            for locale in LOCALES:
                values = {n: value(name, n, variant) for n in used}
                try:
                    text = messages.render(locale, name, **values)
                except Exception as error:  # a message that needs a value of another shape
                    text = f"‹error {type(error).__name__}›"
                rendered[f"{name} {variant} {locale}"] = shorten(text)
    return rendered


def words(messages) -> dict:
    out = {}
    for locale in LOCALES:
        out[locale] = json.loads(
            json.dumps(
                {
                    "export": messages.export_headings(locale),
                    "commendation": messages.commendation_words(locale),
                    "cli": messages.words(
                        locale, "_cli", ("help", "usage", "titles", "errors", "error")
                    ),
                    "commands": messages.command_descriptions(locale),
                },
                default=str,
                ensure_ascii=False,
            )
        )
    return out


@pytest.fixture(scope="module")
def messages():
    from zoneinfo import ZoneInfo

    from messages.render import Messages

    return Messages(timezone=ZoneInfo("Asia/Shanghai"))


# English changed on purpose: dates in words (1 March 2026, not 2026-03-01), a space before a
# branch's member count in the digests, an apostrophe no longer written as an entity, the
# material limit passed in (1500, no longer 1,500 spelled in the words), plural forms (1 item).
ENGLISH_CHANGED = {
    "commendation_material_too_large",
    "digest_branch",
    "digest_organisation",
    "help",
    "phase",
    "pledge_branch_list",
    "pledge_detail",
    "pledge_list",
    "pledge_saved",
    "pledge_status_set",
    "rectification_due_soon",
    "rectification_overdue",
    "rectification_reopened",
    "rectify_list",
    "reminder_phase_start",
    "reminder_step_overdue",
    "review_material",
    "review_not_open",
    "review_preview",
    "review_received",
    "review_sent",
    "summary_branch",
    "summary_not_open",
    "welcome",
    "welcome_back",
}


def test_every_message_renders_as_before(messages):
    before = json.loads(FIXTURE.read_text(encoding="utf-8"))
    after = render_all(messages, before["values"])
    changed = [
        key
        for key in before["rendered"]
        if before["rendered"][key] != after.get(key)
        and not (key.endswith(" en") and key.split()[0] in ENGLISH_CHANGED)
    ]
    assert not changed, changed[:20]


def test_words_are_as_before(messages):
    before = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert words(messages)["zh_CN"] == before["words"]["zh_CN"]
