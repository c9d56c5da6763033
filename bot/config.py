"""Settings from environment variables and an optional .env file."""

import hashlib
import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.accounts import CHANNEL_ORDER

TOKEN_PATTERN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
WECOM_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
ROBOT_KEY = re.compile(r"^[A-Za-z0-9-]{8,64}$")  # a group robot's webhook key (a UUID)
# The settings a WeCom application needs, in the order a missing one is named.
WECOM_REQUIRED = ("wecom_corp_id", "wecom_agent_id", "wecom_secret", "wecom_token", "wecom_aes_key")
LOCALES = ("zh_CN", "en")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str | None = None
    telegram_api_base_url: str | None = None
    # Only needed to print invite links without asking Telegram (getMe) for it.
    telegram_bot_username: str | None = None
    database_url: str = "sqlite:///data/cxzy.db"
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    invite_days: int = 14
    # Self-summaries: at most this many characters in all (seed 002 allows deed material 1,500).
    summary_limit: int = 1500
    # How often the reminder job plans what fell due and drains the outbox.
    reminder_tick_minutes: int = 5
    log_level: str = "INFO"
    # The key of the keyed hashes that hold "one evaluation code per account" (群众评议); kept
    # out of the database. Without it, one is derived from the bot token.
    evaluation_key: str | None = None
    # A font file with Chinese glyphs for the charts (default: Noto Sans CJK SC from mplfonts).
    chart_font: str | None = None
    # Where reminders and other pushed messages go when a member is reachable on several
    # channels: the first of these on which they are reachable (storage.accounts).
    channel_order: str = ",".join(CHANNEL_ORDER)

    # 企业微信 (WeCom) self-built application (README "WeCom"); all five or none.
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    # 政务微信 and private deployments serve the API elsewhere.
    wecom_api_base_url: str | None = None
    # Where the callback server listens (host:port), usually behind the HTTPS proxy.
    wecom_listen: str = "127.0.0.1:8080"
    # Messages as text (every client shows them, the WeChat plug-in included) or markdown
    # (bold words; the WeChat plug-in does not show markdown messages).
    wecom_message_format: Literal["text", "markdown"] = "text"
    # Group robots (群机器人) that post announcements in WeCom group chats: "name=key" pairs
    # separated by ";", the key as the robot's webhook URL or its key=… part. Secrets, like
    # WECOM_SECRET: kept here, never in the database.
    wecom_robots: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {value!r}") from error
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"locale must be one of {', '.join(LOCALES)}")
        return value

    @field_validator("channel_order")
    @classmethod
    def _channel_names(cls, value: str) -> str:
        if not all(name.strip() for name in value.split(",")):
            raise ValueError("CHANNEL_ORDER is channel names separated by commas")
        return value

    @property
    def channels(self) -> tuple[str, ...]:
        """CHANNEL_ORDER as a tuple of channel names."""
        return tuple(name.strip() for name in self.channel_order.split(","))

    @field_validator("wecom_aes_key")
    @classmethod
    def _aes_key(cls, value: str | None) -> str | None:
        if value is not None and not WECOM_AES_KEY.match(value):
            raise ValueError("EncodingAESKey is 43 letters and digits")
        return value

    @field_validator("wecom_robots")
    @classmethod
    def _robots(cls, value: str | None) -> str | None:
        if value:
            robot_keys(value)
        return value

    @field_validator("wecom_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port, such as 127.0.0.1:8080")
        return value

    @property
    def wecom_missing(self) -> str | None:
        """The first WeCom setting missing while others are set (None: all or none)."""
        missing = [name for name in WECOM_REQUIRED if getattr(self, name) in (None, "")]
        if len(missing) in (0, len(WECOM_REQUIRED)):
            return None
        return missing[0].upper()

    @property
    def wecom_configured(self) -> bool:
        return all(getattr(self, name) not in (None, "") for name in WECOM_REQUIRED)

    @property
    def wecom_address(self) -> tuple[str, int]:
        host, _, port = self.wecom_listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def announcement_groups(self) -> list[tuple[str, str]]:
        """The group chats that hear the organisation's announcements through the outbox, as
        (channel, name): WeCom's group robots."""
        return [("wecom", name) for name in robot_keys(self.wecom_robots or "")]

    @property
    def code_use_key(self) -> bytes:
        secret = self.evaluation_key or self.telegram_bot_token or "local"
        return hashlib.sha256(f"cxzy evaluation code use:{secret}".encode()).digest()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def robot_keys(value: str) -> dict[str, str]:
    """WECOM_ROBOTS as name → webhook key; ValueError names what is wrong (never the key)."""
    robots: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in value.split(";"))):
        name, equals, given = (part.strip() for part in entry.partition("="))
        key = given.rpartition("key=")[2] if "key=" in given else given
        if not equals or not name or not ROBOT_KEY.match(key):
            raise ValueError(
                "WECOM_ROBOTS is name=key pairs separated by ';', each key a robot's webhook "
                f"URL or key (the entry named {name!r} is not)"
            )
        if name in robots:
            raise ValueError(f"WECOM_ROBOTS names {name!r} twice")
        robots[name] = key
    return robots
