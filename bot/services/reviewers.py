"""Who reviews whom (seed 004, 点评和评议方式), derived from the roster."""

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.access import parse_roles
from storage import people
from storage.models import Branch, Member, Role


@dataclass(frozen=True)
class Reviewers:
    """The roster's reviewer mapping: member id → reviewer id, branch id → reviewer id."""

    of_member: dict[int, int]
    of_branch: dict[int, int]


async def reviewer_mapping(session: AsyncSession, *, organisation_id: int) -> Reviewers:
    """局班子成员 and 机关党员 → the party-group secretary; the organ branch → the party-group
    secretary; other branches and their secretaries → the branch's liaison leader; other
    members of a branch → their branch secretary."""
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
    of_member: dict[int, int] = {}
    for member in members:
        reviewer = _reviewer(
            member, branches[member.branch_id], party_secretary, liaisons, secretaries
        )
        if reviewer is not None and reviewer != member.id:
            of_member[member.id] = reviewer
    of_branch = {
        branch.id: party_secretary if branch.is_organ else liaisons.get(branch.id)
        for branch in branches.values()
    }
    return Reviewers(of_member, {b: r for b, r in of_branch.items() if r is not None})


def _reviewer(
    member: Member,
    branch: Branch,
    party_secretary: int | None,
    liaisons: dict[int, int],
    secretaries: dict[int, int],
) -> int | None:
    roles = parse_roles(member.roles)
    if roles & {Role.LEADER, Role.PARTY_SECRETARY} or branch.is_organ:
        return party_secretary
    if Role.SECRETARY in roles:
        return liaisons.get(branch.id)
    return secretaries.get(branch.id)
