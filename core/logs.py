"""Log lines an operator can search: with ``LOG_FORMAT=json`` one JSON object per line, with
the run, export, connection and user the line is about when known.

The context is held in a context variable: a task or a request sets it once
(``log_context``) and every line logged inside carries it, without each call passing it.
Threads a run starts adopt it (``adopt``)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

CONTEXT_FIELDS = ("run_id", "export_id", "connection_id", "user")

_context: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "log_context", default=None
)


def current() -> dict[str, object]:
    return dict(_context.get() or {})


def adopt(fields: dict[str, object]) -> None:
    """A thread's initializer: take on the context of the code that started it."""
    _context.set(dict(fields))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    token = _context.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the context on every record (a field passed with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class RefusalWithoutTraceback(logging.Filter):
    """A page or call refused for want of a permission (403) is an ordinary event, not a fault:
    one warning line, without the traceback Django attaches to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the context fields that
    are known, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestUserMiddleware:
    """Logs inside a request name the user who made it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        username = user.get_username() if user is not None and user.is_authenticated else None
        with log_context(user=username):
            return self.get_response(request)
