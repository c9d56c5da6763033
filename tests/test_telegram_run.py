"""`python -m bot run` against a Bot API server on this machine (TELEGRAM_API_BASE_URL)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from bot.local_api import BOT_USER

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:" + "A" * 35


class FakeTelegram(ThreadingHTTPServer):
    """Answers the few Bot API methods polling needs; hands out one /start update."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.calls: list[tuple[str, dict]] = []
        self.sent = threading.Event()
        self.update_given = False


class _Handler(BaseHTTPRequestHandler):
    server: FakeTelegram

    def log_message(self, *args) -> None:
        return None

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else "{}"
        # python-telegram-bot posts form fields, each a JSON value or a plain string.
        params = {key: values[-1] for key, values in parse_qs(body).items()}
        for key, value in params.items():
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError:
                pass
        method = self.path.rsplit("/", 1)[-1]
        self.server.calls.append((method, params))
        result: object = True
        if method == "getMe":
            result = BOT_USER
        elif method == "getUpdates":
            result = []
            if not self.server.update_given:
                self.server.update_given = True
                result = [
                    {
                        "update_id": 1,
                        "message": {
                            "message_id": 1,
                            "date": 0,
                            "chat": {"id": 555, "type": "private", "first_name": "S"},
                            "from": {"id": 555, "is_bot": False, "first_name": "S"},
                            "text": "/start",
                            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                        },
                    }
                ]
        elif method == "sendMessage":
            result = {
                "message_id": 2,
                "date": 0,
                "chat": {"id": 555, "type": "private"},
                "text": params.get("text", ""),
            }
            self.server.sent.set()
        data = json.dumps({"ok": True, "result": result}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(port: int = 0) -> FakeTelegram:
    server = FakeTelegram(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake_telegram():
    server = serve()
    yield server
    server.shutdown()


def run_bot(port: int, tmp_path: Path) -> subprocess.Popen:
    host = "127.0.0.1"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://{host}:{port}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_run_polls_answers_and_stops_cleanly(fake_telegram, tmp_path):
    process = run_bot(fake_telegram.server_address[1], tmp_path)
    try:
        assert fake_telegram.sent.wait(timeout=60), "the bot never answered"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    methods = [method for method, _ in fake_telegram.calls]
    assert {"getMe", "setMyCommands", "getUpdates", "sendMessage"} <= set(methods)
    reply = next(params for method, params in fake_telegram.calls if method == "sendMessage")
    assert reply["chat_id"] == 555 and "个人专属链接" in reply["text"]
    assert (tmp_path / "bot.db").exists()


@pytest.mark.slow
def test_run_waits_for_an_unreachable_bot_api_and_says_so(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on, until the server comes up
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = run_bot(port, tmp_path)
    waits = []
    server = None
    try:
        while len(waits) < 2:
            line = process.stderr.readline()
            assert line, "the bot stopped instead of waiting"
            assert "Traceback" not in line
            if line.startswith("暂时连不上 Telegram Bot API"):
                waits.append(line)
        server = serve(port)
        assert server.sent.wait(timeout=60), "the bot never answered once the API was up"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        if server:
            server.shutdown()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "1 秒后重试" in waits[0] and "2 秒后重试" in waits[1]
    assert f"http://127.0.0.1:{port}" in waits[0] and "TELEGRAM_API_BASE_URL" in waits[0]
