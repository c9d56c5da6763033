"""/summary and /summaries: write this quarter's self-summary by chat; a secretary follows up."""

import json

from bot.core import access, summaries
from bot.core.access import Permission
from bot.core.summaries import (
    CONFIRM,
    PLEDGE_STATUSES,
    ReadSummary,
    SummaryPledgeStatus,
    SummaryStep,
    Window,
)
from handlers.conversation import flow
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage import conversations
from storage.conversations import Conversation
from storage.models import Summary, SummaryStatus


@gated(Permission.USE, on_loop=True)
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
            [[(turn.label("button_edit"), SummaryStep(existing.id, "edit"))]]
            if quarter.window == Window.OPEN
            else None
        )
        await _show(
            turn, existing, "summary_view", buttons=buttons, closed=quarter.window != Window.OPEN
        )
        return
    summary, questions = await summaries.start(
        turn.session,
        actor=turn.actor,
        quarter=quarter,
        for_branch=for_branch,
        existing=existing,
        now=turn.now,
    )
    await _ask(
        turn,
        summary,
        questions=questions,
        resumed=existing is not None,
        late=quarter.window == Window.LATE,
    )


def _form(state: Conversation | None, summary: Summary) -> list[str] | None:
    """The summary's questions as the conversation state remembers them, if it is about it."""
    if state is None or state.flow != "summary" or state.subject_id != summary.id:
        return None
    return json.loads(state.data).get("form")


async def _stages(turn: Turn, summary: Summary, state: Conversation | None) -> list[str]:
    return _form(state, summary) or await summaries.form(turn.session, summary, actor=turn.actor)


async def _ask(
    turn: Turn,
    summary: Summary,
    *,
    state: Conversation | None = None,
    questions: list[str] | None = None,
    notes: dict[str, str] | None = None,
    resumed: bool = False,
    late: bool = False,
) -> None:
    """Put the current question. Opening the summary (no `state` given) remembers that this
    member is in the summary flow and its form (`questions`), read once then: the questions
    (pledges, carried-over items) stay as they were when it was opened; the summary's own
    stage says where it stands, so an answer writes nothing more here."""
    if _form(state, summary) is None:
        await conversations.set_state(
            turn.session,
            member_id=turn.actor.member_id,
            flow="summary",
            subject_id=summary.id,
            stage=summary.stage,
            now=turn.now,
            data={"form": questions or await _stages(turn, summary, state)},
        )
    intro = {"resumed": resumed, "late": late}
    if pledge := await summaries.pledge_asked(turn.session, summary=summary):
        buttons = [
            [
                (turn.label(f"button_{code}"), SummaryPledgeStatus(summary.id, pledge.id, code))
                for code in PLEDGE_STATUSES
            ]
        ]
        turn.reply("summary_ask_pledge", pledge=pledge, buttons=buttons, **intro)
    elif summary.stage == CONFIRM:
        await _show(
            turn,
            summary,
            "summary_preview",
            buttons=[
                [(turn.label("button_submit"), SummaryStep(summary.id, "submit"))],
                [(turn.label("button_edit"), SummaryStep(summary.id, "edit"))],
            ],
        )
    else:
        question = await summaries.question(turn.session, summary=summary, notes=notes)
        skip = turn.label("button_keep" if question.current else "button_skip")
        buttons = [[(skip, SummaryStep(summary.id, "skip"))]] if question.skippable else None
        turn.reply(
            "summary_ask_text",
            field=question.field,
            current=question.current,
            pledge=question.pledge,
            item=question.item,
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
async def summary_step(turn: Turn, state: Conversation) -> None:
    """A typed answer to the current question: one read (the summary with its notes), one
    write (the answer with the next question)."""
    draft = await summaries.draft(turn.session, actor=turn.actor, summary_id=state.subject_id)
    if draft is None:
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
        turn.reply("button_stale")
        return
    summary = draft.summary
    text = turn.text.strip()
    if summary.stage.startswith("pledge:") or summary.stage == CONFIRM:
        turn.reply("summary_use_buttons")
        return
    if not text:
        turn.reply("text_needed")
        return
    refused = await summaries.answer_text(
        turn.session,
        draft=draft,
        stages=await _stages(turn, summary, state),
        text=text,
        limit=turn.runtime.settings.summary_limit,
        now=turn.now,
    )
    if refused is not None:
        turn.refuse(refused)
        return
    await _ask(turn, summary, state=state, notes=draft.notes)


@gated(Permission.USE, on_loop=True)
async def summary_button(turn: Turn) -> None:
    """A pledge status, skip, submit or edit button (its data is checked, never trusted)."""
    pressed = turn.action
    action = pressed.step if isinstance(pressed, SummaryStep) else "status"
    if action in ("edit", "submit"):
        await _edit_or_submit(turn, pressed.summary_id, action)
        return
    # An answer by button: one read (the summary with its notes), its writes, the next question.
    draft = await summaries.draft(turn.session, actor=turn.actor, summary_id=pressed.summary_id)
    if draft is None:
        turn.notice("button_refused")
        return
    summary = draft.summary
    if summary.status == SummaryStatus.SUBMITTED:
        turn.notice("summary_already_submitted")
        return
    state = turn.actor.conversation
    stages = await _stages(turn, summary, state)
    if action == "skip":
        moved = await summaries.skip(turn.session, draft=draft, stages=stages, now=turn.now)
    else:
        moved = await summaries.choose_status(
            turn.session,
            draft=draft,
            stages=stages,
            pledge_id=pressed.pledge_id,
            status=PLEDGE_STATUSES[pressed.status],
            now=turn.now,
        )
    if not moved:
        turn.notice("button_stale")
        return
    await _ask(turn, summary, state=state, notes=draft.notes)


async def _edit_or_submit(turn: Turn, summary_id: int, action: str) -> None:
    summary = await summaries.own(turn.session, actor=turn.actor, summary_id=summary_id)
    if summary is None:
        turn.notice("button_refused")
        return
    quarter = await summaries.current_quarter(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    if action == "edit":
        questions = await summaries.reopen(
            turn.session, summary=summary, quarter=quarter, actor=turn.actor, now=turn.now
        )
        if questions is None:
            turn.notice("summary_closed")
            return
        await _ask(turn, summary, questions=questions)
        return
    if summary.status == SummaryStatus.SUBMITTED:
        turn.notice("summary_already_submitted")
        return
    if not await summaries.submit(
        turn.session, summary=summary, quarter=quarter, actor=turn.actor, now=turn.now
    ):
        turn.notice("summary_already_submitted")
        return
    await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    turn.notice("saved")
    turn.reply("summary_submitted", summary=summary, name=turn.actor.name)


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
        [(row.member.name, ReadSummary(row.summary.id))]
        for row in rows
        if row.summary is not None and row.summary.status == SummaryStatus.SUBMITTED
    ]
    turn.reply("summary_branch", rows=rows, step=quarter.step, buttons=buttons[:50])


@gated(Permission.USE)
async def read_summary(turn: Turn) -> None:
    """Read someone's submitted summary, if I am allowed to."""
    summary = await summaries.readable_by(
        turn.session, actor=turn.actor, summary_id=turn.action.summary_id
    )
    if summary is None:
        turn.notice("button_refused")
        return
    await _show(turn, summary, "summary_view")


FEATURE = Feature(
    commands=(Command("summary", open_summary), Command("summaries", branch_summaries)),
    actions={
        SummaryStep: summary_button,
        SummaryPledgeStatus: summary_button,
        ReadSummary: read_summary,
    },
)
