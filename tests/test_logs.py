"""What `python -m bot run` writes to its log at LOG_LEVEL=DEBUG: never the token."""

import os
import signal
import subprocess
import sys

import pytest

from tests.test_telegram_run import ROOT, TOKEN, fake_telegram  # noqa: F401 - a fixture


@pytest.mark.slow
def test_debug_logging_never_shows_the_token(fake_telegram, tmp_path):  # noqa: F811
    host, port = fake_telegram.server_address
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://{host}:{port}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "LOG_LEVEL": "DEBUG",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake_telegram.sent.wait(timeout=60), "the bot never answered"
    finally:
        process.send_signal(signal.SIGINT)
        _, log = process.communicate(timeout=60)
    assert process.returncode == 0, log
    assert " DEBUG " in log  # the level was honoured for the bot's own loggers
    secret = TOKEN.split(":")[1]
    assert secret not in log and TOKEN not in log
    # The libraries that log requests, URLs and statements said nothing below their caps.
    for library in ("httpx", "httpcore", "telegram.Bot", "sqlalchemy.engine", "aiosqlite"):
        assert f"DEBUG {library}" not in log, library
