"""Bulk export/import file formats (``tracehive export`` / ``tracehive import``).

JSONL: one stored event per line, the wire shape of ``Event.to_dict`` without the scope ids
(``org_id``, ``workspace_id``, ``project_id``, ``tenant``): those belong to the installation and
project the events are in, and ``import`` stamps the target project's. So export, import into an
empty data dir and export again gives the same bytes.

A whole-project JSONL export (no ``--filter``/``--since``, or ``--records``) also carries the
project's records (datasets, datapoints, runs, configurations, metric definitions), before the
events: one line each whose only key is ``record``,
``{"record": {"kind", "id", "name", "body", "created_at", "updated_at"}}``
(``experiments.transfer_records`` has the details, including what import does with a record that
is already there: it is replaced). No event has a ``record`` key, so the two never mix up: a file
of events only (every export before records existed) imports as it always did, and an importer
from before records reports each record line as ``unknown field 'record'`` and still imports the
events.

CSV: the same columns, flattened: text and number columns as they are (null = empty), the JSON
columns (``config``, ``inputs``, ``outputs``, ``metadata``, ``feedback``, ``metrics``,
``user_properties``, ``children_ids``) as their JSON text. A cell a spreadsheet would run as a
formula (one that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return and is not a
plain number: OWASP's "CSV injection" list) gets a leading ``'``, which spreadsheets show as text;
so an event named ``=HYPERLINK(...)`` exports as ``'=HYPERLINK(...)``. CSV is for reading; only
JSONL imports. CSV holds events only.
"""

from __future__ import annotations

import re
import sys
import time
from typing import IO, TYPE_CHECKING, Any

import orjson

from tracehive.model.event import EVENT_TYPES, Event

if TYPE_CHECKING:  # imported when used: storage.base imports this module
    from tracehive.storage.records import Record

SCOPE_FIELDS = ("org_id", "workspace_id", "project_id", "tenant")
COLUMNS = (
    "event_id", "session_id", "parent_id", "children_ids", "event_type", "event_name", "source", "config",
    "inputs", "outputs", "error", "start_time", "end_time", "duration", "metadata", "feedback", "metrics",
    "user_properties",
)  # fmt: skip
JSON_COLUMNS = frozenset(
    ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties", "children_ids")
)
_OBJECT_COLUMNS = ("config", "inputs", "metadata", "feedback", "metrics", "user_properties")
_TEXT_REQUIRED = ("event_id", "session_id", "event_type", "event_name", "source")
_NUMBERS = ("start_time", "end_time", "duration")


def record(event: Event) -> dict[str, Any]:
    """The exported form of a stored event (``COLUMNS``, in order)."""
    e = event
    return {
        "event_id": e.event_id, "session_id": e.session_id, "parent_id": e.parent_id,
        "children_ids": e.children_ids, "event_type": e.event_type, "event_name": e.event_name,
        "source": e.source, "config": e.config, "inputs": e.inputs, "outputs": e.outputs, "error": e.error,
        "start_time": e.start_time, "end_time": e.end_time, "duration": e.duration, "metadata": e.metadata,
        "feedback": e.feedback, "metrics": e.metrics, "user_properties": e.user_properties,
    }  # fmt: skip


def jsonl(events: list[Event]) -> bytes:
    """Lines for a chunk of events, each ending in a newline."""
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    return b"".join(dumps(record(e), option=option) for e in events)


# What spreadsheets take as the start of a formula, and the numbers among such cells (a negative
# number is data, not a formula, and stays a number).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell that no spreadsheet runs as a formula."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_row(event: Event) -> list[str]:
    out = []
    for name, value in record(event).items():
        if name in JSON_COLUMNS:
            out.append(csv_cell(orjson.dumps(value).decode()))
        elif value is None:
            out.append("")
        elif isinstance(value, str):
            out.append(csv_cell(value))
        else:
            out.append(orjson.dumps(value).decode())  # numbers as JSON writes them
    return out


def _object(line: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def parse_line(line: bytes) -> Event:
    """An exported event line back to an event; ``ValueError`` says what is wrong. Scope ids are
    accepted and ignored (the target project's are stored); any other unknown key is refused."""
    return _event(_object(line))


def parse_entry(line: bytes) -> Event | Record:
    """Any exported JSONL line: an event, or a record (a line whose key is ``record``)."""
    obj = _object(line)
    if "record" in obj:
        from tracehive.experiments import transfer_records

        return transfer_records.parse_record(obj)
    return _event(obj)


def _event(obj: dict[str, Any]) -> Event:
    unknown = sorted(k for k in obj if k not in COLUMNS and k not in SCOPE_FIELDS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    for name in _TEXT_REQUIRED:
        value = obj.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    if obj["event_type"] not in EVENT_TYPES:
        raise ValueError(f"event_type must be one of {', '.join(EVENT_TYPES)}")
    for name in _NUMBERS:
        value = obj.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number (Unix ms)")
    for name in ("parent_id", "error"):
        if not isinstance(obj.get(name), (str, type(None))):
            raise ValueError(f"{name} must be a string or null")
    for name in _OBJECT_COLUMNS:
        if not isinstance(obj.get(name, {}), dict):
            raise ValueError(f"{name} must be an object")
    if not isinstance(obj.get("outputs"), (dict, type(None))):
        raise ValueError("outputs must be an object or null")
    children = obj.get("children_ids", [])
    if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
        raise ValueError("children_ids must be an array of strings")
    if obj["event_type"] == "session" and obj["event_id"] != obj["session_id"]:
        raise ValueError("a session's event_id must equal its session_id")
    return Event(
        event_id=obj["event_id"], session_id=obj["session_id"], event_type=obj["event_type"],
        event_name=obj["event_name"], source=obj["source"], start_time=obj["start_time"],
        end_time=obj["end_time"], duration=obj["duration"], parent_id=obj.get("parent_id"),
        error=obj.get("error"), config=obj.get("config", {}), inputs=obj.get("inputs", {}),
        outputs=obj.get("outputs"), metadata=obj.get("metadata", {}), feedback=obj.get("feedback", {}),
        metrics=obj.get("metrics", {}), user_properties=obj.get("user_properties", {}), children_ids=children,
    )  # fmt: skip


class Progress:
    """A one-line ``\\r`` progress report on stderr, drawn only when stderr is a terminal."""

    def __init__(self, verb: str, stream: IO[str] | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.verb = verb
        self.count = 0
        self.interval = interval
        self.started = time.monotonic()
        self._drawn = 0.0

    def add(self, n: int) -> None:
        self.count += n
        if self.enabled:
            now = time.monotonic()
            if now - self._drawn >= self.interval:
                self._drawn = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        self.stream.write(f"\r{self.verb} {self.count:,} events ({self.count / elapsed:,.0f}/s, {elapsed:.1f}s)\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
