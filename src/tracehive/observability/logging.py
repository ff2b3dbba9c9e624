"""Structured logs: one JSON object per line, carrying the id of the request it belongs to.

Fields: ``ts`` (UTC, ms), ``level``, ``logger``, ``msg``, ``request_id`` (null outside a request),
and, when known, ``method``, ``path`` (never the query string), ``route``, ``status``,
``duration_ms``; ``exc`` holds a traceback. What is logged is decided by the callers: they never
pass headers, keys or bodies, and the access line (``middleware``) carries only the fields above.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import orjson

from tracehive.observability.context import current_request

ACCESS_LOGGER = "tracehive.access"

# Extra attributes a log call may set (``logger.info(..., extra={...})``), copied when present.
_OPTIONAL_FIELDS = ("method", "path", "route", "status", "duration_ms")


def _timestamp(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request = current_request()
        request_id = getattr(record, "request_id", None)
        if request_id is None and request is not None:
            request_id = request.request_id
        line["request_id"] = request_id
        for name in _OPTIONAL_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if request is not None and "method" not in line:  # a line logged while serving a request
            line["method"] = request.method
            line["path"] = request.scope.get("path")
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document (uvicorn's ``log_config``): uvicorn's loggers,
    tracehive's and the root logger all write JSON lines to stderr (stdout keeps the banner and
    the key printed on first start)."""
    level = level.upper()
    handler = ["json_stderr"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json_stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "uvicorn": {"handlers": handler, "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            # uvicorn's own access line would log the query string; ours (tracehive.access) does not.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "tracehive": {"handlers": handler, "level": level, "propagate": False},
        },
        "root": {"handlers": handler, "level": "WARNING"},
    }
