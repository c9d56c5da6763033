"""群众评议's messages through the outbox: the round opens; two days before it closes, to
those with someone left to rate; results ready. Each is planned once per round."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import evaluation
from bot.core.evaluation import RoundState
from bot.core.notices import Composed, Notice, undeliverable
from storage import evaluation as queries
from storage import outbox, people
from storage.models import EvaluationRound, OutboxMessage
from storage.outbox import Recipients

OPENED = "evaluation_open"
CLOSING = "evaluation_closing"
RESULTS = "evaluation_results"
NOTICES = frozenset({OPENED, CLOSING, RESULTS})
CLOSING_NOTICE_BEFORE = timedelta(days=2)
RESULTS_USEFUL_FOR = timedelta(days=14)


def _subject(evaluation_round: EvaluationRound) -> str:
    return f"round:{evaluation_round.id}"


def _moments(evaluation_round: EvaluationRound) -> list[tuple[str, datetime, datetime]]:
    """(notice, when it falls due, until when it is worth sending) for a round."""
    closing = evaluation_round.closes_at - CLOSING_NOTICE_BEFORE
    ended = evaluation_round.closed_at or evaluation_round.closes_at
    found = [(OPENED, evaluation_round.opens_at, ended)]
    if closing > evaluation_round.opens_at:
        found.append((CLOSING, closing, ended))
    found.append((RESULTS, ended, ended + RESULTS_USEFUL_FOR))
    return found


async def plan_reminders(session: AsyncSession, *, organisation_id: int, now: datetime) -> int:
    """Queue each notice that fell due, once (results once the round has been counted, see
    bot.core.ballot_counting)."""
    planned = await outbox.planned_reminders(session, organisation_id=organisation_id)
    queued, markers = 0, []
    for evaluation_round in await queries.rounds_of(session, organisation_id=organisation_id):
        subject = _subject(evaluation_round)
        for notice, fires_at, expires_at in _moments(evaluation_round):
            if (notice, subject) in planned or fires_at > now:
                continue
            if notice == RESULTS and evaluation_round.counted_at is None:
                continue
            count = 0
            if now < expires_at:
                count = await _queue(session, evaluation_round, notice, fires_at, expires_at)
            queued += count
            markers.append(
                {
                    "reminder": notice,
                    "subject": subject,
                    "organisation_id": organisation_id,
                    "planned_at": now,
                    "recipients": count,
                }
            )
    await outbox.mark_planned(session, markers=markers)
    return queued


async def _queue(session, evaluation_round, notice, fires_at, expires_at) -> int:
    subject = _subject(evaluation_round)
    if notice != CLOSING:
        # Everyone is rated and rates under seed 004's rules: one statement for all.
        return await outbox.insert_recipients(
            session,
            recipients=Recipients(evaluation_round.organisation_id),
            reminder=notice,
            subject=subject,
            step_id=None,
            send_after=fires_at,
            expires_at=expires_at,
        )
    behind = await evaluation.members_with_targets_left(session, evaluation_round=evaluation_round)
    return await outbox.add_messages(
        session,
        rows=[
            {
                "organisation_id": evaluation_round.organisation_id,
                "reminder": notice,
                "subject": subject,
                "member_id": member_id,
                "send_after": fires_at,
                "expires_at": expires_at,
            }
            for member_id in behind
        ],
    )


async def next_reminder(
    session: AsyncSession, *, organisation_id: int, after: datetime
) -> datetime | None:
    """The next moment a round opens, nears its end or closes, with nothing planned yet."""
    planned = await outbox.planned_reminders(session, organisation_id=organisation_id)
    moments = [
        fires_at
        for evaluation_round in await queries.rounds_of(session, organisation_id=organisation_id)
        for notice, fires_at, expires_at in _moments(evaluation_round)
        if (notice, _subject(evaluation_round)) not in planned and expires_at > after
    ]
    return min(moments) if moments else None


async def compose(
    session: AsyncSession, *, messages: Sequence[OutboxMessage], now: datetime
) -> Composed:
    composed = Composed()
    if not messages:
        return composed
    members = await people.members_by_id(session, ids=(m.member_id for m in messages))
    rounds: dict[int, EvaluationRound] = {}
    behind: dict[int, set[int]] = {}
    for message in messages:
        round_id = int(message.subject.split(":")[1])
        if round_id not in rounds:
            rounds[round_id] = await session.get(EvaluationRound, round_id)
        evaluation_round = rounds[round_id]
        member = members.get(message.member_id)
        state = evaluation.state_of(evaluation_round, now)
        reason = undeliverable(member)
        if reason is None and message.expires_at <= now:
            reason = "too late"
        if reason is None and message.reminder != RESULTS and state != RoundState.OPEN:
            reason = "round closed"
        if reason is None and message.reminder != RESULTS:
            if round_id not in behind:
                behind[round_id] = set(
                    await evaluation.members_with_targets_left(
                        session, evaluation_round=evaluation_round
                    )
                )
            if member.id not in behind[round_id]:
                reason = "rated everyone already"
        if reason:
            composed.skipped[message.id] = reason
            continue
        composed.notices.append(
            Notice(
                message.id,
                member,
                f"reminder_{message.reminder}",
                {"name": member.name, "evaluation_round": evaluation_round},
            )
        )
    return composed
