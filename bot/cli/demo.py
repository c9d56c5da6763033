"""The demo organisation: the sample roster, everyone pre-bound to an account on one channel
(the local chat for `python -m bot demo`; Telegram, reached through a local Bot API, for the
tests and benchmarks)."""

from datetime import date, timedelta
from pathlib import Path

from bot.channels import telegram
from bot.channels.local.chat import Person
from bot.core import calendar, commendation, roster
from bot.runtime import Runtime
from storage import accounts, people
from storage.models import Campaign, Category, ChannelAccount, Role

# Shipped inside the package, so the demo runs after a plain (non-editable) install too.
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEMO_ROSTER = SAMPLES / "demo_roster.csv"
DEMO_BRANCHES = SAMPLES / "demo_branches.csv"
DEMO_ORGANISATION = "示范局"
# Local account ids: far from real Telegram ids only in spirit; nothing leaves the process.
_ACCOUNT_BASE = 7_100_000


async def seed(runtime: Runtime, *, channel: str = telegram.CHANNEL) -> bool:
    """Load the demo organisation into an empty database, everyone bound on `channel`;
    False if one is already there."""
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
            session.add(
                ChannelAccount(
                    member_id=member.id,
                    channel=channel,
                    external_id=str(_ACCOUNT_BASE + member.id),
                    bound_at=runtime.clock.now(),
                )
            )
    return True


async def demo_people(runtime: Runtime, *, channel: str = telegram.CHANNEL) -> list[Person]:
    """Everyone bound on `channel`, as a chat can speak as them, in roster order, described
    in the default locale's words."""
    words = runtime.messages.export_headings(runtime.settings.default_locale)["words"]
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        branches = {
            b.id: b.name
            for b in await people.list_branches(session, organisation_id=organisation.id)
        }
        bound = await accounts.members_on(session, organisation_id=organisation.id, channel=channel)
    found = []
    for member, account in bound:
        roles = [
            role for role in Role if role.value in member.roles.split() and role is not Role.MEMBER
        ]
        labels = [branches[member.branch_id], *(words["roles"][r.value] for r in roles)]
        if member.category != Category.ORDINARY:
            labels.append(words["categories"][member.category])
        found.append(
            Person(
                int(account.external_id),
                member.name,
                "en" if member.locale == "en" else "zh-hans",
                description=f"{member.roster_id or ''} {' / '.join(labels)}".strip(),
            )
        )
    return found


def campaign_text(today: date) -> str:
    """A campaign laid over the coming weeks, so a newcomer sees it move with :clock."""

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    return f"""
[campaign]
name = "示范局深入开展创先争优活动"
timezone = "Asia/Shanghai"

[[phases]]
name = "动员部署"
start = {day(0)}
end = {day(6)}
announcement = "召开动员大会，对创先争优活动作出安排部署，搞好宣传发动。"
asks = "结合岗位实际，公开承诺创争目标和具体办法。"
pledges = true

[[phases]]
name = "全面推进"
start = {day(7)}
end = {day(40)}
announcement = "认真落实公开承诺的事项，按季度做好自我小结，接受点评和群众评议。"
asks = "兑现向群众作出的承诺，按时完成自我小结。"

[[phases]]
name = "深化提升"
start = {day(41)}
end = {day(70)}
announcement = "开展新一轮的创先争优承诺活动，以更加出色的工作业绩向党献礼。"
pledges = true

[[phases]]
name = "总结完善"
start = {day(71)}
end = {day(90)}
announcement = "系统总结创先争优活动开展情况，形成创先争优的长效机制。"

[[quarters]]
name = "本季度"
summary_opens = {day(8)}
summary_due = {day(15)}
evaluation_opens = {day(17)}
evaluation_due = {day(24)}
rectification_due = {day(38)}

[[steps]]
name = "召开支部党员大会，公开承诺"
opens = {day(1)}
due = {day(5)}
audience = "secretaries"
text = "组织本支部党员公开承诺创争目标和具体办法。"

[[steps]]
name = "对照“五好”“五有”标准自查"
opens = {day(2)}
due = {day(6)}
text = "对照标准看看还有哪些做得不够好和不到位的地方。完成后请点“我已完成”。"
"""


async def seed_campaign(runtime: Runtime) -> None:
    """Lay the demo campaign over the coming weeks, if none is loaded yet."""
    spec, problems = calendar.parse_campaign(
        campaign_text(runtime.clock.now().astimezone(runtime.settings.zone).date())
    )
    if problems:
        raise RuntimeError(f"the demo campaign does not validate: {problems}")
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if await session.get(Campaign, organisation.id) is None:
            await calendar.load_campaign(
                session, organisation_id=organisation.id, spec=spec, now=runtime.clock.now()
            )


async def seed_selection(runtime: Runtime) -> None:
    """A 评选表彰 taking nominations for the coming week, if there is none yet."""
    async with runtime.db.session() as session:
        organisation = await people.get_organisation(session)
        if await commendation.current(session, organisation_id=organisation.id) is not None:
            return
        now = runtime.clock.now()
        opened = await commendation.open_selection(
            session,
            organisation_id=organisation.id,
            name="争当排头兵评选",
            opens_at=now,
            closes_at=now + timedelta(days=7),
            per_branch=1,
            prizes=(1, 1, 1),
            graders=["王志刚", "李建国", "赵振华"],
            now=now,
        )
        if isinstance(opened, list):
            raise RuntimeError(f"the demo selection does not validate: {opened}")
