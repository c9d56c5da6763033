"""/summary and /summaries: write this quarter's self-summary by chat; a secretary follows up."""

import re

from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.core import access, summaries
from bot.core.access import Permission
from bot.core.summaries import CONFIRM, TEXT_FIELDS, TooLong, Window
from handlers.conversation import flow
from handlers.gate import Turn, gated
from storage import conversations
from storage.models import (
    ChatState,
    Pledge,
    PledgeStatus,
    Rectification,
    Summary,
    SummaryStatus,
)

_STATUSES = {
    "kept": PledgeStatus.KEPT,
    "in_progress": PledgeStatus.IN_PROGRESS,
    "not_kept": PledgeStatus.NOT_KEPT,
}


@gated(Permission.USE)
async def open_summary(turn: Turn) -> None:
    """Start, resume, reopen or read this quarter's summary (`/summary branch`: the branch's)."""
    for_branch = bool(turn.args) and turn.args[0] in ("branch", "支部")
    if for_branch and not access.speaks_for_branch(turn.actor):
        turn.reply("not_allowed")
        return
    quarter = await summaries.current_quarter(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    if quarter.window in (Window.NONE, Window.NOT_YET):
        turn.reply("summary_not_open", quarter=quarter)
        return
    existing = await summaries.find(
        turn.session, step_id=quarter.step.id, owner=summaries.owner_of(turn.actor, for_branch)
    )
    if existing is not None and existing.status == SummaryStatus.SUBMITTED:
        buttons = (
            [[(turn.label("button_edit"), f"sum:{existing.id}:edit")]]
            if quarter.window == Window.OPEN
            else None
        )
        await _show(
            turn, existing, "summary_view", buttons=buttons, closed=quarter.window != Window.OPEN
        )
        return
    summary = await summaries.start(
        turn.session, actor=turn.actor, quarter=quarter, for_branch=for_branch, now=turn.now
    )
    await _ask(turn, summary, resumed=existing is not None, late=quarter.window == Window.LATE)


async def _ask(turn: Turn, summary: Summary, *, resumed: bool = False, late: bool = False) -> None:
    """Put the current question, and remember that this member is in the summary flow."""
    await conversations.set_state(
        turn.session,
        member_id=turn.actor.member_id,
        flow="summary",
        subject_id=summary.id,
        stage=summary.stage,
        now=turn.now,
    )
    stage = summary.stage
    intro = {"resumed": resumed, "late": late}
    if stage.startswith("pledge:"):
        pledge = await turn.session.get(Pledge, int(stage.split(":")[1]))
        buttons = [
            [
                (turn.label(f"button_{code}"), f"sum:{summary.id}:p:{pledge.id}:{code}")
                for code in _STATUSES
            ]
        ]
        turn.reply("summary_ask_pledge", pledge=pledge, buttons=buttons, **intro)
    elif stage == CONFIRM:
        await _show(
            turn,
            summary,
            "summary_preview",
            buttons=[
                [(turn.label("button_submit"), f"sum:{summary.id}:submit")],
                [(turn.label("button_edit"), f"sum:{summary.id}:edit")],
            ],
        )
    else:
        current = (
            getattr(summary, stage, "")
            if stage in TEXT_FIELDS
            else (await summaries.notes_of(turn.session, summary)).on(stage)
        )
        skippable = stage not in summaries.REQUIRED or bool(current)
        buttons = (
            [[(turn.label("button_keep" if current else "button_skip"), f"sum:{summary.id}:skip")]]
            if skippable
            else None
        )
        kind, _, number = stage.partition(":")
        pledge = await turn.session.get(Pledge, int(number)) if kind == "pledge_note" else None
        item = await turn.session.get(Rectification, int(number)) if kind == "rect" else None
        turn.reply(
            "summary_ask_text",
            field=kind,
            current=current,
            pledge=pledge,
            item=item,
            refused=summary.refused_text or "",
            buttons=buttons,
            **intro,
        )


async def _show(
    turn: Turn, summary: Summary, template: str, *, buttons=None, closed: bool = False
) -> None:
    text = await summaries.readable(turn.session, summary)
    turn.reply(
        template,
        summary=summary,
        owner=text.owner,
        closed=closed,
        buttons=buttons,
        reviews=text.pledges,
        carried=text.carried,
    )


@flow("summary")
async def summary_step(turn: Turn, state: ChatState) -> None:
    """A typed answer to the current question."""
    summary = await summaries.own(turn.session, actor=turn.actor, summary_id=state.subject_id)
    if summary is None:
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
        turn.reply("button_stale")
        return
    text = turn.text.strip()
    if summary.stage.startswith("pledge:") or summary.stage == CONFIRM:
        turn.reply("summary_use_buttons")
        return
    if not text:
        turn.reply("text_needed")
        return
    refused = await summaries.answer_text(
        turn.session,
        summary=summary,
        text=text,
        limit=turn.runtime.settings.summary_limit,
        now=turn.now,
    )
    if isinstance(refused, TooLong):
        turn.reply(
            "text_too_long",
            length=refused.length,
            allowed=refused.allowed,
            text=text,
            limit=refused.limit,
        )
        return
    await _ask(turn, summary)


@gated(Permission.USE)
async def summary_button(turn: Turn) -> None:
    """A pledge status, skip, submit or edit button (its data is checked, never trusted)."""
    match = re.fullmatch(r"sum:(\d{1,9}):(p:(\d{1,9}):(\w+)|skip|submit|edit)", turn.callback_data)
    summary = await summaries.own(turn.session, actor=turn.actor, summary_id=int(match.group(1)))
    if summary is None:
        turn.notice("button_refused")
        return
    quarter = await summaries.current_quarter(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    action = match.group(2)
    if action == "edit":
        if not await summaries.reopen(turn.session, summary=summary, quarter=quarter, now=turn.now):
            turn.notice("summary_closed")
            return
        await _ask(turn, summary)
        return
    if summary.status == SummaryStatus.SUBMITTED:
        turn.notice("summary_already_submitted")
        return
    if action == "submit":
        if not await summaries.submit(
            turn.session, summary=summary, quarter=quarter, actor=turn.actor, now=turn.now
        ):
            turn.notice("summary_already_submitted")
            return
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
        turn.notice("saved")
        turn.reply("summary_submitted", summary=summary, name=turn.actor.name)
        return
    if action == "skip":
        moved = await summaries.skip(turn.session, summary=summary, now=turn.now)
    else:
        status = _STATUSES.get(match.group(4))
        moved = status is not None and await summaries.choose_status(
            turn.session,
            summary=summary,
            pledge_id=int(match.group(3)),
            status=status,
            now=turn.now,
        )
    if not moved:
        turn.notice("button_stale")
        return
    await _ask(turn, summary)


@gated(Permission.BRANCH_OVERSIGHT)
async def branch_summaries(turn: Turn) -> None:
    """The secretary's view: who has submitted, who is writing, who has not begun."""
    quarter = await summaries.current_quarter(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    if quarter.step is None or quarter.window == Window.NOT_YET:
        turn.reply("summary_not_open", quarter=quarter)
        return
    rows = await summaries.branch_overview(turn.session, actor=turn.actor, step_id=quarter.step.id)
    buttons = [
        [(row.member.name, f"sumv:{row.summary.id}")]
        for row in rows
        if row.summary is not None and row.summary.status == SummaryStatus.SUBMITTED
    ]
    turn.reply("summary_branch", rows=rows, step=quarter.step, buttons=buttons[:50])


@gated(Permission.USE)
async def read_summary(turn: Turn) -> None:
    """Read someone's submitted summary, if I am allowed to."""
    summary = await turn.session.get(Summary, int(turn.callback_data.split(":")[1]))
    if (
        summary is None
        or summary.status != SummaryStatus.SUBMITTED
        or not await summaries.may_read(turn.session, actor=turn.actor, summary=summary)
    ):
        turn.notice("button_refused")
        return
    await _show(turn, summary, "summary_view")


def handlers() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("summary", open_summary, filters=private),
        CommandHandler("summaries", branch_summaries, filters=private),
        CallbackQueryHandler(
            summary_button, pattern=r"^sum:\d{1,9}:(p:\d{1,9}:\w{1,12}|skip|submit|edit)$"
        ),
        CallbackQueryHandler(read_summary, pattern=r"^sumv:\d{1,9}$"),
    ]
