"""WeCom's per-recipient limits (document 90236): an application may send a member 30
messages a minute and 1,000 an hour, a group robot takes 20 a minute; WeCom silently drops
the excess, so the channel never asks beyond them.

Counted in memory by the runtime's clock, and, once `keep_in` names a database, also there
per minute, before each request (sentcount): a restarted process `restore`s the last hour,
each minute's messages counted as sent at that minute's end (never earlier than they were),
so the limits hold across a restart. WeCom's own 45009 answer is still mapped to "try again
later".
"""

from collections import deque
from datetime import UTC, datetime, timedelta

from storage import pacing
from storage.db import Database

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
PER_MINUTE, PER_HOUR = 30, 1000  # to one member (document 90236)


class MemberPace:
    def __init__(self, per_minute: int = PER_MINUTE, per_hour: int | None = PER_HOUR) -> None:
        self.windows = ((MINUTE, per_minute),) + (((HOUR, per_hour),) if per_hour else ())
        self._sent: dict[str, deque[datetime]] = {}
        self._db: Database | None = None
        self._channel = ""
        self._forgotten_at: datetime | None = None

    def keep_in(self, db: Database, channel: str) -> None:
        """Count in this database too, under this name (a channel, or its robots)."""
        self._db, self._channel = db, channel

    async def restore(self, now: datetime) -> None:
        """What was sent in the last hour, as the database counted it."""
        if self._db is None:
            return
        async with self._db.session() as session:
            await pacing.forget_sent_before(session, channel=self._channel, before=now - HOUR)
            counted = await pacing.sent_since(session, channel=self._channel, since=now - HOUR)
        self._sent.clear()
        for recipient, minute, count in counted:
            if minute.tzinfo is None:
                minute = minute.replace(tzinfo=UTC)
            moment = min(minute + MINUTE, now)
            self._sent.setdefault(recipient, deque()).extend([moment] * count)
        self._forgotten_at = now

    def wait(self, user: str, now: datetime, count: int = 1) -> timedelta:
        """How long until `count` more messages may go to `user` (zero: now)."""
        sent = self._sent.get(user, deque())
        while sent and sent[0] <= now - HOUR:
            sent.popleft()
        longest = timedelta(0)
        for window, limit in self.windows:
            if count > limit:
                raise ValueError(f"{count} messages never fit {limit} per {window}")
            recent = [moment for moment in sent if moment > now - window]
            over = len(recent) + count - limit
            if over > 0:
                longest = max(longest, recent[over - 1] + window - now)
        return longest

    async def take(self, user: str, now: datetime, count: int = 1, *, keep: bool = True) -> None:
        """`count` messages to `user` now: counted before their request is made, in the
        database too unless `keep` is False. Replies are counted in memory only: when a
        member was answered is theirs (a ballot's comment is answered, a tap updates a card),
        and a restart forgets only the last minutes' replies, which rarely approach a limit."""
        self._sent.setdefault(user, deque()).extend([now] * count)
        if self._db is None or not keep:
            return
        minute = now.replace(second=0, microsecond=0)
        async with self._db.session() as session:
            await pacing.count_sent(
                session, channel=self._channel, recipient=user, minute=minute, count=count
            )
            if self._forgotten_at is None or now - self._forgotten_at >= HOUR:
                await pacing.forget_sent_before(session, channel=self._channel, before=now - HOUR)
                self._forgotten_at = now
