"""WeCom's server API (`/cgi-bin/`) on httpx: the access token, sending, cards, media, menu.

Every answer is HTTP 200 with `errcode`/`errmsg` (document 90313); a non-zero errcode raises
`WeComError`. The access token (gettoken, 7,200 s) is cached and fetched once for all
callers; WeCom may revoke it early, so an answer saying it is invalid or expired (40014,
42001, 41001) fetches a new one and asks once more. The base URL is configurable:
政务微信 and private deployments serve the same API on other hosts.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
# The token is invalid, expired or missing: fetch a new one and ask again.
TOKEN_ERRORS = frozenset({40014, 42001, 41001})
# Renew a little before WeCom's stated expiry, so a request never carries a dying token.
TOKEN_MARGIN = timedelta(minutes=5)


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeComAPI:
    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        agent_id: int,
        now: Callable[[], datetime],
        base_url: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._now = now
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.client = client or httpx.AsyncClient(base_url=base, timeout=10)
        if client is not None:
            self.client.base_url = base
        self._token: str | None = None
        self._expires: datetime | None = None
        self._fetching = asyncio.Lock()

    async def close(self) -> None:
        await self.client.aclose()

    async def token(self, *, renew_from: str | None = None) -> str:
        """The cached token; a new one once it is near expiry or `renew_from` was refused
        (whoever comes second finds the first one's fresh token)."""
        async with self._fetching:
            stale = self._expires is None or self._now() >= self._expires
            if stale or self._token == renew_from:
                answer = await self._get(
                    "/cgi-bin/gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}
                )
                self._token = answer["access_token"]
                lifetime = timedelta(seconds=int(answer.get("expires_in", 7200)))
                self._expires = self._now() + lifetime - TOKEN_MARGIN
            return self._token

    async def _get(self, path: str, params: dict) -> dict:
        response = await self.client.get(path, params=params)
        return _checked(response)

    async def call(self, path: str, *, json: dict | None = None, files=None, params=None) -> dict:
        """POST (or GET without a body) with the token; once more with a new token if
        WeCom says it is no longer valid."""
        token = await self.token()
        for attempt in range(2):
            query = {"access_token": token, **(params or {})}
            if json is None and files is None:
                response = await self.client.get(path, params=query)
            else:
                response = await self.client.post(path, params=query, json=json, files=files)
            try:
                return _checked(response)
            except WeComError as error:
                if error.errcode not in TOKEN_ERRORS or attempt:
                    raise
                token = await self.token(renew_from=token)
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> dict:
        """message/send (document 90236) for this application."""
        return await self.call("/cgi-bin/message/send", json={**message, "agentid": self.agent_id})

    async def update_card(self, update: dict[str, Any]) -> dict:
        """message/update_template_card (94888): each response code once, within 72 hours."""
        body = {**update, "agentid": self.agent_id}
        return await self.call("/cgi-bin/message/update_template_card", json=body)

    async def upload(self, kind: str, name: str, content: bytes) -> str:
        """media/upload (90253): a media_id, valid three days."""
        files = {"media": (name, content, "application/octet-stream")}
        answer = await self.call("/cgi-bin/media/upload", files=files, params={"type": kind})
        return answer["media_id"]

    async def media(self, media_id: str) -> bytes:
        """media/get: a member's image or an upload."""
        token = await self.token()
        response = await self.client.get(
            "/cgi-bin/media/get", params={"access_token": token, "media_id": media_id}
        )
        if response.headers.get("content-type", "").startswith(("application/json", "text/")):
            _checked(response)
        response.raise_for_status()
        return response.content

    async def create_menu(self, menu: dict) -> None:
        await self.call("/cgi-bin/menu/create", json=menu, params={"agentid": self.agent_id})


def _checked(response: httpx.Response) -> dict:
    response.raise_for_status()
    answer = response.json()
    errcode = int(answer.get("errcode", 0))
    if errcode:
        raise WeComError(errcode, str(answer.get("errmsg", "")))
    return answer
