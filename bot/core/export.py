"""The quarter's figures as an .xlsx workbook: members, pledges, self-summaries, evaluation
results, reviews and rectification, one sheet each, for one branch or all of them.

Headings and status words come from the caller (the `export_headings` template), so the
workbook speaks the reader's language. Evaluation results carry only what the round's
thresholds let anyone see. Written in openpyxl's write-only mode: rows stream to the file.
"""

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import digests, evaluation, evaluation_results
from bot.core.access import Actor
from bot.core.calendar import organisation_today, organisation_zone
from bot.core.cells import inert
from bot.core.evaluation import RoundState
from bot.core.summaries import current_quarter
from storage import accounts
from storage import calendar as calendar_queries
from storage import evaluation as evaluation_queries
from storage.models import (
    Member,
    Pledge,
    PledgeProgress,
    PledgeStatus,
    Rectification,
    RectificationProgress,
    Review,
    ReviewStatus,
    StepKind,
    Summary,
    SummaryPledge,
    SummaryRectification,
    SummaryStatus,
)

# Excel's own limit on a cell's text.
CELL_LIMIT = 32_767


@dataclass(frozen=True)
class ExportScope:
    organisation_id: int
    branch_id: int | None  # None: every branch
    quarter: str | None  # None: the quarter of the current self-summary step


class UnknownQuarter(Exception):
    """No self-summary step of the campaign is for this quarter."""


async def quarter_step(session: AsyncSession, *, organisation_id: int, quarter: str | None, now):
    """The self-summary step of `quarter`, or (None) the current one; None if there is none."""
    if quarter is None:
        return (await current_quarter(session, organisation_id=organisation_id, now=now)).step
    for step in await calendar_queries.list_steps(session, organisation_id=organisation_id):
        if step.kind == StepKind.SUMMARY and step.quarter == quarter:
            return step
    raise UnknownQuarter(quarter)


def _text(value) -> str | int | float | None:
    return inert(value[:CELL_LIMIT] if isinstance(value, str) else value)


class _Sheets:
    def __init__(self, headings: dict) -> None:
        from openpyxl import Workbook  # loaded with the first workbook, not with the bot

        self.book = Workbook(write_only=True)
        self.headings = headings

    def sheet(self, name: str, more_columns: tuple[str, ...] = ()):
        """A new sheet with its heading row (the template's columns, then `more_columns`)."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Alignment, Font
        from openpyxl.utils import get_column_letter

        sheet = self.book.create_sheet(self.headings["sheets"][name])
        columns = [*self.headings["columns"][name], *more_columns]
        sheet.freeze_panes = "A2"
        for index, title in enumerate(columns):
            # Wide enough for the heading, wider for the columns of free text.
            width = 40 if title in self.headings["wide"] else max(10, 2 * len(title) + 2)
            sheet.column_dimensions[get_column_letter(index + 1)].width = width
        bold = []
        for title in columns:
            cell = WriteOnlyCell(sheet, value=title)
            cell.font = Font(bold=True)
            cell.alignment = Alignment(vertical="center")
            bold.append(cell)
        sheet.append(bold)
        return sheet

    def save(self) -> bytes:
        out = io.BytesIO()
        self.book.save(out)
        return out.getvalue()


def _percent(sheet, share: float):
    """A share as Excel shows a percentage (83%), the number itself kept exact."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=share)
    cell.number_format = "0%"
    return cell


def _local(moment: datetime | None, zone) -> datetime | None:
    """Excel has no time zones: local time, as the reader reads it."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


@dataclass
class _Export:
    """What every sheet needs: the session, the scope and the words to write."""

    session: AsyncSession
    scope: ExportScope
    sheets: _Sheets
    zone: object
    now: datetime
    branches: dict[int, str]  # branch id → name
    members: list[Member]
    names: dict[int, str] = field(default_factory=dict)  # member id → name

    def __post_init__(self) -> None:
        self.names = {m.id: m.name for m in self.members}

    @property
    def words(self) -> dict:
        return self.sheets.headings["words"]

    def in_scope(self, table) -> list:
        """The conditions that keep a query to the organisation and, if set, the branch."""
        conditions = [table.organisation_id == self.scope.organisation_id]
        if self.scope.branch_id is not None:
            conditions.append(table.branch_id == self.scope.branch_id)
        return conditions

    def branch(self, branch_id: int) -> str:
        return _text(self.branches.get(branch_id, ""))

    def owner(self, member_id: int | None) -> str:
        """A member's name, or "(the branch)" for what belongs to the branch itself."""
        if member_id is None:
            return self.words["branch"]
        return _text(self.names.get(member_id, ""))


async def workbook(
    session: AsyncSession, *, scope: ExportScope, headings: dict, now: datetime
) -> bytes:
    """The workbook's bytes, its times in the organisation's timezone. Raises UnknownQuarter
    for a quarter the campaign does not have."""
    step = await quarter_step(
        session, organisation_id=scope.organisation_id, quarter=scope.quarter, now=now
    )
    rows = (
        await session.exec(
            select(Member, accounts.is_bound(Member.id), accounts.is_unreachable(Member.id))
            .where(
                Member.organisation_id == scope.organisation_id,
                Member.active,
                *([Member.branch_id == scope.branch_id] if scope.branch_id is not None else []),
            )
            .order_by(Member.branch_id, Member.id)
        )
    ).all()
    export = _Export(
        session,
        scope,
        _Sheets(headings),
        await organisation_zone(session, organisation_id=scope.organisation_id),
        now,
        await evaluation.branch_names(session, organisation_id=scope.organisation_id),
        [member for member, _bound, _unreachable in rows],
    )
    _members_sheet(export, {member.id: (bound, unreachable) for member, bound, unreachable in rows})
    await _pledges_sheet(export)
    await _summaries_sheet(export, step)
    await _evaluation_sheet(export)
    await _reviews_sheet(export, step)
    await _rectification_sheet(export)
    return export.sheets.save()


def _members_sheet(export: _Export, reach: dict[int, tuple[bool, bool]]) -> None:
    """`reach`: member id → (bound on some channel, blocked the bot on every one)."""
    words, sheet = export.words, export.sheets.sheet("members")
    for m in export.members:
        bound, unreachable = reach[m.id]
        sheet.append(
            [
                export.branch(m.branch_id),
                _text(m.name),
                words["categories"].get(m.category, m.category),
                " ".join(words["roles"].get(r, r) for r in m.roles.split() if r != "member"),
                words["yes"] if bound else words["no"],
                words["unreachable"] if unreachable else "",
            ]
        )


async def _pledges_sheet(export: _Export) -> None:
    pledges = (
        await export.session.exec(
            select(Pledge)
            .where(*export.in_scope(Pledge), Pledge.status != PledgeStatus.WITHDRAWN)
            .order_by(Pledge.branch_id, Pledge.member_id, Pledge.id)
        )
    ).all()
    progress = Counter(
        (
            await export.session.exec(
                select(PledgeProgress.pledge_id).where(
                    col(PledgeProgress.pledge_id).in_([p.id for p in pledges])
                )
            )
        ).all()
    )
    sheet = export.sheets.sheet("pledges")
    for p in pledges:
        sheet.append(
            [
                export.branch(p.branch_id),
                export.owner(p.member_id),
                _text(p.goal),
                _text(p.measures),
                p.due_on,
                export.words["pledge"][p.status],
                _text(p.status_note or ""),
                progress[p.id],
            ]
        )


async def _summaries_sheet(export: _Export, step) -> None:
    """Every member and every branch of the scope, with their summary or its absence."""
    sheet = export.sheets.sheet("summaries")
    if step is None:
        return
    words = export.words
    summaries = {
        s.owner: s
        for s in (
            await export.session.exec(select(Summary).where(Summary.step_id == step.id))
        ).all()
    }
    owners = [(f"member:{m.id}", m.branch_id, m.id) for m in export.members]
    owners += [
        (f"branch:{bid}", bid, None)
        for bid in sorted(export.branches)
        if export.scope.branch_id in (None, bid)
    ]
    looked_back = await _looked_back(export, [s.id for s in summaries.values()])
    for owner, bid, member_id in sorted(owners, key=lambda o: (o[1], o[2] is not None)):
        summary = summaries.get(owner)
        submitted = summary is not None and summary.status == SummaryStatus.SUBMITTED
        status = "submitted" if submitted else "draft" if summary else "missing"
        sheet.append(
            [
                export.branch(bid),
                export.owner(member_id),
                _text(step.quarter or ""),
                words["summary"][status],
                words["yes"] if submitted and summary.late else "",
                _local(summary.submitted_at, export.zone) if submitted else None,
                *(_text(getattr(summary, f)) if submitted else None for f in _SUMMARY_FIELDS),
                _text("\n".join(looked_back.get(summary.id, []))) if submitted else None,
            ]
        )


async def _looked_back(export: _Export, summary_ids: list[int]) -> dict[int, list[str]]:
    """Summary id → its 回头看 lines: each pledge with what became of it, then each
    rectification item carried over, with the member's note (two queries)."""
    words, lines = export.words["look_back"], {}

    def noted(line: str, note: str) -> str:
        return line + (words["note"] % note if note else "")

    pledges = await export.session.exec(
        select(SummaryPledge.summary_id, Pledge.goal, SummaryPledge.status, SummaryPledge.note)
        .join(Pledge, Pledge.id == SummaryPledge.pledge_id)
        .where(col(SummaryPledge.summary_id).in_(summary_ids))
        .order_by(SummaryPledge.summary_id, Pledge.id)
    )
    for summary_id, goal, status, note in pledges.all():
        line = words["pledge"] % (goal, export.words["pledge"][status])
        lines.setdefault(summary_id, []).append(noted(line, note))
    items = await export.session.exec(
        select(SummaryRectification.summary_id, Rectification.text, SummaryRectification.note)
        .join(Rectification, Rectification.id == SummaryRectification.rectification_id)
        .where(col(SummaryRectification.summary_id).in_(summary_ids))
        .order_by(SummaryRectification.summary_id, Rectification.id)
    )
    for summary_id, text, note in items.all():
        lines.setdefault(summary_id, []).append(noted(words["rectification"] % text, note))
    return lines


async def _reviews_sheet(export: _Export, step) -> None:
    """Reviews sent this quarter (drafts are the reviewer's own until sent)."""
    sheet = export.sheets.sheet("reviews")
    if step is None:
        return
    reviews = (
        await export.session.exec(
            select(Review)
            .where(
                *export.in_scope(Review),
                Review.step_id == step.id,
                Review.status != ReviewStatus.DRAFT,
            )
            .order_by(Review.branch_id, Review.id)
        )
    ).all()
    # Reviewers may sit in another branch than the one exported.
    reviewers = await _names(export.session, {r.reviewer_id for r in reviews})
    for r in reviews:
        sheet.append(
            [
                export.branch(r.branch_id),
                export.owner(r.member_id),
                _text(reviewers.get(r.reviewer_id, "")),
                export.words["review"][r.status],
                _local(r.sent_at, export.zone),
                _local(r.acknowledged_at, export.zone),
                *(_text(getattr(r, f)) for f in _REVIEW_FIELDS),
            ]
        )


async def _rectification_sheet(export: _Export) -> None:
    items = (
        await export.session.exec(
            select(Rectification)
            .where(*export.in_scope(Rectification))
            .order_by(Rectification.branch_id, Rectification.due_on, Rectification.id)
        )
    ).all()
    notes: dict[int, list[str]] = {}
    progress = await export.session.exec(
        select(RectificationProgress)
        .where(
            col(RectificationProgress.rectification_id).in_([i.id for i in items]),
            RectificationProgress.note != "",
        )
        .order_by(RectificationProgress.rectification_id, RectificationProgress.id)
    )
    for entry in progress.all():
        when = _local(entry.created_at, export.zone).strftime("%Y-%m-%d")
        notes.setdefault(entry.rectification_id, []).append(f"{when} {entry.note}")
    sheet = export.sheets.sheet("rectification")
    for item in items:
        sheet.append(
            [
                export.branch(item.branch_id),
                export.owner(item.member_id),
                _text(item.text),
                item.due_on,
                export.words["rectification"][item.status],
                _text(item.done_note),
                _text("\n".join(notes.get(item.id, []))),
            ]
        )


_SUMMARY_FIELDS = ("achievements", "problems", "causes", "next_steps")
_REVIEW_FIELDS = ("achievements", "problems", "direction", "requirements")


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.exec(select(Member.id, Member.name).where(col(Member.id).in_(ids)))
    return dict(rows.all())


async def _evaluation_sheet(export: _Export) -> None:
    """The quarter's round (or the last closed one): figures only for targets over the
    threshold, a "withheld" line for the others."""
    words, scope = export.words, export.scope
    closed = [
        r
        for r in await evaluation_queries.rounds_of(
            export.session, organisation_id=scope.organisation_id
        )
        if evaluation.state_of(r, export.now) == RoundState.CLOSED
        and (scope.quarter is None or r.quarter == scope.quarter)
    ]
    if not closed:
        export.sheets.sheet("evaluation")
        return
    evaluation_round = max(closed, key=lambda r: r.closed_at or r.closes_at)
    found = await evaluation_results.results(
        export.session, evaluation_round=evaluation_round, branch_id=scope.branch_id
    )
    sheet = export.sheets.sheet("evaluation", (*found.settings.scale, words["satisfaction"]))
    levels = len(found.settings.scale)
    for target in found.targets:
        lead = [
            export.branch(target.branch_id),
            _text(target.name),
            words["categories"].get(target.kind, target.kind),
            _text(evaluation_round.quarter),
        ]
        if not target.shown:
            sheet.append([*lead, words["withheld"], *([None] * (levels + 1))])
            continue
        for item in target.items:
            sheet.append(
                [*lead, _text(item.name), *item.counts, _percent(sheet, item.satisfaction)]
            )
        sheet.append(
            [*lead, words["overall"], *([None] * levels), _percent(sheet, target.satisfaction)]
        )


@dataclass(frozen=True)
class Exported:
    """One reader's workbook: their branch or every branch, and what to name it after."""

    content: bytes
    quarter: str  # the quarter it holds, however it was asked for ("" with no summary step)
    day: date  # the organisation's date today


async def for_reader(
    session: AsyncSession, *, actor: Actor, quarter: str | None, headings: dict, now: datetime
) -> Exported:
    """The workbook of `quarter` (None: the current one) for this person; raises
    UnknownQuarter for a quarter the campaign does not have."""
    scope = ExportScope(actor.organisation_id, digests.scope_of(actor), quarter)
    content = await workbook(session, scope=scope, headings=headings, now=now)
    step = await quarter_step(
        session, organisation_id=scope.organisation_id, quarter=quarter, now=now
    )
    today = await organisation_today(session, organisation_id=actor.organisation_id, now=now)
    return Exported(content, step.quarter if step else "", today)
