"""A project's records (datasets, datapoints, runs, configurations, metric definitions) in a
``tracehive export`` file, and back into a store on ``tracehive import``. Store-independent: it
uses only the record half of the store contract (``storage/base.py``, ``ControlStore``).

A record is one JSONL line with a single top-level key, ``record`` (so it can never be taken for
an event, and an importer that predates records refuses the line as ``unknown field 'record'``)::

    {"record": {"kind": "dataset", "id": "…", "name": "qa", "body": {…},
                "created_at": 1735689600000, "updated_at": 1735689600000}}

``kind`` is a ``RecordKind`` value; ``body`` is the stored document as it is (ids it holds, such
as a dataset's datapoints or a run's sessions, are kept, so the links hold in the target project);
the times are Unix ms. An export writes every record of the project, kind by kind in
``RecordKind`` order, oldest first within a kind.

Import *replaces*: a record of the same kind and id already in the target project gets the
file's name and body (and is left untouched when they are already equal), so importing the same
file twice changes nothing the second time, and importing a newer export of the project brings its
records up to date, as it does its events. The file's ``created_at``/``updated_at`` are kept
(``ControlStore.import_records``), so export, import and export again give the same bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from tracehive.model.scope import Scope
from tracehive.storage.records import MAX_RECORD_BYTES, Record, RecordKind

if TYPE_CHECKING:
    from tracehive.storage.base import ControlStore

MARKER = "record"
FIELDS = ("kind", "id", "name", "body", "created_at", "updated_at")
_REQUIRED = ("kind", "id", "body", "created_at", "updated_at")
_KINDS = {k.value: k for k in RecordKind}
MAX_RECORD_ID = 1024
# All records of a kind are listed at once (the contract has no cursor), so with no real bound.
EXPORT_LIMIT = 1 << 62
def entry(record: Record) -> dict[str, Any]:
    """The exported form of a stored record (one line's object)."""
    return {MARKER: {"kind": record.kind.value, "id": record.id, "name": record.name, "body": record.body,
                     "created_at": record.created_at, "updated_at": record.updated_at}}


def lines(records: Iterable[Record]) -> list[bytes]:
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    return [dumps(entry(r), option=option) for r in records]


async def iter_record_lines(store: ControlStore, scope: Scope) -> AsyncIterator[tuple[RecordKind, list[bytes]]]:
    """Every record of the project as JSONL lines, one chunk per kind (``RecordKind`` order)."""
    for kind in RecordKind:
        records = await store.list_records(scope, kind, limit=EXPORT_LIMIT)
        if records:
            yield kind, lines(records)


def is_record(obj: Any) -> bool:
    """Whether a decoded export line is a record line (else it is an event)."""
    return isinstance(obj, dict) and MARKER in obj


def parse_record(obj: dict[str, Any]) -> Record:
    """A decoded record line back to a record; ``ValueError`` (what the importer reports per
    line, as for events) says what is wrong."""
    if len(obj) != 1:
        other = sorted(k for k in obj if k != MARKER)
        raise ValueError(f"a record line has only the key {MARKER!r}; unknown field {other[0]!r}")
    value = obj[MARKER]
    if not isinstance(value, dict):
        raise ValueError(f"{MARKER} must be an object")  # noqa: TRY004 - a bad line is a ValueError
    unknown = sorted(k for k in value if k not in FIELDS)
    if unknown:
        raise ValueError(f"{MARKER}: unknown field {unknown[0]!r}")
    for name in _REQUIRED:
        if name not in value:
            raise ValueError(f"{MARKER}.{name} is required")
    kind = _KINDS.get(value["kind"]) if isinstance(value["kind"], str) else None
    if kind is None:
        raise ValueError(f"{MARKER}.kind must be one of {', '.join(_KINDS)}")
    record_id = value["id"]
    if not isinstance(record_id, str) or not record_id or len(record_id) > MAX_RECORD_ID:
        raise ValueError(f"{MARKER}.id must be a non-empty string (at most {MAX_RECORD_ID} characters)")
    name = value.get("name")
    if not isinstance(name, (str, type(None))):
        raise ValueError(f"{MARKER}.name must be a string or null")  # noqa: TRY004 - a bad line is a ValueError
    body = value["body"]
    if not isinstance(body, dict):
        raise ValueError(f"{MARKER}.body must be an object")  # noqa: TRY004 - a bad line is a ValueError
    if len(orjson.dumps(body)) > MAX_RECORD_BYTES:
        raise ValueError(f"{MARKER}.body is larger than {MAX_RECORD_BYTES} bytes as JSON")
    times = []
    for field in ("created_at", "updated_at"):
        ms = value[field]
        if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
            raise ValueError(f"{MARKER}.{field} must be a whole number of Unix ms")
        times.append(ms)
    return Record(kind, record_id, name, body, times[0], times[1])


async def import_records(store: ControlStore, scope: Scope, records: Sequence[Record]) -> None:
    """Store exported records in the scope's project as they are (times included), replacing those
    with the same kind and id, in one commit."""
    await store.import_records(scope, records)
