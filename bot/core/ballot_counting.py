"""Counting 群众评议 ballots in batches: a unit of work of its own, outside any update.

A batch is written when its target has k confirmed ballots (after the update that completed
it has committed and replied), and whatever still waits is written when the round ends
(by the periodic job, or at once when an organiser closes it in chat). After each write no
old version of the rating tables is left in the files (`Database.forget_old_versions`).

A write that fails puts its batches back to wait for the next try; what is logged is the
error's kind, never its message: a database error quotes the rows it was writing.
"""

import logging

from bot.core import evaluation
from bot.core.pending_ballots import Batch
from bot.runtime import Runtime
from storage import evaluation as queries
from storage.models import EvaluationRound

logger = logging.getLogger(__name__)
RATING_TABLES = ["evaluationparticipation", "evaluationtally", "evaluationcomment"]


async def count_full_batches(runtime: Runtime) -> int:
    """Write every batch that is due; the number of batches written."""
    async with runtime.pending.writing:
        batches = runtime.pending.take_full()
        if not batches:
            return 0
        by_round: dict[int, dict[str, Batch]] = {}
        for (round_id, target), batch in batches.items():
            by_round.setdefault(round_id, {})[target] = batch
        try:
            async with runtime.db.session() as session:
                for round_id, of_round in by_round.items():
                    await evaluation.count_batches(
                        session,
                        evaluation_round=await session.get(EvaluationRound, round_id),
                        batches=of_round,
                    )
        except Exception as error:  # whatever failed, the ballots wait for the next try
            await _failed(runtime, batches, error)
            return 0
        runtime.pending.written(batches)
        await runtime.db.forget_old_versions(tables=RATING_TABLES, thorough=False)
        return len(batches)


async def count_ended_rounds(runtime: Runtime) -> int:
    """Count what waits in every round that has ended, and mark each counted; the number of
    rounds counted."""
    now = runtime.clock.now()
    taken: dict[tuple[int, str], Batch] = {}
    async with runtime.pending.writing:
        try:
            async with runtime.db.session() as session:
                ended = await queries.rounds_to_count(session, now=now)
                for evaluation_round in ended:
                    batches = runtime.pending.take_round(evaluation_round.id)
                    taken |= batches
                    await evaluation.count_pending(
                        session, evaluation_round=evaluation_round, batches=batches, now=now
                    )
        except Exception as error:
            await _failed(runtime, taken, error)
            return 0
        if not ended:
            return 0
        runtime.pending.written(taken)
        await runtime.db.forget_old_versions(tables=RATING_TABLES, thorough=True)
    logger.info("counted %d ended evaluation round(s)", len(ended))
    return len(ended)


async def _failed(
    runtime: Runtime, batches: dict[tuple[int, str], Batch], error: Exception
) -> None:
    """A write failed, or seemed to: a connection lost after its COMMIT leaves it written.
    The ballots the database holds are done; the others wait for the next try (were they
    written again beside counted ones, a smaller batch could be told apart)."""
    logger.error(
        "could not count %d batch(es) of ballots (%s); they wait for the next try",
        len(batches),
        type(error).__name__,
    )
    done: dict[tuple[int, str], Batch] = {}
    try:
        async with runtime.db.session() as session:
            for (round_id, target), batch in batches.items():
                found = await queries.recorded(
                    session, round_id=round_id, pairs=[(b.rater, target) for b in batch]
                )
                done[(round_id, target)] = [b for b in batch if (b.rater, target) in found]
    except Exception:  # the database cannot say yet: all wait, and the next try tells
        done = {}
    runtime.pending.written(done)
    runtime.pending.put_back(
        {key: [b for b in batch if b not in done.get(key, [])] for key, batch in batches.items()}
    )
