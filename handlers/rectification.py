"""/rectify: report on the items a review raised; the reviewer confirms or reopens them."""

from bot.core import rectification
from bot.core.access import Permission
from bot.core.rectification import JudgeItem, ReportItem
from bot.core.refusal import over
from handlers.conversation import flow
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage import conversations
from storage.conversations import Conversation
from storage.models import RectificationStatus


@gated(Permission.USE)
async def list_items(turn: Turn) -> None:
    """My open items, and those of the people I reviewed that wait for my confirmation."""
    items = await rectification.to_report(turn.session, actor=turn.actor)
    reported = await rectification.to_confirm(turn.session, actor=turn.actor)
    buttons = []
    for number, item in enumerate(items, 1):
        if item.status == RectificationStatus.OPEN:
            buttons.append(
                [
                    (
                        turn.label(
                            "button_rectify_progress", item=item, number=number, several=False
                        ),
                        ReportItem(item.id, "progress"),
                    ),
                    (
                        turn.label("button_rectify_done", item=item, number=number, several=False),
                        ReportItem(item.id, "done"),
                    ),
                ]
            )
    for number, entry in enumerate(reported, len(items) + 1):
        buttons.append(
            [
                (
                    turn.label(
                        "button_rectify_confirm", item=entry.item, number=number, several=False
                    ),
                    JudgeItem(entry.item.id, "confirm"),
                ),
                (
                    turn.label(
                        "button_rectify_reopen", item=entry.item, number=number, several=False
                    ),
                    JudgeItem(entry.item.id, "reopen"),
                ),
            ]
        )
    turn.reply("rectify_list", items=items, reported=reported, buttons=buttons[:60])


@gated(Permission.USE)
async def item_button(turn: Turn) -> None:
    """Progress or done on my item: ask for the note (the data is checked, never trusted)."""
    pressed = turn.action
    item = await rectification.own(turn.session, actor=turn.actor, item_id=pressed.item_id)
    if item is None:
        turn.notice("button_refused")
        return
    if item.status != RectificationStatus.OPEN:
        turn.notice("rectify_not_open", item=item)
        return
    await _ask_note(turn, item, pressed.report)


@gated(Permission.USE)
async def reviewer_button(turn: Turn) -> None:
    """The reviewer confirms a reported item, or reopens it (then says what is still needed)."""
    pressed = turn.action
    item = await rectification.reviewed_by(turn.session, actor=turn.actor, item_id=pressed.item_id)
    if item is None:
        turn.notice("button_refused")
        return
    if pressed.judgement == "reopen":
        if item.status == RectificationStatus.OPEN:
            turn.notice("rectify_already", item=item)
            return
        await _ask_note(turn, item, "reopen")
        return
    if not await rectification.confirm(turn.session, actor=turn.actor, item=item, now=turn.now):
        turn.notice("rectify_already", item=item)
        return
    turn.notice("saved")
    turn.reply("rectify_saved", stage="confirm", item=item)
    turn.send_news()  # the other side hears of it now, not at the next tick


async def _ask_note(turn: Turn, item, stage: str) -> None:
    await conversations.set_state(
        turn.session,
        member_id=turn.actor.member_id,
        flow="rectify",
        subject_id=item.id,
        stage=stage,
        now=turn.now,
    )
    turn.reply("rectify_ask_note", stage=stage, item=item)


@flow("rectify")
async def note_step(turn: Turn, state: Conversation) -> None:
    """The note of progress, of completion, or of what is still needed."""
    text = turn.text.strip()
    if not text:
        turn.reply("text_needed")
        return
    if refused := over(text, rectification.NOTE_LIMIT):
        turn.refuse(refused)
        return
    if state.stage == "reopen":
        item = await rectification.reviewed_by(
            turn.session, actor=turn.actor, item_id=state.subject_id
        )
        change = rectification.reopen
    else:
        item = await rectification.own(turn.session, actor=turn.actor, item_id=state.subject_id)
        change = (
            rectification.report_done if state.stage == "done" else rectification.record_progress
        )
    await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    if item is None or not await change(
        turn.session, actor=turn.actor, item=item, note=text, now=turn.now
    ):
        turn.reply("button_stale")
        return
    turn.reply("rectify_saved", stage=state.stage, item=item)
    turn.send_news()  # the other side hears of it now, not at the next tick


FEATURE = Feature(
    commands=(Command("rectify", list_items),),
    actions={ReportItem: item_button, JudgeItem: reviewer_button},
)
