"""Periodic jobs: run by a channel's scheduler in production (Telegram's JobQueue), stepped by
hand locally.

The jobs themselves keep no state in the scheduler: each run works out what is due from the
database and the clock, so a restart or a missed tick loses nothing.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import delivery
from bot.config import Settings
from bot.runtime import Runtime


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: Callable[[Runtime], Awaitable[None]]
    # When the job next has work after a moment (None: nothing foreseen), so a stepped
    # clock can pass over the runs that would do nothing.
    next_work: Callable[[Runtime, datetime], Awaitable[datetime | None]] | None = None


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    """The periodic jobs of every feature."""
    return [
        PeriodicJob(
            "reminders",
            timedelta(minutes=settings.reminder_tick_minutes),
            delivery.tick,
            next_work=delivery.next_work,
        )
    ]


class SteppedJobs:
    """Runs the jobs as the manual clock moves: every run that has work, in time order.

    Runs fall on each job's own grid (start + k × every), as on a real scheduler; a run
    that its job says would find nothing to do is passed over.
    """

    def __init__(self, runtime: Runtime, jobs: list[PeriodicJob], start: datetime) -> None:
        self._runtime = runtime
        self._jobs = jobs
        self._start = start
        self._last: dict[str, datetime | None] = {job.name: None for job in jobs}

    def _grid_at_or_after(self, job: PeriodicJob, moment: datetime) -> datetime:
        steps = -((self._start - moment) // job.every)  # ceiling division
        return self._start + max(steps, 0) * job.every

    async def _next_run(self, job: PeriodicJob) -> datetime | None:
        last = self._last[job.name]
        earliest = self._start if last is None else last + job.every
        if job.next_work is None or last is None:
            return earliest
        work = await job.next_work(self._runtime, last)
        return None if work is None else self._grid_at_or_after(job, max(work, earliest))

    async def run_until(self, moment: datetime, set_clock: Callable[[datetime], object]) -> int:
        """Run every tick with work due up to `moment`, moving the clock to each; the count."""
        runs = 0
        while True:
            upcoming = [(await self._next_run(job), index) for index, job in enumerate(self._jobs)]
            upcoming = [
                (due, index) for due, index in upcoming if due is not None and due <= moment
            ]
            if not upcoming:
                break
            due, index = min(upcoming)
            job = self._jobs[index]
            set_clock(due)
            await job.run(self._runtime)
            self._last[job.name] = due
            runs += 1
        set_clock(moment)
        return runs
