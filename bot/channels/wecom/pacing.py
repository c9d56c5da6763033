"""WeCom's per-member limits for one application (document 90236): 30 messages a minute
and 1,000 an hour; WeCom silently drops the excess, so the channel never asks beyond them.

Counted in this process's memory, by the runtime's clock: a restart forgets the last hour,
which the limits forgive less than a dropped reminder would be; WeCom's own 45009 answer is
still mapped to "try again later".
"""

from collections import deque
from datetime import datetime, timedelta

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


class MemberPace:
    def __init__(self, per_minute: int = 30, per_hour: int = 1000) -> None:
        self.windows = ((MINUTE, per_minute), (HOUR, per_hour))
        self._sent: dict[str, deque[datetime]] = {}

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

    def take(self, user: str, now: datetime, count: int = 1) -> None:
        self._sent.setdefault(user, deque()).extend([now] * count)
