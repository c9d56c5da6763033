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


class _Redacting(logging.Formatter):
    """Formats as usual, then blanks the secrets out of the whole line (tracebacks too)."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
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
