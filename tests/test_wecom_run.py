"""`python -m bot run` with WeCom: the settings' one clear line, and a real process serving
callbacks against the local WeCom."""

import asyncio
import os
import signal
import socket
import sys

import httpx
import pytest

from bot.__main__ import main
from bot.channels.wecom import local_server
from bot.channels.wecom.local_server import LocalWeCom, Pusher
from tests.test_telegram_run import ROOT

SETTINGS = {
    name.upper(): str(value)
    for name, value in local_server.settings("").items()
    if name != "wecom_api_base_url"
}


@pytest.fixture
def environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in [*SETTINGS, "TELEGRAM_BOT_TOKEN", "DEFAULT_LOCALE"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    return monkeypatch


def test_a_missing_wecom_setting_is_named_in_one_line(environment, capsys):
    for name, value in SETTINGS.items():
        if name != "WECOM_TOKEN":
            environment.setenv(name, value)
    assert main(["run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "WECOM_TOKEN" in error and "\n" not in error and error.startswith("企业微信设置不完整")


@pytest.mark.parametrize(
    ("name", "value"),
    [("WECOM_AES_KEY", "too-short"), ("WECOM_LISTEN", "8080"), ("WECOM_AGENT_ID", "app")],
)
def test_a_malformed_wecom_setting_is_named_in_one_line(environment, capsys, name, value):
    environment.setenv("DEFAULT_LOCALE", "en")
    for key, good in SETTINGS.items():
        environment.setenv(key, good)
    environment.setenv(name, value)
    assert main(["run"]) == 2
    error = capsys.readouterr().err.strip()
    assert name in error and "\n" not in error


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
async def test_run_serves_wecom_callbacks_alone_and_stops_cleanly(tmp_path):
    fake = LocalWeCom(members={"4242"})
    await fake.start()
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "WECOM_API_BASE_URL": fake.base_url,
        "WECOM_LISTEN": f"127.0.0.1:{port}",
        **SETTINGS,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    pusher = Pusher(f"http://127.0.0.1:{port}/wecom/callback")
    try:
        for _ in range(600):  # until the server listens (a cold start imports a lot)
            try:
                answer = await pusher.verify_url("42")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        assert answer.text == "42"
        assert (await pusher.post(pusher.text("4242", "/start"))).status_code == 200
        for _ in range(300):
            if fake.delivered:
                break
            await asyncio.sleep(0.1)
        (reply,) = fake.delivered
        assert reply.user == "4242" and "个人专属链接" in reply.text
        assert fake.menus  # published at start
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        await pusher.close()
        await fake.stop()
    assert process.returncode == 0, stderr.decode()
