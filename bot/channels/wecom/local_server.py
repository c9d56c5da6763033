"""A WeCom of our own on 127.0.0.1, for tests, the benchmark and local runs: the API side
(gettoken, message/send, update_template_card, media, menu) with WeCom's answers and error
codes, and the pushing side (signed, encrypted callbacks POSTed to the bot's URL).

It keeps WeCom's rules that matter to the bot: tokens expire (or are revoked early), unknown
userids are refused (81013), text over 2,048 bytes is truncated as WeCom does, a card's
task id is unique, a response code works once, and a frequency limit answers 45009. Its group
robots (`webhook/send?key=…`) take text (2,048 bytes) and markdown (4,096), refuse an unknown
key (93000) and answer 45009 beyond 20 messages a robot until `reset_frequency`.
"""

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from aiohttp import web

from bot.channels.wecom.crypto import WeComCrypto

CORP_ID = "wwlocal0000000001"
SECRET = "local-secret"
AGENT_ID = 1000002
TOKEN = "localToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def settings(base_url: str) -> dict[str, object]:
    """The bot's WeCom settings (bot.config.Settings fields) for this local WeCom."""
    return {
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": AGENT_ID,
        "wecom_secret": SECRET,
        "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY,
        "wecom_api_base_url": base_url,
    }


@dataclass
class Delivered:
    """One message WeCom took: to whom, its type, and its body."""

    user: str
    msgtype: str
    body: dict
    msgid: str
    response_code: str | None = None

    @property
    def text(self) -> str:
        if self.msgtype in ("text", "markdown"):
            return self.body[self.msgtype]["content"]
        card = self.body.get("template_card", {})
        return "\n".join(
            [card.get("main_title", {}).get("title", ""), card.get("sub_title_text", "")]
        ).strip()

    @property
    def buttons(self) -> list[tuple[str, str]]:
        card = self.body.get("template_card", {})
        return [(button["text"], button["key"]) for button in card.get("button_list", ())]


@dataclass
class LocalWeCom:
    members: set[str] = field(default_factory=set)
    # At most this many message/send calls are taken, then 45009 until `reset_frequency`.
    frequency_limit: int | None = None
    # After this many messages WeCom revokes every token (once).
    expire_tokens_after: int | None = None
    # Every message/send answered with this errcode (60020: the caller's IP is not trusted).
    refuse_with: int | None = None
    delivered: list[Delivered] = field(default_factory=list)
    # Messages and card updates, in order (a card update as msgtype "update").
    timeline: list[Delivered] = field(default_factory=list)
    updates: list[dict] = field(default_factory=list)
    menus: list[dict] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_names: dict[str, str] = field(default_factory=dict)  # media_id → the file's name
    token_fetches: int = 0
    refused_by_frequency: int = 0
    _tokens: set[str] = field(default_factory=set)
    _task_ids: set[str] = field(default_factory=set)
    _codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → task, user
    _used_codes: set[str] = field(default_factory=set)
    _taken: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Group robots: their webhook keys, what each took (key, body), and their minute's limit.
    robot_keys: set[str] = field(default_factory=set)
    robot_messages: list[tuple[str, dict]] = field(default_factory=list)
    robot_per_minute: int = 20
    _robot_taken: dict[str, int] = field(default_factory=dict)
    # With a clock, WeCom's per-member limits: a message beyond 30 a minute or 1,000 an hour
    # to one member is answered "ok" and silently dropped (kept in `dropped` for the tests).
    clock: Callable[[], datetime] | None = None
    dropped: list[Delivered] = field(default_factory=list)
    _received: dict[str, list[datetime]] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    base_url: str = ""

    # The API side.

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._send)
        app.router.add_post("/cgi-bin/message/update_template_card", self._update)
        app.router.add_post("/cgi-bin/media/upload", self._upload)
        app.router.add_get("/cgi-bin/media/get", self._media)
        app.router.add_post("/cgi-bin/menu/create", self._menu)
        app.router.add_post("/cgi-bin/webhook/send", self._webhook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def expire_tokens(self) -> None:
        """WeCom revokes every token early (a secret reset, an administrator's change)."""
        self._tokens.clear()

    def reset_frequency(self) -> None:
        self._taken = 0
        self._robot_taken.clear()

    def robot_texts(self, key: str) -> list[str]:
        """What the robot with this key posted in its group, in order."""
        return [
            body[body["msgtype"]]["content"] for taken, body in self.robot_messages if taken == key
        ]

    def to(self, user: str) -> list[Delivered]:
        return [item for item in self.delivered if item.user == user]

    @staticmethod
    def _answer(errcode: int = 0, errmsg: str = "ok", **fields) -> web.Response:
        if errcode:
            errmsg = (
                f"{errmsg}, hint: [{int(time.time())}_local], from ip: 127.0.0.1, more info at "
                f"https://open.work.weixin.qq.com/devtool/query?e={errcode}"
            )
        return web.json_response({"errcode": errcode, "errmsg": errmsg, **fields})

    def _token_problem(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return self._answer(41001, "access_token missing")
        if token not in self._tokens:
            return self._answer(42001, "access_token expired")
        return None

    async def _gettoken(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("corpid") != CORP_ID:
            return self._answer(40013, "invalid corpid")
        if query.get("corpsecret") != SECRET:
            return self._answer(40001, "invalid credential")
        self.token_fetches += 1
        token = secrets.token_urlsafe(48)
        self._tokens.add(token)
        return self._answer(access_token=token, expires_in=7200)

    async def _send(self, request: web.Request) -> web.Response:
        if (problem := self._token_problem(request)) is not None:
            return problem
        body = await request.json()
        if body.get("agentid") != AGENT_ID:
            return self._answer(40056, "invalid agentid")
        if self.refuse_with is not None:
            return self._answer(self.refuse_with, "refused")
        if self.frequency_limit is not None and self._taken >= self.frequency_limit:
            self.refused_by_frequency += 1
            return self._answer(45009, "api freq out of limit")
        users = body.get("touser", "").split("|")
        known = [user for user in users if user in self.members]
        if not known:
            return self._answer(81013, "user & party & tag all invalid")
        kind = body.get("msgtype")
        code = None
        if kind in ("text", "markdown"):
            content = body[kind]["content"]
            if len(content.encode()) > 5120:
                return self._answer(40058, f"{kind}.content exceed max length 5120")
            # WeCom truncates beyond 2,048 bytes: the bot must never rely on it.
            body[kind]["content"] = content.encode()[:2048].decode(errors="ignore")
        elif kind == "template_card":
            card = body["template_card"]
            task = card.get("task_id", "")
            buttons = card.get("button_list", [])
            if not task or len(task.encode()) > 128 or task in self._task_ids:
                return self._answer(42014, "taskid has existed or empty or exceed max len")
            if not 1 <= len(buttons) <= 6 or any(len(b["key"].encode()) > 1024 for b in buttons):
                return self._answer(40058, "button_list invalid")
            self._task_ids.add(task)
            code = secrets.token_hex(16)
            self._codes[code] = (task, known[0])
        self._taken += 1
        if self._taken == self.expire_tokens_after:
            self.expire_tokens()
        msgid = f"local-{next(self._ids)}"
        for user in known:
            item = Delivered(user, kind, body, msgid, code)
            if self._over_member_limits(user):
                self.dropped.append(item)
                continue
            self.delivered.append(item)
            self.timeline.append(item)
        invalid = "|".join(user.lower() for user in users if user not in self.members)
        extra = {"invaliduser": invalid} if invalid else {}
        return self._answer(msgid=msgid, **({"response_code": code} if code else {}), **extra)

    def _over_member_limits(self, user: str) -> bool:
        if self.clock is None:
            return False
        now = self.clock()
        received = [t for t in self._received.get(user, []) if t > now - timedelta(hours=1)]
        last_minute = [t for t in received if t > now - timedelta(minutes=1)]
        if len(last_minute) >= 30 or len(received) >= 1000:
            return True
        self._received[user] = [*received, now]
        return False

    def last_card(self, user: str, label: str | None = None) -> dict | None:
        """The latest card this member can still tap (with a button whose label holds
        `label`): a card updated later shows its update."""
        updated: set[str] = set()
        for item in reversed(self.timeline):
            card = item.body.get("template_card", {})
            task = card.get("task_id")
            if item.user != user or task in updated:
                continue
            if item.msgtype == "update":
                updated.add(task)
            labels = [text for text, _key in item.buttons]
            if labels and (label is None or any(label in text for text in labels)):
                return card
        return None

    def card_code(self, task_id: str) -> str:
        """The response code WeCom puts in a tap's callback on this card."""
        code = secrets.token_hex(16)
        user = next(item.user for item in self.delivered if self._task(item) == task_id)
        self._codes[code] = (task_id, user)
        return code

    @staticmethod
    def _task(item: Delivered) -> str | None:
        return item.body.get("template_card", {}).get("task_id")

    async def _update(self, request: web.Request) -> web.Response:
        if (problem := self._token_problem(request)) is not None:
            return problem
        body = await request.json()
        code = body.get("response_code", "")
        if code not in self._codes or code in self._used_codes:
            return self._answer(40001, "invalid response_code")
        self._used_codes.add(code)
        self.updates.append(body)
        task, user = self._codes[code]
        card = body.get("template_card") or {"task_id": task, "replaced": body.get("button")}
        self.timeline.append(Delivered(user, "update", {"template_card": card}, ""))
        return self._answer()

    async def _upload(self, request: web.Request) -> web.Response:
        if (problem := self._token_problem(request)) is not None:
            return problem
        form = await request.post()
        media = form.get("media")
        content = media.file.read() if media is not None else b""
        if len(content) <= 5:
            return self._answer(40005, "invalid file size")
        media_id = f"media-{next(self._ids)}"
        self.uploads[media_id] = content
        self.upload_names[media_id] = media.filename
        return self._answer(type=request.query.get("type"), media_id=media_id, created_at="0")

    async def _media(self, request: web.Request) -> web.Response:
        if (problem := self._token_problem(request)) is not None:
            return problem
        content = self.uploads.get(request.query.get("media_id", ""))
        if content is None:
            return self._answer(40007, "invalid media_id")
        return web.Response(body=content, content_type="application/octet-stream")

    async def _webhook(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if key not in self.robot_keys:
            return self._answer(93000, "invalid webhook url")
        body = await request.json()
        kind = body.get("msgtype")
        if kind not in ("text", "markdown") or not body.get(kind, {}).get("content"):
            return self._answer(40008, "invalid message type")
        longest = 2048 if kind == "text" else 4096
        if len(body[kind]["content"].encode()) > longest:
            return self._answer(40058, f"content exceed max length {longest}")
        if self._robot_taken.get(key, 0) >= self.robot_per_minute:
            self.refused_by_frequency += 1
            return self._answer(45009, "api freq out of limit")
        self._robot_taken[key] = self._robot_taken.get(key, 0) + 1
        self.robot_messages.append((key, body))
        return self._answer()

    async def _menu(self, request: web.Request) -> web.Response:
        if (problem := self._token_problem(request)) is not None:
            return problem
        self.menus.append(await request.json())
        return self._answer()


class Pusher:
    """WeCom's pushing side: callbacks encrypted and signed as WeCom sends them."""

    def __init__(
        self, url: str, crypto: WeComCrypto | None = None, *, created: int = 1_764_000_000
    ) -> None:
        """`created`: the CreateTime before the first push (each push one second later);
        message ids follow from it, so pushes from another start are never taken for
        retries of earlier ones."""
        self.url = url
        self.crypto = crypto or WeComCrypto(TOKEN, AES_KEY, CORP_ID)
        self.client = httpx.AsyncClient(timeout=10)
        self._msgids = itertools.count(7_000_000_000_000_000_001 + (created - 1_764_000_000) * 1000)
        self.created = created

    async def close(self) -> None:
        await self.client.aclose()

    def _xml(self, user: str, fields: dict[str, object]) -> str:
        self.created += 1
        items = {"ToUserName": CORP_ID, "FromUserName": user, "CreateTime": self.created}
        items |= fields
        items["AgentID"] = AGENT_ID
        inner = "".join(
            f"<{name}>{value}</{name}>"
            if isinstance(value, int)
            else f"<{name}><![CDATA[{value}]]></{name}>"
            for name, value in items.items()
        )
        return f"<xml>{inner}</xml>"

    def text(self, user: str, content: str) -> str:
        return self._xml(user, {"MsgType": "text", "Content": content, "MsgId": next(self._msgids)})

    def event(self, user: str, event: str, **fields: object) -> str:
        return self._xml(user, {"MsgType": "event", "Event": event, **fields})

    def tap(self, user: str, task_id: str, key: str, response_code: str) -> str:
        return self.event(
            user,
            "template_card_event",
            EventKey=key,
            TaskId=task_id,
            CardType="button_interaction",
            ResponseCode=response_code,
        )

    async def post(self, xml: str, *, forged: bool = False) -> httpx.Response:
        timestamp, nonce = str(self.created), secrets.token_hex(5)
        encrypted, signature = self.crypto.seal(xml.encode(), timestamp, nonce)
        if forged:
            signature = "0" * 40
        envelope = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
        )
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        return await self.client.post(self.url, params=params, content=envelope.encode())

    async def verify_url(self, echo: str = "1288432023552776189") -> httpx.Response:
        timestamp, nonce = str(self.created), secrets.token_hex(5)
        encrypted, signature = self.crypto.seal(echo.encode(), timestamp, nonce)
        params = {
            "msg_signature": signature,
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": encrypted,
        }
        return await self.client.get(self.url, params=params)
