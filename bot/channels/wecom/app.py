"""The WeCom application in the running process: API client, channel, callback server."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from aiohttp import web

import handlers
from bot.channels.wecom.api import WeComAPI, WeComError
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.crypto import WeComCrypto
from bot.channels.wecom.inbound import CHANNEL
from bot.channels.wecom.pacing import MemberPace
from bot.channels.wecom.robots import Robots
from bot.channels.wecom.server import Callbacks
from bot.config import robot_keys
from bot.intake import Intake
from bot.runtime import Runtime

logger = logging.getLogger(__name__)


@dataclass
class WeCom:
    api: WeComAPI
    channel: WeComChannel
    callbacks: Callbacks
    runner: web.AppRunner | None = None
    port: int = 0

    @classmethod
    def build(
        cls,
        runtime: Runtime,
        *,
        client: httpx.AsyncClient | None = None,
        pace: MemberPace | None = None,
        wait: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> "WeCom":
        """`wait`: how a reply waits for the member's message limits (asyncio.sleep;
        the local chat, on a manual clock, says so instead)."""
        settings = runtime.settings
        api = WeComAPI(
            corp_id=settings.wecom_corp_id,
            secret=settings.wecom_secret,
            agent_id=settings.wecom_agent_id,
            now=runtime.clock.now,
            base_url=settings.wecom_api_base_url,
            client=client,
        )
        pace = pace or MemberPace()
        pace.keep_in(runtime.db, CHANNEL)  # the limits hold across a restart
        channel = WeComChannel(runtime, api, pace=pace, wait=wait)
        keys = robot_keys(settings.wecom_robots or "")
        if keys:
            channel.robots = Robots(channel, keys)
        crypto = WeComCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)
        callbacks = Callbacks(
            runtime, channel, crypto, handlers.routes(), Intake(runtime.db, CHANNEL)
        )
        return cls(api, channel, callbacks)

    async def start(self, host: str, port: int, *, menu: bool = True) -> None:
        """Serve the callbacks (port 0: any free one), then finish what a dead process
        left, then publish the menu (a failure there does not stop the bot)."""
        now = self.channel.runtime.clock.now()
        await self.channel.pace.restore(now)
        if self.channel.robots is not None:
            await self.channel.robots.pace.restore(now)
        self.runner = web.AppRunner(self.callbacks.web_app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        answered, waiting = await self.callbacks.recover()
        if answered or waiting:
            logger.info(
                "WeCom after a restart: replies to %d updates sent, %d updates processed",
                answered,
                waiting,
            )
        if menu:
            try:
                await self.channel.publish_app_menu()
            except (WeComError, httpx.HTTPError) as error:
                logger.warning("WeCom menu not published: %s", error)
        logger.info("WeCom callbacks on %s:%d", host, self.port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()  # stops taking callbacks first
        await self.callbacks.idle()
        await self.api.close()
