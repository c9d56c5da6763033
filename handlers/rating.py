"""/rate and the 群众评议 ballot: a target, one tap per item, an optional comment, a summary,
then confirm. Members rate as themselves; the masses through an evaluation code's link.

The ballot lives in the runtime's BallotBox (memory) until it is confirmed, then in its
pending ballots until its target has a batch of k (bot.core.ballot_counting): nothing of it is
written to the database, the conversation state or the logs on the way.
"""

import re

from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core import ballot_counting, evaluation, evaluation_codes
from bot.core.access import Permission
from bot.core.ballots import IDLE_LIMIT, Ballot
from bot.core.evaluation import COMMENT_LIMIT, Outcome, Rater, RoundSettings, RoundState
from bot.core.evaluation_codes import Redemption
from handlers.gate import Turn, gated, runtime_of
from storage.models import EvaluationRound

# Outside private chats nothing of a ballot is ever shown.
_PRIVATE = filters.ChatType.PRIVATE


async def _rater(turn: Turn) -> tuple[Rater, EvaluationRound | None] | None:
    """Who is rating, and in which round: a member in the current one, a code holder in
    their code's; None for a stranger without a code."""
    if turn.actor is not None:
        evaluation_round = await evaluation.current_round(
            turn.session, organisation_id=turn.actor.organisation_id, now=turn.now
        )
        return Rater.of_member(turn.actor), evaluation_round
    seated = turn.runtime.ballots.code_rater(turn.update.effective_user.id, turn.now)
    if seated is None:
        return None
    rater, round_id = seated
    return rater, await turn.session.get(EvaluationRound, round_id)


async def _show_targets(turn: Turn, rater: Rater, evaluation_round: EvaluationRound | None) -> None:
    """The targets still to rate as buttons, or why there are none."""
    state = evaluation.state_of(evaluation_round, turn.now) if evaluation_round else None
    if state is None:
        turn.reply("evaluation_none")
        return
    if state != RoundState.OPEN:
        turn.reply(
            "evaluation_not_running",
            evaluation_round=evaluation_round,
            state=state,
            as_member=turn.actor is not None,
        )
        return
    targets = await evaluation.targets_for(
        turn.session, evaluation_round=evaluation_round, rater=rater
    )
    left = [t for t in targets if not t.rated]
    if not left and turn.actor is None:
        turn.runtime.ballots.leave(turn.update.effective_user.id)  # the code is spent
    turn.reply(
        "rate_list",
        evaluation_round=evaluation_round,
        left=left,
        total=len(targets),
        buttons=[[(t.name, f"evt:{evaluation_round.id}:{t.target.target}")] for t in left[:60]],
    )


@gated(Permission.START)
async def rate(turn: Turn) -> None:
    """Whom I still have to rate in the open round."""
    found = await _rater(turn)
    if found is None:
        turn.reply("not_member")
        return
    await _show_targets(turn, *found)


async def open_code(turn: Turn, token: str) -> None:
    """/start with an evaluation code: rate as the code's anonymous holder."""
    if turn.actor is not None:
        # A member rates as themselves: a code would give them a second voice.
        turn.reply("code_refused", refusal="member")
        return
    account = turn.update.effective_user.id
    redeemed = await evaluation_codes.redeem(
        turn.session,
        token=token,
        account=account,
        key=turn.runtime.settings.code_use_key,
        now=turn.now,
    )
    if redeemed.outcome is not Redemption.OK:
        turn.reply("code_refused", refusal=redeemed.outcome.value)
        return
    turn.runtime.ballots.seat_code(account, redeemed.rater, redeemed.evaluation_round.id, turn.now)
    turn.reply("code_welcome", evaluation_round=redeemed.evaluation_round)
    await _show_targets(turn, redeemed.rater, redeemed.evaluation_round)


@gated(Permission.START)
async def choose_target(turn: Turn) -> None:
    """A target chosen: a fresh ballot, its first item."""
    match = re.fullmatch(r"evt:(\d{1,9}):((?:member|branch):\d{1,9})", turn.callback_data)
    found = await _rater(turn)
    if found is None or found[1] is None or found[1].id != int(match[1]):
        turn.notice("ballot_stale")
        return
    rater, evaluation_round = found
    if evaluation.state_of(evaluation_round, turn.now) != RoundState.OPEN:
        turn.notice("ballot_closed")
        return
    targets = await evaluation.targets_for(
        turn.session, evaluation_round=evaluation_round, rater=rater
    )
    target = next((t for t in targets if t.target.target == match[2]), None)
    if target is None:
        turn.notice("button_refused")
        return
    if target.rated:
        turn.notice("ballot_already")
        return
    settings = RoundSettings.of(evaluation_round)
    ballot = turn.runtime.ballots.start(
        turn.update.effective_user.id,
        turn.now,
        round_id=evaluation_round.id,
        target=target.target.target,
        target_name=target.name,
        items=settings.items_for(target.target.kind),
        scale=settings.scale,
    )
    _show_ballot(turn, ballot)


def _show_ballot(turn: Turn, ballot: Ballot) -> None:
    """The ballot where it stands: an item to rate, the comment, or the summary to confirm."""
    nonce = ballot.nonce
    if not ballot.complete:
        index = ballot.current_item
        turn.edit(
            "ballot_item",
            ballot=ballot,
            index=index,
            buttons=[
                [(level, f"evb:{nonce}:{index}:{number}")]
                for number, level in enumerate(ballot.scale)
            ]
            + [[(turn.label("button_ballot_drop"), f"evn:{nonce}:drop")]],
        )
    elif ballot.awaiting_comment:
        turn.edit(
            "ballot_comment_ask",
            ballot=ballot,
            limit=COMMENT_LIMIT,
            buttons=[[(turn.label("button_ballot_no_comment"), f"evn:{nonce}:skip")]],
        )
    else:
        turn.edit(
            "ballot_summary",
            ballot=ballot,
            buttons=[
                [(turn.label("button_ballot_confirm"), f"evn:{nonce}:confirm")],
                [(turn.label("button_ballot_redo"), f"evn:{nonce}:redo")],
                [(turn.label("button_ballot_drop"), f"evn:{nonce}:drop")],
            ],
        )


@gated(Permission.START)
async def choose_level(turn: Turn) -> None:
    """One tap on an item's level; a tap on an item already answered changes nothing."""
    _prefix, nonce, item, level = turn.callback_data.split(":")
    ballot = turn.runtime.ballots.ballot(turn.update.effective_user.id, nonce, turn.now)
    if ballot is None:
        turn.notice("ballot_stale")
        return
    if int(item) != ballot.current_item or not 0 <= int(level) < len(ballot.scale):
        turn.notice("ballot_tap_once")
        return
    ballot.choices.append(int(level))
    ballot.awaiting_comment = ballot.complete
    _show_ballot(turn, ballot)


@gated(Permission.START)
async def ballot_action(turn: Turn) -> None:
    """No comment, confirm, start over, or drop the ballot."""
    _prefix, nonce, action = turn.callback_data.split(":")
    account = turn.update.effective_user.id
    box = turn.runtime.ballots
    if action == "confirm":
        await _confirm(turn, box.take(account, nonce, turn.now))
        return
    ballot = box.ballot(account, nonce, turn.now)
    if ballot is None:
        turn.notice("ballot_stale")
        return
    if action == "drop":
        box.discard(account)
        turn.edit("ballot_dropped", ballot=ballot)
        return
    if action == "redo":
        ballot.choices.clear()
        ballot.awaiting_comment = False
    elif action == "skip":
        ballot.comment = ""
        ballot.awaiting_comment = False
    _show_ballot(turn, ballot)


async def _confirm(turn: Turn, ballot: Ballot | None) -> None:
    if ballot is None or not ballot.complete or ballot.awaiting_comment:
        turn.notice("ballot_stale")
        return
    found = await _rater(turn)
    if found is None:
        turn.notice("ballot_stale")
        return
    outcome = await evaluation.cast(
        turn.session,
        pending=turn.runtime.pending,
        round_id=ballot.round_id,
        rater=found[0],
        target=ballot.target,
        choices=ballot.choices,
        comment=ballot.comment,
        now=turn.now,
    )
    turn.notice("ballot_toast", outcome=outcome.value)
    if outcome is Outcome.RECEIVED:
        evaluation_round = await turn.session.get(EvaluationRound, ballot.round_id)
        batch = RoundSettings.of(evaluation_round).min_raters
        turn.edit("ballot_received", ballot=ballot, batch=batch)
        await _show_targets(turn, *found)
        turn.afterwards(lambda: ballot_counting.count_full_batches(turn.runtime))
    else:
        turn.edit("ballot_not_counted", ballot=ballot, outcome=outcome.value)


@gated(Permission.START)
async def take_comment(turn: Turn) -> None:
    """The optional comment, typed while the ballot waits for it."""
    ballot = turn.runtime.ballots.ballot(turn.update.effective_user.id, None, turn.now)
    text = turn.text.strip()
    if not text:
        turn.reply("ballot_comment_text_only")
        return
    if len(text) > COMMENT_LIMIT:
        turn.reply("text_too_long", length=len(text), allowed=COMMENT_LIMIT, text=text)
        return
    ballot.comment = text
    ballot.awaiting_comment = False
    _show_ballot(turn, ballot)


@gated(Permission.START)
async def say_expired(turn: Turn) -> None:
    """The text was meant for a ballot that expired: say so, and use the text nowhere."""
    account = turn.update.effective_user.id
    turn.reply(
        "ballot_expired",
        target_name=turn.runtime.ballots.expired(account, turn.now),
        idle_hours=round(IDLE_LIMIT.total_seconds() / 3600),
    )
    turn.runtime.ballots.told_expired(account)


async def comment_first(update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ahead of every other handler: a message to a ballot waiting for its comment is the
    comment (and goes nowhere else); so is the first message after such a ballot expired,
    which is answered with that (it was meant for the ballot, not for another flow). Any
    other message passes on untouched."""
    user = update.effective_user
    if user is None:
        return
    runtime = runtime_of(context)
    now = runtime.clock.now()
    ballot = runtime.ballots.waiting(user.id, now)
    if ballot is not None and ballot.awaiting_comment:
        await take_comment(update, context)
        raise ApplicationHandlerStop
    if runtime.ballots.expired(user.id, now) is not None:
        await say_expired(update, context)
        raise ApplicationHandlerStop


def handlers() -> list[BaseHandler]:
    return [
        CommandHandler("rate", rate, filters=_PRIVATE),
        CallbackQueryHandler(choose_target, pattern=r"^evt:\d{1,9}:(member|branch):\d{1,9}$"),
        CallbackQueryHandler(choose_level, pattern=r"^evb:[0-9a-f]{8}:\d{1,2}:\d{1,2}$"),
        CallbackQueryHandler(ballot_action, pattern=r"^evn:[0-9a-f]{8}:(skip|confirm|redo|drop)$"),
    ]


@gated(Permission.START)
async def drop_ballot(turn: Turn) -> None:
    """A command while a ballot is in progress: the ballot is dropped, nothing recorded (so
    what is typed next belongs to the command, never to the ballot)."""
    account = turn.update.effective_user.id
    ballot = turn.runtime.ballots.waiting(account, turn.now)
    turn.runtime.ballots.discard(account)
    turn.reply("ballot_dropped", ballot=ballot)


async def command_first(update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ahead of every command's own handler: with a ballot in progress, it is dropped first.
    /cancel stops there (a second /cancel then leaves any other conversation); any other
    command goes on to its handler."""
    user = update.effective_user
    runtime = runtime_of(context)
    if user is not None:
        runtime.ballots.told_expired(user.id)  # a command: the member has moved on
    if user is None or runtime.ballots.waiting(user.id, runtime.clock.now()) is None:
        return
    await drop_ballot(update, context)
    if (update.effective_message.text or "").split()[0].split("@")[0] == "/cancel":
        raise ApplicationHandlerStop


def first_handlers() -> list[BaseHandler]:
    """Registered in a group before the others (see handlers.register)."""
    # New messages only: an edited message is never taken as a comment.
    new_message = _PRIVATE & filters.UpdateType.MESSAGE
    return [
        MessageHandler(new_message & ~filters.COMMAND & ~filters.StatusUpdate.ALL, comment_first),
        MessageHandler(new_message & filters.COMMAND, command_first),
    ]
