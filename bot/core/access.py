"""Who is asking and what they may do: the one access check every channel goes through."""

from dataclasses import dataclass, replace
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from storage import people
from storage.conversations import Conversation
from storage.models import Category, ChannelAccount, Member, Role


class Permission(StrEnum):
    """Things a person can ask the bot to do; each maps to the roles that may."""

    START = "start"  # anyone, bound or not: /start with or without an invite
    USE = "use"  # any bound member
    BRANCH_OVERSIGHT = "branch_oversight"  # see and chase the members of one's branch
    REVIEW = "review"  # review (点评) the branches and people seed 004 assigns
    REPORTS = "reports"  # digests and workbooks: of one's branch, or of every branch
    ORGANISE = "organise"  # set up rounds, calendars and exports for everybody


_ALLOWED: dict[Permission, frozenset[Role]] = {
    Permission.USE: frozenset(Role),
    Permission.BRANCH_OVERSIGHT: frozenset({Role.SECRETARY, Role.ORGANISER}),
    Permission.REVIEW: frozenset(
        {Role.SECRETARY, Role.LEADER, Role.PARTY_SECRETARY, Role.ORGANISER}
    ),
    Permission.REPORTS: frozenset({Role.SECRETARY, Role.PARTY_SECRETARY, Role.ORGANISER}),
    Permission.ORGANISE: frozenset({Role.ORGANISER}),
}


@dataclass(frozen=True, slots=True)
class Account:
    """A person's account on one channel (by the channel's name, as in CHANNEL_ORDER), with
    the id that channel gives them (as text, whatever the channel's own type)."""

    channel: str
    external_id: str

    @classmethod
    def of(cls, account: ChannelAccount) -> "Account":
        return cls(account.channel, account.external_id)


@dataclass(frozen=True, slots=True)
class Actor:
    """A bound, active member, as every service sees the person asking."""

    member_id: int
    organisation_id: int
    branch_id: int
    name: str
    roles: frozenset[Role]
    category: Category
    locale: str | None
    account: Account | None = None  # the account they are asking from, if through a channel
    unreachable: bool = False  # they blocked the bot there once; any message from it ends that
    # The flow (pledge, summary…) waiting for their answer, as it stood when the update began.
    conversation: Conversation | None = None
    unseen: bool = False  # the roster gave the account and they have not written from it yet

    @classmethod
    def of(
        cls,
        member: Member,
        *,
        account: ChannelAccount | None = None,
        conversation: Conversation | None = None,
    ) -> "Actor":
        """From a member row and the account asking (or any row with their columns)."""
        return cls(
            member_id=member.id,
            organisation_id=member.organisation_id,
            branch_id=member.branch_id,
            name=member.name,
            roles=parse_roles(member.roles),
            category=Category(member.category),
            locale=member.locale,
            account=Account.of(account) if account is not None else None,
            unreachable=account is not None and account.unreachable_since is not None,
            conversation=conversation,
            unseen=account is not None and account.unseen,
        )

    @property
    def in_conversation(self) -> bool:
        return self.conversation is not None

    def has(self, role: Role) -> bool:
        return role in self.roles


def parse_roles(text: str) -> frozenset[Role]:
    return frozenset(Role(code) for code in text.split()) | {Role.MEMBER}


def format_roles(roles: frozenset[Role] | set[Role]) -> str:
    return " ".join(sorted(role.value for role in roles | {Role.MEMBER}))


class Identities:
    """Who each channel account is, remembered until the roster changes: the gate asks on
    every update.

    Every write to a member or channel account row raises the roster version in the same
    transaction (database triggers), whichever process made it: the roster command line too.
    Each update reads it (one tiny query) and forgets everything when it moved, so a removal,
    a new role or an account bound or let go holds from the next update on. The member's
    conversation is read with them and kept: conversation states are written only through
    `storage.conversations` in this process, which hands each one here when its transaction
    commits (see `storage.db`), so an answer in a conversation reads neither again.
    """

    def __init__(self) -> None:
        self._version: int | None = None
        self._known: dict[Account, Actor | None] = {}
        self._accounts: dict[int, set[Account]] = {}  # member id → their accounts known here
        self._changes = 0  # how many times `forget` was told something: a read meanwhile is old

    async def identify(self, session: AsyncSession, *, account: Account) -> Actor | None:
        """The active member bound to this account, or None for a stranger."""
        version = await people.roster_version(session)
        if version != self._version:
            self._known.clear()
            self._accounts.clear()
            self._version = version
        if account in self._known:
            return self._known[account]
        changes = self._changes
        found = await people.identity(
            session, channel=account.channel, external_id=account.external_id
        )
        actor = None
        if found is not None:
            row, conversation = found  # the member's and the account's columns
            actor = Actor.of(row, account=row, conversation=conversation)
        if changes == self._changes:  # else another update committed a change during the read
            self._known[account] = actor
            if actor is not None:
                self._accounts.setdefault(actor.member_id, set()).add(account)
        return actor

    def forget(
        self,
        changed: set[tuple[str, str]],
        member_ids: set[int] = frozenset(),
        conversations: dict[int, Conversation | None] | None = None,
    ) -> None:
        """Forget these (channel, external id) accounts and every account of these members;
        take these members' `conversations` as written (None: ended)."""
        self._changes += 1
        forgotten = {Account(*pair) for pair in changed}
        for member_id in member_ids:
            forgotten |= self._accounts.pop(member_id, set())
        for account in forgotten:
            self._known.pop(account, None)
        for member_id, conversation in (conversations or {}).items():
            for account in self._accounts.get(member_id, ()):
                if (actor := self._known.get(account)) is not None:
                    self._known[account] = replace(actor, conversation=conversation)


def roles_allow(roles: frozenset[Role], permission: Permission) -> bool:
    return permission is Permission.START or bool(roles & _ALLOWED[permission])


def allows(actor: Actor | None, permission: Permission) -> bool:
    """The one answer to "may this person do this?" for every channel."""
    return roles_allow(actor.roles if actor else frozenset(), permission)


def speaks_for_branch(actor: Actor) -> bool:
    """The branch's own pledge and summary are recorded by its secretary."""
    return actor.has(Role.SECRETARY)


def overseen_branch(actor: Actor) -> int | None:
    """The branch whose members this person looks after; None for the whole organisation."""
    return None if actor.has(Role.ORGANISER) else actor.branch_id


# The commands of the bot, in the order /help and the command menu show them.
COMMANDS: tuple[tuple[str, Permission], ...] = (
    ("help", Permission.USE),
    ("phase", Permission.USE),
    ("pledge", Permission.USE),
    ("pledges", Permission.USE),
    ("summary", Permission.USE),
    ("summaries", Permission.BRANCH_OVERSIGHT),
    ("review", Permission.REVIEW),
    ("reviews", Permission.BRANCH_OVERSIGHT),
    ("rectify", Permission.USE),
    ("rate", Permission.USE),
    ("results", Permission.USE),
    ("evaluation", Permission.BRANCH_OVERSIGHT),
    ("digest", Permission.REPORTS),
    ("export", Permission.REPORTS),
    ("commendation", Permission.USE),
    ("invites", Permission.BRANCH_OVERSIGHT),
    ("reminders", Permission.USE),
    ("lang", Permission.USE),
    ("cancel", Permission.USE),
)


def commands_for(roles: frozenset[Role]) -> list[str]:
    """The commands these roles may use, for /help and the per-role command menu."""
    return [name for name, permission in COMMANDS if roles_allow(roles, permission)]
