"""Who reviews whom (seed 004, 点评和评议方式): derived from the roster, with the organiser's
exceptions on top.

A reviewee is named as a summary's owner is: "member:<id>" or "branch:<id>".
"""

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.access import parse_roles
from storage import people
from storage.models import Branch, BranchLiaison, Member, ReviewerOverride, Role


def member_key(member_id: int) -> str:
    return f"member:{member_id}"


def branch_key(branch_id: int) -> str:
    return f"branch:{branch_id}"


_KEY = re.compile(r"(member|branch):([1-9][0-9]{0,8})", re.ASCII)


def parse_key(reviewee: str) -> tuple[str, int] | None:
    """("member" | "branch", id), or None for anything else: callback data is not trusted, and
    only the one spelling of a key is accepted ("member:010" would dodge the lookups)."""
    match = _KEY.fullmatch(reviewee)
    return (match[1], int(match[2])) if match else None


@dataclass(frozen=True)
class Reviewers:
    """The reviewer mapping: member id → reviewer id, branch id → reviewer id."""

    of_member: dict[int, int]
    of_branch: dict[int, int]

    def reviewees_of(self, reviewer_id: int) -> list[str]:
        return [
            *(branch_key(b) for b, r in self.of_branch.items() if r == reviewer_id),
            *(member_key(m) for m, r in self.of_member.items() if r == reviewer_id),
        ]


async def reviewer_mapping(session: AsyncSession, *, organisation_id: int) -> Reviewers:
    """局班子成员 and 机关党员 → the party-group secretary; the organ branch → the party-group
    secretary; other branches and their secretaries → the branch's liaison leader; other
    members of a branch → their branch secretary. Then the organiser's overrides."""
    branches = {
        b.id: b for b in await people.list_branches(session, organisation_id=organisation_id)
    }
    members = await people.list_members(session, organisation_id=organisation_id)
    liaisons = await people.liaison_map(session, organisation_id=organisation_id)
    party_secretary = next(
        (m.id for m in members if Role.PARTY_SECRETARY in parse_roles(m.roles)), None
    )
    secretaries: dict[int, int] = {}
    for member in members:
        if Role.SECRETARY in parse_roles(member.roles):
            secretaries.setdefault(member.branch_id, member.id)
    of_member = {
        member.id: _member_reviewer(
            member,
            branches[member.branch_id],
            party_secretary,
            liaisons.get(member.branch_id),
            secretaries.get(member.branch_id),
        )
        for member in members
    }
    of_branch = {
        branch.id: _branch_reviewer(branch, party_secretary, liaisons.get(branch.id))
        for branch in branches.values()
    }
    active = {m.id for m in members}
    for override in await _overrides(session, organisation_id=organisation_id):
        kind, number = parse_key(override.reviewee)
        mapped = of_member if kind == "member" else of_branch
        # Only for reviewees and reviewers still on the roster.
        if override.reviewer_id in active and number in mapped:
            mapped[number] = override.reviewer_id
    return Reviewers(
        {m: r for m, r in of_member.items() if r is not None and r != m},
        {b: r for b, r in of_branch.items() if r is not None},
    )


async def reviewer_of(session: AsyncSession, *, organisation_id: int, reviewee: str) -> int | None:
    """The one reviewer of one reviewee, with a handful of small queries."""
    parsed = parse_key(reviewee)
    if parsed is None:
        return None
    kind, number = parsed
    member = await session.get(Member, number) if kind == "member" else None
    if kind == "member" and (
        member is None or not member.active or member.organisation_id != organisation_id
    ):
        return None
    branch = await session.get(Branch, member.branch_id if member else number)
    if branch is None or branch.organisation_id != organisation_id:
        return None
    override = (
        await session.exec(
            select(ReviewerOverride.reviewer_id)
            .join(Member, col(Member.id) == ReviewerOverride.reviewer_id)
            .where(
                ReviewerOverride.organisation_id == organisation_id,
                ReviewerOverride.reviewee == reviewee,
                Member.active,
            )
        )
    ).first()
    if override is not None and not (member and override == member.id):
        return override
    party_secretary = await people.first_with_role(
        session, organisation_id=organisation_id, role=Role.PARTY_SECRETARY
    )
    liaison = (
        await session.exec(
            select(BranchLiaison.member_id).where(BranchLiaison.branch_id == branch.id)
        )
    ).first()
    if member is None:
        return _branch_reviewer(branch, party_secretary, liaison)
    secretary = await people.first_with_role(
        session, organisation_id=organisation_id, role=Role.SECRETARY, branch_id=branch.id
    )
    reviewer = _member_reviewer(member, branch, party_secretary, liaison, secretary)
    return reviewer if reviewer != member.id else None


def _member_reviewer(
    member: Member,
    branch: Branch,
    party_secretary: int | None,
    liaison: int | None,
    secretary: int | None,
) -> int | None:
    roles = parse_roles(member.roles)
    if roles & {Role.LEADER, Role.PARTY_SECRETARY} or branch.is_organ:
        return party_secretary
    if Role.SECRETARY in roles:
        return liaison
    return secretary


def _branch_reviewer(branch: Branch, party_secretary: int | None, liaison: int | None):
    return party_secretary if branch.is_organ else liaison


async def _overrides(session: AsyncSession, *, organisation_id: int) -> list[ReviewerOverride]:
    result = await session.exec(
        select(ReviewerOverride).where(ReviewerOverride.organisation_id == organisation_id)
    )
    return list(result.all())


async def set_override(
    session: AsyncSession,
    *,
    organisation_id: int,
    reviewee: str,
    reviewer_id: int | None,
    now: datetime,
) -> None:
    """Assign one reviewee to another reviewer; None goes back to the roster's rule."""
    existing = (
        await session.exec(
            select(ReviewerOverride).where(
                ReviewerOverride.organisation_id == organisation_id,
                ReviewerOverride.reviewee == reviewee,
            )
        )
    ).first()
    if reviewer_id is not None and reviewee == member_key(reviewer_id):
        raise ValueError("nobody reviews themselves")
    if reviewer_id is None:
        if existing is not None:
            await session.delete(existing)
        return
    if existing is None:
        session.add(
            ReviewerOverride(
                organisation_id=organisation_id,
                reviewee=reviewee,
                reviewer_id=reviewer_id,
                created_at=now,
            )
        )
    else:
        existing.reviewer_id, existing.created_at = reviewer_id, now
    await session.flush()


async def find_reviewee(
    session: AsyncSession, *, organisation_id: int, text: str
) -> tuple[str, str] | None:
    """(key, name) of the one active member with this roster id or name, or the branch with
    this name; None when there is none, or more than one."""
    members = [
        m
        for m in await people.list_members(session, organisation_id=organisation_id)
        if text in (m.roster_id, m.name)
    ]
    if len(members) == 1:
        return member_key(members[0].id), members[0].name
    branch = await people.get_branch_by_name(session, organisation_id=organisation_id, name=text)
    if branch is not None and not members:
        return branch_key(branch.id), branch.name
    return None


@dataclass(frozen=True)
class Assignment:
    reviewee: str
    branch: str
    reviewer: str
    overridden: bool


async def assignment_table(session: AsyncSession, *, organisation_id: int) -> list[Assignment]:
    """Every reviewee with their reviewer, branch by branch, for the organiser to check."""
    mapping = await reviewer_mapping(session, organisation_id=organisation_id)
    members = {m.id: m for m in await people.list_members(session, organisation_id=organisation_id)}
    branches = {
        b.id: b for b in await people.list_branches(session, organisation_id=organisation_id)
    }
    overridden = {o.reviewee for o in await _overrides(session, organisation_id=organisation_id)}
    rows = [
        Assignment(branch.name, branch.name, members[r].name, branch_key(b) in overridden)
        for b, r in mapping.of_branch.items()
        for branch in (branches[b],)
    ]
    rows += [
        Assignment(
            members[m].name,
            branches[members[m].branch_id].name,
            members[r].name,
            member_key(m) in overridden,
        )
        for m, r in sorted(mapping.of_member.items(), key=lambda i: (members[i[0]].branch_id, i[0]))
    ]
    return rows
