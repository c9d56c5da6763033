"""Every template, every locale, hostile values: escaped, valid Telegram HTML, within limits."""

import json
import re
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from bot.config import LOCALES
from bot.core.ballots import Ballot
from bot.core.calendar import Deadline, Overview
from bot.core.commendation import Category as SelectionCategory
from bot.core.commendation import Evidence, Rules, Tallied
from bot.core.digests import BranchDigest, Digest, EvaluationFigures, SummaryFigures
from bot.core.evaluation import (
    ITEM_LIMIT,
    ITEMS_PER_KIND,
    BranchParticipation,
    Proposal,
    RoundSettings,
    TargetView,
)
from bot.core.evaluation_results import ItemResult, RoundResults, TargetResult, Total
from bot.core.pledges import DueProblem, DueRefusal, PledgeView
from bot.core.rectification import Reported
from bot.core.reviews import Material, Reviewee, Subject
from bot.core.summaries import BranchRow, Quarter, Readable, Window
from messages.render import (
    MESSAGE_LIMIT,
    TELEGRAM_TAGS,
    Messages,
    split,
    unmarked,
    wecom_markdown,
)
from storage.models import (
    Audience,
    Branch,
    Campaign,
    CampaignPhase,
    CampaignStep,
    Category,
    EvaluationRound,
    EvaluationTarget,
    Member,
    Nomination,
    Pledge,
    PledgeStatus,
    Rectification,
    RectificationProgress,
    RectificationStatus,
    Review,
    ReviewStatus,
    Role,
    Selection,
    StepKind,
    Summary,
    SummaryPledge,
)

HOSTILE = "<b>&amp; </a><script>alert(1)</script> & \"'" + "长" * 5000


class Hostile:
    """A value that is hostile however a template uses it: as text, attribute or list."""

    def __str__(self) -> str:
        return HOSTILE

    def __getattr__(self, name: str) -> "Hostile":
        if name.startswith("__"):
            raise AttributeError(name)
        return Hostile()

    def __getitem__(self, key) -> "Hostile":
        return Hostile()

    def __iter__(self):
        return iter([Hostile(), Hostile()])

    def __len__(self) -> int:
        return 2


NOW = datetime(2026, 1, 1, tzinfo=UTC)
STEP = CampaignStep(
    organisation_id=1,
    key="k",
    kind=StepKind.TASK,
    quarter=HOSTILE,
    name=HOSTILE,
    opens_on=date(2026, 1, 1),
    due_on=date(2026, 1, 9),
    audience=Audience.EVERYONE,
    text=HOSTILE,
)
PHASE = CampaignPhase(
    organisation_id=1,
    name=HOSTILE,
    position=0,
    starts_on=date(2026, 1, 1),
    ends_on=date(2026, 2, 1),
    announcement=HOSTILE,
    asks=HOSTILE,
)
CAMPAIGN = Campaign(organisation_id=1, name=HOSTILE, timezone="Asia/Shanghai", loaded_at=NOW)

PLEDGE = Pledge(
    id=1,
    organisation_id=1,
    branch_id=1,
    member_id=1,
    goal=HOSTILE,
    measures=HOSTILE,
    due_on=date(2026, 3, 1),
    status=PledgeStatus.NOT_KEPT,
    status_note=HOSTILE,
    created_by=1,
    created_at=NOW,
    updated_at=NOW,
)
SUMMARY = Summary(
    id=1,
    organisation_id=1,
    step_id=1,
    owner="member:1",
    member_id=1,
    branch_id=1,
    achievements=HOSTILE,
    problems=HOSTILE,
    causes=HOSTILE,
    next_steps=HOSTILE,
    late=True,
    created_at=NOW,
    updated_at=NOW,
)
REVIEW = SummaryPledge(summary_id=1, pledge_id=1, status=PledgeStatus.KEPT, note=HOSTILE)
MEMBER = Member(
    id=1, organisation_id=1, name=HOSTILE[:50], branch_id=1, created_at=NOW, updated_at=NOW
)

ITEM = Rectification(
    id=1,
    organisation_id=1,
    review_id=1,
    member_id=1,
    branch_id=1,
    text=HOSTILE[:1000],
    source="requirements",
    due_on=date(2026, 3, 1),
    status=RectificationStatus.DONE,
    done_note=HOSTILE[:1000],
    created_at=NOW,
    updated_at=NOW,
)
REVIEW_TEXT = Review(
    id=1,
    organisation_id=1,
    step_id=1,
    reviewee="member:1",
    member_id=1,
    branch_id=1,
    reviewer_id=2,
    status=ReviewStatus.SENT,
    achievements=HOSTILE[:1000],
    problems=HOSTILE[:1000],
    direction=HOSTILE[:1000],
    requirements=HOSTILE[:1000],
    track_problems=True,
    created_at=NOW,
    updated_at=NOW,
)
NOTE = RectificationProgress(rectification_id=1, author_id=1, note=HOSTILE[:1000], created_at=NOW)
BRANCH = Branch(id=1, organisation_id=1, name=HOSTILE[:100])

EVALUATION_SETTINGS = RoundSettings(scale=tuple(HOSTILE[:60] for _ in range(7)))
ROUND = EvaluationRound(
    id=1,
    organisation_id=1,
    quarter=HOSTILE[:100],
    opens_at=NOW,
    closes_at=NOW,
    settings=EVALUATION_SETTINGS.to_json(),
    created_at=NOW,
)
BALLOT = Ballot(
    "0a1b2c3d",
    1,
    "member:1",
    HOSTILE[:100],
    tuple(HOSTILE[:60] for _ in range(12)),
    EVALUATION_SETTINGS.scale,
    choices=[6] * 11,
    comment=HOSTILE[:300],
)
TARGET = EvaluationTarget(round_id=1, target="member:1", kind="ordinary", branch_id=1)
SHOWN = TargetResult(
    "member:1",
    HOSTILE[:100],
    "leading_cadre",
    1,
    99,
    True,
    [ItemResult(HOSTILE[:60], (1, 2, 3, 4, 5, 6, 7), 0.25, True)] * 12,
    0.25,
    True,
    [HOSTILE[:300]] * 30,
)
HIDDEN = TargetResult("branch:1", HOSTILE[:100], "branch", 1, 2, False, comments_withheld=True)

BRANCH_DIGEST = BranchDigest(
    1,
    HOSTILE[:100],
    members=500,
    summaries=SummaryFigures(500, 20, 3, [HOSTILE[:40]] * 480),
    pledges=Counter({"in_progress": 3, "kept": 2, "not_kept": 1}),
    evaluation=EvaluationFigures("open", 500, 20, 5, [HOSTILE[:40]] * 480),
    reviews=Counter({"sent": 2, "acknowledged": 1}),
    awaiting_review=4,
    rectification_open=3,
    rectification_overdue=1,
    rectification_reported=1,
    unreachable=[HOSTILE[:40]] * 100,
    not_joined=[HOSTILE[:40]] * 100,
)
DIGEST = Digest(
    date(2026, 1, 1),
    PHASE,
    [(STEP, 2)] * 4,
    Quarter(STEP, Window.OPEN),
    ROUND,
    "open",
    [BRANCH_DIGEST] * 3,
)
SELECTION = Selection(
    id=1,
    organisation_id=1,
    name=HOSTILE[:200],
    categories=json.dumps(
        [
            {"key": "member", "name": HOSTILE[:40], "of": "member"},
            {"key": "branch", "name": HOSTILE[:40], "of": "branch"},
        ]
    ),
    opens_at=NOW,
    closes_at=NOW,
    per_branch=2,
    prizes='{"first": 1, "second": 2, "third": 3}',
    graders="[1]",
    created_at=NOW,
)
NOMINATION = Nomination(
    id=1,
    selection_id=1,
    category="member",
    nominee="member:1",
    member_id=1,
    branch_id=1,
    material="长" * 1400 + HOSTILE[:100],
    nominated_by=1,
    prize="first",
    created_at=NOW,
    updated_at=NOW,
)
SPECIAL_VALUES = {
    "evaluation_round": ROUND,
    "ballot": BALLOT,
    "index": 11,
    "left": [TargetView(TARGET, HOSTILE[:100], HOSTILE[:100], False)] * 60,
    "total": 61,
    "state": "open",
    "as_member": True,
    "organiser": False,
    "refusal": "spent",
    "outcome": "already",
    "scope": "all",
    "group": "vendor",
    "label": HOSTILE[:100],
    "links": ["https://t.me/x?start=rate-<b>"] * 100,
    "code_groups": [("vendor", 1, HOSTILE[:100], 3)] * 20,
    # As the rules report them: with the limits their wording names.
    "problems": RoundSettings.parse({"scale": ["好"], "min_raters": 2})[1],
    "progress": [BranchParticipation(1, HOSTILE[:100], 9, 3, 2, [HOSTILE[:40]] * 80, 5, 1)] * 30,
    "proposal": Proposal(HOSTILE[:100], NOW),
    "settings": EVALUATION_SETTINGS,
    "branch_names": {1: HOSTILE[:100]},
    "results": RoundResults(
        ROUND,
        EVALUATION_SETTINGS,
        [SHOWN, HIDDEN] * 10,
        [Total(1, 3, 1, 0.5, True), Total(None, 0, 4, None, False)],
    ),
    "item": ITEM,
    "items": [ITEM] * 10,
    "carried": [(ITEM, HOSTILE[:500])] * 5,
    "raised": [HOSTILE[:1000]] * 10,
    "reported": [Reported(ITEM, HOSTILE[:40])] * 10,
    "review": REVIEW_TEXT,
    "reviewees": [
        Reviewee("member:1", HOSTILE[:40], Category.ELDERLY, HOSTILE[:40], True, REVIEW_TEXT, True),
        Reviewee("branch:1", HOSTILE[:40], None, HOSTILE[:40], False, None, False),
    ]
    * 50,
    "material": Material(
        Subject(MEMBER, BRANCH),
        [PLEDGE] * 10,
        Readable(SUMMARY, HOSTILE[:40], [(PLEDGE, REVIEW)] * 3, [(ITEM, HOSTILE[:500])] * 3),
        [ITEM] * 5,
        {1: [NOTE] * 3},
    ),
    "due_on": date(2026, 3, 1),
    "part": "requirements",
    "category": "elderly",
    "stage": "done",
    "number": 3,
    "rate": 0.6,
    "several": True,
    "on": True,
    "for_branch": False,
    "pledge": PLEDGE,
    "views": [PledgeView(PLEDGE, HOSTILE[:40], 3), PledgeView(PLEDGE, None, 0)] * 20,
    "summary": SUMMARY,
    "reviews": [(PLEDGE, REVIEW)] * 5,
    "rows": [BranchRow(MEMBER, SUMMARY), BranchRow(MEMBER, None)] * 100,
    "quarter": Quarter(STEP, Window.OPEN),
    "field": "achievements",
    "current": HOSTILE,
    "refused": HOSTILE,
    "reason": "window_closed",
    "flow": "summary",
    "length": 5000,
    "allowed": 1500,
    "limit": 1500,
    "text": HOSTILE,
    "evidence": True,
    "edited": True,
    "read_only": True,
    "resumed": True,
    "late": True,
    "branch": True,
    "step": STEP,
    "phase": PHASE,
    "days_left": 3,
    "behind": [HOSTILE[:40]] * 500,
    "unreachable": [HOSTILE[:40]] * 500,
    "view": Overview(CAMPAIGN, PHASE, PHASE, [Deadline(STEP, 2)] * 3),
    "elderly": False,
    "muted": True,
    "changed": True,
    "commands": [name for name in ("help", "invites", "lang", "cancel")],
    "roles": [Role.MEMBER],
    "expires": datetime(2026, 1, 1, tzinfo=UTC),
    "moment": datetime(2026, 1, 1, tzinfo=UTC),
    "invites": [("<b>支部", "</a>名", "https://t.me/x?start=<i>", datetime(2026, 1, 1, tzinfo=UTC))]
    * 40,
    "renewed": False,
    "selection": SELECTION,
    "rules": Rules.of(SELECTION),
    "selection_stage": "grading",
    "ours": [(NOMINATION, HOSTILE[:40])] * 5,
    "mine": [(NOMINATION, SELECTION)],
    "grader": True,
    "submitted": False,
    "winners": [(NOMINATION, HOSTILE[:40])] * 20,
    "tallied": [Tallied(NOMINATION, HOSTILE[:40], [(HOSTILE[:20], "first")] * 5, 3.0, 5)] * 20,
    "proposals": [(NOMINATION, HOSTILE[:40], "second")] * 20,
    "record": Evidence(5, 3, 4, 3, 0.8, False, 2, 1, 3, 2),
    "graded": 1,
    "nominees_total": 5,
    "nomination": NOMINATION,
    "chosen_category": SelectionCategory("member", HOSTILE[:40], "member"),
    "prize": "first",
    "chats": 2,
    "category_name": HOSTILE[:30],
    "digest": DIGEST,
    "branch_digest": BRANCH_DIGEST,
    "branches": [BRANCH_DIGEST] * 60,
    "weekly": True,
    "export_hint": True,
    "unchanged": False,
    "upload_limit": 2 * 1024 * 1024,
    "kind": "leading_cadre",
    "item_name": HOSTILE,
    "when": date(2026, 1, 1),
    "pledge_part": "goal",
    "due_refusal": DueRefusal(DueProblem.TOO_FAR, date(2026, 1, 1), date(2026, 3, 1)),
}


@pytest.fixture(scope="module")
def messages() -> Messages:
    from zoneinfo import ZoneInfo

    return Messages(timezone=ZoneInfo("Asia/Shanghai"))


# Where one name means another thing in one message: /invites' `branches` are the names of
# the branches a shared name is found in, not the digests' branch lines.
TEMPLATE_VALUES = {"invites_ambiguous": {"branches": [Hostile()] * 12}}


def values_for(messages: Messages, name: str) -> dict:
    values = {n: SPECIAL_VALUES.get(n, Hostile()) for n in messages.variables(name)}
    return values | TEMPLATE_VALUES.get(name, {})


def html_templates(messages: Messages) -> list[str]:
    return [n for n in messages.template_names() if not n.endswith(".txt")]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_escapes_hostile_values(messages, locale):
    for name in html_templates(messages):
        if name == "commands":
            continue
        rendered = messages.render(locale, name, **values_for(messages, name))
        assert "<script" not in rendered, name
        assert "</a><script" not in rendered, name
        for part in split(rendered):
            assert 0 < len(part) <= MESSAGE_LIMIT, name
            tags = re.findall(r"</?([a-z-]+)[^>]*>", part)
            assert set(tags) <= TELEGRAM_TAGS, (name, set(tags) - TELEGRAM_TAGS)
            assert_balanced(part, name)
            assert not re.search(r"&[#\w]*$", part.split("<")[-1]), name  # no cut entity


def assert_balanced(part: str, name: str) -> None:
    stack = []
    for closing, tag in re.findall(r"<(/?)([a-z-]+)[^>]*>", part):
        if closing:
            assert stack and stack[-1] == tag, (name, part[:200])
            stack.pop()
        else:
            stack.append(tag)
    assert not stack, name


def test_command_descriptions_exist_for_every_command(messages):
    from bot.core.access import COMMANDS

    for locale in LOCALES:
        descriptions = messages.command_descriptions(locale)
        for command, _ in COMMANDS:
            assert 0 < len(descriptions[command]) <= 256


def test_split_cuts_between_lines_and_reopens_tags():
    text = "<b>" + "\n".join(f"第{i}行 " + "字" * 50 for i in range(200)) + "</b>"
    parts = split(text, limit=1000)
    assert len(parts) > 5
    for part in parts:
        assert len(part) <= 1000
        assert part.startswith("<b>") and part.endswith("</b>")
    assert "".join(p.removeprefix("<b>").removesuffix("</b>") for p in parts).replace("\n", "") == (
        text.removeprefix("<b>").removesuffix("</b>").replace("\n", "")
    )


def test_split_never_cuts_an_entity_or_a_tag():
    text = ("&amp;" * 300) + ('<a href="https://example.org">x</a>' * 100)
    for part in split(text, limit=700):
        assert len(part) <= 700
        assert not re.search(r"&[a-z]*$", part) and not re.search(r"<[^>]*$", part)


def test_short_text_is_one_part():
    assert split("你好") == ["你好"]


def test_split_survives_a_tag_longer_than_half_a_message():
    text = '<a href="https://example.org/' + "x" * 3000 + '">链接</a>\n' + "字" * 3000
    parts = split(text)
    assert all(0 < len(part) <= MESSAGE_LIMIT for part in parts)
    assert "".join(parts).count("链接") == 1


def test_split_never_yields_an_empty_part():
    parts = split("\n" * 5000 + "x")
    assert parts == ["x"]


def test_split_counts_as_telegram_does_in_utf16_units():
    from messages.render import length

    text = "𠮷" * 4000  # 8,000 UTF-16 units, though Python counts 4,000 characters
    parts = split(text)
    assert len(parts) == 2 and all(length(part) <= MESSAGE_LIMIT for part in parts)
    assert "".join(parts) == text


def test_plain_text_for_labels_is_unescaped(messages):
    assert messages.plain("zh_CN", "invites_unknown_member", name="A&B <i>") == (
        "在您负责的名单中没有找到“A&B <i>”，请核对姓名后再试。"
    )


# --- the notation in the catalogues, the filters, the WeCom flavour ---------------------------


def test_a_value_that_spells_the_emphasis_notation_stays_words(messages):
    for locale in LOCALES:
        shown = messages.render(locale, "invites_unknown_member", name="[em]A[/em] <b>")
        assert "[em]A[/em] &lt;b&gt;" in shown and "<b>" not in shown


def test_percentages_are_formatted_per_locale_and_the_digests_flag_is_its_value(messages):
    closed = EvaluationFigures("closed", satisfaction=0.5, members_shown=6)
    closed.flagged, closed.flag_below = True, 0.7
    branch = BranchDigest(1, "市场管理党支部", members=6, evaluation=closed)
    digest = Digest(date(2026, 1, 1), None, [], None, ROUND, "closed", [branch])
    values = {"digest": digest, "branch_digest": branch, "weekly": False}
    values |= {"unchanged": False, "export_hint": False}
    zh = messages.render("zh_CN", "digest_branch", **values)
    en = messages.render("en", "digest_branch", **values)
    assert "党员满意率 50%（6 人达到公布人数） ⚠️ 低于 70%，建议补课" in zh
    assert "under 70%: a make-up session is suggested" in en
    assert messages.render("en", "chart_flag_line", rate=0.6).startswith("60% line")


def test_evaluation_problems_name_the_limits_the_rules_checked(messages):
    problems = RoundSettings.parse({"items": {"branch": ["甲"] * 13}, "flag_below": 2})[1]
    assert problems == ["evaluation_bad_items", "evaluation_bad_flag"]
    (fewest, most), longest = ITEMS_PER_KIND, ITEM_LIMIT
    zh = messages.render("zh_CN", "evaluation_problems", problems=problems)
    en = messages.render("en", "evaluation_problems", problems=problems)
    assert f"每类对象的评议项目要有 {fewest} 到 {most} 项，每项不超过 {longest} 字。" in zh
    assert f"flag_below 是 0 到 1 之间的比例，例如 {RoundSettings().flag_below}。" in zh
    assert f"needs {fewest} to {most} items of at most {longest} characters" in en


def test_wecom_markdown_marks_what_templates_ask_and_escapes_everything_else():
    html = (
        "<b>目标</b>：&lt;b&gt;*x* _y_ [z](u) `c` \\ &amp;\n# 标题\n > 引用\n"
        '<a href="https://example.org/a b">https://example.org/a b</a> '
        '<a href="发送「/start X」">发送「/start X」</a>\n'
        "<code>/pledge 目标 | 措施</code><pre>*原文*</pre>"
    )
    markdown = wecom_markdown(html)
    assert markdown == (
        "**目标**：\\<b>\\*x\\* \\_y\\_ \\[z\\](u) \\`c\\` \\\\ &\n\\# 标题\n \\> 引用\n"
        "[https://example.org/a b](https://example.org/a%20b) 发送「/start X」\n"
        "`/pledge 目标 | 措施`\\*原文\\*"
    )
    assert unmarked(markdown) == (
        "目标：<b>*x* _y_ [z](u) `c` \\ &\n# 标题\n > 引用\n"
        "https://example.org/a b 发送「/start X」\n/pledge 目标 | 措施*原文*"
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_in_wecom_no_hostile_value_becomes_markup_and_commands_are_keywords(messages, locale):
    for name in html_templates(messages):
        shown = messages.render_as("wecom", locale, name, **values_for(messages, name))
        assert not re.search(r"(?<!\\)<", shown), name  # every < of a value escaped
        assert len(re.findall(r"(?<!\\)\*\*", shown)) % 2 == 0, name
        assert "/rate" not in shown and "/pledges" not in shown, name
    help_text = messages.render_as(
        "wecom", locale, "pledge_saved", **values_for(messages, "pledge_saved")
    )
    assert "「承诺」" in help_text
