"""An event loop whose clock jumps over waiting: the benchmarks' and the pacing tests'.

Whenever every task waits for a timer (the pacer's slots, Telegram's retry_after), the loop
moves its clock to the next timer at once instead of sleeping, so a minute of Telegram's
limits passes in a moment, and the rates and delays it measures are those of the simulated
seconds. Work that really takes time is waited for as usual: while a socket is awaited (a
PostgreSQL query) the clock never jumps; a thread (SQLite's) gets `GRACE` to answer.
"""

import asyncio
import selectors

# How long the loop lets real work (a database thread, a socket) answer before it takes
# the silence for waiting and jumps to the next timer.
GRACE = 0.003


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None):
        # Besides the loop's own wake-up pipe, a socket is awaited: real time passes.
        awaiting_io = len(self.get_map()) > 1
        if timeout is None or timeout <= 0 or self.loop is None or awaiting_io:
            return super().select(timeout)
        events = super().select(min(timeout, GRACE))
        if not events:
            self.loop.virtual += timeout
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        self.virtual = 0.0
        selector.loop = self

    def time(self) -> float:
        return self.virtual
