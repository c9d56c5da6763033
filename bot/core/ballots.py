"""Ballots in progress, held only in memory: never written to the database, a log or any
persistence, and gone once confirmed, abandoned, or after a restart.

Each ballot has a random nonce that its buttons carry, so a tap on an old ballot's button
is recognised as stale instead of landing on the current one. Seats are keyed by the
channel account (bot.core.access.Account): any hashable will do.
"""

import secrets
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal

from bot.core.actions import Action
from bot.core.evaluation import Rater

IDLE_LIMIT = timedelta(hours=2)
EXPIRY_KEPT = timedelta(days=7)  # how long an expired ballot is still mentioned
SWEEP_EVERY = timedelta(minutes=1)

Nonce = Annotated[str, r"[0-9a-f]{8}"]


@dataclass(frozen=True)
class ChooseTarget(Action, prefix="evt"):
    """Rate this target (`member:12`, `branch:3`) in this round."""

    round_id: int
    kind: Literal["member", "branch"]
    target_id: int

    @classmethod
    def of(cls, round_id: int, target: str) -> "ChooseTarget":
        kind, _, target_id = target.partition(":")
        return cls(round_id, kind, int(target_id))

    @property
    def target(self) -> str:
        return f"{self.kind}:{self.target_id}"


@dataclass(frozen=True)
class ChooseLevel(Action, prefix="evb"):
    """One item of the ballot `nonce` answered with a level of the scale."""

    nonce: Nonce
    item: int
    level: int


@dataclass(frozen=True)
class BallotStep(Action, prefix="evn"):
    """No comment, confirm, start over, or drop the ballot `nonce`."""

    nonce: Nonce
    step: Literal["skip", "confirm", "redo", "drop"]


# A ballot's buttons: nothing they carry is ever stored or logged (bot.intake).
BALLOT_BUTTONS: tuple[type[Action], ...] = (ChooseTarget, ChooseLevel, BallotStep)


@dataclass
class Ballot:
    """One rater's choices on one target, item by item, then an optional comment."""

    nonce: str
    round_id: int
    target: str
    target_name: str
    items: tuple[str, ...]
    scale: tuple[str, ...]
    choices: list[int] = field(default_factory=list)
    comment: str = ""
    awaiting_comment: bool = False
    touched: datetime | None = None

    @property
    def complete(self) -> bool:
        return len(self.choices) == len(self.items)

    @property
    def current_item(self) -> int:
        return len(self.choices)


@dataclass
class _Seat:
    """Whom an account rates as (a code holder's anonymous rater) and their ballot."""

    touched: datetime
    rater: Rater | None = None
    round_id: int | None = None
    ballot: Ballot | None = None


class BallotBox:
    """The ballots being filled in, by channel account, and the codes being used."""

    def __init__(self, idle_limit: timedelta = IDLE_LIMIT) -> None:
        self._seats: dict[Hashable, _Seat] = {}
        # account → whom the ballot that expired while waiting for its comment was about: the
        # member's next text is then answered with that, never taken by another flow.
        self._expired: dict[Hashable, tuple[str, datetime]] = {}
        # (round, account) → the code it used: one code per account and round, so that one
        # person cannot make up the raters' threshold alone. Memory only: a code says nothing
        # about who holds it anywhere that lasts (a restart forgets this too).
        self._idle_limit = idle_limit
        self._swept: datetime | None = None

    def _sweep(self, now: datetime) -> None:
        """Forget every abandoned seat (at most once a minute): nobody keeps memory for ever."""
        if self._swept is not None and now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        for account in [a for a, s in self._seats.items() if now - s.touched > self._idle_limit]:
            self._forget(account, now)
        for account in [a for a, (_n, t) in self._expired.items() if now - t > EXPIRY_KEPT]:
            del self._expired[account]

    def _forget(self, account: Hashable, now: datetime) -> None:
        seat = self._seats.pop(account)
        if seat.ballot is not None and seat.ballot.awaiting_comment:
            self._expired[account] = (seat.ballot.target_name, now)

    def _seat(self, account: Hashable, now: datetime) -> _Seat | None:
        seat = self._seats.get(account)
        if seat is not None and now - seat.touched > self._idle_limit:
            self._forget(account, now)  # abandoned
            return None
        return seat

    def seat_code(self, account: Hashable, rater: Rater, round_id: int, now: datetime) -> None:
        """This account now rates as a code's anonymous holder (until the code is spent);
        evaluation_codes.redeem has checked it may."""
        self._sweep(now)
        self._seats[account] = _Seat(now, rater, round_id)

    def code_rater(self, account: Hashable, now: datetime) -> tuple[Rater, int] | None:
        seat = self._seat(account, now)
        if seat is None or seat.rater is None:
            return None
        seat.touched = now
        return seat.rater, seat.round_id

    def expired(self, account: Hashable, now: datetime) -> str | None:
        """Whom the account's ballot was about, if it expired while waiting for its comment
        and the member has not been told yet."""
        self._seat(account, now)
        found = self._expired.get(account)
        return found[0] if found else None

    def told_expired(self, account: Hashable) -> None:
        self._expired.pop(account, None)

    def leave(self, account: Hashable) -> None:
        """Forget the account's code and ballot (a code spent, a member done)."""
        self._seats.pop(account, None)

    def start(self, account: Hashable, now: datetime, **ballot: object) -> Ballot:
        """A new ballot for the account, replacing any unfinished one."""
        self._sweep(now)
        seat = self._seat(account, now) or self._seats.setdefault(account, _Seat(now))
        seat.ballot = Ballot(nonce=secrets.token_hex(4), touched=now, **ballot)
        seat.touched = now
        return seat.ballot

    def waiting(self, account: Hashable, now: datetime) -> Ballot | None:
        """The account's ballot in progress, looked at without counting as activity (every
        message is looked at; only working on the ballot keeps it from expiring)."""
        seat = self._seat(account, now)
        return seat.ballot if seat else None

    def ballot(self, account: Hashable, nonce: str | None, now: datetime) -> Ballot | None:
        """The account's ballot in progress, if it is the one with this nonce (any, if None)."""
        seat = self._seat(account, now)
        ballot = seat.ballot if seat else None
        if ballot is None or (nonce is not None and ballot.nonce != nonce):
            return None
        seat.touched = ballot.touched = now
        return ballot

    def take(self, account: Hashable, nonce: str, now: datetime) -> Ballot | None:
        """Remove and return the ballot to be counted: a second confirm finds nothing."""
        ballot = self.ballot(account, nonce, now)
        if ballot is not None:
            self._seats[account].ballot = None
        return ballot

    def discard(self, account: Hashable) -> None:
        seat = self._seats.get(account)
        if seat is not None:
            seat.ballot = None
            if seat.rater is None:
                del self._seats[account]

    def __len__(self) -> int:
        return sum(seat.ballot is not None for seat in self._seats.values())
