"""Periodic jobs: run by python-telegram-bot's JobQueue in production, stepped by hand locally.

The jobs themselves keep no state in the scheduler: each run works out what is due from the
database and the clock, so a restart or a missed tick loses nothing.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from telegram.ext import Application, ContextTypes


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: Callable[[Application], Awaitable[None]]


def schedule(application: Application, jobs: list[PeriodicJob]) -> None:
    """Register every job with the JobQueue, each first run right after start."""
    for job in jobs:

        async def tick(context: ContextTypes.DEFAULT_TYPE, job: PeriodicJob = job) -> None:
            await job.run(context.application)

        application.job_queue.run_repeating(tick, interval=job.every, first=1, name=job.name)


class SteppedJobs:
    """Runs the jobs as the manual clock moves: every run that became due, in time order."""

    def __init__(self, application: Application, jobs: list[PeriodicJob], start: datetime) -> None:
        self._application = application
        self._due = {job.name: (start, job) for job in jobs}

    async def run_until(self, moment: datetime, set_clock: Callable[[datetime], object]) -> int:
        """Run every tick due up to `moment`, moving the clock to each; the count of runs."""
        runs = 0
        while self._due:
            name, (due, job) = min(self._due.items(), key=lambda item: item[1][0])
            if due > moment:
                break
            set_clock(due)
            await job.run(self._application)
            self._due[name] = (due + job.every, job)
            runs += 1
        set_clock(moment)
        return runs
