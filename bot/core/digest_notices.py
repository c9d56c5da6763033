"""The weekly digest through the outbox: planned once a week, on the campaign's digest day at
its reminder time, for every branch secretary, party-group secretary and organiser; composed
when its turn comes from the figures of that moment, and skipped when there is nothing to say
(unless the campaign file asks for it anyway)."""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import digests
from bot.core.access import Actor
from bot.core.actions import Button
from bot.core.calendar import CampaignTime, campaign_end
from bot.core.notices import Composed, Notice, undeliverable
from storage import outbox, people
from storage.models import Campaign, DigestReceipt, OutboxMessage, Role
from storage.outbox import Recipients

WEEKLY = "weekly_digest"
# A digest that could not go out the same day is not worth sending late.
USEFUL_FOR = timedelta(days=1)
READERS = (Role.SECRETARY.value, Role.PARTY_SECRETARY.value, Role.ORGANISER.value)
BUTTONS = (
    Button("button_digest_chart", digests.CHARTS),
    Button("button_digest_export", digests.WORKBOOK),
)


def _last_digest_day(campaign: Campaign, time: CampaignTime, now: datetime) -> date | None:
    """The latest digest day whose reminder time has come, or None if digests are off."""
    if campaign.digest_weekday is None:
        return None
    today = time.today(now)
    day = today - timedelta(days=(today.weekday() - campaign.digest_weekday) % 7)
    return day if time.reminder_on(day) <= now else day - timedelta(days=7)


async def plan(
    session: AsyncSession,
    *,
    campaign: Campaign,
    time: CampaignTime,
    planned: set[tuple[str, str]],
    now: datetime,
) -> int:
    """Queue this week's digest once, if its moment has come and it is still worth sending
    (digests stop once the campaign is over)."""
    day = _last_digest_day(campaign, time, now)
    end = await campaign_end(session, organisation_id=campaign.organisation_id)
    if day is None or end is None or day > end:
        return 0
    subject = f"week:{day.isoformat()}"
    if (WEEKLY, subject) in planned:
        return 0
    fires_at = time.reminder_on(day)
    count = 0
    if now < fires_at + USEFUL_FOR and fires_at >= campaign.loaded_at - USEFUL_FOR:
        count = await outbox.insert_recipients(
            session,
            recipients=Recipients(campaign.organisation_id, roles=READERS),
            reminder=WEEKLY,
            subject=subject,
            step_id=None,
            send_after=fires_at,
            expires_at=fires_at + USEFUL_FOR,
        )
    await outbox.mark_planned(
        session,
        markers=[
            {
                "reminder": WEEKLY,
                "subject": subject,
                "organisation_id": campaign.organisation_id,
                "planned_at": now,
                "recipients": count,
            }
        ],
    )
    return count


async def next_digest(
    session: AsyncSession, *, campaign: Campaign, time: CampaignTime, after: datetime
) -> datetime | None:
    """When the next weekly digest falls due after `after` (None once the campaign is over)."""
    day = _last_digest_day(campaign, time, after)
    if day is None:
        return None
    end = await campaign_end(session, organisation_id=campaign.organisation_id)
    upcoming = day + timedelta(days=7)
    return time.reminder_on(upcoming) if end is not None and upcoming <= end else None


async def compose(
    session: AsyncSession, *, messages: Sequence[OutboxMessage], now: datetime
) -> Composed:
    """Each reader's digest (their branch, or every branch), from one reading of the figures."""
    composed = Composed()
    if not messages:
        return composed
    members = await people.members_by_id(session, ids=(m.member_id for m in messages))
    receipts = {
        r.member_id: r
        for r in (
            await session.exec(
                select(DigestReceipt).where(col(DigestReceipt.member_id).in_(members))
            )
        ).all()
    }
    figures: dict[int, digests.Digest] = {}
    quiet_ok: dict[int, bool] = {}
    for message in messages:
        member = members.get(message.member_id)
        if reason := undeliverable(member):
            composed.skipped[message.id] = reason
            continue
        organisation_id = member.organisation_id
        if organisation_id not in figures:
            figures[organisation_id] = await digests.digest(
                session, organisation_id=organisation_id, now=now
            )
            campaign = await session.get(Campaign, organisation_id)
            quiet_ok[organisation_id] = bool(campaign and campaign.digest_when_quiet)
        found = figures[organisation_id]
        scope = digests.scope_of(Actor.of(member))
        if not quiet_ok[organisation_id] and not found.worth_sending(scope):
            composed.skipped[message.id] = "nothing to say"
            continue
        # The same figures as last week's digest: the short form.
        fingerprint = digests.fingerprint(found, scope)
        receipt = receipts.get(member.id)
        unchanged = receipt is not None and receipt.fingerprint == fingerprint
        if receipt is None:
            receipt = receipts[member.id] = DigestReceipt(
                member_id=member.id, fingerprint=fingerprint, sent_at=now
            )
        receipt.fingerprint, receipt.sent_at = fingerprint, now
        session.add(receipt)
        values = {"digest": found, "weekly": True, "unchanged": unchanged}
        if scope is None:
            template = "digest_organisation"
            behind = found.most_behind_first
            values["branches"] = behind[: digests.UNCHANGED_BRANCHES] if unchanged else behind
        else:
            template = "digest_branch"
            values |= {"branch_digest": found.branch(scope), "export_hint": True}
        composed.notices.append(Notice(message.id, member, template, values, BUTTONS))
    return composed
