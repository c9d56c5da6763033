"""/commendation (评选表彰): secretaries nominate with deed material, the leading group grades
privately, the organiser confirms, publishes and gets the compiled document; /bind in a group
chat makes it receive announcements."""

import io
import json
import logging
import re

from telegram import InputFile
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.core import commendation, deed_documents
from bot.core.access import Permission
from bot.core.commendation import NO_PRIZE, PRIZES, Refusal, Rules, Stage
from handlers.conversation import flow
from handlers.gate import Turn, gated
from storage import conversations
from storage.models import ChatState, Nomination, Role, Selection

logger = logging.getLogger(__name__)
FLOW = "nomination"


async def _selection(turn: Turn, selection_id: int) -> Selection | None:
    return await commendation.of_actor(turn.session, actor=turn.actor, selection_id=selection_id)


@gated(Permission.USE)
async def show(turn: Turn) -> None:
    """The selection as this person takes part in it: nominate, grade, confirm, publish."""
    await _status(turn)


async def _status(turn: Turn) -> None:
    selection = await commendation.current(turn.session, organisation_id=turn.actor.organisation_id)
    if selection is None:
        turn.reply("commendation_none")
        return
    rules, stage = Rules.of(selection), commendation.stage_of(selection, turn.now)
    actor = turn.actor
    mine = [
        (n, s)
        for s, n in await commendation.mine(turn.session, actor=actor)
        if s.id == selection.id
    ]
    ours, names = [], {}
    if actor.has(Role.SECRETARY):
        ours = await commendation.nominations(
            turn.session, selection=selection, branch_id=actor.branch_id
        )
        names = await commendation.names_of(turn.session, ours)
    grader = commendation.is_grader(actor, selection)
    submitted = grader and await commendation.has_submitted(
        turn.session, selection=selection, grader_id=actor.member_id
    )
    buttons = []
    if commendation.may_nominate(actor, selection, turn.now) is None:
        buttons += [
            [(turn.label("button_nominate", category_name=c.name), f"cmn:{selection.id}:{c.key}")]
            for c in rules.categories
        ]
        buttons += [
            [(turn.label("button_withdraw_nomination", name=names[n.id]), f"cmw:{n.id}")]
            for n in ours
        ]
    if grader and stage == Stage.GRADING:
        label = "button_see_tally" if submitted else "button_grade"
        buttons.append([(turn.label(label), f"cmg:{selection.id}")])
    if actor.has(Role.ORGANISER):
        tally_refused = await commendation.tally_refusal(
            turn.session, actor=actor, selection=selection
        )
        if stage == Stage.GRADING and tally_refused is None:
            buttons.append([(turn.label("button_see_tally"), f"cmt:{selection.id}")])
            buttons.append([(turn.label("button_confirm_list"), f"cmf:{selection.id}")])
        if stage == Stage.CONFIRMED:
            buttons.append([(turn.label("button_publish"), f"cmp:{selection.id}")])
        if stage in (Stage.CONFIRMED, Stage.PUBLISHED):
            buttons.append([(turn.label("button_compile"), f"cmd:{selection.id}")])
    winners = []
    if stage in (Stage.PUBLISHED,) or (stage == Stage.CONFIRMED and actor.has(Role.ORGANISER)):
        winners = await commendation.winners(turn.session, selection=selection)
    turn.reply(
        "commendation_status",
        selection=selection,
        rules=rules,
        selection_stage=stage,
        ours=[(n, names[n.id]) for n in ours],
        mine=mine,
        grader=grader,
        submitted=submitted,
        winners=winners,
        buttons=buttons,
    )


# --- nominating ------------------------------------------------------------------------------


@gated(Permission.USE)
async def choose_category(turn: Turn) -> None:
    """A category chosen: the branch itself is asked for its material, members are listed."""
    _, selection_id, key = turn.callback_data.split(":")
    selection = await _selection(turn, int(selection_id))
    refusal = (
        commendation.may_nominate(turn.actor, selection, turn.now)
        if selection
        else Refusal.NOT_NOMINATING
    )
    category = Rules.of(selection).category(key) if selection else None
    if refusal or category is None:
        turn.reply("commendation_refused", refusal=refusal or Refusal.UNKNOWN_CATEGORY, count=0)
        return
    if category.of == "branch":
        await _ask_material(turn, selection, key, f"branch:{turn.actor.branch_id}")
        return
    members = await commendation.nominees_of(turn.session, actor=turn.actor)
    turn.edit(
        "commendation_pick_member",
        chosen_category=category,
        buttons=[[(m.name, f"cmm:{selection.id}:{key}:{m.id}")] for m in members],
    )


@gated(Permission.USE)
async def choose_member(turn: Turn) -> None:
    """A member chosen as nominee: their material is asked for."""
    _, selection_id, key, member_id = turn.callback_data.split(":")
    selection = await _selection(turn, int(selection_id))
    if selection is None:
        turn.notice("button_stale")
        return
    refusal, _member = await commendation.check_nominee(
        turn.session,
        actor=turn.actor,
        selection=selection,
        category=key,
        nominee=f"member:{member_id}",
        now=turn.now,
    )
    if refusal:
        turn.reply("commendation_refused", refusal=refusal, count=0)
        return
    await _ask_material(turn, selection, key, f"member:{member_id}")


async def _ask_material(turn: Turn, selection: Selection, key: str, nominee: str) -> None:
    await conversations.set_state(
        turn.session,
        member_id=turn.actor.member_id,
        flow=FLOW,
        stage="material",
        subject_id=selection.id,
        data={"category": key, "nominee": nominee},
        now=turn.now,
    )
    turn.edit(
        "commendation_ask_material",
        chosen_category=Rules.of(selection).category(key),
        name=await commendation.nominee_name(turn.session, nominee=nominee),
        limit=commendation.MATERIAL_LIMIT,
    )


@flow(FLOW)
async def take_material(turn: Turn, state: ChatState) -> None:
    """The deed material: typed, or a .docx/.txt file; too long is refused with its count."""
    message = turn.update.effective_message
    text = turn.text
    if message.document is not None:
        document = message.document
        if (document.file_size or 0) > deed_documents.UPLOAD_LIMIT:
            turn.reply("commendation_material_unreadable", filename=document.file_name or "")
            return
        try:
            file = await turn.context.bot.get_file(document.file_id)
            content = bytes(await file.download_as_bytearray())
            text = await deed_documents.read_upload(document.file_name or "", content)
        except deed_documents.DocumentTooLarge:
            turn.reply("commendation_material_too_large", filename=document.file_name or "")
            return
        except (deed_documents.UnreadableDocument, TelegramError):
            turn.reply("commendation_material_unreadable", filename=document.file_name or "")
            return
    data = json.loads(state.data)
    selection = await _selection(turn, state.subject_id)
    if selection is None:
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
        turn.reply("commendation_none")
        return
    outcome = await commendation.nominate(
        turn.session,
        actor=turn.actor,
        selection=selection,
        category=data["category"],
        nominee=data["nominee"],
        material=text,
        now=turn.now,
    )
    if outcome.refusal in (Refusal.TOO_LONG, Refusal.EMPTY):
        turn.reply(
            "commendation_refused",
            refusal=outcome.refusal,
            count=outcome.count,
            limit=commendation.MATERIAL_LIMIT,
        )
        return  # still waiting for material
    await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    if outcome.refusal:
        turn.reply(
            "commendation_refused",
            refusal=outcome.refusal,
            count=outcome.count,
            limit=commendation.MATERIAL_LIMIT,
        )
        return
    name = (await commendation.names_of(turn.session, [outcome.nomination]))[outcome.nomination.id]
    turn.reply(
        "commendation_nominated",
        name=name,
        count=outcome.count,
        replaced=outcome.replaced,
        limit=commendation.MATERIAL_LIMIT,
    )


@gated(Permission.USE)
async def withdraw(turn: Turn) -> None:
    """The secretary takes a nomination back while the window is open."""
    nomination_id = int(turn.callback_data.split(":")[1])
    if not await commendation.withdraw(
        turn.session, actor=turn.actor, nomination_id=nomination_id, now=turn.now
    ):
        turn.notice("button_refused")
        return
    turn.notice("commendation_withdrawn")
    await _status(turn)


# --- grading ---------------------------------------------------------------------------------


@gated(Permission.USE)
async def grade(turn: Turn) -> None:
    """The next nominee without my proposal, with the record beside the material; once all
    have one, my proposals and the button to submit; once submitted, everyone's."""
    selection = await _selection(turn, int(turn.callback_data.split(":")[1]))
    if selection is None or not commendation.is_grader(turn.actor, selection):
        turn.reply("commendation_refused", refusal=Refusal.NOT_A_GRADER, count=0)
        return
    if await commendation.has_submitted(
        turn.session, selection=selection, grader_id=turn.actor.member_id
    ):
        await _tally(turn, selection)
        return
    if commendation.stage_of(selection, turn.now) != Stage.GRADING:
        turn.reply("commendation_refused", refusal=Refusal.NOT_GRADING, count=0)
        return
    await _next_to_grade(turn, selection)


async def _next_to_grade(turn: Turn, selection: Selection) -> None:
    items = await commendation.nominations(turn.session, selection=selection)
    proposed = await commendation.proposals_of(
        turn.session, selection=selection, grader_id=turn.actor.member_id
    )
    names = await commendation.names_of(turn.session, items)
    waiting = [n for n in items if n.id not in proposed]
    if not waiting:
        turn.edit(
            "commendation_my_proposals",
            rules=Rules.of(selection),
            proposals=[(n, names[n.id], proposed[n.id]) for n in items],
            buttons=[
                [(turn.label("button_submit_grades"), f"cms:{selection.id}")],
                [(turn.label("button_regrade"), f"cmr:{selection.id}")],
            ],
        )
        return
    await _show_nominee(
        turn, selection, waiting[0], names[waiting[0].id], len(items) - len(waiting), len(items)
    )


async def _show_nominee(turn, selection, nomination, name: str, graded: int, total: int) -> None:
    """One nominee for grading: the material, the record beside it, a button per prize."""
    turn.edit(
        "commendation_grade_item",
        nomination=nomination,
        name=name,
        chosen_category=Rules.of(selection).category(nomination.category),
        record=await commendation.evidence(turn.session, nomination=nomination, now=turn.now),
        graded=graded,
        nominees_total=total,
        buttons=[
            [
                (turn.label("button_prize", prize=prize), f"cmv:{nomination.id}:{prize}")
                for prize in PRIZES
            ],
            [(turn.label("button_prize", prize=NO_PRIZE), f"cmv:{nomination.id}:{NO_PRIZE}")],
        ],
    )


@gated(Permission.USE)
async def vote(turn: Turn) -> None:
    """A grader's proposal for one nominee, then the next nominee."""
    _, nomination_id, prize = turn.callback_data.split(":")
    refusal = await commendation.propose(
        turn.session, actor=turn.actor, nomination_id=int(nomination_id), prize=prize, now=turn.now
    )
    if refusal:
        turn.notice("commendation_refusal_toast", refusal=refusal)
        return
    nomination = await turn.session.get(Nomination, int(nomination_id))
    await _next_to_grade(turn, await turn.session.get(Selection, nomination.selection_id))


@gated(Permission.USE)
async def regrade(turn: Turn) -> None:
    """Go through the nominees again before submitting (each tap replaces the proposal)."""
    selection = await _selection(turn, int(turn.callback_data.split(":")[1]))
    if selection is None or await commendation.has_submitted(
        turn.session, selection=selection, grader_id=turn.actor.member_id
    ):
        turn.notice("button_stale")
        return
    items = await commendation.nominations(turn.session, selection=selection)
    names = await commendation.names_of(turn.session, items)
    turn.edit(
        "commendation_regrade",
        buttons=[[(names[n.id], f"cmx:{n.id}")] for n in items],
    )


@gated(Permission.USE)
async def regrade_one(turn: Turn) -> None:
    """One nominee shown again for a new proposal."""
    nomination = await turn.session.get(Nomination, int(turn.callback_data.split(":")[1]))
    selection = await _selection(turn, nomination.selection_id) if nomination else None
    if selection is None or not commendation.is_grader(turn.actor, selection):
        turn.notice("button_stale")
        return
    names = await commendation.names_of(turn.session, [nomination])
    total = len(await commendation.nominations(turn.session, selection=selection))
    await _show_nominee(turn, selection, nomination, names[nomination.id], total, total)


async def _act(turn: Turn, action, missing: Refusal, **options) -> Selection | None:
    """Run a service `action` on the selection the button names; its refusal is said."""
    selection = await _selection(turn, int(turn.callback_data.split(":")[1]))
    refusal = (
        await action(turn.session, actor=turn.actor, selection=selection, now=turn.now, **options)
        if selection
        else missing
    )
    if refusal is Refusal.GRADERS_MISSING:
        turn.reply(
            "commendation_graders_missing",
            names=await commendation.missing_graders(turn.session, selection=selection),
            buttons=[[(turn.label("button_confirm_anyway"), f"cmf:{selection.id}:anyway")]],
        )
    elif refusal:
        turn.reply("commendation_refused", refusal=refusal, count=0)
    return None if refusal else selection


@gated(Permission.USE)
async def submit(turn: Turn) -> None:
    """My proposals are final; then everyone's who has submitted, side by side."""
    selection = await _act(turn, commendation.submit, Refusal.NOT_A_GRADER)
    if selection is not None:
        await _tally(turn, selection)


async def _tally(turn: Turn, selection: Selection) -> None:
    tallied = await commendation.tally(turn.session, selection=selection)
    turn.reply("commendation_tally", rules=Rules.of(selection), tallied=tallied)


# --- the organiser ---------------------------------------------------------------------------


@gated(Permission.ORGANISE)
async def see_tally(turn: Turn) -> None:
    """The organiser follows the grading (only the proposals graders have submitted; an
    organiser who grades too, once they have submitted their own)."""
    selection = await _selection(turn, int(turn.callback_data.split(":")[1]))
    if selection is None:
        turn.notice("button_stale")
        return
    refusal = await commendation.tally_refusal(turn.session, actor=turn.actor, selection=selection)
    if refusal:
        turn.reply("commendation_refused", refusal=refusal, count=0)
        return
    await _tally(turn, selection)


@gated(Permission.ORGANISE)
async def confirm(turn: Turn) -> None:
    """The final list, from the tally within the quotas, is confirmed; graders who have not
    submitted are named first, and the organiser may go ahead without them."""
    anyway = turn.callback_data.endswith(":anyway")
    selection = await _act(turn, commendation.confirm, Refusal.NOT_GRADING, despite_missing=anyway)
    if selection is None:
        return
    winners = await commendation.winners(turn.session, selection=selection)
    turn.reply(
        "commendation_confirmed",
        selection=selection,
        rules=Rules.of(selection),
        winners=winners,
        buttons=[[(turn.label("button_publish"), f"cmp:{selection.id}")]],
    )


@gated(Permission.ORGANISE)
async def publish(turn: Turn) -> None:
    """Announce to every member (outbox) and the bound group chats; the compiled document."""
    selection = await _act(turn, commendation.publish, Refusal.NOT_CONFIRMED)
    if selection is None:
        return
    winners = await commendation.winners(turn.session, selection=selection)
    chats = await commendation.bound_chats(turn.session, organisation_id=selection.organisation_id)
    turn.reply("commendation_published_now", chats=len(chats))
    messages, locale = turn.runtime.messages, turn.runtime.settings.default_locale
    announcement = messages.render(
        locale,
        "commendation_announcement",
        selection=selection,
        rules=Rules.of(selection),
        winners=winners,
    )
    bot = turn.context.bot

    async def tell_groups() -> None:
        for chat_id in chats:
            try:
                await bot.send_message(chat_id, announcement, parse_mode=ParseMode.HTML)
            except TelegramError as error:  # a group that removed the bot: the others still hear
                logger.warning("announcement to group %s: %s", chat_id, error)

    turn.afterwards(tell_groups)
    await _send_compilation(turn, selection, winners)


@gated(Permission.ORGANISE)
async def compile_document(turn: Turn) -> None:
    """The confirmed list's deed materials in one .docx, by prize."""
    selection = await _selection(turn, int(turn.callback_data.split(":")[1]))
    if selection is None or commendation.stage_of(selection, turn.now) not in (
        Stage.CONFIRMED,
        Stage.PUBLISHED,
    ):
        turn.notice("button_stale")
        return
    await _send_compilation(
        turn, selection, await commendation.winners(turn.session, selection=selection)
    )


async def _send_compilation(turn: Turn, selection: Selection, winners) -> None:
    data = await commendation.compilation(
        turn.session,
        selection=selection,
        winners=winners,
        words=turn.runtime.messages.commendation_words(turn.locale),
    )
    filename = re.sub(r'[\\/:*?"<>|\s]+', "_", f"{selection.name}.docx")
    chat_id, bot = turn.update.effective_chat.id, turn.context.bot
    turn.afterwards(
        lambda: bot.send_document(chat_id, InputFile(io.BytesIO(data), filename=filename))
    )


@gated(Permission.ORGANISE, in_groups=True)
async def bind(turn: Turn) -> None:
    """/bind in a group chat: it receives the organisation's announcements (评选表彰 results)."""
    chat = turn.update.effective_chat
    await commendation.bind_chat(
        turn.session, actor=turn.actor, chat_id=chat.id, title=chat.title or "", now=turn.now
    )
    turn.reply("commendation_bound")


def handlers() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("commendation", show, filters=private),
        CommandHandler("bind", bind, filters=filters.ChatType.GROUPS),
        CallbackQueryHandler(choose_category, pattern=r"^cmn:\d{1,9}:\w{1,20}$"),
        CallbackQueryHandler(choose_member, pattern=r"^cmm:\d{1,9}:\w{1,20}:\d{1,9}$"),
        CallbackQueryHandler(withdraw, pattern=r"^cmw:\d{1,9}$"),
        CallbackQueryHandler(grade, pattern=r"^cmg:\d{1,9}$"),
        CallbackQueryHandler(vote, pattern=r"^cmv:\d{1,9}:(first|second|third|none)$"),
        CallbackQueryHandler(regrade, pattern=r"^cmr:\d{1,9}$"),
        CallbackQueryHandler(regrade_one, pattern=r"^cmx:\d{1,9}$"),
        CallbackQueryHandler(submit, pattern=r"^cms:\d{1,9}$"),
        CallbackQueryHandler(see_tally, pattern=r"^cmt:\d{1,9}$"),
        CallbackQueryHandler(confirm, pattern=r"^cmf:\d{1,9}(:anyway)?$"),
        CallbackQueryHandler(publish, pattern=r"^cmp:\d{1,9}$"),
        CallbackQueryHandler(compile_document, pattern=r"^cmd:\d{1,9}$"),
    ]
