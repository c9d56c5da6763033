"""The periodic jobs (bot.jobs) on python-telegram-bot's JobQueue."""

from telegram.ext import Application, ContextTypes

from bot.jobs import PeriodicJob


def schedule(application: Application, jobs: list[PeriodicJob]) -> None:
    """Register every job with the JobQueue, each first run right after start."""
    for job in jobs:

        async def tick(context: ContextTypes.DEFAULT_TYPE, job: PeriodicJob = job) -> None:
            await job.run(context.bot_data["runtime"])

        application.job_queue.run_repeating(tick, interval=job.every, first=1, name=job.name)
