"""Telegram's limits kept by construction, through the Application and the outbox, against a
local Bot API that enforces them (429 beyond 30 a second, one a second per private chat) on
a loop with simulated time; and a broadcast that survives the process dying mid-way."""

import asyncio

import pytest
from sqlmodel import select

from bench.harness import one_phase_campaign
from bot import delivery
from bot.channels.telegram.app import build_application
from bot.channels.telegram.local_api import Limits, LocalBotAPI, ProcessDropped
from bot.channels.telegram.local_chat import LocalChat
from bot.channels.telegram.pacing import ChatByChat, Pacer
from bot.core import calendar, reminders
from bot.runtime import Runtime
from storage import people as people_queries
from storage.models import OutboxMessage, OutboxStatus

pytestmark = [pytest.mark.virtual_time, pytest.mark.telegram]


@pytest.fixture
def limited_api(clock) -> LocalBotAPI:
    return LocalBotAPI(now=lambda: clock.now().timestamp(), limits=Limits())


def paced(runtime, api, pacer: Pacer | None = None):
    return build_application(
        runtime, request=api, rate_limiter=pacer or Pacer(), update_processor=ChatByChat()
    )


@pytest.fixture
async def paced_app(runtime, limited_api):
    application = paced(runtime, limited_api)
    async with application:
        await application.start()
        yield application
        await application.stop()


@pytest.fixture
def paced_chat(paced_app, limited_api, clock) -> LocalChat:
    return LocalChat(paced_app, limited_api, clock, queued=True)


async def test_a_flood_from_one_member_stalls_nobody_else(
    paced_chat, paced_app, limited_api, people
):
    zheng, feng = people["郑强"], people["冯磊"]
    for _ in range(20):
        await paced_chat.send(zheng, "/help")
    await paced_chat.send(feng, "/phase")
    await paced_app.update_queue.join()
    order = [call.chat_id for call in limited_api.sent()]
    assert order.count(zheng.user_id) == 20  # every one answered, in his chat's own time…
    assert order.index(feng.user_id) < 5  # …while the others are answered at once
    assert limited_api.flood_refusals == 0


async def test_a_429_pauses_only_its_chat_and_is_retried(
    paced_chat, paced_app, limited_api, people
):
    zheng, feng = people["郑强"], people["冯磊"]
    limited_api.fail(method="sendMessage", chat_id=zheng.user_id, status=429, retry_after=5)
    await paced_chat.send(zheng, "/help")
    for _ in range(3):
        await paced_chat.send(feng, "/help")
    await paced_app.update_queue.join()
    # Feng's three, a second apart, all leave while Zheng's chat waits its five seconds.
    assert [call.chat_id for call in limited_api.sent()] == [feng.user_id] * 3 + [zheng.user_id]


async def _announce_to_everyone(runtime) -> int:
    today = runtime.clock.now().astimezone(runtime.settings.zone).date().isoformat()
    spec, problems = calendar.parse_campaign(one_phase_campaign(today, with_step=False))
    assert not problems
    async with runtime.db.session() as session:
        organisation = await people_queries.get_organisation(session)
        await calendar.load_campaign(
            session, organisation_id=organisation.id, spec=spec, now=runtime.clock.now()
        )
    async with runtime.db.session() as session:
        plan = await reminders.plan(
            session, organisation_id=organisation.id, now=runtime.clock.now()
        )
    return plan.messages


async def test_a_broadcast_keeps_the_limits_without_a_single_429(runtime, people, clock):
    # The demo has 25 members: a limit of 10 a second makes them more than a second's worth.
    api = LocalBotAPI(now=lambda: clock.now().timestamp(), limits=Limits(overall=10))
    await _announce_to_everyone(runtime)
    async with paced(runtime, api, Pacer(overall_interval=1 / 10)) as application:
        report = await delivery.send_now(application.bot_data["runtime"])
    assert report.sent > 10 and len(api.sent()) == report.sent
    assert api.flood_refusals == 0


async def statuses(runtime) -> dict[str, int]:
    async with runtime.db.session() as session:
        rows = (await session.exec(select(OutboxMessage.status))).all()
    return {status: rows.count(status) for status in set(rows)}


async def test_after_a_crash_mid_broadcast_what_never_left_is_sent_at_once_and_nothing_twice(
    runtime, people, limited_api
):
    await _announce_to_everyone(runtime)
    # The process dies just after Telegram took the 10th message, before hearing so.
    limited_api.drop_process(method="sendMessage", after=9, delivered=True)
    async with paced(runtime, limited_api):
        with pytest.raises(ProcessDropped):
            await delivery.send_now(runtime)
    assert len(limited_api.sent()) == 10
    await asyncio.sleep(1)  # simulated: a restart takes a second or two
    limited_api.restart()
    fresh = Runtime(  # a new process: a new sender, which takes back what the dead one held
        settings=runtime.settings, db=runtime.db, clock=runtime.clock, messages=runtime.messages
    )
    async with paced(fresh, limited_api):  # no clock moved: no lease waited
        report = await delivery.send_now(fresh)
    assert report.sent > 0
    recipients = [call.chat_id for call in limited_api.sent()]
    assert len(recipients) == len(set(recipients)) == 9 + 1 + report.sent  # each once
    ended = await statuses(runtime)
    ended.pop(OutboxStatus.SKIPPED, None)  # the members the announcement does not concern
    assert ended == {
        OutboxStatus.SENT: 9 + report.sent,
        OutboxStatus.FAILED: 1,  # may have arrived (it did): never handed over again
    }
    assert limited_api.flood_refusals == 0, limited_api.flood_refusals_by_chat


async def test_a_server_error_certainly_delivered_nothing_and_is_sent_again(
    runtime, people, limited_api, clock
):
    await _announce_to_everyone(runtime)
    zheng = people["郑强"]
    limited_api.fail(method="sendMessage", chat_id=zheng.user_id, status=500)
    async with paced(runtime, limited_api) as application:
        await delivery.send_now(application.bot_data["runtime"])
        assert not limited_api.sent(zheng.user_id)
        clock.advance(delivery.SERVER_ERROR_WAIT)
        await delivery.send_now(application.bot_data["runtime"])
    assert len(limited_api.sent(zheng.user_id)) == 1
