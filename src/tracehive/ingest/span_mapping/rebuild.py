"""Nested objects from dotted paths (``a.0.b`` → ``{"a": [{"b": ...}]}``), with the rules for
lists, ``_value`` and depth; and the free-key rule (``_value``, ``_otel``...) used wherever a name
may already be taken. Shared by the payload families, the conventions and the span events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracehive.ingest.span_mapping.hygiene import MAX_DEPTH

_SPARSE_SLACK = 8
_INDEX_DIGITS = 9

_MISSING: Any = object()


# A tree node of _rebuild is a two-item list, [leaf value or _MISSING, {segment: node} or None]
# (cheaper than an object per path segment).


def _rebuild(entries: Iterable[tuple[Sequence[str], Any]], *, allow_list: bool = True) -> Any:
    """Nested objects from (path segments, value) pairs; see the package docstring for the rules."""
    root: list[Any] = [_MISSING, None]
    for segments, value in entries:
        if len(segments) > MAX_DEPTH:
            segments = [*segments[: MAX_DEPTH - 1], ".".join(segments[MAX_DEPTH - 1 :])]
        node = root
        for segment in segments:
            children = node[1]
            if children is None:
                children = node[1] = {}
                nxt = children[segment] = [_MISSING, None]
            else:
                nxt = children.get(segment)
                if nxt is None:
                    nxt = children[segment] = [_MISSING, None]
            node = nxt
        node[0] = value
    result = _materialize(root, allow_list)
    return {} if result is _MISSING else result


def _materialize(node: list[Any], allow_list: bool) -> Any:
    children = node[1]
    if not children:
        return node[0]
    out = {
        key: child[0] if child[1] is None else _materialize(child, True) for key, child in children.items()
    }
    if node[0] is not _MISSING:
        out[_free_key(out, "_value")] = node[0]
        return out
    return _as_list(out) if allow_list else out


def _as_list(obj: dict[str, Any]) -> Any:
    indexes = []
    for key in obj:
        # a canonical index: 1-9 ASCII digits, no leading zero ("".isdigit() is False)
        if not (
            key.isdigit() and key.isascii() and len(key) <= _INDEX_DIGITS and (key == "0" or key[0] != "0")
        ):
            return obj
        indexes.append(int(key))
    highest = max(indexes)
    if highest >= 2 * len(indexes) + _SPARSE_SLACK:
        return obj
    items: list[Any] = [None] * (highest + 1)
    for index, value in zip(indexes, obj.values()):
        items[index] = value
    return items


def _free_key(obj: Mapping[str, Any], name: str) -> str:
    while name in obj:
        name = "_" + name
    return name


def _put_reserved(metadata: dict[str, Any], name: str, value: Any) -> None:
    metadata[_free_key(metadata, name)] = value
