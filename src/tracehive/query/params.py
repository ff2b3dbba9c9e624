"""Query-string parameters of the GET read routes (contract 1.2, 4.8, 4.10) parsed into an
``EventQuery``.

Clients send the same request in three styles, all accepted, also mixed:

* bracket form (qs / axios / the Python SDK): ``filters[0][field]=event_type&filters[0][value]=model``,
  ``dateRange[$gte]=...``, ``projections[]=a&projections[]=b``;
* plain repeated keys: ``projections=a&projections=b``;
* JSON strings: ``filters=[{"field": ...}]``, ``dateRange={"$gte": ...}``, ``dateRange={"relative": "7d"}``,
  ``dateRange=2024-05-01T00:00:00Z`` (one datetime = since), ``projections=["a","b"]``.

The HoneyHive Python SDK (1.7.0) hands objects to httpx, which writes their Python ``str()``:
``filters[]={'field': 'event_type', 'value': True}`` and, for a date-range model,
``dateRange=gte='2024-05-01T00:00:00Z' lte=1714521600000.0``. Both are accepted too.

``parse_query_string`` is a small qs-style parser, bounded so that a hostile query string costs
no more than its length: at most ``MAX_PARAMS`` parameters, ``MAX_DEPTH`` bracket levels and array
indexes up to ``MAX_INDEX``; every violation is a ``ValidationFailed`` naming the key. Unknown
parameters are ignored (these routes are lenient).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

import orjson

from tracehive.model.errors import ValidationFailed
from tracehive.query.date_range import parse_date_range
from tracehive.query.event_query import DEFAULT_LIMIT, EXPORT_MAX_LIMIT, MAX_PAGE, EventQuery, ValueType
from tracehive.query.filters import evaluation_condition, parse_filters
from tracehive.query.projections import parse_projections
from tracehive.query.values import parse_flag, parse_positive_int

MAX_PARAMS = 1000
MAX_DEPTH = 5
MAX_INDEX = 1000
MAX_KEY_LENGTH = 1024
MAX_DECODED_LENGTH = 100_000  # a structured value (JSON or Python literal) longer than this is refused

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _fail(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", details=[{"field": where, "message": message}])


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


# The qs-style parser ---------------------------------------------------------------------------


class _Node:
    """An object or array under construction: named/indexed children and ``[]`` appends."""

    __slots__ = ("keyed", "appended")

    def __init__(self) -> None:
        self.keyed: dict[str, Any] = {}
        self.appended: list[Any] = []


class _Many(list):  # type: ignore[type-arg]
    """Values of a key given more than once."""


def _segments(key: str) -> list[str]:
    if len(key) > MAX_KEY_LENGTH:
        raise _fail("query", f"parameter name {_show(key)} is longer than {MAX_KEY_LENGTH} characters")
    match = _KEY.fullmatch(key)
    if match is None:
        return [key]  # not bracket syntax: a literal name (unknown names are ignored)
    segments = [match.group(1), *_SEGMENT.findall(match.group(2))]
    if len(segments) - 1 > MAX_DEPTH:
        raise _fail(match.group(1), f"parameter {_show(key)} nests deeper than {MAX_DEPTH} brackets")
    out = [segments[0]]
    for segment in segments[1:]:
        if segment.isdigit() and segment.isascii():
            if len(segment) > 9 or int(segment) > MAX_INDEX:
                raise _fail(segments[0], f"array index {segment[:12]} in {_show(key)} is larger than {MAX_INDEX}")
            segment = str(int(segment))
        out.append(segment)
    return out


def _insert(node: _Node, segments: list[str], value: str, key: str) -> None:
    for segment in segments[:-1]:
        if segment == "":
            child = _Node()
            node.appended.append(child)
        else:
            child = node.keyed.get(segment)
            if child is None:
                child = node.keyed[segment] = _Node()
            elif not isinstance(child, _Node):
                raise _fail(segments[0], f"{_show(key)} nests under a parameter that already has a value")
        node = child
    last = segments[-1]
    if last == "":
        node.appended.append(value)
        return
    existing = node.keyed.get(last)
    if existing is None:
        node.keyed[last] = value
    elif isinstance(existing, _Node):
        raise _fail(segments[0], f"{_show(key)} gives a value to a parameter that also has nested keys")
    elif isinstance(existing, _Many):
        existing.append(value)
    else:
        node.keyed[last] = _Many([existing, value])


def _finish(value: Any, name: str) -> Any:
    if isinstance(value, _Many):
        return list(value)
    if not isinstance(value, _Node):
        return value
    keyed = {k: _finish(v, name) for k, v in value.keyed.items()}
    appended = [_finish(v, name) for v in value.appended]
    if keyed and all(k.isdigit() for k in keyed):  # an array; gaps close up as in qs
        return [keyed[k] for k in sorted(keyed, key=int)] + appended
    if not keyed:
        return appended
    if appended:
        raise _fail(name, "mixes [] with named keys")
    return keyed


def parse_query_string(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decoded ``(name, value)`` pairs (in order) -> nested dicts, lists and strings."""
    root = _Node()
    for count, (key, value) in enumerate(pairs, 1):
        if count > MAX_PARAMS:
            raise _fail("query", f"more than {MAX_PARAMS} parameters")
        if not key:
            continue
        _insert(root, _segments(key), value, key)
    return {k: _finish(v, k) for k, v in root.keyed.items()}


# Structured values sent as strings -------------------------------------------------------------

_PYDANTIC_REPR = re.compile(
    r"\s*(?:(?:gte|lte|relative)=(?:'[^']*'|\"[^\"]*\"|[-+0-9.eE]+|None)\s*)+"
)
_PYDANTIC_FIELD = re.compile(r"(gte|lte|relative)=('[^']*'|\"[^\"]*\"|[-+0-9.eE]+|None)")


def decode_structured(text: str, where: str) -> Any:
    """A JSON document, or the Python ``str()`` of a dict/list (what httpx sends for them)."""
    if len(text) > MAX_DECODED_LENGTH:
        raise _fail(where, f"is longer than {MAX_DECODED_LENGTH} characters")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except Exception:  # SyntaxError, ValueError, MemoryError, RecursionError: all mean "not a literal"
        raise _fail(where, f"{_show(text)} is not valid JSON") from None


def _maybe_structured(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        return decode_structured(value.strip(), where)
    return value


def _filters(raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    raw = _maybe_structured(raw, "filters")
    if isinstance(raw, dict):
        raw = [raw]  # one filter object sent as a JSON object
    if isinstance(raw, list):
        raw = [_maybe_structured(item, f"filters[{i}]") for i, item in enumerate(raw)]
    return raw


def _projections(raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    raw = _maybe_structured(raw, "projections")
    if isinstance(raw, str):
        return [raw]
    return raw


def _date_range(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if not text:
        return None
    if _PYDANTIC_REPR.fullmatch(text):
        out: dict[str, Any] = {}
        for name, literal in _PYDANTIC_FIELD.findall(text):
            if literal == "None":
                continue
            value: Any = literal[1:-1] if literal[0] in "'\"" else literal
            out["relative" if name == "relative" else f"${name}"] = value
        return out
    if text.startswith("{"):
        return decode_structured(text, "dateRange")
    return text


def _scalar(raw: Any) -> Any:
    """An empty value (``?limit=``) means absent."""
    return None if raw == "" else raw


def parse_events_params(pairs: Iterable[tuple[str, str]], *, now: int | None = None) -> EventQuery:
    """``GET /v1/events`` and ``GET /events`` (contract 4.8): like the export body; ``limit``
    defaults to 1000 and is clamped to 7500."""
    params = parse_query_string(pairs)
    conditions = parse_filters(_filters(params.get("filters")), default_type=ValueType.STRING)
    run = evaluation_condition(_scalar(params.get("evaluation_id")))
    if run is not None:
        conditions += (run,)
    return EventQuery(
        conditions=conditions,
        date_range=parse_date_range(_date_range(params.get("dateRange")), now=now),
        limit=parse_positive_int(
            _scalar(params.get("limit")), "limit", default=DEFAULT_LIMIT, maximum=EXPORT_MAX_LIMIT, clamp=True
        ),
        page=parse_positive_int(_scalar(params.get("page")), "page", default=1, maximum=MAX_PAGE),
        projections=parse_projections(_projections(params.get("projections"))),
        ignore_order=parse_flag(_scalar(params.get("ignore_order")), "ignore_order"),
    )


def parse_schema_params(pairs: Iterable[tuple[str, str]], *, now: int | None = None) -> EventQuery:
    """``GET /v1/events/schema`` (contract 4.10): ``dateRange`` and ``evaluation_id`` (and, as
    on ``GET /v1/events``, ``filters``); everything else is ignored."""
    params = parse_query_string(pairs)
    conditions = parse_filters(_filters(params.get("filters")), default_type=ValueType.STRING)
    run = evaluation_condition(_scalar(params.get("evaluation_id")))
    if run is not None:
        conditions += (run,)
    return EventQuery(conditions=conditions, date_range=parse_date_range(_date_range(params.get("dateRange")), now=now))
