"""Queries on the roster: organisations, branches, members, liaisons and outsiders."""

from collections.abc import Iterable, Sequence

from sqlalchemy import Row, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.conversations import Conversation
from storage.models import (
    Branch,
    BranchLiaison,
    ChannelAccount,
    ChatState,
    Member,
    Organisation,
    Outsider,
    RosterVersion,
)


async def get_organisation(session: AsyncSession) -> Organisation | None:
    """The organisation this deployment serves (the first one, there is one per database)."""
    result = await session.exec(select(Organisation).order_by(Organisation.id).limit(1))
    return result.first()


async def list_branches(session: AsyncSession, *, organisation_id: int) -> Sequence[Branch]:
    result = await session.exec(
        select(Branch).where(Branch.organisation_id == organisation_id).order_by(Branch.id)
    )
    return result.all()


async def get_branch_by_name(
    session: AsyncSession, *, organisation_id: int, name: str
) -> Branch | None:
    result = await session.exec(
        select(Branch).where(Branch.organisation_id == organisation_id, Branch.name == name)
    )
    return result.first()


async def list_members(
    session: AsyncSession,
    *,
    organisation_id: int,
    branch_id: int | None = None,
    active_only: bool = True,
) -> Sequence[Member]:
    query = select(Member).where(Member.organisation_id == organisation_id)
    if branch_id is not None:
        query = query.where(Member.branch_id == branch_id)
    if active_only:
        query = query.where(Member.active)
    result = await session.exec(query.order_by(Member.branch_id, Member.id))
    return result.all()


async def get_member(session: AsyncSession, *, member_id: int) -> Member | None:
    return await session.get(Member, member_id)


async def members_by_id(session: AsyncSession, *, ids: Iterable[int]) -> dict[int, Member]:
    """These members, by id, in one query (the recipients of a batch of outbox rows)."""
    result = await session.exec(select(Member).where(col(Member.id).in_(set(ids))))
    return {member.id: member for member in result.all()}


_ROSTER_VERSION = select(RosterVersion.__table__.c.version)


async def roster_version(session: AsyncSession) -> int:
    """The number every write to a member or channel account raises, from any process
    (triggers do it); read on every update, so in Core."""
    connection = await session.connection()
    return (await connection.execute(_ROSTER_VERSION)).scalar_one()


_MEMBER, _ACCOUNT, _STATE = Member.__table__, ChannelAccount.__table__, ChatState.__table__
_IDENTITY = (
    select(
        _MEMBER.c.id,
        _MEMBER.c.organisation_id,
        _MEMBER.c.branch_id,
        _MEMBER.c.name,
        _MEMBER.c.roles,
        _MEMBER.c.category,
        _MEMBER.c.locale,
        _ACCOUNT.c.channel,
        _ACCOUNT.c.external_id,
        _ACCOUNT.c.unreachable_since,
        _ACCOUNT.c.unseen,
        _STATE.c.member_id.label("state_member_id"),
        _STATE.c.flow,
        _STATE.c.subject_id,
        _STATE.c.stage,
        _STATE.c.data,
    )
    .join(_ACCOUNT, _ACCOUNT.c.member_id == _MEMBER.c.id)
    .outerjoin(_STATE, _STATE.c.member_id == _MEMBER.c.id)
    .where(
        _ACCOUNT.c.channel == bindparam("channel"),
        _ACCOUNT.c.external_id == bindparam("external_id"),
        _MEMBER.c.active,
    )
)


async def identity(
    session: AsyncSession, *, channel: str, external_id: str
) -> tuple[Row, Conversation | None] | None:
    """The active member with this account (a row with the member's id, organisation_id,
    branch_id, name, roles, category, locale, and the account's channel, external_id,
    unreachable_since) and the conversation they are in; None for a stranger. Read on every
    update the identity cache has not seen, so in Core."""
    connection = await session.connection()
    row = (
        await connection.execute(_IDENTITY, {"channel": channel, "external_id": external_id})
    ).first()
    if row is None:
        return None
    state = (
        Conversation(row.state_member_id, row.flow, row.subject_id, row.stage, row.data)
        if row.state_member_id is not None
        else None
    )
    return row, state


async def list_outsiders(session: AsyncSession, *, organisation_id: int) -> Sequence[Outsider]:
    result = await session.exec(
        select(Outsider).where(Outsider.organisation_id == organisation_id).order_by(Outsider.id)
    )
    return result.all()


async def liaison_map(session: AsyncSession, *, organisation_id: int) -> dict[int, int]:
    """Branch id → the member id of its liaison leader."""
    result = await session.exec(
        select(BranchLiaison)
        .join(Branch, Branch.id == BranchLiaison.branch_id)
        .where(Branch.organisation_id == organisation_id)
    )
    return {link.branch_id: link.member_id for link in result.all()}


async def member_id_by_name(session: AsyncSession, *, branch_id: int, name: str) -> int | None:
    """The active member of that name in that branch (a roster holds one at most)."""
    result = await session.exec(
        select(Member.id).where(Member.branch_id == branch_id, Member.name == name, Member.active)
    )
    return result.first()


async def active_member_ids(
    session: AsyncSession, *, organisation_id: int
) -> dict[tuple[int, str], int]:
    """(branch id, name) → id of the organisation's active members; one query."""
    result = await session.exec(
        select(Member.branch_id, Member.name, Member.id).where(
            Member.organisation_id == organisation_id, Member.active
        )
    )
    return {(branch_id, name): member_id for branch_id, name, member_id in result.all()}


async def set_liaison(session: AsyncSession, *, branch_id: int, member_id: int | None) -> None:
    link = await session.get(BranchLiaison, branch_id)
    if member_id is None:
        if link is not None:
            await session.delete(link)
    elif link is None:
        session.add(BranchLiaison(branch_id=branch_id, member_id=member_id))
    else:
        link.member_id = member_id


async def first_with_role(
    session: AsyncSession, *, organisation_id: int, role: str, branch_id: int | None = None
) -> int | None:
    """The active member (of the branch, if given) who has this role; the earliest if several."""
    query = select(Member).where(
        Member.organisation_id == organisation_id, Member.active, col(Member.roles).contains(role)
    )
    if branch_id is not None:
        query = query.where(Member.branch_id == branch_id)
    for member in (await session.exec(query.order_by(Member.id))).all():
        if role in member.roles.split():  # "secretary" is also inside "party_secretary"
            return member.id
    return None
