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

from bot.channels.wecom.api import _checked
from bot.channels.wecom.channel import WeComChannel, split_bytes
from bot.channels.wecom.pacing import MemberPace
from bot.core.contract import Outgoing, Undelivered, Unreachable

PER_MINUTE = 20
# The key is unknown, or the robot was removed from its group: nothing will ever arrive.
GONE = frozenset({93000, 93004})


class Robots:
    """The group robots an organisation named in WECOM_ROBOTS, sent to through the channel's
    own outcomes (WeComChannel._push)."""

    def __init__(
        self, channel: WeComChannel, keys: dict[str, str], *, pace: MemberPace | None = None
    ) -> None:
        self.channel = channel
        self._keys = keys
        self.pace = pace or MemberPace(per_minute=PER_MINUTE, per_hour=None)
        self.pace.keep_in(channel.runtime.db, "wecom-robot")

    async def send(
        self, item: Outgoing, *, before_request: Callable[[], Awaitable[object]] | None
    ) -> None:
        """One announcement to the group of the robot `item.chat` names, in texts of at most
        2,048 bytes; Undelivered while the robot's minute is full (nothing sent)."""
        key = self._keys.get(item.chat)
        if key is None:
            raise Unreachable("no group robot of that name in WECOM_ROBOTS")
        parts = split_bytes(item.text)
        clock = self.channel.runtime.clock
        wait = self.pace.wait(item.chat, clock.now(), len(parts))
        if wait > timedelta(0):
            raise Undelivered("the group robot's limit", wait)

        async def post(body: dict) -> None:
            await self.pace.take(item.chat, clock.now())
            response = await self.channel.api.client.post(
                "/cgi-bin/webhook/send", params={"key": key}, json=body
            )
            _checked(response)

        bodies = [{"msgtype": "text", "text": {"content": part}} for part in parts]
        await self.channel._push(bodies, before_request, post=post, gone=GONE)
