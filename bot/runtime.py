"""What every update and job needs: settings, database, clock and messages, built once."""

from dataclasses import dataclass

from bot.clock import Clock
from bot.config import Settings
from messages.render import Messages
from storage.db import Database


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    messages: Messages

    @classmethod
    def create(cls, settings: Settings, clock: Clock) -> "Runtime":
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            clock=clock,
            messages=Messages(timezone=settings.zone, default_locale=settings.default_locale),
        )
