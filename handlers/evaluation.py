"""/evaluation and /results: how far 群众评议 has got, the organiser's controls (open, close,
evaluation codes), and the results once the round has closed."""

from bot.core import ballot_counting, evaluation, evaluation_codes, evaluation_results
from bot.core.access import Permission
from bot.core.evaluation import CodeGroup, CodesFor, RoundControl, RoundSettings
from bot.core.evaluation_results import Scope, ShowResults
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature


@gated(Permission.BRANCH_OVERSIGHT)
async def status(turn: Turn) -> None:
    """The round's participation (per branch; for a secretary, who has not rated yet)."""
    view = await evaluation.overview(turn.session, actor=turn.actor, now=turn.now)
    turn.reply(
        "evaluation_status",
        evaluation_round=view.evaluation_round,
        state=view.state,
        progress=view.progress,
        organiser=view.organiser,
        buttons=[
            [(turn.label(f"button_evaluation_{step}"), RoundControl(step))]
            for step in view.controls
        ],
    )


@gated(Permission.ORGANISE)
async def organise(turn: Turn) -> None:
    """Open or close a round (each after a confirming tap), or ask for evaluation codes."""
    step = turn.action.step
    organisation_id = turn.actor.organisation_id
    if step in ("open", "open!"):
        proposal = await evaluation.proposed_round(
            turn.session, organisation_id=organisation_id, now=turn.now
        )
        if proposal is None:
            turn.notice("button_stale")
            return
        if step == "open":
            turn.edit(
                "evaluation_open_confirm",
                proposal=proposal,
                settings=RoundSettings(),
                buttons=[[(turn.label("button_evaluation_confirm_open"), RoundControl("open!"))]],
            )
            return
        opened = await evaluation.open_round(
            turn.session,
            organisation_id=organisation_id,
            quarter=proposal.quarter,
            closes_at=proposal.closes_at,
            now=turn.now,
        )
        if isinstance(opened, list):
            turn.reply("evaluation_problems", problems=opened)
            return
        turn.edit("evaluation_opened", evaluation_round=opened)
        return
    evaluation_round = await evaluation.open_now(
        turn.session, organisation_id=organisation_id, now=turn.now
    )
    if evaluation_round is None:
        turn.notice("ballot_closed")
        return
    if step == "close":
        turn.edit(
            "evaluation_close_confirm",
            evaluation_round=evaluation_round,
            buttons=[[(turn.label("button_evaluation_confirm_close"), RoundControl("close!"))]],
        )
    elif step == "close!":
        await evaluation.close_round(turn.session, evaluation_round=evaluation_round, now=turn.now)
        turn.edit("evaluation_closed_now", evaluation_round=evaluation_round)
        # What still waits for its batch is counted now, not at the next tick.
        turn.afterwards(lambda: ballot_counting.count_ended_rounds(turn.runtime))
    else:
        groups = await evaluation.code_groups(turn.session, organisation_id=organisation_id)
        turn.edit(
            "evaluation_codes_choose",
            code_groups=[
                (group.rater_group, group.branch_id, _label(turn, group), group.listed)
                for group in groups
            ],
            buttons=[
                [(_label(turn, group), CodesFor(group.rater_group, group.branch_id or 0))]
                for group in groups
            ],
        )


def _label(turn: Turn, group: CodeGroup) -> str:
    return turn.label("evaluation_group", group=group.rater_group, branch=group.branch_name)


@gated(Permission.ORGANISE)
async def issue_codes(turn: Turn) -> None:
    """Codes for one rater group: the links in chat and a printable PDF of QR codes."""
    action: CodesFor = turn.action
    organisation_id = turn.actor.organisation_id
    chosen = await evaluation.code_group(
        turn.session,
        organisation_id=organisation_id,
        rater_group=action.rater_group,
        branch_id=action.branch_id or None,
    )
    order = None
    if chosen is not None:
        order = await evaluation.order_codes(
            turn.session, organisation_id=organisation_id, group=chosen, count=None, now=turn.now
        )
    if not isinstance(order, evaluation.CodeOrder):
        turn.notice("button_refused")
        return
    tokens = await evaluation_codes.issue_codes(
        turn.session,
        evaluation_round=order.evaluation_round,
        rater_group=chosen.rater_group,
        branch_id=chosen.branch_id,
        count=order.count,
    )
    links = [turn.deep_link(token) for token in tokens]
    label = _label(turn, chosen)
    turn.reply("evaluation_codes_issued", label=label, links=links)
    title = turn.label("evaluation_codes_sheet", quarter=order.evaluation_round.quarter)
    turn.send_file("evaluation-codes.pdf", evaluation_codes.pdf_sheet(title, label, links))


@gated(Permission.USE)
async def show_results(turn: Turn) -> None:
    """My own results of the last closed round; buttons for what else I may see."""
    await _results(turn, Scope.OWN)


@gated(Permission.USE)
async def show_scope(turn: Turn) -> None:
    """A secretary's branch, or the organiser's everything."""
    await _results(turn, turn.action.scope)


async def _results(turn: Turn, scope: str) -> None:
    evaluation_round = await evaluation.last_closed_round(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    if evaluation_round is None:
        running = await evaluation.current_round(
            turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
        )
        turn.reply("results_none", evaluation_round=running)
        return
    found = await evaluation_results.visible_results(
        turn.session, actor=turn.actor, evaluation_round=evaluation_round, scope=scope, now=turn.now
    )
    if found is None:
        turn.notice("button_refused")
        return
    branches = await evaluation.branch_names(
        turn.session, organisation_id=turn.actor.organisation_id
    )
    others = [s for s in evaluation_results.scopes_for(turn.actor) if s != scope]
    turn.reply(
        "results_view",
        results=found,
        scope=scope,
        branch_names=branches,
        buttons=[[(turn.label("button_results", scope=s), ShowResults(s))] for s in others],
    )


FEATURE = Feature(
    commands=(Command("evaluation", status), Command("results", show_results)),
    actions={RoundControl: organise, CodesFor: issue_codes, ShowResults: show_scope},
)
