"""Logging setup: human text or one JSON object a line, with the ``extra`` fields.

Third-party loggers (:data:`LIBRARIES`: urllib3, requests, slack_sdk, APScheduler, Alembic,
SQLAlchemy, psycopg, matplotlib, ...) are held at ``logging.libraries`` (default WARNING)
whatever ``logging.level`` is: at DEBUG, urllib3 logs every request line, a webhook's path and
query (its token) included, and SQLAlchemy logs statements with their parameters (the data).
``logging.libraries = "DEBUG"`` (``TOKENTALLY_LOGGING_LIBRARIES=DEBUG``) asks for them, for
debugging a connection: those lines may then hold secrets.
"""

from __future__ import annotations

import logging
import sys

import orjson

LIBRARIES = ("urllib3", "requests", "slack_sdk", "apscheduler", "alembic", "sqlalchemy", "psycopg", "httpx",
             "httpcore", "matplotlib", "PIL", "asyncio", "charset_normalizer", "filelock")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                   "logger": record.name, "message": record.getMessage()}
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "action"}
        if extras:
            base += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return base


def setup(level: str = "INFO", fmt: str = "auto", libraries: str = "WARNING") -> None:
    """``auto``: human text on a terminal, one JSON object a line otherwise; the third-party
    loggers at ``libraries`` (their own messages only: tokentally's stay at ``level``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json" or (fmt == "auto" and not sys.stderr.isatty()):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(libraries)
