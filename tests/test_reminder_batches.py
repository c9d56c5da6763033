"""A reminder to everyone is written into the outbox batch by batch as it goes out: a tick
costs the same for a branch and a province, and every member still gets it once."""

from collections import Counter

from sqlmodel import select

from bot import delivery
from bot.core import reminders
from storage import people as people_queries
from storage.models import CampaignStep, Member, OutboxMessage, PlannedReminder, StepDone
from tests.test_reminders import at, load


async def _plan(runtime, batch: int, now) -> reminders.PlanReport:
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        return await reminders.plan(session, organisation_id=organisation.id, now=now, batch=batch)


async def _rows(runtime, reminder: str) -> list[OutboxMessage]:
    async with runtime.db.session() as session:
        found = await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.reminder == reminder)
            .order_by(OutboxMessage.id)
        )
        return list(found.all())


async def _marker(runtime, reminder: str) -> PlannedReminder:
    """The first reminder of this kind planned."""
    async with runtime.db.session() as session:
        return (
            await session.exec(
                select(PlannedReminder)
                .where(PlannedReminder.reminder == reminder)
                .order_by(PlannedReminder.planned_at)
            )
        ).first()


async def _categories(runtime) -> dict[int, str]:
    async with runtime.db.session() as session:
        return {m.id: m.category for m in (await session.exec(select(Member))).all()}


async def test_a_broadcast_goes_out_in_batches_leaders_first_and_once_to_everyone(
    runtime, chat, sent, people, clock
):
    await load(runtime)
    now = at(23, 9, 5)  # the first phase starts: an announcement to everyone
    clock.set(now)
    first = await _plan(runtime, 7, now)
    (key,) = [key for key in first.planned if key.startswith(reminders.PHASE_START)]
    assert first.planned[key] == 7 and not first.stale
    assert (await _marker(runtime, reminders.PHASE_START)).expanding
    # Nothing went out yet: the outbox already holds a batch, so the next tick writes none.
    assert (await _plan(runtime, 7, now)).messages == 0
    assert len(await _rows(runtime, reminders.PHASE_START)) == 7
    ticks = 0
    while (await _marker(runtime, reminders.PHASE_START)).expanding:
        await delivery.send_now(runtime)
        await _plan(runtime, 7, now)
        ticks += 1
    await delivery.send_now(runtime)
    rows = await _rows(runtime, reminders.PHASE_START)
    assert ticks == -(-len(rows) // 7) - 1 and len(rows) == len(people)
    assert len({row.member_id for row in rows}) == len(rows)
    # 分类指导: every leading cadre's row was written before anyone else's.
    categories = await _categories(runtime)
    leading = [categories[row.member_id] == "leading_cadre" for row in rows]
    assert leading == sorted(leading, reverse=True) and any(leading)
    announced = Counter(item.chat for item in sent.to() if item.key == "reminder_phase_start")
    assert sorted(announced.values()) == [1] * len(people)
    assert (await _marker(runtime, reminders.PHASE_START)).recipients == len(people)


async def test_members_who_did_a_step_meanwhile_are_left_out_of_its_later_batches(
    runtime, chat, people, clock
):
    await load(runtime)
    await _plan(runtime, 1000, at(23, 9, 5))  # the phase's announcement, all at once
    await delivery.send_now(runtime)
    opens = at(24, 9, 5)  # the step 自查 opens: a reminder to those who have not done it
    clock.set(opens)
    await _plan(runtime, 5, opens)
    first_batch = {row.member_id for row in await _rows(runtime, reminders.STEP_OPEN)}
    assert len(first_batch) == 5
    async with runtime.db.session() as session:
        step = (await session.exec(select(CampaignStep).where(CampaignStep.name == "自查"))).one()
        later = (await session.exec(select(Member.id).where(Member.id.not_in(first_batch)))).first()
        session.add(StepDone(step_id=step.id, member_id=later, done_at=opens))
    while (await _marker(runtime, reminders.STEP_OPEN)).expanding:
        await delivery.send_now(runtime)
        await _plan(runtime, 5, opens)
    reminded = [row.member_id for row in await _rows(runtime, reminders.STEP_OPEN)]
    # Everyone but the 年老体弱 (who get one gentle reminder instead) and the one who did it.
    everyone = {
        id for id, category in (await _categories(runtime)).items() if category != "elderly"
    }
    assert len(reminded) == len(set(reminded)) and set(reminded) == everyone - {later}


async def test_a_broadcast_that_expires_midway_is_not_written_further(runtime, chat, people, clock):
    await load(runtime)
    now = at(23, 9, 5)
    await _plan(runtime, 7, now)
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        assert (
            await reminders.next_work(session, organisation_id=organisation.id, after=now) == now
        )  # the next batch is work to do now
    await delivery.send_now(runtime)
    await _plan(runtime, 7, at(30, 9, 5))  # the phase is over: its announcement is moot
    marker = await _marker(runtime, reminders.PHASE_START)
    assert not marker.expanding and marker.recipients == 7
    rows = await _rows(runtime, reminders.PHASE_START)
    assert len([row for row in rows if row.subject == marker.subject]) == 7
