"""The outbox sender: hands planned messages to each member's channel, exactly once.

A row is claimed (safe to take back: nothing was sent), then marked as being sent at the
moment its request is really made, after the channel's pacing has given it a slot (from then
on it may have arrived, and it is never handed over again, whatever happens next). The
channel's answer decides the rest (bot.core.contract): `Undelivered` (asked to wait, a server
error) certainly did not arrive, so it goes back to the queue; `Unreachable` marks that
account unreachable; anything else (a timeout) is not retried because the message may have
arrived. Rows go to the account chosen when they were queued (storage.accounts): only the
channels running in this process claim theirs.
After a crash, a new sender takes back at once every row the dead one had claimed but not
yet handed over; rows it had handed over are not resent.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core import (
    ballot_counting,
    commendation_notices,
    digest_notices,
    evaluation_notices,
    rectification,
    reminders,
    reviews,
)
from bot.core.calendar import CampaignTime
from bot.core.contract import Outgoing, Undelivered, Unreachable
from bot.core.notices import Composed, Notice
from bot.runtime import Runtime
from messages.render import parts_of
from storage import accounts, outbox, people
from storage.models import Campaign, GroupMessage, OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)
# A claim of this process older than this was stranded by an error: it is taken back.
CLAIM_LEASE = timedelta(minutes=10)
# How long a message refused by a server error waits before it is tried again.
SERVER_ERROR_WAIT = timedelta(seconds=30)


@dataclass
class DrainReport:
    sent: int = 0
    skipped: int = 0
    unreachable: int = 0
    failed: int = 0
    again: int = 0  # refused for now (429, a server error): back in the queue
    quiet: bool = False


class Sender:
    """Drains the outbox; one drain at a time per process, one process per database.

    Rows are claimed `batch` at a time; each member's rows go out as one message, all
    members of a claim at once (the pacer spaces them), and the next claim is made while the
    last one's messages are still waiting for their slots, so the limit is used in full.
    """

    def __init__(self, runtime: Runtime, *, batch: int = 30) -> None:
        self.runtime = runtime
        self.batch = batch
        self._started = runtime.clock.now()
        self._recovered = False
        self._lock = asyncio.Lock()
        self._asked_again = False

    async def drain(self) -> DrainReport:
        """Send what is due now, until nothing due is left or quiet hours begin."""
        report = DrainReport()
        if self._lock.locked():
            self._asked_again = True  # the running drain looks once more before it ends
            return report
        async with self._lock:
            async with self.runtime.db.session() as session:
                organisation = await people.get_organisation(session)
                campaign = organisation and await session.get(Campaign, organisation.id)
                await self._recover(session)
            time = CampaignTime.of(campaign) if campaign else None
            sending: set[asyncio.Task] = set()
            exhausted = False
            while True:
                if time is not None and time.is_quiet(self.runtime.clock.now()):
                    report.quiet = True
                    exhausted = True
                if not exhausted and len(sending) <= self.batch // 2:
                    started = await self._claim_and_send(report, time, self.batch - len(sending))
                    exhausted = started is None
                    sending |= started or set()
                    if not sending and not exhausted:
                        continue  # all it claimed became pointless: claim more
                if not sending:
                    if not self._asked_again:
                        break
                    self._asked_again, exhausted = False, False
                    continue
                done, sending = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:  # a bug, or the process going down
                        for other in sending:
                            other.cancel()
                        raise task.exception()
            if not report.quiet:
                await self._announce_to_groups(report)
        return report

    async def _announce_to_groups(self, report: DrainReport) -> None:
        """Group announcements due now (a channel's group robots), one at a time."""
        while True:
            async with self.runtime.db.session() as session:
                claimed = await outbox.claim_group_messages(
                    session,
                    channels=list(self.runtime.channels),
                    now=self.runtime.clock.now(),
                    limit=self.batch,
                )
            if not claimed:
                return
            for message in claimed:
                await self._announce(report, message)

    async def _announce(self, report: DrainReport, message: GroupMessage) -> None:
        async def handed_over() -> None:
            async with self.runtime.db.session() as session:
                await outbox.set_status(
                    session, ids=[message.id], status=OutboxStatus.SENDING, model=GroupMessage
                )

        channel = self.runtime.channels[message.channel]
        error: Exception | None = None
        try:
            await channel.announce(
                Outgoing(message.chat, message.text, key=message.subject),
                before_request=handed_over,
            )
        except Exception as failure:  # noqa: BLE001 — recorded; the other groups still hear
            error = failure
        now = self.runtime.clock.now()
        ids, model = [message.id], GroupMessage
        async with self.runtime.db.session() as session:
            if error is None:
                await outbox.set_status(
                    session, ids=ids, status=OutboxStatus.SENT, now=now, model=model
                )
                report.sent += 1
            elif isinstance(error, Undelivered):
                after = now + (error.wait or SERVER_ERROR_WAIT)
                await outbox.retry_later(
                    session, ids=ids, after=after, error=str(error), model=model
                )
                report.again += 1
            else:
                # No such group (Unreachable), or it may have arrived: never handed over twice.
                said = str(error) if isinstance(error, Unreachable) else "may have been sent"
                await outbox.set_status(
                    session, ids=ids, status=OutboxStatus.FAILED, error=said, model=model
                )
                report.failed += 1
                logger.warning("group announcement %s failed: %s", message.id, type(error).__name__)

    async def _recover(self, session) -> None:
        """Take back what a dead sender claimed; its rows handed to a channel stay unsent."""
        now = self.runtime.clock.now()
        # At its first drain, every earlier claim was a dead process's (one per database).
        before = now - CLAIM_LEASE if self._recovered else max(self._started, now)
        self._recovered = True
        back, unsure = await outbox.release_abandoned(session, before=before)
        if back or unsure:
            logger.warning("recovered %d claimed and %d interrupted outbox messages", back, unsure)

    async def _claim_and_send(
        self, report: DrainReport, time: CampaignTime | None, limit: int
    ) -> set[asyncio.Task] | None:
        """Claim up to `limit` due rows and start sending them; None if none was due."""
        now = self.runtime.clock.now()
        today = time.today(now) if time else now.date()
        async with self.runtime.db.session() as session:
            ids = await outbox.claim(
                session, channels=list(self.runtime.channels), now=now, limit=limit
            )
        if not ids:
            return None
        async with self.runtime.db.session() as session:
            claimed = await outbox.get_messages(session, ids=ids)
            composed = await compose(session, messages=claimed, now=now, today=today)
            await outbox.set_status(
                session, ids=list(composed.skipped), status=OutboxStatus.SKIPPED
            )
        report.skipped += len(composed.skipped)
        # One message per member's account: a chat takes about one a second.
        account_of = {message.id: (message.channel, message.external_id) for message in claimed}
        by_account: dict[tuple[str, str], list[Notice]] = {}
        for notice in composed.notices:
            by_account.setdefault(account_of[notice.message_id], []).append(notice)
        return {
            asyncio.create_task(self._send_and_record(report, account, group))
            for account, group in by_account.items()
        }

    async def _send_and_record(
        self, report: DrainReport, account: tuple[str, str], notices: list[Notice]
    ) -> None:
        outcome = await self._send(account, notices)
        await self._record(report, account, notices, outcome)

    async def _send(self, account: tuple[str, str], notices: list[Notice]) -> "Outcome":
        """One member's notices, as one message (split only if too long)."""
        messages = self.runtime.messages
        member = notices[0].member
        locale = messages.locale_for(member.locale)
        ids = [notice.message_id for notice in notices]
        sent_parts = 0

        async def handed_over() -> None:
            async with self.runtime.db.session() as session:
                await outbox.set_status(session, ids=ids, status=OutboxStatus.SENDING)

        try:
            # One button per distinct action; when there are several, each names its subject.
            unique = list({b.action: b for n in notices for b in n.buttons}.values())
            several = len(unique) > 1
            buttons = [
                [
                    [
                        messages.plain(locale, b.label, several=several, **b.values)[:40],
                        b.action.pack(),
                    ]
                ]
                for b in unique
            ]
            channel_name, chat = account
            channel = self.runtime.channels[channel_name]
            flavour = channel.limits.flavour
            text = "\n\n".join(
                messages.markup(flavour, locale, n.template, **n.values) for n in notices
            )
            texts = parts_of(flavour, text, channel.limits.text_length)
            key = ",".join(n.template for n in notices)
            parts = [
                Outgoing(chat, part, buttons if index == len(texts) - 1 else None, key=key)
                for index, part in enumerate(texts)
            ]
            await channel.make_room(parts)
            for index, part in enumerate(parts):
                await channel.push(part, before_request=handed_over if index == 0 else None)
                sent_parts += 1
        except Exception as error:  # noqa: BLE001 — every failure is recorded, none stops the rest
            return Outcome(error, sent_parts)
        return Outcome(None, sent_parts)

    async def _record(
        self, report: DrainReport, account: tuple[str, str], notices: list[Notice], outcome
    ) -> None:
        now = self.runtime.clock.now()
        ids = [notice.message_id for notice in notices]
        member = notices[0].member
        error = outcome.error
        unreachable = False
        async with self.runtime.db.session() as session:
            if error is None:
                await outbox.set_status(session, ids=ids, status=OutboxStatus.SENT, now=now)
                report.sent += len(ids)
            elif outcome.sent_parts:
                # Part of it arrived: never send it again, even though the rest did not.
                await outbox.set_status(
                    session, ids=ids, status=OutboxStatus.FAILED, error="sent in part"
                )
                report.failed += len(ids)
                logger.warning("member %s got %d parts of a message", member.id, outcome.sent_parts)
            elif isinstance(error, Unreachable):
                await outbox.set_status(session, ids=ids, status=OutboxStatus.UNREACHABLE)
                await accounts.mark_unreachable(
                    session, channel=account[0], external_ids=[account[1]], now=now
                )
                report.unreachable += len(ids)
                unreachable = True
            elif isinstance(error, Undelivered):
                await outbox.retry_later(
                    session,
                    ids=ids,
                    after=now + (error.wait or SERVER_ERROR_WAIT),
                    error=str(error),
                )
                report.again += len(ids)
            else:
                # A timeout, a dropped connection: it may have arrived; never hand it over twice.
                await outbox.set_status(
                    session, ids=ids, status=OutboxStatus.FAILED, error="may have been sent"
                )
                report.failed += len(ids)
                logger.warning("outbox messages %s failed: %s", ids, type(error).__name__)
        if unreachable:
            self.runtime.identities.forget({account})


@dataclass(frozen=True)
class Outcome:
    error: BaseException | None
    sent_parts: int


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
    composed.merge(await rectification.compose(session, messages=of_items, now=now))
    return await _to_their_accounts(session, composed, messages)


async def _to_their_accounts(
    session, composed: Composed, messages: list[OutboxMessage]
) -> Composed:
    """Keep the notices whose account (chosen when they were queued) is still their member's
    and reachable; the others are skipped. One query."""
    rows = {message.id: message for message in messages}
    keys = {(rows[n.message_id].channel, rows[n.message_id].external_id) for n in composed.notices}
    bound = await accounts.accounts_by_key(session, keys=keys)
    kept = []
    for notice in composed.notices:
        row = rows[notice.message_id]
        account = bound.get((row.channel, row.external_id))
        if account is None or account.member_id != row.member_id:
            composed.skipped[row.id] = "not a bound member"
        elif account.unreachable_since is not None:
            composed.skipped[row.id] = "unreachable"
        else:
            kept.append(notice)
    composed.notices = kept
    return composed


async def next_work(runtime: Runtime, after: datetime) -> datetime | None:
    """When the reminder job next has something to do (for the stepped local clock)."""
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            return None
        return await reminders.next_work(session, organisation_id=organisation.id, after=after)


async def tick(runtime: Runtime) -> None:
    """The periodic job: plan what fell due, then drain the outbox."""
    # Batches of 群众评议 a failed write left waiting; then an ended round is counted first,
    # so its results notice can go out in this tick.
    await ballot_counting.count_full_batches(runtime)
    await ballot_counting.count_ended_rounds(runtime)
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if organisation is None:
            return
        report = await reminders.plan(
            session,
            organisation_id=organisation.id,
            now=runtime.clock.now(),
            channels=list(runtime.channels),
        )
    if report.messages:
        logger.info("planned %d reminder messages", report.messages)
    await send_now(runtime)


async def send_now(runtime: Runtime) -> DrainReport:
    """Drain the outbox now (a review just sent, an item reported) rather than at the next tick."""
    return await runtime.outbox_sender.drain()
