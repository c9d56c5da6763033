"""What every update and job needs: settings, database, clock and messages, built once."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.config import Settings
from bot.core.access import Identities
from bot.core.ballots import BallotBox
from bot.core.contract import Channel
from bot.core.pending_ballots import PendingBallots
from messages.render import Messages
from storage.db import Database

if TYPE_CHECKING:
    from bot.delivery import Sender


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    messages: Messages
    identities: Identities = field(default_factory=Identities)
    # 群众评议 ballots in progress: in memory only, never persisted.
    ballots: BallotBox = field(default_factory=BallotBox)
    # Confirmed ballots waiting for their batch: in memory only until a batch is written.
    pending: PendingBallots = field(default_factory=PendingBallots)
    # The channels running in this process, by name; each registers itself when built.
    channels: dict[str, Channel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.db.on_roster_change(self.identities.forget)
        self.db.held_ratings = self.pending
        self.db.channel_order = self.settings.channels

    @cached_property
    def outbox_sender(self) -> "Sender":
        """The one outbox sender of this process (one drain at a time)."""
        from bot.delivery import Sender  # bot.delivery needs this module first

        return Sender(self)

    @classmethod
    def create(cls, settings: Settings, clock: Clock) -> "Runtime":
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            clock=clock,
            messages=Messages(timezone=settings.zone, default_locale=settings.default_locale),
        )
