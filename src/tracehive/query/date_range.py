"""A read request's date range on ``start_time``: ``{$gte, $lte}``, ``{start_time, end_time}``,
``{relative: "7d"}``, or a string (a JSON document of one of these, or one datetime = since)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from tracehive.model.times import now_ms as _now_ms
from tracehive.query.errors import _fail, _show
from tracehive.query.event_query import DateRange
from tracehive.query.values import parse_datetime

# Date ranges -----------------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d{1,9})([mhdw])")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_ABSOLUTE_SHAPES = (("$gte", "$lte"), ("start_time", "end_time"))


def parse_relative(raw: Any, where: str, now: int) -> DateRange:
    if not isinstance(raw, str) or not _RELATIVE.fullmatch(raw.strip()):
        raise _fail(where, f"{_show(raw)} is not a relative range; expected <integer><m|h|d|w>, e.g. '7d'")
    match = _RELATIVE.fullmatch(raw.strip())
    assert match is not None
    return DateRange(now - int(match.group(1)) * _UNIT_MS[match.group(2)], None)


def parse_date_range(raw: Any, where: str = "dateRange", *, now: int | None = None) -> DateRange | None:
    """``{$gte, $lte}`` (ISO or epoch ms, either bound optional), ``{start_time, end_time}``,
    ``{relative: "7d"}``, or a string: a JSON document of one of these, or one datetime = since."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                decoded = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _fail(where, "is not valid JSON") from None
            return parse_date_range(decoded, where, now=now)
        start = parse_datetime(text)
        if start is None:
            raise _fail(where, f"{_show(raw)} is not a datetime (ISO 8601 or Unix milliseconds)")
        return DateRange(start, None)
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object: {$gte, $lte} or {relative}")
    if not raw:
        return None
    keys = set(raw)
    if "relative" in keys:
        if keys != {"relative"}:
            raise _fail(where, "relative cannot be combined with other bounds")
        return parse_relative(raw["relative"], f"{where}.relative", now if now is not None else _now_ms())
    for low, high in _ABSOLUTE_SHAPES:
        if keys <= {low, high}:
            bounds = []
            for key in (low, high):
                value = raw.get(key)
                if value is None:
                    bounds.append(None)
                    continue
                moment = parse_datetime(value)
                if moment is None:
                    raise _fail(f"{where}.{key}", f"{_show(value)} is not a datetime (ISO 8601 or Unix milliseconds)")
                bounds.append(moment)
            start, end = bounds
            if start is not None and end is not None and start > end:
                raise _fail(where, f"{low} is after {high}")
            return DateRange(start, end) if (start is not None or end is not None) else None
    shapes = "{$gte, $lte}, {start_time, end_time} or {relative}"
    unknown = sorted(keys - {"$gte", "$lte", "start_time", "end_time"})
    if not unknown:
        raise _fail(where, f"mixes the bounds of two shapes; use one of {shapes}")
    raise _fail(where, f"unexpected key {_show(unknown[0])}; use {shapes}")
