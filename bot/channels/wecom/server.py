"""The callback endpoint: WeCom's GET (URL verification) and POSTs (messages and events).

aiohttp serves it: a maintained asyncio server that runs as a task in the loop the bot
already has (python-telegram-bot's, or our own), with no second framework, no ASGI server
and no threads; Starlette would need uvicorn driven by hand for the same.

A POST is checked (signature, then decryption for our CorpID; anything else is refused with
403 and nothing is stored), stored in the durable intake (bot/intake.py) and answered 200 at
once, well within WeCom's 5 seconds, so that it is not pushed again; a push WeCom retries
anyway is recognised by its MsgId (events: sender and time) and not processed twice. Each
member's events are processed in order, one at a time, members side by side.

群众评议 stays anonymous: a ballot's tap or comment is never stored (only its id) nor logged.
"""

import asyncio
import logging
from collections import Counter
from xml.etree import ElementTree

from aiohttp import web

from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.crypto import CryptoError, WeComCrypto
from bot.channels.wecom.inbound import BadCallback, Pushed, inbound_of
from bot.core.access import Account
from bot.core.contract import Outgoing
from bot.intake import Intake, holds_ballot, is_ballot_action
from bot.runtime import Runtime
from handlers.routes import Routes

logger = logging.getLogger(__name__)

PATH = "/wecom/callback"


class Callbacks:
    """WeCom's pushes for one application, into the routes."""

    def __init__(
        self,
        runtime: Runtime,
        channel: WeComChannel,
        crypto: WeComCrypto,
        routes: Routes,
        intake: Intake,
    ) -> None:
        self.runtime = runtime
        self.channel = channel
        self.crypto = crypto
        self.routes = routes
        self.intake = intake
        self._members: dict[str, asyncio.Lock] = {}  # one update at a time per member
        self._in_flight: Counter[str] = Counter()  # updates started, by member
        self._ballot_taps: Counter[str] = Counter()  # ballot buttons waiting, by member
        self._tasks: set[asyncio.Task] = set()

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(PATH, self.verify)
        app.router.add_post(PATH, self.receive)
        return app

    def _open(self, request: web.Request, encrypted: str) -> bytes:
        query = request.query
        return self.crypto.open(
            query.get("msg_signature", ""),
            query.get("timestamp", ""),
            query.get("nonce", ""),
            encrypted,
        )

    async def verify(self, request: web.Request) -> web.Response:
        """Setting the callback URL: the decrypted echostr, as it is, within a second."""
        try:
            echo = self._open(request, request.query.get("echostr", ""))
        except CryptoError:
            return web.Response(status=403)
        return web.Response(body=echo, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        try:
            envelope = ElementTree.fromstring(await request.read())
            plain = self._open(request, envelope.findtext("Encrypt") or "")
            pushed = Pushed.parse(plain)
        except CryptoError:
            logger.warning("a WeCom callback with a bad signature or key was refused")
            return web.Response(status=403)
        except (ElementTree.ParseError, BadCallback):
            return web.Response(status=400)
        if await self._accept(pushed, plain.decode()):
            self._start(pushed)
        return web.Response(text="")  # no passive reply: answers go through message/send

    async def _accept(self, pushed: Pushed, payload: str) -> bool:
        """Stored before it is acknowledged; False for a push seen before."""
        user, action = pushed.user, pushed.action
        ballot = holds_ballot(
            self.runtime.ballots,
            account=Account(self.channel.name, user),
            action=action,
            private_words=pushed.words,
            ballot_queued=bool(self._ballot_taps[user]),
            now=self.runtime.clock.now(),
        )
        if not await self.intake.accept(pushed.update_id, None if ballot else payload):
            return False
        if is_ballot_action(action):
            self._ballot_taps[user] += 1
        return True

    def _start(self, pushed: Pushed) -> None:
        task = asyncio.create_task(self._process(pushed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, pushed: Pushed) -> None:
        user = pushed.user
        lock = self._members.setdefault(user, asyncio.Lock())
        self._in_flight[user] += 1
        try:
            async with lock:
                inbound = inbound_of(pushed)
                with self.intake.processing(pushed.update_id):
                    if inbound is not None:
                        await self.routes.dispatch(inbound, self.channel, self.runtime)
        except Exception as error:  # noqa: BLE001 — one update's failure stops no other
            # Its kind only: a ballot's words must never reach a log.
            logger.error("WeCom update failed: %s", type(error).__name__)
        finally:
            if is_ballot_action(pushed.action):
                self._ballot_taps[user] -= 1
                if self._ballot_taps[user] <= 0:
                    del self._ballot_taps[user]
            self._in_flight[user] -= 1
            if not self._in_flight[user]:
                del self._in_flight[user], self._members[user]
        await self.intake.done(pushed.update_id)

    async def idle(self) -> None:
        """Until every accepted push has been processed (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def recover(self) -> tuple[int, int]:
        """After a restart: replies a dead process had not handed over are sent, and what
        it stored and did not process is processed. Returns how many of each."""
        unsent = await self.intake.unsent_replies()
        for answering, replies in unsent:
            await self.channel.send([Outgoing(**reply) for reply in replies], answering)
        stored = await self.intake.waiting()
        for _update_id, payload in stored:
            self._start(Pushed.parse(payload))
        return len(unsent), len(stored)
