"""Structured JSON logs, one object per line, carrying the service name and correlation id.

The correlation id lives in a context variable so every log line of one request or one consumed
message carries it without passing it around.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from datetime import UTC, datetime

__all__ = ["bind_correlation_id", "configure_logging", "current_correlation_id", "get_logger"]

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def current_correlation_id() -> str | None:
    return _correlation_id.get()


class _CorrelationBinding:
    """The correlation id bound while a `with` block runs. A class, not a generator: it is entered for every
    request and every consumed message, and a generator-based context manager costs several times more."""

    __slots__ = ("_correlation_id", "_token")

    def __init__(self, correlation_id: str | None) -> None:
        self._correlation_id = correlation_id
        self._token: Token[str | None] | None = None

    def __enter__(self) -> None:
        self._token = _correlation_id.set(self._correlation_id)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _correlation_id.reset(self._token)


def bind_correlation_id(correlation_id: str | None) -> AbstractContextManager[None]:
    return _CorrelationBinding(correlation_id)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation_id = _correlation_id.get()
        if correlation_id:
            entry["correlation_id"] = correlation_id
        # Extra fields given with `logger.info("...", extra={...})` become top-level keys.
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Kafka client is chatty at INFO about every rebalance step; warnings still come through.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
