"""What `python -m bot run` writes to its log at LOG_LEVEL=DEBUG: never the token."""

import signal

import pytest

from tests.test_telegram_run import TOKEN, fake_telegram, run_bot  # noqa: F401 - a fixture


@pytest.mark.slow
def test_debug_logging_never_shows_the_token(fake_telegram, tmp_path):  # noqa: F811
    process = run_bot(fake_telegram.server_address[1], tmp_path, LOG_LEVEL="DEBUG")
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


def test_a_librarys_error_is_one_line_and_ours_keep_their_traceback(capsys):
    import logging

    from bot import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("INFO", secrets=["s3cret-token"])
        for name in ("telegram.ext.Updater", "bot.errors"):
            try:
                raise TimeoutError("no answer from https://api.telegram.org/bots3cret-token/x")
            except TimeoutError:
                logging.getLogger(name).exception("calling `get_updates` failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    library, ours = capsys.readouterr().err.split("\n", 1)
    assert "calling `get_updates` failed (TimeoutError: no answer from" in library
    assert "Traceback" in ours and "Traceback" not in library
    assert "s3cret-token" not in library + ours
