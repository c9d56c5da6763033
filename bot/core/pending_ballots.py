"""Confirmed 群众评议 ballots waiting in memory for their batch.

A confirmed ballot is never written to the database on its own: the rater and their choices
would then meet in one transaction, and a copy of the database, its journal or its
statement log would link them. It waits here with the others on its target; once 2k wait
(k the round's threshold), k of them, drawn at random, are written in one transaction
(bot.core.ballot_counting), so that at least k always remain for the batch written when the round
ends. Every batch, the last included, thus has at least k ballots, and nothing can place one
rater's choices more precisely than within their batch. (A target with fewer than k raters
in all never has its choices written: its figures could not be shown anyway.)

What waits here is lost if the process dies; it was never written, so never half counted.
Its raters are then, correctly, shown as not having rated, and asked again.
"""

import asyncio
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Confirmed:
    """One confirmed ballot: who rated (for participation), the level per item, a comment."""

    rater: str
    choices: tuple[int, ...]
    comment: str


Batch = list[Confirmed]
_shuffle = random.SystemRandom().shuffle


class PendingBallots:
    """Confirmed ballots by round and target, and who is held (waiting or being written)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[int, str], Batch] = {}
        self._batch_size: dict[int, int] = {}
        # (round, rater) → targets whose ballot waits here or is being written: the rater has
        # rated them, though the database does not know yet.
        self._held: dict[tuple[int, str], set[str]] = {}
        self._counted_rounds: set[int] = set()
        # One writer at a time: a batch being written and a round being counted at its end
        # must not cross (bot.core.ballot_counting).
        self.writing = asyncio.Lock()

    def holds(self, round_id: int, rater: str, target: str) -> bool:
        return target in self._held.get((round_id, rater), ())

    def held_targets(self, round_id: int, rater: str) -> set[str]:
        return set(self._held.get((round_id, rater), ()))

    def held_counts(self, round_id: int) -> dict[str, int]:
        """rater → how many of their ballots in the round are held here."""
        return {
            rater: len(targets)
            for (of_round, rater), targets in self._held.items()
            if of_round == round_id
        }

    def add(self, round_id: int, target: str, ballot: Confirmed, *, batch_size: int) -> bool:
        """Hold a confirmed ballot (the caller has checked it is the rater's first); False if
        the round's last ballots have been taken for counting meanwhile."""
        if round_id in self._counted_rounds:
            return False
        self._batch_size[round_id] = batch_size
        self._waiting.setdefault((round_id, target), []).append(ballot)
        self._held.setdefault((round_id, ballot.rater), set()).add(target)
        return True

    def take_full(self) -> dict[tuple[int, str], Batch]:
        """A batch of k, drawn at random, from every target with 2k waiting: to be written
        now, leaving at least k for the next batch or the last."""
        full = {}
        for key, waiting in self._waiting.items():
            size = self._batch_size[key[0]]
            if len(waiting) >= 2 * size:
                _shuffle(waiting)
                full[key], self._waiting[key] = waiting[:size], waiting[size:]
        return full

    def take_round(self, round_id: int) -> dict[tuple[int, str], Batch]:
        """Everything waiting in a round that has ended, whatever the batches' sizes; the round
        takes no more."""
        self._counted_rounds.add(round_id)
        taken = {key: batch for key, batch in self._waiting.items() if key[0] == round_id}
        for key in taken:
            del self._waiting[key]
        return taken

    def written(self, batches: dict[tuple[int, str], Batch]) -> None:
        """The batches are in the database (committed): nothing of them stays here."""
        for (round_id, target), batch in batches.items():
            for ballot in batch:
                targets = self._held.get((round_id, ballot.rater))
                if targets is not None:
                    targets.discard(target)
                    if not targets:
                        del self._held[(round_id, ballot.rater)]

    def put_back(self, batches: dict[tuple[int, str], Batch]) -> None:
        """Writing failed: the batches wait again (still held), for the next try."""
        for key, batch in batches.items():
            self._waiting.setdefault(key, []).extend(batch)

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._waiting.values())
