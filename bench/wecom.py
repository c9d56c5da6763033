"""WeCom callbacks per second through the whole path (HTTP, signature, AES, XML, the durable
intake, the features, the replies through message/send to the local WeCom), against a floor
of the same run: the same HTTP server and client with signature, AES and XML and an empty
handler. And a broadcast's pace against WeCom's per-member limits (30 a minute), with the
local WeCom dropping what goes beyond them as WeCom does: the fraction of the limit used, and
the messages dropped (none) or doubled (none)."""

import tempfile
from pathlib import Path
from xml.etree import ElementTree

from aiohttp import web

from bench.harness import START, peak_memory_mb, timed
from bot.channels.wecom import local_server
from bot.channels.wecom.app import WeCom
from bot.channels.wecom.crypto import CryptoError, WeComCrypto
from bot.channels.wecom.inbound import Pushed
from bot.channels.wecom.local_server import LocalWeCom, Pusher
from bot.channels.wecom.pacing import MemberPace
from bot.cli import demo
from bot.clock import ManualClock
from bot.config import Settings
from bot.core.contract import Outgoing, Undelivered
from bot.runtime import Runtime

# A member's ordinary traffic on WeCom: commands typed and picked from the menu, keywords,
# free words, and a stranger knocking.
MIX = ["/help", "menu:phase", "帮助", "你好", "/reminders", "/cancel", "stranger"]


async def _play(pusher: Pusher, users: list[str], rounds: int, idle) -> int:
    for index in range(rounds):
        user = users[(index // len(MIX)) % len(users)]
        step = MIX[index % len(MIX)]
        if step == "stranger":
            xml = pusher.text("4242", "/start")
        elif step.startswith("menu:"):
            xml = pusher.event(user, "click", EventKey=step.removeprefix("menu:"))
        else:
            xml = pusher.text(user, step)
        response = await pusher.post(xml)
        assert response.status_code == 200, response.status_code
    await idle()
    return rounds


async def _floor_server() -> tuple[web.AppRunner, int]:
    crypto = WeComCrypto(local_server.TOKEN, local_server.AES_KEY, local_server.CORP_ID)

    async def receive(request: web.Request) -> web.Response:
        query = request.query
        envelope = ElementTree.fromstring(await request.read())
        try:
            plain = crypto.open(
                query["msg_signature"],
                query["timestamp"],
                query["nonce"],
                envelope.findtext("Encrypt") or "",
            )
        except CryptoError:
            return web.Response(status=403)
        Pushed.parse(plain)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/wecom/callback", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def _nothing() -> None:
    return None


async def run(scale: float = 1.0) -> list[dict]:
    rounds = int(2000 * scale)
    fake = LocalWeCom(members={"4242"})
    await fake.start()
    with tempfile.TemporaryDirectory() as scratch:
        runtime = Runtime.create(_settings(scratch, fake), ManualClock(START))
        await runtime.db.migrate()
        await demo.seed(runtime)
        users = [str(person.user_id) for person in await demo.demo_people(runtime)]
        fake.members |= set(users)
        # The clock stands still here: WeCom's per-member limits would hold replies for a
        # minute; they are not what is measured.
        wecom = WeCom.build(runtime, pace=MemberPace(per_minute=10**6, per_hour=10**6))
        await wecom.start("127.0.0.1", 0)
        pusher = Pusher(f"http://127.0.0.1:{wecom.port}/wecom/callback")
        await _play(pusher, users, 100, wecom.callbacks.idle)  # warm up
        app_seconds = await timed(lambda: _play(pusher, users, rounds, wecom.callbacks.idle))
        await pusher.close()
        await wecom.stop()
        await runtime.db.dispose()
    await fake.stop()
    runner, port = await _floor_server()
    floor = Pusher(f"http://127.0.0.1:{port}/wecom/callback")
    await _play(floor, users, 100, _nothing)
    floor_seconds = await timed(lambda: _play(floor, users, rounds, _nothing))
    await floor.close()
    await runner.cleanup()
    app_rate, floor_rate = rounds / app_seconds, rounds / floor_seconds
    return [
        {
            "benchmark": "wecom_callbacks",
            "callbacks": rounds,
            "per_second": round(app_rate, 1),
            "floor_per_second": round(floor_rate, 1),
            "ratio": round(app_rate / floor_rate, 3),
            "replies": len(fake.delivered),
            "peak_memory_mb": peak_memory_mb(),
        }
    ]


def _settings(scratch: str, fake: LocalWeCom) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{Path(scratch) / 'bench.db'}",
        **local_server.settings(fake.base_url),
    )


async def run_broadcast(scale: float = 1.0) -> list[dict]:
    """Every member of the demo sent `per_member` outbox messages at once (a busy week's
    notices), handed over as the outbox sender hands them (room made, then pushed): a message
    over the member's limit waits (Undelivered) and the simulated clock moves to when it may go. The fraction of
    WeCom's 30 a minute they went at (the least time the limit allows over the time they
    took), and what the local WeCom dropped or received twice."""
    per_member = max(int(90 * scale), 31)
    clock = ManualClock(START)
    fake = LocalWeCom()
    await fake.start()
    fake.clock = clock.now
    with tempfile.TemporaryDirectory() as scratch:
        runtime = Runtime.create(_settings(scratch, fake), clock)
        await runtime.db.migrate()
        await demo.seed(runtime)
        users = [str(person.user_id) for person in await demo.demo_people(runtime)]
        fake.members |= set(users)
        wecom = WeCom.build(runtime)
        waiting = {user: per_member for user in users}
        started = clock.now()
        while waiting:
            soonest = None
            for user in list(waiting):
                item = Outgoing(user, f"通知 {waiting[user]}")
                try:
                    await wecom.channel.make_room([item])
                    await wecom.channel.push(item, before_request=None)
                except Undelivered as error:
                    soonest = min(soonest or error.wait, error.wait)
                    continue
                waiting[user] -= 1
                if not waiting[user]:
                    del waiting[user]
            if soonest is not None:
                clock.advance(soonest)
        minutes = (clock.now() - started).total_seconds() / 60
        await wecom.stop()
        await runtime.db.dispose()
    await fake.stop()
    texts = [(item.user, item.text) for item in fake.delivered]
    # WeCom lets 30 go at once and 30 more each minute after: the least time they can take.
    least = -(-per_member // 30) - 1
    return [
        {
            "benchmark": "wecom_broadcast",
            "members": len(users),
            "messages_per_member": per_member,
            "simulated_minutes": round(minutes, 2),
            "least_minutes_the_limit_allows": least,
            "fraction_of_limit": round(least / minutes, 3) if minutes else None,
            "delivered": len(texts),
            "dropped": len(fake.dropped),
            "doubled": len(texts) - len(set(texts)),
        }
    ]
