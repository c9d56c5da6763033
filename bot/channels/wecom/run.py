"""`python -m bot run` with WeCom: beside Telegram in its Application's loop, or alone in a
loop of its own with the periodic jobs."""

import asyncio
import logging
import signal

from bot.channels.wecom.app import WeCom
from bot.jobs import PeriodicJob, periodic_jobs
from bot.runtime import Runtime

logger = logging.getLogger(__name__)


async def start(runtime: Runtime) -> WeCom:
    wecom = WeCom.build(runtime)
    host, port = runtime.settings.wecom_address
    await wecom.start(host, port)
    return wecom


async def _repeat(runtime: Runtime, job: PeriodicJob) -> None:
    """A job every `job.every`, the first run a second after start (as on Telegram's
    JobQueue); a failed run is logged and the next one comes on time."""
    await asyncio.sleep(1)
    while True:
        try:
            await job.run(runtime)
        except Exception:  # noqa: BLE001 — the next tick retries from the database
            logger.exception("job %s failed", job.name)
        await asyncio.sleep(job.every.total_seconds())


async def serve_alone(runtime: Runtime) -> None:
    """WeCom only: the callbacks and the jobs until SIGINT or SIGTERM."""
    await runtime.db.migrate()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    wecom = await start(runtime)
    jobs = [asyncio.create_task(_repeat(runtime, job)) for job in periodic_jobs(runtime.settings)]
    try:
        await stopping.wait()
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await wecom.stop()
        await runtime.db.dispose()


def run_alone(runtime: Runtime) -> int:
    asyncio.run(serve_alone(runtime))
    return 0
