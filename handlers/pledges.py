"""/pledge, /pledges and the pledge buttons: make, list, keep and report on public pledges."""

import json
from datetime import date

from bot.core import access, calendar, pledges
from bot.core.access import Permission
from bot.core.pledges import NoDeadline, PledgeRefusal, PledgeStep, PledgeText
from bot.core.refusal import TOO_LONG, Refusal
from handlers.conversation import flow
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage import conversations
from storage.conversations import Conversation
from storage.models import PledgeStatus

_STATUS = {"kept": PledgeStatus.KEPT, "inprogress": PledgeStatus.IN_PROGRESS}


@gated(Permission.USE)
async def start_pledge(turn: Turn) -> None:
    """A new pledge: in one message (目标 | 措施 | 日期), or asked for step by step."""
    for_branch = bool(turn.args) and turn.args[0] in ("branch", "支部")
    rest = " ".join(turn.args[1:] if for_branch else turn.args)
    if rest:
        await _one_message(turn, rest, for_branch=for_branch)
        return
    if for_branch and not access.speaks_for_branch(turn.actor):
        turn.refuse(pledges.refused(PledgeRefusal.NOT_SECRETARY))
        return
    await _carry_on(turn, subject_id=None, data={"branch": for_branch})


async def _one_message(turn: Turn, rest: str, *, for_branch: bool) -> None:
    """`/pledge 目标 | 措施 | 日期`. A part that cannot be taken (too long, a date out of
    range) is refused with the reason and asked for again, the other parts kept: nothing
    is cut and nothing has to be typed twice."""
    parts = pledges.parse_one_message(rest)
    if parts is None:
        turn.reply("pledge_format")
        return
    data: dict = {"branch": for_branch}
    for part in ("goal", "measures"):
        if refused := pledges.too_long(part, getattr(parts, part)):
            turn.refuse(refused)
        else:
            data[part] = getattr(parts, part)
    if parts.due is None:
        data["due"] = None
    elif "goal" in data and "measures" in data:  # one refusal at a time: texts first
        due_on = await _read_due(turn, parts.due)
        if due_on is not None:
            data["due"] = due_on.isoformat()
    await _carry_on(turn, subject_id=None, data=data, ask=False)


_STAGES = ("goal", "measures", "due")


async def _carry_on(turn: Turn, *, subject_id: int | None, data: dict, ask: bool = True) -> None:
    """Ask for the first part not yet given (unless a refusal already asked), or save."""
    stage = next((s for s in _STAGES if s not in data), None)
    if stage is None:
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
        due_on = date.fromisoformat(data["due"]) if data["due"] else None
        text = PledgeText(data["goal"], data["measures"], due_on)
        await _save(turn, text, for_branch=data.get("branch", False), pledge_id=subject_id)
        return
    await conversations.set_state(
        turn.session,
        member_id=turn.actor.member_id,
        flow="pledge",
        stage=stage,
        subject_id=subject_id,
        now=turn.now,
        data=data,
    )
    if not ask:
        return
    if stage == "due":
        turn.reply("pledge_ask_due", buttons=_due_buttons(turn))
    elif stage == "measures":
        turn.reply("pledge_ask_measures")
    else:
        turn.reply("pledge_ask_goal", branch=data.get("branch", False))


def _due_buttons(turn: Turn):
    return [[(turn.label("button_no_deadline"), NoDeadline())]]


async def _read_due(turn: Turn, typed: str) -> date | None:
    """The deadline, or None after saying why it cannot be taken (the question stays open)."""
    due_on = await pledges.read_due(
        turn.session, organisation_id=turn.actor.organisation_id, text=typed, now=turn.now
    )
    if isinstance(due_on, Refusal):
        turn.refuse(due_on, typed=typed, buttons=_due_buttons(turn))
        return None
    return due_on


@flow("pledge")
async def pledge_step(turn: Turn, state: Conversation) -> None:
    """Goal, then measures, then an optional deadline."""
    data = json.loads(state.data)
    text = turn.text
    if not text:
        turn.reply("text_needed")
        return
    if state.stage == "due":
        due_on = await _read_due(turn, text)
        if due_on is None:
            return
        data["due"] = due_on.isoformat()
    elif refused := pledges.too_long(state.stage, text):
        turn.refuse(refused)
        return
    else:
        data[state.stage] = text
    await _carry_on(turn, subject_id=state.subject_id, data=data)


@gated(Permission.USE)
async def no_deadline(turn: Turn) -> None:
    """The 'no deadline' button at the last question."""
    state = await conversations.get_state(turn.session, member_id=turn.actor.member_id)
    if state is None or state.flow != "pledge" or state.stage != "due":
        turn.notice("button_stale")
        return
    data = json.loads(state.data) | {"due": None}
    await _carry_on(turn, subject_id=state.subject_id, data=data)


async def _save(turn: Turn, text: PledgeText, *, for_branch: bool, pledge_id: int | None) -> None:
    if pledge_id is None:
        result = await pledges.add(
            turn.session, actor=turn.actor, text=text, for_branch=for_branch, now=turn.now
        )
    else:
        result = await pledges.edit(
            turn.session, actor=turn.actor, pledge_id=pledge_id, text=text, now=turn.now
        )
    if isinstance(result, Refusal):
        turn.refuse(result)
    else:
        turn.reply("pledge_saved", pledge=result, edited=pledge_id is not None)


@gated(Permission.USE)
async def list_pledges(turn: Turn) -> None:
    """Mine, with a button each; `/pledges branch` for every pledge of my branch."""
    if turn.args and turn.args[0] in ("branch", "支部"):
        turn.reply(
            "pledge_branch_list", views=await pledges.of_branch(turn.session, actor=turn.actor)
        )
        return
    views = await pledges.mine(turn.session, actor=turn.actor)
    buttons = [
        [(f"{index}. {view.pledge.goal[:30]}", PledgeStep(view.pledge.id, "open"))]
        for index, view in enumerate(views, 1)
    ]
    turn.reply("pledge_list", views=views, buttons=buttons)


@gated(Permission.USE)
async def pledge_action(turn: Turn) -> None:
    """A button on a pledge: open it, report progress or status, edit or withdraw it."""
    pledge_id, action = turn.action.pledge_id, turn.action.step
    editing = action in ("edit", "withdraw", "withdraw_yes")
    pledge = await pledges.get_changeable(
        turn.session, actor=turn.actor, pledge_id=pledge_id, now=turn.now, editing=editing
    )
    if isinstance(pledge, Refusal):
        turn.refuse(pledges.refused(pledge.reason, toast=True))
        turn.refuse(pledge)
        return
    if action == "open":
        window = await calendar.pledge_window_open(
            turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
        )
        turn.reply("pledge_detail", pledge=pledge, buttons=_detail_buttons(turn, pledge.id, window))
    elif action in _STATUS:
        await pledges.set_status(
            turn.session,
            actor=turn.actor,
            pledge_id=pledge_id,
            status=_STATUS[action],
            note=None,
            now=turn.now,
        )
        turn.notice("saved")
        turn.reply("pledge_status_set", pledge=pledge)
    elif action in ("progress", "notkept", "edit"):
        flow_name = {"progress": "progress", "notkept": "not_kept", "edit": "pledge"}[action]
        await conversations.set_state(
            turn.session,
            member_id=turn.actor.member_id,
            flow=flow_name,
            subject_id=pledge_id,
            stage="goal" if action == "edit" else "text",
            now=turn.now,
            data={"branch": pledge.member_id is None},
        )
        turn.reply(f"pledge_ask_{action}", pledge=pledge)
    elif action == "withdraw":
        turn.reply(
            "pledge_withdraw_confirm",
            pledge=pledge,
            buttons=[[(turn.label("button_withdraw_yes"), PledgeStep(pledge_id, "withdraw_yes"))]],
        )
    else:  # withdraw_yes
        await pledges.withdraw(turn.session, actor=turn.actor, pledge_id=pledge_id, now=turn.now)
        turn.edit("pledge_withdrawn", pledge=pledge)


def _detail_buttons(turn: Turn, pledge_id: int, window_open: bool):
    rows = [
        [(turn.label("button_progress"), PledgeStep(pledge_id, "progress"))],
        [
            (turn.label("button_kept"), PledgeStep(pledge_id, "kept")),
            (turn.label("button_in_progress"), PledgeStep(pledge_id, "inprogress")),
            (turn.label("button_not_kept"), PledgeStep(pledge_id, "notkept")),
        ],
    ]
    if window_open:
        rows.append(
            [
                (turn.label("button_edit"), PledgeStep(pledge_id, "edit")),
                (turn.label("button_withdraw"), PledgeStep(pledge_id, "withdraw")),
            ]
        )
    return rows


async def _close(turn: Turn, result, template: str, **values) -> None:
    """The flow is over either way, unless the text was too long (then it is asked again)."""
    if isinstance(result, Refusal) and result.message == TOO_LONG:
        turn.refuse(result)
        return
    await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    if isinstance(result, Refusal):
        turn.refuse(result)
    else:
        turn.reply(template, **values)


@flow("progress")
async def progress_step(turn: Turn, state: Conversation) -> None:
    """A progress note, optionally a photo or document (its caption is the note)."""
    note = turn.text or turn.caption
    evidence = turn.evidence
    if not note and evidence is None:
        turn.reply("progress_needed")
        return
    result = await pledges.record_progress(
        turn.session,
        actor=turn.actor,
        pledge_id=state.subject_id,
        note=note,
        evidence=evidence,
        now=turn.now,
    )
    await _close(turn, result, "progress_saved", evidence=evidence is not None)


@flow("not_kept")
async def not_kept_step(turn: Turn, state: Conversation) -> None:
    """Why a pledge was not kept: said without blame, recorded as it is."""
    reason = turn.text
    if not reason:
        turn.reply("text_needed")
        return
    result = await pledges.set_status(
        turn.session,
        actor=turn.actor,
        pledge_id=state.subject_id,
        status=PledgeStatus.NOT_KEPT,
        note=reason,
        now=turn.now,
    )
    await _close(turn, result, "pledge_status_set", pledge=result)


FEATURE = Feature(
    commands=(Command("pledge", start_pledge), Command("pledges", list_pledges)),
    actions={NoDeadline: no_deadline, PledgeStep: pledge_action},
)
