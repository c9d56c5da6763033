"""/evaluation and /results: how far 群众评议 has got, the organiser's controls (open, close,
evaluation codes), and the results once the round has closed."""

import io
import re

from telegram import InputFile
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.core import access, ballot_counting, evaluation, evaluation_codes, evaluation_results
from bot.core.access import Permission
from bot.core.evaluation import RoundSettings, RoundState
from bot.core.evaluation_results import Scope
from handlers.gate import Turn, gated
from storage import people
from storage.models import Outsider, RaterGroup, Role

# When the roster lists nobody for a group, this many codes are printed for it.
DEFAULT_CODES = 10


@gated(Permission.BRANCH_OVERSIGHT)
async def status(turn: Turn) -> None:
    """The round's participation (per branch; for a secretary, who has not rated yet)."""
    organiser = turn.actor.has(Role.ORGANISER)
    evaluation_round = await evaluation.current_round(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    state = evaluation.state_of(evaluation_round, turn.now) if evaluation_round else None
    rows = []
    if evaluation_round is not None:
        rows = await evaluation.participation(
            turn.session,
            evaluation_round=evaluation_round,
            branch_id=access.overseen_branch(turn.actor),
        )
    buttons = []
    if organiser:
        if state == RoundState.OPEN:
            buttons = [
                [(turn.label("button_evaluation_codes"), "eva:codes")],
                [(turn.label("button_evaluation_close"), "eva:close")],
            ]
        elif await evaluation.proposed_round(
            turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
        ):
            buttons = [[(turn.label("button_evaluation_open"), "eva:open")]]
    turn.reply(
        "evaluation_status",
        evaluation_round=evaluation_round,
        state=state,
        progress=rows,
        organiser=organiser,
        buttons=buttons,
    )


@gated(Permission.ORGANISE)
async def organise(turn: Turn) -> None:
    """Open or close a round (each after a confirming tap), or ask for evaluation codes."""
    action = turn.callback_data.removeprefix("eva:")
    organisation_id = turn.actor.organisation_id
    if action in ("open", "open!"):
        proposal = await evaluation.proposed_round(
            turn.session, organisation_id=organisation_id, now=turn.now
        )
        if proposal is None:
            turn.notice("button_stale")
            return
        if action == "open":
            turn.edit(
                "evaluation_open_confirm",
                proposal=proposal,
                settings=RoundSettings(),
                buttons=[[(turn.label("button_evaluation_confirm_open"), "eva:open!")]],
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
    evaluation_round = await evaluation.current_round(
        turn.session, organisation_id=organisation_id, now=turn.now
    )
    if evaluation_round is None or evaluation.state_of(evaluation_round, turn.now) != "open":
        turn.notice("ballot_closed")
        return
    if action == "close":
        turn.edit(
            "evaluation_close_confirm",
            evaluation_round=evaluation_round,
            buttons=[[(turn.label("button_evaluation_confirm_close"), "eva:close!")]],
        )
    elif action == "close!":
        await evaluation.close_round(turn.session, evaluation_round=evaluation_round, now=turn.now)
        turn.edit("evaluation_closed_now", evaluation_round=evaluation_round)
        # What still waits for its batch is counted now, not at the next tick.
        turn.afterwards(lambda: ballot_counting.count_ended_rounds(turn.runtime))
    else:
        groups = await _code_groups(turn)
        turn.edit(
            "evaluation_codes_choose",
            code_groups=groups,
            buttons=[
                [(label, f"evc:{group}:{branch_id or 0}")] for group, branch_id, label, _n in groups
            ],
        )


async def _code_groups(turn: Turn) -> list[tuple[str, int | None, str, int]]:
    """(rater group, branch id, label, outsiders listed) for each group the roster names,
    and 局工作人员 always."""
    organisation_id = turn.actor.organisation_id
    branches = {
        b.id: b.name
        for b in await people.list_branches(turn.session, organisation_id=organisation_id)
    }
    counts: dict[tuple[str, int | None], int] = {(RaterGroup.STAFF.value, None): 0}
    outsiders: list[Outsider] = list(
        await people.list_outsiders(turn.session, organisation_id=organisation_id)
    )
    for outsider in outsiders:
        if outsider.active:
            key = (outsider.rater_group, outsider.branch_id)
            counts[key] = counts.get(key, 0) + 1
    return [
        (
            group,
            branch_id,
            turn.label("evaluation_group", group=group, branch=branches.get(branch_id, "")),
            listed,
        )
        for (group, branch_id), listed in sorted(counts.items(), key=lambda kv: str(kv[0]))
    ]


@gated(Permission.ORGANISE)
async def issue_codes(turn: Turn) -> None:
    """Codes for one rater group: the links in chat and a printable PDF of QR codes."""
    match = re.fullmatch(r"evc:(\w{1,20}):(\d{1,9})", turn.callback_data)
    group, branch_id = match[1], int(match[2]) or None
    chosen = next((g for g in await _code_groups(turn) if (g[0], g[1]) == (group, branch_id)), None)
    evaluation_round = await evaluation.current_round(
        turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
    )
    if (
        chosen is None
        or evaluation_round is None
        or evaluation.state_of(evaluation_round, turn.now) != RoundState.OPEN
    ):
        turn.notice("button_refused")
        return
    tokens = await evaluation_codes.issue_codes(
        turn.session,
        evaluation_round=evaluation_round,
        rater_group=RaterGroup(group),
        branch_id=branch_id,
        count=chosen[3] or DEFAULT_CODES,
    )
    username = turn.context.bot.username
    links = [evaluation_codes.link(username, token) for token in tokens]
    turn.reply("evaluation_codes_issued", label=chosen[2], links=links)
    title = turn.label("evaluation_codes_sheet", quarter=evaluation_round.quarter)
    sheet = evaluation_codes.pdf_sheet(title, chosen[2], links)
    chat_id = turn.update.effective_chat.id
    bot = turn.context.bot
    turn.afterwards(
        lambda: bot.send_document(
            chat_id, InputFile(io.BytesIO(sheet), filename="evaluation-codes.pdf")
        )
    )


@gated(Permission.USE)
async def show_results(turn: Turn) -> None:
    """My own results of the last closed round; buttons for what else I may see."""
    await _results(turn, Scope.OWN)


@gated(Permission.USE)
async def show_scope(turn: Turn) -> None:
    """A secretary's branch, or the organiser's everything."""
    await _results(turn, turn.callback_data.removeprefix("evr:"))


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
        buttons=[[(turn.label("button_results", scope=s), f"evr:{s}")] for s in others],
    )


def handlers() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("evaluation", status, filters=private),
        CommandHandler("results", show_results, filters=private),
        CallbackQueryHandler(organise, pattern=r"^eva:(open|open!|close|close!|codes)$"),
        CallbackQueryHandler(issue_codes, pattern=r"^evc:\w{1,20}:\d{1,9}$"),
        CallbackQueryHandler(show_scope, pattern=r"^evr:(own|branch|all)$"),
    ]
