"""Channel accounts: who a member is on each channel, whether they can be reached there, and
which of their accounts a pushed message goes to."""

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import case, exists, tuple_
from sqlalchemy.orm import aliased
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelAccount, Member

# The default of the CHANNEL_ORDER setting; Runtime hands the setting to the database.
CHANNEL_ORDER = ("wecom", "telegram", "local")


def channel_order(session: AsyncSession) -> Sequence[str]:
    """The channels in the order pushed messages prefer them (the CHANNEL_ORDER setting)."""
    return session.info.get("channel_order") or CHANNEL_ORDER


def preferred_account(member_id, order: Sequence[str]):
    """The one rule for where a reminder or any other pushed message goes: the member's
    reachable accounts in the order of CHANNEL_ORDER (channels it does not name come last),
    first wins. With none reachable, the first in that order, so the message is kept and
    skipped as unreachable (their secretary hears of it). As a correlated subquery giving the
    account's id, so that planning stays one statement."""
    account = aliased(ChannelAccount)
    rank = case(
        {channel: position for position, channel in enumerate(order)},
        value=account.channel,
        else_=len(order),
    )
    return (
        select(account.id)
        .where(account.member_id == member_id)
        .order_by(col(account.unreachable_since).is_not(None), rank, account.id)
        .limit(1)
        .scalar_subquery()
    )


async def preferred_accounts(
    session: AsyncSession, *, member_ids: Collection[int]
) -> dict[int, ChannelAccount]:
    """Member id → the account `preferred_account` picks, for those who have one; one query."""
    if not member_ids:
        return {}
    result = await session.exec(
        select(ChannelAccount).where(
            col(ChannelAccount.member_id).in_(set(member_ids)),
            ChannelAccount.id
            == preferred_account(ChannelAccount.member_id, channel_order(session)),
        )
    )
    return {account.member_id: account for account in result.all()}


def is_bound(member_id):
    """The member has an account on some channel (SQL)."""
    return exists().where(ChannelAccount.member_id == member_id)


def is_unreachable(member_id):
    """The member has accounts and blocked the bot on every one of them (SQL)."""
    reachable = exists().where(
        ChannelAccount.member_id == member_id, col(ChannelAccount.unreachable_since).is_(None)
    )
    return is_bound(member_id) & ~reachable


async def bound_members(session: AsyncSession, *, member_ids: Collection[int]) -> set[int]:
    """Which of these members have an account on some channel."""
    if not member_ids:
        return set()
    result = await session.exec(
        select(ChannelAccount.member_id).where(col(ChannelAccount.member_id).in_(set(member_ids)))
    )
    return set(result.all())


async def get_account(
    session: AsyncSession, *, channel: str, external_id: str
) -> ChannelAccount | None:
    result = await session.exec(
        select(ChannelAccount).where(
            ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
        )
    )
    return result.first()


async def accounts_held(
    session: AsyncSession,
    *,
    channel: str,
    member_ids: Collection[int],
    external_ids: Collection[str],
) -> list[ChannelAccount]:
    """The accounts on this channel of these members, or with these ids; one query."""
    result = await session.exec(
        select(ChannelAccount).where(
            ChannelAccount.channel == channel,
            col(ChannelAccount.member_id).in_(list(member_ids))
            | col(ChannelAccount.external_id).in_(list(external_ids)),
        )
    )
    return list(result.all())


async def account_on(
    session: AsyncSession, *, member_id: int, channel: str
) -> ChannelAccount | None:
    """The member's account on this channel, if they bound one."""
    result = await session.exec(
        select(ChannelAccount).where(
            ChannelAccount.member_id == member_id, ChannelAccount.channel == channel
        )
    )
    return result.first()


async def accounts_by_key(
    session: AsyncSession, *, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], ChannelAccount]:
    """(channel, external id) → its account, for those still bound; one query."""
    if not keys:
        return {}
    result = await session.exec(
        select(ChannelAccount).where(
            tuple_(ChannelAccount.channel, ChannelAccount.external_id).in_(list(keys))
        )
    )
    return {(a.channel, a.external_id): a for a in result.all()}


async def members_on(
    session: AsyncSession, *, organisation_id: int, channel: str
) -> list[tuple[Member, ChannelAccount]]:
    """The organisation's active members with an account on this channel, in roster order."""
    result = await session.exec(
        select(Member, ChannelAccount)
        .join(ChannelAccount, ChannelAccount.member_id == Member.id)
        .where(
            Member.organisation_id == organisation_id,
            Member.active,
            ChannelAccount.channel == channel,
        )
        .order_by(Member.branch_id, Member.id)
    )
    return [(member, account) for member, account in result.all()]


async def mark_unreachable(
    session: AsyncSession, *, channel: str, external_ids: Sequence[str], now: datetime
) -> None:
    """They blocked the bot on these accounts: remember since when (the first time only)."""
    if external_ids:
        await session.exec(
            update(ChannelAccount)
            .where(
                ChannelAccount.channel == channel,
                col(ChannelAccount.external_id).in_(external_ids),
                col(ChannelAccount.unreachable_since).is_(None),
            )
            .values(unreachable_since=now)
        )
