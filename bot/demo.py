"""The demo organisation: the sample roster, everyone pre-bound to a local account."""

from pathlib import Path

from bot.local_chat import Person
from bot.runtime import Runtime
from bot.services import roster
from storage import people
from storage.models import Category, Role

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO_ROSTER = SAMPLES / "demo_roster.csv"
DEMO_BRANCHES = SAMPLES / "demo_branches.csv"
DEMO_ORGANISATION = "示范局"
# Local account ids: far from real Telegram ids only in spirit; nothing leaves the process.
_ACCOUNT_BASE = 7_100_000


async def seed(runtime: Runtime) -> bool:
    """Load the demo organisation into an empty database; False if one is already there."""
    async with runtime.db.session() as session:
        if await people.get_organisation(session) is not None:
            return False
        people_table, branch_table = roster.read_tables(DEMO_ROSTER, DEMO_BRANCHES)
        report = await roster.import_roster(
            session,
            people_table=people_table,
            branch_table=branch_table,
            organisation_name=DEMO_ORGANISATION,
            timezone=runtime.settings.timezone,
            now=runtime.clock.now(),
        )
        if not report.ok:
            raise RuntimeError(f"the demo roster does not validate: {report.problems}")
        organisation = await people.get_organisation(session)
        for member in await people.list_members(session, organisation_id=organisation.id):
            member.telegram_user_id = _ACCOUNT_BASE + member.id
            member.bound_at = runtime.clock.now()
    return True


async def demo_people(runtime: Runtime) -> list[Person]:
    """Everyone the local chat can speak as, in roster order."""
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        branches = {
            b.id: b.name
            for b in await people.list_branches(session, organisation_id=organisation.id)
        }
        members = await people.list_members(session, organisation_id=organisation.id)
    found = []
    for member in members:
        if member.telegram_user_id is None:
            continue
        roles = [
            role for role in Role if role.value in member.roles.split() and role is not Role.MEMBER
        ]
        labels = [branches[member.branch_id], *(r.value for r in roles)]
        if member.category != Category.ORDINARY:
            labels.append(member.category)
        found.append(
            Person(
                member.telegram_user_id,
                member.name,
                "en" if member.locale == "en" else "zh-hans",
                description=f"{member.roster_id or ''} {' / '.join(labels)}".strip(),
            )
        )
    return found
