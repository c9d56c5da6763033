"""/commendation (评选表彰): secretaries nominate with deed material, the leading group grades
privately, the organiser confirms, publishes and gets the compiled document; /bind in a group
chat makes it receive announcements."""

import json
import logging

from bot.core import commendation, deed_documents, notices
from bot.core.access import Permission
from bot.core.commendation import (
    ChooseCategory,
    ChooseNominee,
    Compile,
    ConfirmList,
    Grade,
    ProposePrize,
    Publish,
    Reason,
    Regrade,
    RegradeNominee,
    Rules,
    SeeTally,
    SubmitGrades,
    WithdrawNomination,
)
from bot.core.contract import Outgoing
from bot.core.refusal import Refusal
from handlers.conversation import flow
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage import conversations
from storage.conversations import Conversation
from storage.models import Selection

logger = logging.getLogger(__name__)
FLOW = "nomination"


@gated(Permission.USE)
async def show(turn: Turn) -> None:
    """The selection as this person takes part in it: nominate, grade, confirm, publish."""
    await _status(turn)


async def _status(turn: Turn) -> None:
    found = await commendation.status(turn.session, actor=turn.actor, now=turn.now)
    if found is None:
        turn.reply("commendation_none")
        return
    turn.reply(
        "commendation_status",
        selection=found.selection,
        rules=found.rules,
        selection_stage=found.stage,
        ours=found.ours,
        mine=found.mine,
        grader=found.grader,
        submitted=found.submitted,
        winners=found.winners,
        buttons=turn.offered(found.offers),
    )


# --- nominating ------------------------------------------------------------------------------


@gated(Permission.USE)
async def choose_category(turn: Turn) -> None:
    """A category chosen: the branch itself is asked for its material, members are listed."""
    action = turn.action
    choice = await commendation.choose_category(
        turn.session,
        actor=turn.actor,
        selection_id=action.selection_id,
        category=action.category,
        now=turn.now,
    )
    if isinstance(choice, Refusal):
        turn.refuse(choice)
        return
    if choice.nominee is not None:
        await _ask_material(turn, choice.selection, action.category, choice.nominee)
        return
    turn.edit(
        "commendation_pick_member",
        chosen_category=choice.category,
        buttons=[
            [(m.name, ChooseNominee(choice.selection.id, action.category, m.id))]
            for m in choice.members
        ],
    )


@gated(Permission.USE)
async def choose_member(turn: Turn) -> None:
    """A member chosen as nominee: their material is asked for."""
    action = turn.action
    found = await commendation.choose_nominee(
        turn.session,
        actor=turn.actor,
        selection_id=action.selection_id,
        category=action.category,
        member_id=action.member_id,
        now=turn.now,
    )
    if isinstance(found, Refusal):
        turn.refuse(found)
        return
    await _ask_material(turn, found, action.category, f"member:{action.member_id}")


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
async def take_material(turn: Turn, state: Conversation) -> None:
    """The deed material: typed, or a .docx/.txt file; too long is refused with its count."""
    text = turn.text
    file = turn.evidence
    if file is not None and file.kind == "document":
        if file.size > deed_documents.UPLOAD_LIMIT:
            turn.reply(
                "commendation_material_unreadable",
                filename=file.name,
                upload_limit=deed_documents.UPLOAD_LIMIT,
            )
            return
        try:
            content = await turn.channel.download(file)
        except Exception as error:  # noqa: BLE001 — any channel's failure to fetch it
            logger.warning("deed material download: %s", error)
            turn.reply(
                "commendation_material_unreadable",
                filename=file.name,
                upload_limit=deed_documents.UPLOAD_LIMIT,
            )
            return
        try:
            text = await deed_documents.read_upload(file.name, content)
        except deed_documents.DocumentTooLarge:
            turn.reply(
                "commendation_material_too_large",
                filename=file.name,
                limit=commendation.MATERIAL_LIMIT,
            )
            return
        except deed_documents.UnreadableDocument:
            turn.reply(
                "commendation_material_unreadable",
                filename=file.name,
                upload_limit=deed_documents.UPLOAD_LIMIT,
            )
            return
    data = json.loads(state.data)
    selection = await commendation.of_actor(
        turn.session, actor=turn.actor, selection_id=state.subject_id
    )
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
    if outcome.refusal not in (Reason.TOO_LONG, Reason.EMPTY):  # else: still waiting for it
        await conversations.clear_state(turn.session, member_id=turn.actor.member_id)
    if outcome.refusal:
        turn.refuse(
            commendation.refused(
                outcome.refusal, count=outcome.count, limit=commendation.MATERIAL_LIMIT
            )
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
    if not await commendation.withdraw(
        turn.session, actor=turn.actor, nomination_id=turn.action.nomination_id, now=turn.now
    ):
        turn.notice("button_refused")
        return
    turn.notice("commendation_withdrawn")
    await _status(turn)


# --- grading ---------------------------------------------------------------------------------


def _show_grading(turn: Turn, found) -> None:
    """The next nominee to grade, my proposals, everyone's submitted ones, or a refusal."""
    if isinstance(found, Refusal):
        turn.refuse(found)
    elif isinstance(found, commendation.Tally):
        turn.reply("commendation_tally", rules=found.rules, tallied=found.tallied)
    elif isinstance(found, commendation.MyProposals):
        turn.edit(
            "commendation_my_proposals",
            rules=found.rules,
            proposals=found.proposals,
            buttons=turn.offered(found.offers),
        )
    else:
        turn.edit(
            "commendation_grade_item",
            nomination=found.nomination,
            name=found.name,
            chosen_category=found.category,
            record=found.record,
            graded=found.graded,
            nominees_total=found.total,
            buttons=turn.offered(found.offers),
        )


@gated(Permission.USE)
async def grade(turn: Turn) -> None:
    """The next nominee without my proposal, with the record beside the material; once all
    have one, my proposals and the button to submit; once submitted, everyone's."""
    found = await commendation.grading(
        turn.session, actor=turn.actor, selection_id=turn.action.selection_id, now=turn.now
    )
    _show_grading(turn, found)


@gated(Permission.USE)
async def vote(turn: Turn) -> None:
    """A grader's proposal for one nominee, then the next nominee."""
    found = await commendation.propose_prize(
        turn.session,
        actor=turn.actor,
        nomination_id=turn.action.nomination_id,
        prize=turn.action.prize,
        now=turn.now,
    )
    if isinstance(found, Refusal):  # a toast: the nominee being graded stays in view
        if found.toast:
            turn.refuse(found)
        else:
            turn.notice("commendation_refusal_toast", **found.values)
    else:
        _show_grading(turn, found)


@gated(Permission.USE)
async def regrade(turn: Turn) -> None:
    """Go through the nominees again before submitting (each tap replaces the proposal)."""
    found = await commendation.regrading(
        turn.session, actor=turn.actor, selection_id=turn.action.selection_id
    )
    if isinstance(found, Refusal):
        turn.refuse(found)
        return
    turn.edit(
        "commendation_regrade",
        buttons=[[(name, RegradeNominee(n.id))] for n, name in found],
    )


@gated(Permission.USE)
async def regrade_one(turn: Turn) -> None:
    """One nominee shown again for a new proposal."""
    found = await commendation.regrade_nominee(
        turn.session, actor=turn.actor, nomination_id=turn.action.nomination_id, now=turn.now
    )
    _show_grading(turn, found)


@gated(Permission.USE)
async def submit(turn: Turn) -> None:
    """My proposals are final; then everyone's who has submitted, side by side."""
    found = await commendation.submit_grades(
        turn.session, actor=turn.actor, selection_id=turn.action.selection_id, now=turn.now
    )
    _show_grading(turn, found)


# --- the organiser ---------------------------------------------------------------------------


@gated(Permission.ORGANISE)
async def see_tally(turn: Turn) -> None:
    """The organiser follows the grading (only the proposals graders have submitted; an
    organiser who grades too, once they have submitted their own)."""
    found = await commendation.tally_for(
        turn.session, actor=turn.actor, selection_id=turn.action.selection_id
    )
    _show_grading(turn, found)


@gated(Permission.ORGANISE)
async def confirm(turn: Turn) -> None:
    """The final list, from the tally within the quotas, is confirmed; graders who have not
    submitted are named first, and the organiser may go ahead without them."""
    found = await commendation.confirm_list(
        turn.session,
        actor=turn.actor,
        selection_id=turn.action.selection_id,
        now=turn.now,
        despite_missing=turn.action.anyway is not None,
    )
    if isinstance(found, Refusal):
        turn.refuse(found)
    elif isinstance(found, commendation.GradersMissing):
        turn.reply(
            "commendation_graders_missing",
            names=found.names,
            buttons=turn.offered(found.offers),
        )
    else:
        turn.reply(
            "commendation_confirmed",
            selection=found.selection,
            rules=found.rules,
            winners=found.winners,
            buttons=turn.offered(found.offers),
        )


@gated(Permission.ORGANISE)
async def publish(turn: Turn) -> None:
    """Announce to every member (outbox) and the bound group chats; the compiled document."""
    found = await commendation.publish_list(
        turn.session, actor=turn.actor, selection_id=turn.action.selection_id, now=turn.now
    )
    if isinstance(found, Refusal):
        turn.refuse(found)
        return
    runtime = turn.runtime
    announced = {
        "selection": found.selection,
        "rules": found.rules,
        "winners": found.winners,
    }
    locale = runtime.settings.default_locale
    # Group robots (WeCom) hear it through the outbox, once, with this same transaction.
    groups = runtime.settings.announcement_groups
    await notices.announce_to_groups(
        turn.session,
        organisation_id=turn.actor.organisation_id,
        groups=groups,
        subject=f"selection:{found.selection.id}",
        text=runtime.messages.plain(locale, "commendation_announcement", **announced),
        now=turn.now,
    )
    turn.reply("commendation_published_now", chats=len(found.chats) + len(groups))

    async def tell_groups() -> None:
        for channel_name, chat in found.chats:
            # Through the group's own channel, whichever channel the organiser published from.
            channel = runtime.channels.get(channel_name)
            if channel is None:
                logger.warning("announcement to group %s: %s is not running", chat, channel_name)
                continue
            limits = channel.limits
            parts = runtime.messages.render_parts_as(
                limits.flavour,
                limits.text_length,
                locale,
                "commendation_announcement",
                **announced,
            )
            key = "commendation_announcement"
            try:
                await channel.send([Outgoing(chat, part, key=key) for part in parts], None)
            # A group that removed the bot: the others still hear.
            except Exception as error:  # noqa: BLE001
                logger.warning("announcement to group %s: %s", chat, error)

    turn.afterwards(tell_groups)
    await _send_compilation(turn, found.selection)


@gated(Permission.ORGANISE)
async def compile_document(turn: Turn) -> None:
    """The confirmed list's deed materials in one .docx, by prize."""
    found = await commendation.compiled_for(
        turn.session,
        actor=turn.actor,
        selection_id=turn.action.selection_id,
        now=turn.now,
        words=turn.runtime.messages.commendation_words(turn.locale),
    )
    if isinstance(found, Refusal):
        turn.refuse(found)
    else:
        turn.send_file(found.name, found.content)


async def _send_compilation(turn: Turn, selection: Selection) -> None:
    found = await commendation.compiled(
        turn.session,
        selection=selection,
        now=turn.now,
        words=turn.runtime.messages.commendation_words(turn.locale),
    )
    turn.send_file(found.name, found.content)


@gated(Permission.ORGANISE, in_groups=True)
async def bind(turn: Turn) -> None:
    """/bind in a group chat: it receives the organisation's announcements (评选表彰 results)."""
    await commendation.bind_chat(
        turn.session,
        actor=turn.actor,
        channel=turn.channel.name,
        chat=turn.inbound.chat,
        title=turn.inbound.chat_title,
        now=turn.now,
    )
    turn.reply("commendation_bound")


FEATURE = Feature(
    commands=(
        Command("commendation", show),
        Command("bind", bind, where="groups"),
    ),
    actions={
        ChooseCategory: choose_category,
        ChooseNominee: choose_member,
        WithdrawNomination: withdraw,
        Grade: grade,
        ProposePrize: vote,
        Regrade: regrade,
        RegradeNominee: regrade_one,
        SubmitGrades: submit,
        SeeTally: see_tally,
        ConfirmList: confirm,
        Publish: publish,
        Compile: compile_document,
    },
)
