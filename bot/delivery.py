"""The outbox sender: hands planned messages to Telegram within its limits, exactly once.

Each round claims a small batch (safe to take back after a crash), drops what became
pointless, marks the rest as being sent (never handed to Telegram again, whatever happens
next), sends them, and records how each one ended. Telegram's answers decide the rest:
429 waits for as long as it says, 403 marks the member unreachable, a timeout is not
retried because the message may well have arrived.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from bot.runtime import Runtime
from bot.services import reminders
from bot.services.calendar import CampaignTime
from handlers.gate import keyboard
from messages.render import split
from storage import outbox, people
from storage.models import Campaign, Member, OutboxStatus

logger = logging.getLogger(__name__)
# A claim older than this belongs to a sender that died.
CLAIM_LEASE = timedelta(minutes=10)


@dataclass
class DrainReport:
    sent: int = 0
    skipped: int = 0
    unreachable: int = 0
    failed: int = 0
    retry_after: float | None = None
    quiet: bool = False
    outcomes: dict[str, list[int]] = field(default_factory=dict)


class Sender:
    """Drains the outbox; one drain at a time per process."""

    def __init__(self, runtime: Runtime, bot: Bot, *, batch: int = 30) -> None:
        self.runtime = runtime
        self.bot = bot
        self.batch = batch
        self._lock = asyncio.Lock()

    async def drain(self, *, rounds: int | None = None) -> DrainReport:
        """Send what is due now, until nothing is left, quiet hours, or Telegram says wait."""
        report = DrainReport()
        if self._lock.locked():
            return report
        async with self._lock:
            now = self.runtime.clock.now()
            async with self.runtime.db.session() as session:
                organisation = await people.get_organisation(session)
                campaign = organisation and await session.get(Campaign, organisation.id)
                back, unsure = await outbox.release_abandoned(session, before=now - CLAIM_LEASE)
            if back or unsure:
                logger.warning(
                    "recovered %d claimed and %d interrupted outbox messages", back, unsure
                )
            time = CampaignTime.of(campaign) if campaign else None
            if time is not None and time.is_quiet(now):
                report.quiet = True
                return report
            while rounds is None or rounds > 0:
                rounds = None if rounds is None else rounds - 1
                if not await self._round(report, time) or report.retry_after is not None:
                    break
        return report

    async def _round(self, report: DrainReport, time: CampaignTime | None) -> bool:
        now = self.runtime.clock.now()
        today = time.today(now) if time else now.date()
        async with self.runtime.db.session() as session:
            ids = await outbox.claim(session, now=now, limit=self.batch)
        if not ids:
            return False
        async with self.runtime.db.session() as session:
            claimed = await outbox.get_messages(session, ids=ids)
            composed = await reminders.compose(session, messages=claimed, now=now, today=today)
            await outbox.set_status(
                session, ids=list(composed.skipped), status=OutboxStatus.SKIPPED
            )
            await outbox.set_status(
                session, ids=[n.message_id for n in composed.notices], status=OutboxStatus.SENDING
            )
        report.skipped += len(composed.skipped)
        # One message per member per round: Telegram allows about one a second in a chat.
        by_member: dict[int, list[reminders.Notice]] = {}
        for notice in composed.notices:
            by_member.setdefault(notice.member.id, []).append(notice)
        groups = list(by_member.values())
        results = await asyncio.gather(*(self._send(group) for group in groups))
        await self._record(
            report,
            [notice for group in groups for notice in group],
            [error for group, error in zip(groups, results, strict=True) for _ in group],
        )
        return True

    async def _send(self, notices: list[reminders.Notice]) -> BaseException | None:
        """One member's notices of this round, as one message (split only if too long)."""
        messages = self.runtime.messages
        member = notices[0].member
        locale = messages.locale_for(member.locale)
        done_steps = [n for n in notices if n.done_step_id is not None]
        buttons = [
            [
                (
                    messages.plain(
                        locale,
                        "button_done",
                        step=n.values["step"] if len(done_steps) > 1 else None,
                    ),
                    f"done:{n.done_step_id}",
                )
            ]
            for n in done_steps
        ]
        try:
            text = "\n\n".join(messages.render(locale, n.template, **n.values) for n in notices)
            parts = split(text)
            for index, part in enumerate(parts):
                await self.bot.send_message(
                    member.telegram_user_id,
                    part,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(buttons) if index == len(parts) - 1 else None,
                )
        except (TelegramError, ValueError) as error:
            return error
        return None

    async def _record(self, report: DrainReport, notices, results) -> None:
        now = self.runtime.clock.now()
        sent, unreachable, failed, again = [], [], [], []
        unreachable_members: set[int] = set()
        for notice, error in zip(notices, results, strict=True):
            if error is None:
                sent.append(notice.message_id)
            elif isinstance(error, Forbidden) or (
                isinstance(error, BadRequest) and "chat not found" in error.message.lower()
            ):
                unreachable.append(notice.message_id)
                unreachable_members.add(notice.member.id)
            elif isinstance(error, RetryAfter):
                again.append(notice.message_id)
                wait = error.retry_after
                seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
                report.retry_after = max(report.retry_after or 0, seconds)
            elif isinstance(error, NetworkError) and not isinstance(error, TimedOut):
                again.append(notice.message_id)
            else:
                # A timeout may have delivered it: never hand it over twice.
                failed.append(notice.message_id)
                logger.warning(
                    "outbox message %s failed: %s", notice.message_id, type(error).__name__
                )
        async with self.runtime.db.session() as session:
            await outbox.set_status(session, ids=sent, status=OutboxStatus.SENT, now=now)
            await outbox.set_status(session, ids=unreachable, status=OutboxStatus.UNREACHABLE)
            await outbox.set_status(
                session, ids=failed, status=OutboxStatus.FAILED, error="timed out or refused"
            )
            after = now + timedelta(seconds=report.retry_after or 30)
            await outbox.retry_later(
                session, ids=again, after=after, error="Telegram asked to wait"
            )
            for member_id in unreachable_members:
                member = await session.get(Member, member_id)
                member.unreachable_since = member.unreachable_since or now
        report.sent += len(sent)
        report.unreachable += len(unreachable)
        report.failed += len(failed)


async def next_work(application: Application, after: datetime) -> datetime | None:
    """When the reminder job next has something to do (for the stepped local clock)."""
    runtime: Runtime = application.bot_data["runtime"]
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            return None
        return await reminders.next_work(session, organisation_id=organisation.id, after=after)


async def tick(application: Application) -> None:
    """The periodic job: plan what fell due, then drain the outbox."""
    runtime: Runtime = application.bot_data["runtime"]
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            return
        report = await reminders.plan(
            session, organisation_id=organisation.id, now=runtime.clock.now()
        )
    if report.messages:
        logger.info("planned %d reminder messages", report.messages)
    sender: Sender = application.bot_data.setdefault("sender", Sender(runtime, application.bot))
    await sender.drain()
