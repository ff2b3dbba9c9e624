"""Projections: parsing the fields a read request asks for (``projections``), and cutting an event
down to them (``project_event``: a sparse copy, nested as in the event)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracehive.query.errors import _fail
from tracehive.query.fields import PROJECTION_FIELDS, FieldRef, parse_field

MAX_PROJECTIONS = 200


def parse_projections(raw: Any, where: str = "projections") -> tuple[FieldRef, ...] | None:
    """Fields to return; ``event_id`` is always among them. Empty or missing = every field.
    A path covered by a shorter one (``metadata.cost`` under ``metadata``) is dropped."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _fail(where, "must be an array of field names")
    if not raw:
        return None
    if len(raw) > MAX_PROJECTIONS:
        raise _fail(where, f"at most {MAX_PROJECTIONS} projections are allowed, got {len(raw)}")
    refs = [FieldRef("event_id")]
    refs += [parse_field(item, f"{where}[{i}]", allowed=PROJECTION_FIELDS) for i, item in enumerate(raw)]
    kept: list[FieldRef] = []
    for ref in sorted(set(refs), key=lambda r: len(r.path)):
        full = (ref.column, *ref.path)
        if not any(full[: 1 + len(k.path)] == (k.column, *k.path) for k in kept):
            kept.append(ref)
    order = {ref: i for i, ref in enumerate(refs)}
    return tuple(sorted(kept, key=lambda r: order[r]))


# Projections -----------------------------------------------------------------------------------

_MISSING: Any = object()


class _Sparse(dict):  # type: ignore[type-arg]
    """A list under construction: index -> picked element."""


def _pick(source: Any, path: tuple[str | int, ...]) -> Any:
    if not path:
        return source
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        if not isinstance(source, list) or head >= len(source):
            return _MISSING
        inner = _pick(source[head], rest)
        return _MISSING if inner is _MISSING else _Sparse({head: inner})
    if not isinstance(source, dict) or head not in source:
        return _MISSING
    inner = _pick(source[head], rest)
    return _MISSING if inner is _MISSING else {head: inner}


def _merge(into: Any, more: Any) -> Any:
    same_shape = isinstance(into, _Sparse) == isinstance(more, _Sparse)
    if isinstance(into, dict) and isinstance(more, dict) and same_shape:
        for key, value in more.items():
            into[key] = _merge(into[key], value) if key in into else value
        return into
    return more


def _finish(value: Any) -> Any:
    if isinstance(value, _Sparse):
        return [_finish(value.get(i)) for i in range(max(value) + 1)]
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    return value


def project_event(event: dict[str, Any], projections: Sequence[FieldRef]) -> dict[str, Any]:
    """A sparse copy of ``event`` with only the projected fields, nested as in the event. An
    array element keeps its position (earlier elements that were not projected are null)."""
    out: dict[str, Any] = {}
    nested: set[str] = set()
    for ref in projections:
        if ref.column not in event:
            continue
        if not ref.path:
            out[ref.column] = event[ref.column]  # no other projection is under it (parse_projections)
            continue
        picked = _pick(event[ref.column], ref.path)
        if picked is _MISSING:
            continue
        nested.add(ref.column)
        out[ref.column] = _merge(out[ref.column], picked) if ref.column in out else picked
    for column in nested:
        out[column] = _finish(out[column])
    return out
