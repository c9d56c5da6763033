"""Durable intake, for every channel: an update is stored before the channel is told it
arrived, and processed once from there.

A channel adapter calls `accept` when an update comes in and acknowledges it to the channel
only afterwards (Telegram: the next getUpdates offset, or the webhook's answer; WeCom: the
answer to its callback, at once, so that it never retries). `accept` says False for an update
stored before: a duplicate delivery, not processed again. The adapter then processes the
update within `processing`, and the handler's own transaction marks it done (`mark_done`, in
the gate) together with its rendered replies, so its effects, "done" and what to answer
commit together: a restart processes what was stored and not done (`waiting`), and nothing
twice. Replies leave after that commit, each recorded as handed over just before its request
(`Answering`); a restart sends those never handed over (`unsent_replies`), and never one
that was, since it may have arrived.

群众评议 stays anonymous: a ballot's tap or comment is never stored, only its update id
(for duplicates); it is processed from memory, and lost if the process dies, as the ballot
in progress is anyway.
"""

import json
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.ballots import BALLOT_BUTTONS, BallotBox
from bot.core.evaluation_codes import looks_like_code
from bot.core.text import normalise
from storage import intake
from storage.db import Database

# Payloads of a ballot's buttons (the target, the level of an item, the confirmation), by
# prefix: a malformed or forged one is kept out of storage too.
BALLOT_ACTIONS = tuple(f"{action.prefix}:" for action in BALLOT_BUTTONS)
# How many processed updates are remembered to recognise a late duplicate.
REMEMBERED = 10_000

# The stored update the current task is processing: its intake and update id.
_processing: ContextVar[tuple["Intake", str] | None] = ContextVar("intake_update", default=None)


def is_ballot_action(payload: str | None) -> bool:
    return payload is not None and payload.startswith(BALLOT_ACTIONS)


def holds_ballot(
    ballots: BallotBox,
    *,
    account: Hashable | None,
    action: str | None,
    private_words: str | None,
    ballot_queued: bool,
    now: datetime,
    edited: bool = False,
) -> bool:
    """Whether an update may carry a ballot: a ballot's button; words in a private chat
    while the member has a ballot in progress, or while a ballot's button is still in the
    queue (the words may be the comment that button is about to ask for), or just after a
    ballot expired at its comment (they were meant for it); an edited private message (a
    comment corrected after confirming: edits are never taken, so nothing of it is needed
    after a crash); an evaluation code (which account holds which code is kept nowhere)."""
    if is_ballot_action(action):
        return True
    if private_words is None or account is None:
        return False
    if edited:
        return True
    # Read as the /start handler reads it (any case, any space, normalised arguments).
    command, *arguments = private_words.split() or [""]
    arguments = [word for word in map(normalise, arguments) if word]
    if command.split("@")[0].lower() == "/start" and looks_like_code(next(iter(arguments), "")):
        return True
    return (
        ballot_queued
        or ballots.waiting(account, now) is not None
        or ballots.expired(account, now) is not None
    )


class Intake:
    """One channel's intake."""

    def __init__(self, db: Database, channel: str) -> None:
        self.db = db
        self.channel = channel
        # Accepted by this process and not yet processed (what `processing` marks done).
        self._accepted: set[str] = set()
        self._ballots: set[str] = set()  # of those, the ones kept in memory only
        self._since_forgotten = 0  # updates processed since old ones were last forgotten

    async def accept(self, update_id: str, payload: str | None) -> bool:
        """Store an update (`payload` None: a ballot, kept in memory only) before it is
        acknowledged; False for a duplicate."""
        async with self.db.session() as session:
            new = await intake.accept(
                session, channel=self.channel, update_id=update_id, payload=payload
            )
        if new:
            self._accepted.add(update_id)
            if payload is None:
                self._ballots.add(update_id)
        return new

    async def waiting(self) -> list[tuple[str, str]]:
        """What a dead process stored and did not process, oldest first; from now on this
        process answers for it. Long-processed updates are forgotten."""
        async with self.db.session() as session:
            await intake.forget_old(session, channel=self.channel, keep=REMEMBERED)
            stored = list(await intake.waiting(session, channel=self.channel))
        self._accepted.update(update_id for update_id, _payload in stored)
        return stored

    @contextmanager
    def processing(self, update_id: str) -> Iterator[bool]:
        """Around the processing of an update; yields whether it came through the intake."""
        if update_id not in self._accepted:
            yield False
            return
        token = _processing.set((self, update_id))
        try:
            yield True
        finally:
            _processing.reset(token)

    async def done(self, update_id: str) -> None:
        """Processed (whether or not a handler marked it so in its own transaction)."""
        if update_id in self._accepted:
            self._accepted.discard(update_id)
            self._ballots.discard(update_id)
            self._since_forgotten += 1
            async with self.db.session() as session:
                await intake.finish(session, channel=self.channel, update_id=update_id)
                if self._since_forgotten >= REMEMBERED // 10:
                    self._since_forgotten = 0
                    await intake.forget_old(session, channel=self.channel, keep=REMEMBERED)

    def kept_in_memory(self, update_id: str) -> bool:
        """A ballot: nothing of it is stored, its replies neither."""
        return update_id in self._ballots

    async def unsent_replies(self) -> list[tuple["Answering", list[dict]]]:
        """After a restart: the replies a dead process had not handed over, by update."""
        async with self.db.session() as session:
            rows = await intake.unsent_replies(session, channel=self.channel)
        return [
            (Answering(self, update_id, handed), json.loads(replies)[handed:])
            for update_id, replies, handed in rows
        ]


@dataclass
class Answering:
    """The replies of a processed update, on their way out, one by one."""

    intake: Intake
    update_id: str
    already: int = 0  # handed over before a restart: `position`s count from there

    async def _record(self, handed: int | None) -> None:
        async with self.intake.db.session() as session:
            await intake.replies_handed(
                session, channel=self.intake.channel, update_id=self.update_id, handed=handed
            )

    async def handing_over(self, position: int) -> None:
        """Just before the request of the reply at `position` is made (again, after a 429)."""
        await self._record(self.already + position + 1)

    async def finished(self) -> None:
        await self._record(None)


async def mark_done(session: AsyncSession, *, replies: list[dict]) -> Answering | None:
    """Within the transaction of the update being processed: its effects, "done" and its
    `replies` commit together, so a restart never processes it a second time, and sends
    the replies a crash kept from leaving. A ballot's replies are never stored."""
    current = _processing.get()
    if current is None:
        return None
    owner, update_id = current
    stored = None if owner.kept_in_memory(update_id) or not replies else json.dumps(replies)
    await intake.mark_done(session, channel=owner.channel, update_id=update_id, replies=stored)
    return Answering(owner, update_id) if stored else None
