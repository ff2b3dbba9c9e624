"""``POST /v1/events/search`` (contract 4.6): the strict request body parsed into an ``EventQuery``.

``SearchEventsRequest`` has ``additionalProperties: false`` everywhere (the body, each filter, the
date range), so unknown keys (``projections``, ``project``) are a 400 naming the key. ``type`` is
optional on a filter and then inferred (``parse_filters(default_type=None)``). The date range is
``{start_time, end_time}``, both required ISO 8601 strings, both inclusive. ``limit`` is 1..1000
(above is a 400, not a clamp, contract 9.8), ``page`` is 1-based, ``ignore_order`` is accepted and
ignored: results are always newest first.
"""

from __future__ import annotations

from typing import Any

from tracehive.model.errors import ValidationFailed
from tracehive.query.date_range import parse_date_range
from tracehive.query.event_query import DEFAULT_LIMIT, MAX_PAGE, Condition, DateRange, EventQuery
from tracehive.query.filters import evaluation_condition, parse_filters
from tracehive.query.values import parse_datetime, parse_number

SEARCH_MAX_LIMIT = 1000
SEARCH_KEYS = ("filters", "dateRange", "limit", "page", "ignore_order", "evaluation_id")
FILTER_KEYS = ("field", "operator", "value", "type")
DATE_RANGE_KEYS = ("start_time", "end_time")
OTHER_DATE_RANGE_KEYS = ("$gte", "$lte", "relative")  # export's forms, accepted here too


def field_error(where: str, message: str) -> ValidationFailed:
    """A 400 naming the offending field (``where``), for the strict request parsers."""
    return ValidationFailed(f"{where}: {message}", details=[{"field": where, "message": message}])


def reject_unknown(raw: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            location = f"{where}.{key}" if where else str(key)
            raise field_error(location, f"unknown field; allowed: {', '.join(allowed)}")


def strict_int(raw: Any, where: str, *, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise field_error(where, "must be an integer")
    if raw < 1:
        raise field_error(where, "must be at least 1")
    if raw > maximum:
        raise field_error(where, f"must be at most {maximum}")
    return raw


def _strict_moment(raw: Any, where: str) -> int | float:
    if raw is None:
        raise field_error(where, "field required")
    if not isinstance(raw, str) or parse_number(raw) is not None:
        raise field_error(where, "must be an ISO 8601 date-time string, e.g. 2024-05-01T00:00:00Z")
    moment = parse_datetime(raw)
    if moment is None:
        raise field_error(where, f"{raw[:80]!r} is not an ISO 8601 date-time")
    return moment


def parse_search_date_range(raw: Any, where: str = "dateRange", *, now: int | None = None) -> DateRange | None:
    """Every documented form, as on export: ``{start_time, end_time}`` (here both required, ISO
    8601, the SDK's shape), ``{$gte, $lte}`` (ISO or Unix ms, either bound optional) and
    ``{relative: "7d"}``; unknown keys are a 400 naming them."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise field_error(where, "must be an object: {start_time, end_time}, {$gte, $lte} or {relative}")
    reject_unknown(raw, DATE_RANGE_KEYS + OTHER_DATE_RANGE_KEYS, where)
    if any(key in raw for key in OTHER_DATE_RANGE_KEYS):
        return parse_date_range(raw, where, now=now)
    start = _strict_moment(raw.get("start_time"), f"{where}.start_time")
    end = _strict_moment(raw.get("end_time"), f"{where}.end_time")
    if start > end:
        raise field_error(where, "start_time is after end_time")
    return DateRange(start, end)


def strict_body_filters(body: Any, allowed_keys: tuple[str, ...]) -> tuple[Condition, ...]:
    """A strict JSON body's top-level keys checked, and its ``filters`` parsed, also strictly:
    an unknown key anywhere is a 400 naming it."""
    if not isinstance(body, dict):
        raise ValidationFailed("request body must be a JSON object")
    reject_unknown(body, allowed_keys, "")
    filters = body.get("filters")
    if isinstance(filters, list):
        for index, item in enumerate(filters):
            if isinstance(item, dict):
                reject_unknown(item, FILTER_KEYS, f"filters[{index}]")
    return parse_filters(filters, default_type=None)


def parse_search_request(body: Any) -> EventQuery:
    conditions = strict_body_filters(body, SEARCH_KEYS)
    run = evaluation_condition(body.get("evaluation_id"))
    if run is not None:
        conditions += (run,)
    ignore_order = body.get("ignore_order")
    if ignore_order is not None and not isinstance(ignore_order, bool):
        raise field_error("ignore_order", "must be a boolean")
    return EventQuery(
        conditions=conditions,
        date_range=parse_search_date_range(body.get("dateRange")),
        limit=strict_int(body.get("limit"), "limit", default=DEFAULT_LIMIT, maximum=SEARCH_MAX_LIMIT),
        page=strict_int(body.get("page"), "page", default=1, maximum=MAX_PAGE),
        ignore_order=False,  # deprecated flag: results are always newest first
    )
