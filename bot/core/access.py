"""Who is asking and what they may do: the one access check every channel goes through."""

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from storage import people
from storage.models import Category, Member, Role


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
class Actor:
    """A bound, active member, as every service sees the person asking."""

    member_id: int
    organisation_id: int
    branch_id: int
    name: str
    roles: frozenset[Role]
    category: Category
    locale: str | None
    unreachable: bool = False  # they blocked the bot once; any message from them ends that
    in_conversation: bool = False  # a flow (pledge, summary…) is waiting for their answer

    @classmethod
    def of(cls, member: Member, *, in_conversation: bool = False) -> "Actor":
        return cls(
            member_id=member.id,
            organisation_id=member.organisation_id,
            branch_id=member.branch_id,
            name=member.name,
            roles=parse_roles(member.roles),
            category=Category(member.category),
            locale=member.locale,
            unreachable=member.unreachable_since is not None,
            in_conversation=in_conversation,
        )

    def has(self, role: Role) -> bool:
        return role in self.roles


def parse_roles(text: str) -> frozenset[Role]:
    return frozenset(Role(code) for code in text.split()) | {Role.MEMBER}


def format_roles(roles: frozenset[Role] | set[Role]) -> str:
    return " ".join(sorted(role.value for role in roles | {Role.MEMBER}))


@dataclass(frozen=True)
class Account:
    """A channel account: which channel, and that channel's id for the person."""

    channel: str
    external_id: str


class Identities:
    """Who each Telegram account is, remembered until the roster changes: the gate asks on
    every update.

    Every write to a member row raises the roster version in the same transaction (a
    database trigger), whichever process made it: the roster command line too. Each update
    reads it (one tiny query) and forgets everything when it moved, so a removal or a new
    role holds from the next update on. Conversation states written through this process
    clear their entries when the transaction commits (see `storage.db`).
    """

    def __init__(self) -> None:
        self._version: int | None = None
        self._known: dict[int, Actor | None] = {}
        self._accounts: dict[int, int] = {}  # member id → Telegram id

    async def identify(self, session: AsyncSession, *, account: Account) -> Actor | None:
        """The active member bound to this channel account, or None for a stranger."""
        telegram_user_id = int(account.external_id)
        version = await people.roster_version(session)
        if version != self._version:
            self._known.clear()
            self._accounts.clear()
            self._version = version
        if telegram_user_id in self._known:
            return self._known[telegram_user_id]
        member, in_conversation = await people.member_and_conversation(
            session, telegram_user_id=telegram_user_id
        )
        actor = Actor.of(member, in_conversation=in_conversation) if member is not None else None
        self._known[telegram_user_id] = actor
        if actor is not None:
            self._accounts[actor.member_id] = telegram_user_id
        return actor

    def forget(
        self, telegram_user_ids: set[int | None], member_ids: set[int] = frozenset()
    ) -> None:
        accounts = set(telegram_user_ids) | {self._accounts.get(m) for m in member_ids}
        for telegram_user_id in accounts:
            self._known.pop(telegram_user_id, None)


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
