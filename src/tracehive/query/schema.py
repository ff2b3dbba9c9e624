"""``GET /v1/events/schema`` (contract 4.10): which field names a schema may report, and the reply.

A reported name is one the filter language accepts (``parse_field``) and that addresses what was
seen: a top-level column, or a dot path of object keys inside a JSON column. A key with characters
outside ``[A-Za-z0-9_-]`` (``service.name``, a space) or of digits only (which a bare segment reads
as an array index) is written quoted, ``metadata."service.name"``, as the filter language takes it,
so a suggested name always filters; keys no segment can hold (a double quote, a backslash, a
control character) are left out with everything under them. Paths are not followed into arrays
(the array itself is reported).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tracehive.model.errors import ValidationFailed
from tracehive.query.fields import JSON_FIELDS, MAX_PATH_SEGMENTS, format_segment, parse_field

SCHEMA_SAMPLE = 1000  # newest matching events looked at
MAX_SCHEMA_FIELDS = 10_000

def field_name(column: str, path: Sequence[str]) -> str | None:
    """``column.seg.seg`` if the filter language can address it, else None."""
    if path and column not in JSON_FIELDS:
        return None
    if len(path) > MAX_PATH_SEGMENTS:
        return None
    segments = [format_segment(segment) for segment in path]
    if any(segment is None for segment in segments):
        return None
    name = ".".join((column, *segments))  # type: ignore[arg-type]
    try:
        parse_field(name, "field")
    except ValidationFailed:
        return None
    return name


def schema_reply(fields: Iterable[tuple[str, str]], datasets: Iterable[str] = ()) -> dict[str, Any]:
    """``{fields: [{name, event_type}], datasets: [names], mappings: {event_type: [{field_name, event_type}]}}``.

    ``mappings`` is undocumented; best call: the same fields grouped by event type. ``datasets``:
    the names of the project's datasets."""
    rows = sorted(set(fields), key=lambda pair: (pair[1], pair[0]))
    mappings: dict[str, list[dict[str, str]]] = {}
    for name, event_type in rows:
        mappings.setdefault(event_type, []).append({"field_name": name, "event_type": event_type})
    return {
        "fields": [{"name": name, "event_type": event_type} for name, event_type in rows],
        "datasets": sorted(set(datasets)),
        "mappings": mappings,
    }
