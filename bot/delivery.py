"""The outbox sender: hands planned messages to Telegram within its limits, exactly once.

Each round claims a small batch (safe to take back after a crash), drops what became
pointless, marks the rest as being sent (never handed to Telegram again, whatever happens
next), sends them, and records how each one ended. Telegram's answers decide the rest:
429 waits for as long as it says, 403 marks the member unreachable, a timeout is not
retried because the message may well have arrived.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot import ballot_counting
from bot.runtime import Runtime
from bot.services import (
    commendation_notices,
    digest_notices,
    evaluation_notices,
    rectification,
    reminders,
    reviews,
)
from bot.services.calendar import CampaignTime
from bot.services.notices import Composed, Notice
from handlers.gate import keyboard
from messages.render import split
from storage import outbox, people
from storage.models import Campaign, OutboxStatus

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


class Sender:
    """Drains the outbox; one drain at a time per process.

    A round claims `batch` rows; they are then sent a few members at a time, each few marked
    as being sent just before and recorded just after, so a crash strands only those few.
    """

    def __init__(self, runtime: Runtime, bot: Bot, *, batch: int = 30) -> None:
        self.runtime = runtime
        self.bot = bot
        self.batch = batch
        self.in_flight = max(1, batch // 10)
        self.paused_until: datetime | None = None  # Telegram asked us to wait (429)
        self._lock = asyncio.Lock()

    async def drain(self) -> DrainReport:
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
            while report.retry_after is None:
                now = self.runtime.clock.now()
                if self.paused_until is not None and now < self.paused_until:
                    break
                if time is not None and time.is_quiet(now):
                    report.quiet = True
                    break
                if not await self._round(report, time):
                    break
            if report.retry_after is not None:
                self.paused_until = self.runtime.clock.now() + timedelta(seconds=report.retry_after)
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
            composed = await compose(session, messages=claimed, now=now, today=today)
            await outbox.set_status(
                session, ids=list(composed.skipped), status=OutboxStatus.SKIPPED
            )
        report.skipped += len(composed.skipped)
        # One message per member per round: Telegram allows about one a second in a chat.
        by_member: dict[int, list[Notice]] = {}
        for notice in composed.notices:
            by_member.setdefault(notice.member.id, []).append(notice)
        groups = list(by_member.values())
        for start in range(0, len(groups), self.in_flight):
            chunk = groups[start : start + self.in_flight]
            if report.retry_after is not None:
                # Telegram asked to wait: what is left goes back to the queue untouched.
                async with self.runtime.db.session() as session:
                    await outbox.retry_later(
                        session,
                        ids=[n.message_id for group in chunk for n in group],
                        after=self.runtime.clock.now() + timedelta(seconds=report.retry_after),
                        error="Telegram asked to wait",
                        count_attempt=False,
                    )
                continue
            async with self.runtime.db.session() as session:
                await outbox.set_status(
                    session,
                    ids=[n.message_id for group in chunk for n in group],
                    status=OutboxStatus.SENDING,
                )
            results = await asyncio.gather(*(self._send(group) for group in chunk))
            await self._record(report, chunk, results)
        return True

    async def _send(self, notices: list[Notice]) -> "Outcome":
        """One member's notices of this round, as one message (split only if too long)."""
        messages = self.runtime.messages
        member = notices[0].member
        locale = messages.locale_for(member.locale)
        sent_parts = 0
        try:
            # One button per distinct action; when there are several, each names its subject.
            unique = list({b.data: b for n in notices for b in n.buttons}.values())
            several = len(unique) > 1
            buttons = [
                [(messages.plain(locale, b.label, several=several, **b.values)[:40], b.data)]
                for b in unique
            ]
            text = "\n\n".join(messages.render(locale, n.template, **n.values) for n in notices)
            parts = split(text)
            for index, part in enumerate(parts):
                await self.bot.send_message(
                    member.telegram_user_id,
                    part,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(buttons) if index == len(parts) - 1 else None,
                )
                sent_parts += 1
        except Exception as error:  # noqa: BLE001 — every failure is recorded, none stops the round
            return Outcome(error, sent_parts)
        return Outcome(None, sent_parts)

    async def _record(self, report: DrainReport, groups, results: list["Outcome"]) -> None:
        now = self.runtime.clock.now()
        sent, unreachable, failed, again = [], [], [], []
        unreachable_members: list[Notice] = []
        for group, outcome in zip(groups, results, strict=True):
            ids = [notice.message_id for notice in group]
            error = outcome.error
            if error is None:
                sent += ids
            elif outcome.sent_parts:
                # Part of it arrived: never send it again, even though the rest did not.
                failed += ids
                logger.warning(
                    "member %s got %d parts of a message", group[0].member.id, outcome.sent_parts
                )
            elif isinstance(error, Forbidden) or (
                isinstance(error, BadRequest) and "chat not found" in error.message.lower()
            ):
                unreachable += ids
                unreachable_members.append(group[0])
            elif isinstance(error, RetryAfter):
                again += ids
                wait = error.retry_after
                seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
                report.retry_after = max(report.retry_after or 0, seconds)
            elif isinstance(error, NetworkError) and not _maybe_delivered(error):
                again += ids
            else:
                # A timeout or a bad gateway may have delivered it: never hand it over twice.
                failed += ids
                logger.warning("outbox messages %s failed: %s", ids, type(error).__name__)
        async with self.runtime.db.session() as session:
            await outbox.set_status(session, ids=sent, status=OutboxStatus.SENT, now=now)
            await outbox.set_status(session, ids=unreachable, status=OutboxStatus.UNREACHABLE)
            await outbox.set_status(
                session, ids=failed, status=OutboxStatus.FAILED, error="not sent, or sent in part"
            )
            after = now + timedelta(seconds=report.retry_after or 30)
            await outbox.retry_later(
                session, ids=again, after=after, error="Telegram asked to wait"
            )
            await people.mark_unreachable(
                session, member_ids=[n.member.id for n in unreachable_members], now=now
            )
        self.runtime.identities.forget({n.member.telegram_user_id for n in unreachable_members})
        report.sent += len(sent)
        report.unreachable += len(unreachable)
        report.failed += len(failed)


@dataclass(frozen=True)
class Outcome:
    error: BaseException | None
    sent_parts: int


def _maybe_delivered(error: NetworkError) -> bool:
    """Whether Telegram may have received the request before the error (then: no retry)."""
    return isinstance(error, TimedOut) or "bad gateway" in error.message.lower()


async def compose(session, *, messages, now: datetime, today) -> Composed:
    """Each feature composes its own kind of outbox row; the calendar's reminders the rest."""
    of_reviews = [m for m in messages if m.reminder == reviews.DELIVERED]
    of_items = [m for m in messages if m.reminder in rectification.NOTICES]
    of_rounds = [m for m in messages if m.reminder in evaluation_notices.NOTICES]
    of_weeks = [m for m in messages if m.reminder == digest_notices.WEEKLY]
    of_selections = [m for m in messages if m.reminder in commendation_notices.NOTICES]
    features = of_reviews + of_items + of_rounds + of_weeks + of_selections
    rest = [m for m in messages if m not in features]
    composed = await reminders.compose(session, messages=rest, now=now, today=today)
    composed.merge(await reviews.compose(session, messages=of_reviews, now=now))
    composed.merge(await evaluation_notices.compose(session, messages=of_rounds, now=now))
    composed.merge(await digest_notices.compose(session, messages=of_weeks, now=now))
    composed.merge(await commendation_notices.compose(session, messages=of_selections, now=now))
    return composed.merge(await rectification.compose(session, messages=of_items, now=now))


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
    # Batches of 群众评议 a failed write left waiting; then an ended round is counted first,
    # so its results notice can go out in this tick.
    await ballot_counting.count_full_batches(runtime)
    await ballot_counting.count_ended_rounds(runtime)
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            return
        report = await reminders.plan(
            session, organisation_id=organisation.id, now=runtime.clock.now()
        )
    if report.messages:
        logger.info("planned %d reminder messages", report.messages)
    await send_now(application)


async def send_now(application: Application) -> DrainReport:
    """Drain the outbox now (a review just sent, an item reported) rather than at the next tick."""
    runtime: Runtime = application.bot_data["runtime"]
    sender: Sender = application.bot_data.setdefault("sender", Sender(runtime, application.bot))
    return await sender.drain()
