"""Mapping between events and rows. JSON columns are text, serialised once with orjson."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from tracehive.model.event import Event, deep_merge
from tracehive.storage.event_rows import event_from_row
from tracehive.storage.sqlite.project_keys import sql_text

STORED_COLUMNS = (
    "event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, duration, error, "
    "config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id"
)
"""The columns of an event row but its project, which rows hold as a key (``project_keys``)."""


@lru_cache(maxsize=256)
def event_columns(project_id: str, prefix: str = "") -> str:
    """The select list ``row_to_event`` reads: the stored columns (each after ``prefix``, e.g.
    ``e.``), then the scope's project id as a constant (every read is confined to one project)."""
    stored = ", ".join(f"{prefix}{c.strip()}" for c in STORED_COLUMNS.split(","))
    return f"{stored}, {sql_text(project_id)}"

_dumps = orjson.dumps
_loads = orjson.loads


def dump(value: Any) -> str:
    return _dumps(value).decode()


def dump_optional(value: Any) -> str | None:
    return None if value is None else _dumps(value).decode()


def event_params(event: Event, project_key: int, org_id: str, workspace_id: str, now: int) -> tuple[Any, ...]:
    """Parameters for ``UPSERT_EVENT`` (in its column order)."""
    return (
        project_key,
        event.event_id,
        event.session_id,
        event.parent_id,
        event.event_type,
        event.event_name,
        event.source,
        event.start_time,
        event.end_time,
        event.duration,
        event.error,
        _dumps(event.config).decode(),
        _dumps(event.inputs).decode(),
        None if event.outputs is None else _dumps(event.outputs).decode(),
        _dumps(event.metadata).decode(),
        _dumps(event.feedback).decode(),
        _dumps(event.metrics).decode(),
        _dumps(event.user_properties).decode(),
        _dumps(event.children_ids).decode(),
        org_id,
        workspace_id,
        now,
    )


def row_to_event(row: tuple[Any, ...]) -> Event:
    """Inverse of ``event_columns`` (times come back as stored: NUMERIC keeps ints)."""
    return event_from_row(row)


def merge_json(base: str | None, patch: str | None) -> str | None:
    """SQL function ``th_merge``: deep-merge two JSON objects, ``patch`` winning. Unlike
    ``json_patch`` (RFC 7396), a null in ``patch`` is stored as null instead of deleting the key,
    so re-sending an event with null-valued keys leaves it unchanged."""
    if base is None or patch is None:
        return patch if base is None else base
    old, new = _loads(base), _loads(patch)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return patch
    return _dumps(deep_merge(old, new)).decode()



@lru_cache(maxsize=256)
def line_columns(scope_fields: bool, project_id: str) -> str:
    """Select list for ``row_to_line``: the line up to ``"start_time":`` and after ``duration``
    built by SQLite as one blob (the stored JSON text as it is, text columns through
    ``json_quote``, which escapes exactly as orjson does: tested on every code point), then
    start_time, end_time, duration (numbers are formatted by orjson: SQLite prints floats
    differently), then event_id for the keyset."""

    def text(name: str) -> str:
        return f"json_quote(e.{name})"

    head = " || ".join([
        "'{\"event_id\":'", text("event_id"), "',\"session_id\":'", text("session_id"),
        "',\"parent_id\":'", text("parent_id"), "',\"children_ids\":'", "e.children_ids",
        "',\"event_type\":'", text("event_type"), "',\"event_name\":'", text("event_name"),
        "',\"source\":'", text("source"), "',\"config\":'", "e.config", "',\"inputs\":'", "e.inputs",
        "',\"outputs\":'", "coalesce(e.outputs, 'null')", "',\"error\":'", text("error"),
        "',\"start_time\":'",
    ])  # fmt: skip
    tail = [
        "',\"metadata\":'", "e.metadata", "',\"feedback\":'", "e.feedback", "',\"metrics\":'", "e.metrics",
        "',\"user_properties\":'", "e.user_properties",
    ]  # fmt: skip
    if scope_fields:
        tail += ["',\"org_id\":'", text("org_id"), "',\"workspace_id\":'", text("workspace_id"),
                 "',\"project_id\":'", f"json_quote({sql_text(project_id)})", "',\"tenant\":'",
                 text("org_id")]  # fmt: skip
    tail.append("'}'")
    return (
        f"CAST({head} AS BLOB), e.start_time, e.end_time, e.duration, CAST({' || '.join(tail)} AS BLOB), e.event_id"
    )


def row_to_line(row: tuple[Any, ...]) -> bytes:
    """A ``line_columns`` row as its JSONL line, newline included: byte for byte what
    ``orjson.dumps(row_to_event(full_row).to_dict())`` (``scope_fields``) or
    ``orjson.dumps(transfer.record(...))`` gives. The JSON columns are embedded as stored, without
    parsing: their text is orjson output (``event_params``, ``merge_json``), which
    ``dumps(loads(text))`` reproduces exactly."""
    return b"%b%b,\"end_time\":%b,\"duration\":%b%b\n" % (
        row[0], _dumps(row[1]), _dumps(row[2]), _dumps(row[3]), row[4]
    )
