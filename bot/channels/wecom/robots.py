"""WeCom's group robots (群机器人, 消息推送): a group chat's send-only webhook, for announcements.

`POST /cgi-bin/webhook/send?key=KEY` with `{"msgtype": "text", "text": {"content": …}}`
(content at most 2,048 bytes; markdown 4,096), answered like the API (errcode, errmsg), on
the API's host (政务微信 and private deployments have their own). A robot takes 20 messages a
minute: beyond, WeCom answers 45009, so the robot's own pace keeps below it and a message
over it waits in the queue (bot/delivery.py, the group announcements). The keys come from
WECOM_ROBOTS and never reach the database or a log.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx

from bot.channels.wecom.api import WeComError, _checked
from bot.channels.wecom.channel import split_bytes
from bot.channels.wecom.pacing import MemberPace
from bot.clock import Clock
from bot.core.contract import Outgoing, Undelivered, Unreachable
from storage.db import Database

PER_MINUTE = 20
# The key is unknown or the robot was removed from its group: nothing will ever arrive.
GONE = frozenset({93000, 93004})
TRY_AGAIN = {-1: timedelta(seconds=30), 45009: timedelta(minutes=1)}


class Robots:
    """The group robots one organisation configured, by name."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        keys: dict[str, str],
        *,
        clock: Clock,
        db: Database,
        pace: MemberPace | None = None,
    ) -> None:
        self.client = client
        self._keys = keys
        self._clock = clock
        self.pace = pace or MemberPace(per_minute=PER_MINUTE, per_hour=None)
        self.pace.keep_in(db, "wecom-robot")

    async def send(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """One announcement to the group of the robot `item.chat` names, in texts of at most
        2,048 bytes; Undelivered while the robot's minute is full (nothing sent)."""
        key = self._keys.get(item.chat)
        if key is None:
            raise Unreachable("no group robot of that name in WECOM_ROBOTS")
        parts = split_bytes(item.text)
        wait = self.pace.wait(item.chat, self._clock.now(), len(parts))
        if wait > timedelta(0):
            raise Undelivered("the group robot's limit", wait)
        for index, part in enumerate(parts):
            if index == 0 and before_request is not None:
                await before_request()
            await self.pace.take(item.chat, self._clock.now())
            try:
                response = await self.client.post(
                    "/cgi-bin/webhook/send",
                    params={"key": key},
                    json={"msgtype": "text", "text": {"content": part}},
                )
                _checked(response)
            except WeComError as error:
                if index:
                    raise  # part of it arrived: never sent again
                if error.errcode in TRY_AGAIN:
                    raise Undelivered(error.errmsg, TRY_AGAIN[error.errcode]) from error
                if error.errcode in GONE:
                    raise Unreachable(f"group robot refused ({error.errcode})") from error
                raise
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if index:
                    raise
                raise Undelivered("WeCom not reached") from None
