"""/rate and the 群众评议 ballot: a target, one tap per item, an optional comment, a summary,
then confirm. Members rate as themselves; the masses through an evaluation code's link.

The ballot lives in the runtime's BallotBox (memory) until it is confirmed, then in its
pending ballots until its target has a batch of k (bot.core.ballot_counting): nothing of it is
written to the database, the conversation state or the logs on the way. Outside the
member's private chat nothing of a ballot is ever shown (the gate answers only there).
"""

from bot.core import ballot_counting, evaluation, evaluation_codes
from bot.core.access import Permission
from bot.core.ballots import IDLE_LIMIT, Ballot, BallotStep, ChooseLevel, ChooseTarget
from bot.core.contract import Channel, Inbound
from bot.core.evaluation import COMMENT_LIMIT, Outcome, Rater, RoundSettings, RoundState
from bot.core.evaluation_codes import Redemption
from bot.core.refusal import over
from bot.runtime import Runtime
from handlers.gate import Turn, gated
from handlers.routes import Command, Feature
from storage.models import EvaluationRound


async def _rater(turn: Turn) -> tuple[Rater, EvaluationRound | None] | None:
    """Who is rating, and in which round (None: a stranger without a code)."""
    seated = None
    if turn.actor is None:
        seated = turn.runtime.ballots.code_rater(turn.account, turn.now)
    return await evaluation.who_rates(turn.session, actor=turn.actor, seated=seated, now=turn.now)


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
        turn.runtime.ballots.leave(turn.account)  # the code is spent
    turn.reply(
        "rate_list",
        evaluation_round=evaluation_round,
        left=left,
        total=len(targets),
        buttons=[
            [(t.name, ChooseTarget.of(evaluation_round.id, t.target.target))] for t in left[:60]
        ],
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
    redeemed = await evaluation_codes.redeem(
        turn.session,
        token=token,
        account=turn.account,
        key=turn.runtime.settings.code_use_key,
        now=turn.now,
    )
    if redeemed.outcome is not Redemption.OK:
        turn.reply("code_refused", refusal=redeemed.outcome.value)
        return
    turn.runtime.ballots.seat_code(
        turn.account, redeemed.rater, redeemed.evaluation_round.id, turn.now
    )
    turn.reply("code_welcome", evaluation_round=redeemed.evaluation_round)
    await _show_targets(turn, redeemed.rater, redeemed.evaluation_round)


@gated(Permission.START, on_loop=True)
async def choose_target(turn: Turn) -> None:
    """A target chosen: a fresh ballot, its first item."""
    action: ChooseTarget = turn.action
    found = await _rater(turn)
    if found is None:
        turn.notice("ballot_stale")
        return
    rater, evaluation_round = found
    target = await evaluation.target_to_rate(
        turn.session,
        rater=rater,
        evaluation_round=evaluation_round,
        round_id=action.round_id,
        target=action.target,
        now=turn.now,
    )
    if isinstance(target, str):
        turn.notice(target)
        return
    settings = RoundSettings.of(evaluation_round)
    ballot = turn.runtime.ballots.start(
        turn.account,
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
                [(level, ChooseLevel(nonce, index, number))]
                for number, level in enumerate(ballot.scale)
            ]
            + [[(turn.label("button_ballot_drop"), BallotStep(nonce, "drop"))]],
        )
    elif ballot.awaiting_comment:
        turn.edit(
            "ballot_comment_ask",
            ballot=ballot,
            limit=COMMENT_LIMIT,
            buttons=[[(turn.label("button_ballot_no_comment"), BallotStep(nonce, "skip"))]],
        )
    else:
        turn.edit(
            "ballot_summary",
            ballot=ballot,
            buttons=[
                [(turn.label("button_ballot_confirm"), BallotStep(nonce, "confirm"))],
                [(turn.label("button_ballot_redo"), BallotStep(nonce, "redo"))],
                [(turn.label("button_ballot_drop"), BallotStep(nonce, "drop"))],
            ],
        )


@gated(Permission.START, on_loop=True)
async def choose_level(turn: Turn) -> None:
    """One tap on an item's level; a tap on an item already answered changes nothing."""
    action: ChooseLevel = turn.action
    ballot = turn.runtime.ballots.ballot(turn.account, action.nonce, turn.now)
    if ballot is None:
        turn.notice("ballot_stale")
        return
    if action.item != ballot.current_item or not 0 <= action.level < len(ballot.scale):
        turn.notice("ballot_tap_once")
        return
    ballot.choices.append(action.level)
    ballot.awaiting_comment = ballot.complete
    _show_ballot(turn, ballot)


@gated(Permission.START, on_loop=True)
async def ballot_step(turn: Turn) -> None:
    """No comment, confirm, start over, or drop the ballot."""
    action: BallotStep = turn.action
    box = turn.runtime.ballots
    if action.step == "confirm":
        await _confirm(turn, box.take(turn.account, action.nonce, turn.now))
        return
    ballot = box.ballot(turn.account, action.nonce, turn.now)
    if ballot is None:
        turn.notice("ballot_stale")
        return
    if action.step == "drop":
        box.discard(turn.account)
        turn.edit("ballot_dropped", ballot=ballot)
        return
    if action.step == "redo":
        ballot.choices.clear()
        ballot.awaiting_comment = False
    elif action.step == "skip":
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
        evaluation_round = await evaluation.round_by_id(turn.session, round_id=ballot.round_id)
        batch = RoundSettings.of(evaluation_round).min_raters
        turn.edit("ballot_received", ballot=ballot, batch=batch)
        await _show_targets(turn, *found)
        turn.afterwards(lambda: ballot_counting.count_full_batches(turn.runtime))
    else:
        turn.edit("ballot_not_counted", ballot=ballot, outcome=outcome.value)


@gated(Permission.START, on_loop=True)
async def take_comment(turn: Turn) -> None:
    """The optional comment, typed while the ballot waits for it."""
    ballot = turn.runtime.ballots.ballot(turn.account, None, turn.now)
    text = turn.text.strip()
    if not text:
        turn.reply("ballot_comment_text_only")
        return
    if refused := over(text, COMMENT_LIMIT):
        turn.refuse(refused)
        return
    ballot.comment = text
    ballot.awaiting_comment = False
    _show_ballot(turn, ballot)


@gated(Permission.START, on_loop=True)
async def say_expired(turn: Turn) -> None:
    """The text was meant for a ballot that expired: say so, and use the text nowhere."""
    turn.reply(
        "ballot_expired",
        target_name=turn.runtime.ballots.expired(turn.account, turn.now),
        idle_hours=round(IDLE_LIMIT.total_seconds() / 3600),
    )
    turn.runtime.ballots.told_expired(turn.account)


async def comment_first(inbound: Inbound, channel: Channel, runtime: Runtime) -> bool:
    """Ahead of every other feature: a message to a ballot waiting for its comment is the
    comment (and goes nowhere else); so is the first message after such a ballot expired,
    which is answered with that (it was meant for the ballot, not for another flow). Any
    other message passes on untouched (False)."""
    now = runtime.clock.now()
    ballot = runtime.ballots.waiting(inbound.account, now)
    if ballot is not None and ballot.awaiting_comment:
        await take_comment(inbound, channel, runtime)
        return True
    if runtime.ballots.expired(inbound.account, now) is not None:
        await say_expired(inbound, channel, runtime)
        return True
    return False


@gated(Permission.START, on_loop=True)
async def drop_ballot(turn: Turn) -> None:
    """A command while a ballot is in progress: the ballot is dropped, nothing recorded (so
    what is typed next belongs to the command, never to the ballot)."""
    ballot = turn.runtime.ballots.waiting(turn.account, turn.now)
    turn.runtime.ballots.discard(turn.account)
    turn.reply("ballot_dropped", ballot=ballot)


async def command_first(inbound: Inbound, channel: Channel, runtime: Runtime) -> bool:
    """Ahead of every command's own handler: with a ballot in progress, it is dropped first.
    /cancel stops there (True: a second /cancel then leaves any other conversation); any
    other command goes on to its handler."""
    runtime.ballots.told_expired(inbound.account)  # a command: the member has moved on
    if runtime.ballots.waiting(inbound.account, runtime.clock.now()) is None:
        return False
    await drop_ballot(inbound, channel, runtime)
    return inbound.command == "cancel"


FEATURE = Feature(
    commands=(Command("rate", rate),),
    actions={ChooseTarget: choose_target, ChooseLevel: choose_level, BallotStep: ballot_step},
    before_words=comment_first,
    before_command=command_first,
)
