"""Queries on the outbox: planning rows once, claiming them, recording how each ended."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Integer, String, case, cast, exists, literal, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.accounts import channel_order, preferred_account, preferred_accounts
from storage.db import dialect_insert
from storage.models import (
    Category,
    ChannelAccount,
    GroupMessage,
    Member,
    OutboxMessage,
    OutboxStatus,
    PlannedReminder,
    StepDone,
    Summary,
    SummaryStatus,
)


async def planned_reminders(session: AsyncSession, *, organisation_id: int) -> set[tuple[str, str]]:
    result = await session.exec(
        select(PlannedReminder.reminder, PlannedReminder.subject).where(
            PlannedReminder.organisation_id == organisation_id
        )
    )
    return {(reminder, subject) for reminder, subject in result.all()}


@dataclass(frozen=True)
class Recipients:
    """Which members a reminder goes to, as the database can select them."""

    organisation_id: int
    roles: tuple[str, ...] | None = None  # any of these roles; None: every member
    elderly: bool | None = None  # True: only 年老体弱; False: all but them; None: all
    not_done_step: int | None = None  # leave out those who have done this step
    # Secretaries of the branches where someone has not done this step (instead of the above).
    secretaries_behind_on: int | None = None


_OUTBOX_COLUMNS = [
    "organisation_id",
    "reminder",
    "subject",
    "member_id",
    "channel",
    "external_id",
    "step_id",
    "priority",
    "send_after",
    "expires_at",
    "status",
    "attempts",
]


async def _insert_selected(session: AsyncSession, chosen) -> int:
    """Write the rows `chosen` selects into the outbox; a row already there is left alone."""
    statement = (
        dialect_insert(session)(OutboxMessage)
        .from_select(_OUTBOX_COLUMNS, chosen)
        .on_conflict_do_nothing(index_elements=["reminder", "subject", "member_id"])
        # SQLAlchemy fetches an INSERT's rowcount only when asked: -1 on PostgreSQL otherwise.
        .execution_options(preserve_rowcount=True)
    )
    return (await session.exec(statement)).rowcount


def _to_preferred_account(session: AsyncSession, member_id):
    """Join each recipient to the account its message goes to (storage.accounts): a member
    with no account gets no row."""
    return ChannelAccount.id == preferred_account(member_id, channel_order(session))


def _has_role(member, role: str):
    # Roles are stored space-separated; pad so "secretary" never matches "party_secretary".
    return (literal(" ") + member.roles + literal(" ")).like(f"% {role} %")


def _not_done(member, step_id: int):
    return ~exists().where(StepDone.step_id == step_id, StepDone.member_id == member.id)


@dataclass(frozen=True)
class Written:
    """How far a broadcast's recipients are written: those of `priority` up to `member_id`
    (leaders' messages are written first, then everyone else's, each in member order)."""

    priority: int = 0
    member_id: int = 0


def _recipient_conditions(recipients: Recipients) -> list:
    member = Member
    conditions = [
        member.organisation_id == recipients.organisation_id,
        member.active,
    ]
    if recipients.roles is not None:
        conditions.append(or_(*(_has_role(member, role) for role in recipients.roles)))
    if recipients.elderly is not None:
        elderly = member.category == Category.ELDERLY
        conditions.append(elderly if recipients.elderly else ~elderly)
    if recipients.not_done_step is not None:
        conditions.append(_not_done(member, recipients.not_done_step))
    if recipients.secretaries_behind_on is not None:
        other = aliased(Member)
        conditions.append(_has_role(member, "secretary"))
        conditions.append(
            exists().where(
                other.branch_id == member.branch_id,
                other.id != member.id,
                other.active,
                _not_done(other, recipients.secretaries_behind_on),
            )
        )
    return conditions


# Leading cadres' messages go first (分类指导).
_PRIORITY = case((Member.category == Category.LEADING_CADRE, 0), else_=1)
PRIORITIES = (0, 1)


def _between(after: Written, through: int | None):
    """Recipients of `after.priority` after `after.member_id`, up to `through`: a range of
    the member key, so a batch reads its own rows, not every member's."""
    conditions = [_PRIORITY == after.priority, Member.id > after.member_id]
    if through is not None:
        conditions.append(Member.id <= through)
    return conditions


async def insert_recipients(
    session: AsyncSession,
    *,
    recipients: Recipients,
    reminder: str,
    subject: str,
    step_id: int | None,
    send_after: datetime,
    expires_at: datetime,
    after: Written | None = None,
    through: int | None = None,
) -> int:
    """One outbox row per recipient, selected and written by the database in one statement;
    with `after`, only that priority's recipients after it and up to member `through`."""
    conditions = _recipient_conditions(recipients)
    if after is not None:
        conditions.extend(_between(after, through))
    table = OutboxMessage.__table__.c
    chosen = (
        select(
            literal(recipients.organisation_id),
            literal(reminder),
            literal(subject),
            Member.id,
            ChannelAccount.channel,
            ChannelAccount.external_id,
            literal(step_id, type_=Integer),
            _PRIORITY,
            literal(send_after, type_=table.send_after.type),
            literal(expires_at, type_=table.expires_at.type),
            literal(OutboxStatus.PENDING.value),
            literal(0),
        )
        .join(ChannelAccount, _to_preferred_account(session, Member.id))
        .where(*conditions)
    )
    return await _insert_selected(session, chosen)


async def next_batch_ends(
    session: AsyncSession, *, recipients: Recipients, after: Written, size: int
) -> int | None:
    """The member id that ends the next `size` recipients of `after.priority` after `after`;
    None if fewer remain. Read along the member key: the cost is the batch's, not the roster's."""
    last = await session.exec(
        select(Member.id)
        .join(ChannelAccount, _to_preferred_account(session, Member.id))
        .where(*_recipient_conditions(recipients), *_between(after, None))
        .order_by(Member.id)
        .offset(size - 1)
        .limit(1)
    )
    return last.first()


DRAFT_NUDGE = "summary_draft"


def _idle_drafts(organisation_id: int, idle_since: datetime):
    """Members' summary drafts untouched since `idle_since` and never nudged."""
    subject = literal("summary:") + cast(Summary.id, String)
    nudged = exists().where(OutboxMessage.reminder == DRAFT_NUDGE, OutboxMessage.subject == subject)
    return subject, [
        Summary.organisation_id == organisation_id,
        Summary.status == SummaryStatus.DRAFT,
        col(Summary.member_id).is_not(None),
        Summary.updated_at <= idle_since,
        ~nudged,
    ]


async def insert_draft_nudges(
    session: AsyncSession,
    *,
    organisation_id: int,
    idle_since: datetime,
    now: datetime,
    expires_at: datetime,
) -> int:
    """One nudge per summary draft left alone since `idle_since`; never a second one."""
    subject, conditions = _idle_drafts(organisation_id, idle_since)
    table = OutboxMessage.__table__.c
    chosen = (
        select(
            literal(organisation_id),
            literal(DRAFT_NUDGE),
            subject,
            Summary.member_id,
            ChannelAccount.channel,
            ChannelAccount.external_id,
            Summary.step_id,
            literal(1),
            literal(now, type_=table.send_after.type),
            literal(expires_at, type_=table.expires_at.type),
            literal(OutboxStatus.PENDING.value),
            literal(0),
        )
        .join(ChannelAccount, _to_preferred_account(session, Summary.member_id))
        .where(*conditions)
    )
    return await _insert_selected(session, chosen)


async def earliest_idle_draft(session: AsyncSession, *, organisation_id: int) -> datetime | None:
    """When the oldest draft that will need a nudge was last touched."""
    _subject, conditions = _idle_drafts(organisation_id, datetime.max.replace(tzinfo=UTC))
    return (await session.exec(select(func.min(Summary.updated_at)).where(*conditions))).one()


async def mark_planned(session: AsyncSession, *, markers: Sequence[dict]) -> None:
    """Remember that these reminders have been planned, so they never are again."""
    if markers:
        await session.exec(
            dialect_insert(session)(PlannedReminder).on_conflict_do_nothing(
                index_elements=["reminder", "subject"]
            ),
            params=list(markers),
        )


async def expanding_reminders(
    session: AsyncSession, *, organisation_id: int
) -> Sequence[PlannedReminder]:
    """Broadcasts with recipients still to write, oldest first."""
    result = await session.exec(
        select(PlannedReminder)
        .where(PlannedReminder.organisation_id == organisation_id, PlannedReminder.expanding)
        .order_by(PlannedReminder.planned_at, PlannedReminder.reminder, PlannedReminder.subject)
    )
    return result.all()


async def waiting(session: AsyncSession, *, organisation_id: int) -> int:
    """Rows not yet sent or given up: what the senders still have before them."""
    result = await session.exec(
        select(func.count()).where(
            OutboxMessage.organisation_id == organisation_id,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED]),
        )
    )
    return result.one()


async def earliest_pending(session: AsyncSession, *, organisation_id: int) -> datetime | None:
    result = await session.exec(
        select(func.min(OutboxMessage.send_after)).where(
            OutboxMessage.organisation_id == organisation_id,
            col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.CLAIMED]),
        )
    )
    return result.one()


async def claim(
    session: AsyncSession, *, channels: list[str], now: datetime, limit: int
) -> list[int]:
    """Take up to `limit` due rows for the senders of these channels: two senders never share
    a row, and neither comes away with less than it could have had. PostgreSQL locks the rows
    it chose, skipping those another sender has locked; SQLite chooses and takes them in one
    statement, under its write lock (chosen first, a row another sender took meanwhile would
    be lost to both)."""
    # Leaders first; then a member's rows together, so a round sends them as one message.
    order = (OutboxMessage.priority, OutboxMessage.member_id, OutboxMessage.id)
    return await _claim(session, OutboxMessage, order, channels=channels, now=now, limit=limit)


async def _claim(session: AsyncSession, model, order, *, channels, now, limit) -> list[int]:
    """The ids of up to `limit` due rows of `model` (in `order`) this statement claimed."""
    due = (
        select(model.id)
        .where(
            model.status == OutboxStatus.PENDING,
            col(model.channel).in_(channels),
            model.send_after <= now,
        )
        .order_by(*order)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if session.bind.dialect.name == "postgresql":
        # Not as a subquery: PostgreSQL may run a LIMIT … SKIP LOCKED subquery more than once.
        due = list((await session.exec(due)).all())
        if not due:
            return []
    result = await session.exec(
        update(model)
        .where(col(model.id).in_(due), model.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.CLAIMED, claimed_at=now)
        .returning(model.id)
    )
    return sorted(result.scalars().all())


async def release_abandoned(session: AsyncSession, *, before: datetime) -> tuple[int, int]:
    """After a crash, rows (members' and groups') claimed at `before` or earlier: those never
    handed to the channel go back to pending; those handed over may have arrived, so they are
    not resent."""
    back = unsure = 0
    for model in (OutboxMessage, GroupMessage):
        back += (
            await session.exec(
                update(model)
                .where(model.status == OutboxStatus.CLAIMED, col(model.claimed_at) <= before)
                .values(status=OutboxStatus.PENDING, claimed_at=None)
            )
        ).rowcount
        unsure += (
            await session.exec(
                update(model)
                .where(model.status == OutboxStatus.SENDING, col(model.claimed_at) <= before)
                .values(
                    status=OutboxStatus.FAILED, error="interrupted while sending; may have arrived"
                )
            )
        ).rowcount
    return back, unsure


async def get_messages(session: AsyncSession, *, ids: Sequence[int]) -> Sequence[OutboxMessage]:
    result = await session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids))
        .order_by(OutboxMessage.priority, OutboxMessage.send_after, OutboxMessage.id)
    )
    return result.all()


async def set_status(
    session: AsyncSession,
    *,
    ids: Sequence[int],
    status: OutboxStatus,
    now: datetime | None = None,
    error: str | None = None,
    model: type[OutboxMessage] | type[GroupMessage] = OutboxMessage,
) -> None:
    """The state of these rows (of the members' outbox, or of `model`: GroupMessage)."""
    if not ids:
        return
    values: dict = {"status": status}
    if status == OutboxStatus.SENT:
        values["sent_at"] = now
    if error is not None:
        values["error"] = error[:200]
    await session.exec(update(model).where(col(model.id).in_(ids)).values(**values))


async def retry_later(
    session: AsyncSession,
    *,
    ids: Sequence[int],
    after: datetime,
    error: str,
    count_attempt: bool = True,
    model: type[OutboxMessage] | type[GroupMessage] = OutboxMessage,
) -> None:
    if not ids:
        return
    await session.exec(
        update(model)
        .where(col(model.id).in_(ids))
        .values(
            status=OutboxStatus.PENDING,
            send_after=after,
            claimed_at=None,
            attempts=model.attempts + (1 if count_attempt else 0),
            error=error[:200],
        )
    )


async def add_messages(session: AsyncSession, *, rows: Sequence[dict]) -> int:
    """Queue these messages (organisation_id, reminder, subject, member_id, send_after,
    expires_at), each to the account `storage.accounts` chooses for its member (skipped at
    once when they have none); one already queued for the same reminder, subject and member
    is left alone."""
    if not rows:
        return 0
    chosen = await preferred_accounts(session, member_ids={row["member_id"] for row in rows})
    values = []
    for row in rows:
        account = chosen.get(row["member_id"])
        # Every row names the same columns: one INSERT of many rows needs that.
        values.append(
            {
                **row,
                "channel": account.channel if account else None,
                "external_id": account.external_id if account else None,
                "status": (OutboxStatus.PENDING if account else OutboxStatus.SKIPPED).value,
                "error": None if account else "not a bound member",
                "attempts": 0,
            }
        )
    return await _insert_once(session, OutboxMessage, values, ["reminder", "subject", "member_id"])


async def _insert_once(session: AsyncSession, model, values: list[dict], unique: list[str]) -> int:
    """Insert these rows in one statement; one that would repeat `unique` is left alone.
    Returns how many went in."""
    result = await session.exec(
        dialect_insert(session)(model)
        .values(values)
        .on_conflict_do_nothing(index_elements=unique)
        .execution_options(preserve_rowcount=True)
    )
    return result.rowcount


async def add_message(session: AsyncSession, **row) -> int:
    """Queue one message, once (see `add_messages`)."""
    return await add_messages(session, rows=[row])


async def queued_subjects(
    session: AsyncSession, *, reminders: Sequence[str], subjects: Sequence[str]
) -> set[tuple[str, str]]:
    """Which of these (reminder, subject) pairs are in the outbox already, whatever their state."""
    if not subjects:
        return set()
    result = await session.exec(
        select(OutboxMessage.reminder, OutboxMessage.subject).where(
            col(OutboxMessage.reminder).in_(reminders), col(OutboxMessage.subject).in_(subjects)
        )
    )
    return {(reminder, subject) for reminder, subject in result.all()}


async def readdress(session: AsyncSession, *, channel: str, old: str, new: str) -> None:
    """Messages waiting for an account that the channel renamed go to its new id."""
    await session.exec(
        update(OutboxMessage)
        .where(
            OutboxMessage.channel == channel,
            OutboxMessage.external_id == old,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(external_id=new)
    )


async def add_group_messages(session: AsyncSession, *, rows: Sequence[dict]) -> int:
    """Queue these group announcements (organisation_id, channel, chat, subject, text,
    send_after); one already queued for the same channel, chat and subject is left alone."""
    if not rows:
        return 0
    values = [{**row, "status": OutboxStatus.PENDING.value, "attempts": 0} for row in rows]
    return await _insert_once(session, GroupMessage, values, ["channel", "chat", "subject"])


async def claim_group_messages(
    session: AsyncSession, *, channels: list[str], now: datetime, limit: int
) -> list[GroupMessage]:
    """Take up to `limit` due group announcements of these channels, oldest first (only the
    rows this statement moved from pending to claimed)."""
    order = (GroupMessage.id,)
    taken = await _claim(session, GroupMessage, order, channels=channels, now=now, limit=limit)
    if not taken:
        return []
    rows = await session.exec(
        select(GroupMessage).where(col(GroupMessage.id).in_(taken)).order_by(GroupMessage.id)
    )
    return list(rows.all())
