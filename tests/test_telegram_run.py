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

from bot.channels.telegram.local_api import BOT_USER

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:" + "A" * 35


START = {
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


class FakeTelegram(ThreadingHTTPServer):
    """Answers the few Bot API methods polling needs; holds one /start update until an
    offset acknowledges it; can kill -9 the bot the moment it acknowledges an update."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.calls: list[tuple[str, dict]] = []
        self.sent = threading.Event()
        self.polled = threading.Event()  # set at every getUpdates
        self.updates = [START]
        self.bot: subprocess.Popen | None = None
        self.kill_on_acknowledging: int | None = None
        self.killed = threading.Event()

    def acknowledge(self, offset: int) -> None:
        self.updates = [update for update in self.updates if update["update_id"] >= offset]
        dying = self.kill_on_acknowledging
        if dying is not None and offset > dying and self.bot is not None:
            self.bot.kill()  # SIGKILL: nothing more runs in the bot
            self.bot.wait()
            self.kill_on_acknowledging = None
            self.killed.set()


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
            self.server.acknowledge(int(params.get("offset") or 0))
            result = self.server.updates
            self.server.polled.set()
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


def run_bot(port: int, tmp_path: Path, **settings: str) -> subprocess.Popen:
    """`python -m bot run` against the Bot API on this port, with these extra settings."""
    host = "127.0.0.1"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://{host}:{port}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        **settings,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_bot(fake_telegram, tmp_path) -> subprocess.Popen:
    """The bot against this fake Telegram, which may kill it (see FakeTelegram)."""
    process = run_bot(fake_telegram.server_address[1], tmp_path)
    fake_telegram.bot = process
    return process


@pytest.mark.slow
def test_run_polls_answers_and_stops_cleanly(fake_telegram, tmp_path):
    process = start_bot(fake_telegram, tmp_path)
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


@pytest.mark.slow
def test_an_update_acknowledged_just_before_kill_9_is_answered_after_the_restart(
    fake_telegram, tmp_path
):
    # The bot dies the moment its getUpdates acknowledges the /start: Telegram will never
    # hand that update out again.
    fake_telegram.kill_on_acknowledging = 1
    start_bot(fake_telegram, tmp_path)
    assert fake_telegram.killed.wait(timeout=60), "the bot never acknowledged the update"
    answered_before_dying = fake_telegram.sent.is_set()
    assert not fake_telegram.updates
    fake_telegram.polled.clear()
    process = start_bot(fake_telegram, tmp_path)
    try:
        # The restarted bot answers from what it stored (unless the first answered in time),
        # and is polling (so it has had every chance to answer twice) before it is stopped.
        assert answered_before_dying or fake_telegram.sent.wait(timeout=60)
        assert fake_telegram.polled.wait(timeout=60), "the restarted bot never polled"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    replies = [params for method, params in fake_telegram.calls if method == "sendMessage"]
    assert len(replies) == 1 and replies[0]["chat_id"] == 555


@pytest.mark.slow
def test_the_run_path_leaves_charts_workbooks_and_documents_unloaded():
    """matplotlib, openpyxl, python-docx and reportlab cost tens of megabytes: they load
    when a chart, workbook or document is first made, not when the bot starts."""
    heavy = ["matplotlib", "numpy", "PIL", "openpyxl", "docx", "reportlab", "qrcode"]
    probe = (
        "import sys, bot.__main__, bot.channels.telegram.polling, bot.channels.telegram.app; "
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.split() == []
