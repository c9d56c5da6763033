"""Logging: what may reach a log, whatever LOG_LEVEL says.

Libraries log what we must never keep: python-telegram-bot's DEBUG lines carry every Bot API
call with its parameters (members' texts, the taps of a 群众评议 ballot) and the API URL with
the bot token; httpx logs each request's URL (with the token) at INFO; httpcore and the
database drivers log traffic and statements. These loggers are capped before anything is
built, and every line written is stripped of the secrets we know.
"""

import logging

# The highest detail each library may log at, whatever the bot's own level.
LIBRARY_CAPS = {
    "telegram": logging.INFO,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiosqlite": logging.INFO,
    "sqlalchemy": logging.WARNING,
    "alembic": logging.WARNING,
}


def cap_libraries() -> None:
    for name, cap in LIBRARY_CAPS.items():
        library = logging.getLogger(name)
        library.setLevel(max(cap, library.level))


# Loggers whose tracebacks are ours to read; a library's error is one line (what and why).
OWN_LOGGERS = ("bot", "handlers", "storage", "messages")


class _Redacting(logging.Formatter):
    """Formats as usual, then blanks the secrets out of the whole line (tracebacks too)."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.name.split(".")[0] not in OWN_LOGGERS:
            # python-telegram-bot logs a network error at shutdown, or a proxy's HTML answer,
            # with a whole traceback: an operator needs its kind and message, in one line.
            error = record.exc_info[1]
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args = None
        line = super().format(record)
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


def configure(level: str, *, secrets: list[str | None]) -> None:
    """The process's logging: to standard error at `level`, libraries capped, secrets blanked."""
    cap_libraries()
    handler = logging.StreamHandler()
    handler.setFormatter(
        _Redacting("%(asctime)s %(levelname)s %(name)s: %(message)s", [s or "" for s in secrets])
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
