"""Personal invites: issuing, reissuing and redeeming the tokens that bind an account.

A token is shown once, when it is issued; the database keeps only its digest. A link lost
after that is replaced (reissued), never looked up.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import Account, Actor, overseen_branch
from bot.core.tokens import digest
from storage import accounts, invites, outbox, people
from storage.models import ChannelAccount, Invite, Member

# Deep-link payloads allow 64 characters of [A-Za-z0-9_-]; invites start with "m".
INVITE_PREFIX = "m"


class Redemption(StrEnum):
    BOUND = "bound"  # the account is now bound to the invite's member
    ALREADY_BOUND = "already_bound"  # this account already belongs to that same member
    ACCOUNT_TAKEN = "account_taken"  # this account belongs to another member
    INVALID = "invalid"  # unknown, used, revoked or expired: the user learns no more


@dataclass(frozen=True)
class RedeemResult:
    outcome: Redemption
    member: Member | None = None
    account: ChannelAccount | None = None  # the member's account now bound


@dataclass(frozen=True)
class IssuedInvite:
    member: Member
    branch_name: str
    token: str | None  # None: a live link handed out earlier, which cannot be shown again
    expires_at: datetime

    def link(self, deep_link: Callable[[str], str]) -> str | None:
        """The invite as a link of the channel (`deep_link` makes one from a payload)."""
        return deep_link(self.token) if self.token else None


class AmbiguousMember(Exception):
    """Several members have the name asked for; the branches tell them apart."""

    def __init__(self, branches: list[str]) -> None:
        super().__init__(branches)
        self.branches = branches


class UnknownBranch(Exception):
    """No branch has the name asked for."""


async def invites_asked(
    session: AsyncSession,
    *,
    actor: Actor,
    member_name: str | None,
    branch_name: str | None,
    now: datetime,
    valid_for: timedelta,
) -> list[IssuedInvite]:
    """/invites [NAME [BRANCH]]: links for the unbound members this person looks after (a
    secretary's branch; the organiser's everyone, or the branch named), or a new link for
    the member named. Raises UnknownBranch or AmbiguousMember."""
    branch_id = overseen_branch(actor)
    if branch_name and branch_id is None:
        branch = await people.get_branch_by_name(
            session, organisation_id=actor.organisation_id, name=branch_name
        )
        if branch is None:
            raise UnknownBranch(branch_name)
        branch_id = branch.id
    return await issue_invites(
        session, now=now, valid_for=valid_for, branch_id=branch_id, member_name=member_name
    )


def new_token() -> str:
    return INVITE_PREFIX + secrets.token_urlsafe(18)


async def issue_invites(
    session: AsyncSession,
    *,
    now: datetime,
    valid_for: timedelta,
    branch_id: int | None = None,
    member_name: str | None = None,
    reissue: bool = False,
) -> list[IssuedInvite]:
    """A live invite for every active member not yet bound (optionally of one branch).

    Members who already hold a live invite keep it unless `reissue`, in which case it is
    revoked and a new token replaces it; a kept invite comes back without its token, which
    was shown when it was issued and is not stored. Naming one member (`member_name`)
    reissues theirs even when they are bound: that is how someone moves to a new phone.
    """
    organisation = await people.get_organisation(session)
    if organisation is None:
        return []
    branches = {
        b.id: b for b in await people.list_branches(session, organisation_id=organisation.id)
    }
    members = await people.list_members(
        session, organisation_id=organisation.id, branch_id=branch_id
    )
    if member_name is not None:
        members = [member for member in members if member.name == member_name]
        if len(members) > 1:
            raise AmbiguousMember(sorted(branches[m.branch_id].name for m in members))
        reissue = True
    else:
        bound = await accounts.bound_members(session, member_ids=[m.id for m in members])
        members = [member for member in members if member.id not in bound]
    member_ids = [member.id for member in members]
    if reissue:
        await invites.revoke_open_invites(session, member_ids=member_ids, now=now)
        live: dict[int, Invite] = {}
    else:
        live = await invites.live_invites(session, member_ids=member_ids, now=now)
    issued = []
    for member in members:
        invite, token = live.get(member.id), None
        if invite is None:
            token = new_token()
            invite = Invite(
                member_id=member.id,
                digest=digest(token),
                created_at=now,
                expires_at=now + valid_for,
            )
            session.add(invite)
        issued.append(
            IssuedInvite(member, branches[member.branch_id].name, token, invite.expires_at)
        )
    await session.flush()
    return issued


async def redeem(
    session: AsyncSession, *, token: str, account: Account, now: datetime
) -> RedeemResult:
    """Bind `account` to the member the token was issued to, if the token is live: it becomes
    their account on that channel, in place of one they had there before (a new phone)."""
    invite = await invites.get_invite_by_digest(session, digest=digest(token))
    if invite is None or invite.revoked_at is not None or invite.expires_at <= now:
        return RedeemResult(Redemption.INVALID)
    member = await people.get_member(session, member_id=invite.member_id)
    if member is None or not member.active:
        return RedeemResult(Redemption.INVALID)
    mine = await accounts.account_on(session, member_id=member.id, channel=account.channel)
    if invite.used_at is not None:
        if mine is not None and mine.external_id == account.external_id:
            return RedeemResult(Redemption.ALREADY_BOUND, member, mine)
        return RedeemResult(Redemption.INVALID)
    held = await accounts.get_account(
        session, channel=account.channel, external_id=account.external_id
    )
    if held is not None and held.member_id != member.id:
        holder = await people.get_member(session, member_id=held.member_id)
        if holder.active:
            return RedeemResult(Redemption.ACCOUNT_TAKEN, holder)
        # A former roster entry (a member since renamed or moved) lets go of the account.
        await session.delete(held)
        await session.flush()
    if not await invites.claim_invite(session, invite_id=invite.id, now=now):
        return RedeemResult(Redemption.INVALID)
    if mine is None:
        mine = ChannelAccount(
            member_id=member.id,
            channel=account.channel,
            external_id=account.external_id,
            bound_at=now,
        )
        session.add(mine)
    else:
        mine.external_id, mine.bound_at, mine.unreachable_since = account.external_id, now, None
        mine.unseen = False
    await session.flush()
    return RedeemResult(Redemption.BOUND, member, mine)


async def seen(session: AsyncSession, *, account: Account) -> None:
    """The member wrote from an account the roster gave (no longer `unseen`)."""
    held = await accounts.get_account(
        session, channel=account.channel, external_id=account.external_id
    )
    if held is not None:
        held.unseen = False
        await session.flush()


async def move_account(session: AsyncSession, *, account: Account, external_id: str) -> None:
    """The channel renamed this account (WeCom: an administrator changed a userid): the
    binding, and the messages queued for it, follow. An account already holding the new id
    is let go: the channel says the id is this person's now."""
    if not external_id or external_id == account.external_id:
        return
    held = await accounts.get_account(
        session, channel=account.channel, external_id=account.external_id
    )
    if held is None:
        return
    taken = await accounts.get_account(session, channel=account.channel, external_id=external_id)
    if taken is not None:
        await session.delete(taken)
        await session.flush()
    held.external_id = external_id
    await outbox.readdress(
        session, channel=account.channel, old=account.external_id, new=external_id
    )
    await session.flush()
