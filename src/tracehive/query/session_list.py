"""``POST /v1/sessions/search``: the session list, one summary row per session.

The strict request body is parsed here into a backend-neutral ``SessionListQuery``; backends
answer it with ``SessionSummary`` rows (``Store.list_sessions``). Semantics every backend
implements (``tests/storage/test_contract.py`` checks them):

* The sessions are the ``event_type == "session"`` events of the scope's project. ``conditions``
  (the filter language of ``tracehive.query.filters``) and ``date_range`` (inclusive, on the
  session's ``start_time``) apply to those session rows, not to their events.
* Each summary aggregates the session's events, i.e. every event whose ``session_id`` is the
  session's id, the session event included:
  ``end_time`` is the largest ``end_time`` among them, ``duration`` = that end - the session's
  ``start_time``; ``num_events`` counts them without the session event; ``cost`` and
  ``total_tokens`` sum ``metadata.cost`` / ``metadata.total_tokens`` where it is a JSON number
  (0 when there is none; an integral total is an ``int``; ``shown_total`` says the rest); ``has_error`` is true when one of
  them has a non-empty ``error``; ``has_feedback`` when one has a non-empty ``feedback`` object.
  ``event_name``, ``source``, ``start_time``, ``user_properties`` and ``metadata`` are the
  session event's own.
* Rows are sorted by ``sort_by`` (``SORT_FIELDS``, the computed values for the aggregates) in
  ``descending`` order or not; ties by ``start_time`` newest first, then by ``session_id``
  ascending, so that pages never overlap. ``limit``/``offset`` select the page; the total counts
  every matching session.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

from tracehive.query.event_query import MAX_PAGE, Condition, DateRange
from tracehive.query.search import field_error, parse_search_date_range, strict_body_filters, strict_int

SortField = Literal["start_time", "duration", "event_name", "num_events", "cost", "total_tokens"]
SORT_FIELDS: tuple[str, ...] = get_args(SortField)
# Sorted by a column of the session row itself: a backend can page with an index before it
# aggregates. The others are computed from all of a session's events.
COLUMN_SORTS = ("start_time", "event_name")
SORT_ORDERS = ("asc", "desc")

SESSION_LIST_DEFAULT_LIMIT = 50
SESSION_LIST_MAX_LIMIT = 500
REQUEST_KEYS = ("filters", "dateRange", "sort_by", "sort_order", "limit", "page")


@dataclass(frozen=True, slots=True)
class SessionListQuery:
    conditions: tuple[Condition, ...] = ()
    date_range: DateRange | None = None
    sort_by: SortField = "start_time"
    descending: bool = True
    limit: int = SESSION_LIST_DEFAULT_LIMIT
    offset: int = 0


@dataclass(slots=True)
class SessionSummary:
    session_id: str
    event_name: str
    source: str
    start_time: int | float
    end_time: int | float
    duration: int | float
    num_events: int
    cost: int | float
    total_tokens: int | float
    has_error: bool
    has_feedback: bool
    user_properties: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The wire shape (``SessionSummaryRecord`` in the OpenAPI document)."""
        return {
            "session_id": self.session_id,
            "event_name": self.event_name,
            "source": self.source,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "num_events": self.num_events,
            "cost": self.cost,
            "total_tokens": self.total_tokens,
            "has_error": self.has_error,
            "has_feedback": self.has_feedback,
            "user_properties": self.user_properties,
            "metadata": self.metadata,
        }


def summary_from_rows(session_id: str, row: Sequence[Any], agg: Sequence[Any],
                      number: Callable[[Any], Any] | None = None) -> SessionSummary:
    """A summary from the two reads every backend makes for a page: the session's row
    ``(event_name, source, start_time, user_properties JSON, metadata JSON)`` and its aggregates
    ``(end_time, num_events, cost, total_tokens, has_error, has_feedback)``. ``number`` converts
    times stored as doubles back (integral values as ints); sums go through ``shown_total``."""
    event_name, source, start_time, user_properties, metadata = row
    end_time, num_events, cost, tokens, has_error, has_feedback = agg
    if number is not None:
        start_time, end_time = number(start_time), number(end_time)
    return SessionSummary(
        session_id=session_id,
        event_name=event_name,
        source=source,
        start_time=start_time,
        end_time=end_time,
        duration=end_time - start_time,
        num_events=int(num_events),
        cost=shown_total(cost),
        total_tokens=shown_total(tokens),
        has_error=bool(has_error),
        has_feedback=bool(has_feedback),
        user_properties=orjson.loads(user_properties),
        metadata=orjson.loads(metadata),
    )


def shown_total(total: int | float | None) -> int | float:
    """A sum as it should be shown: 3.0 tokens are 3 (backends may sum in floating point). A sum
    of huge values that overflowed is the largest finite number (JSON has no infinity); a sum that
    is no number at all (infinities of both signs, or NULL from SQL) is 0."""
    if total is None or (isinstance(total, float) and math.isnan(total)):
        return 0
    if isinstance(total, float) and math.isinf(total):
        return math.copysign(sys.float_info.max, total)
    if isinstance(total, float) and total.is_integer() and abs(total) < 2**53:
        return int(total)
    return total


# Parsing the request ---------------------------------------------------------------------------


def _choice(raw: Any, where: str, choices: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if not isinstance(raw, str) or raw not in choices:
        raise field_error(where, f"must be one of: {', '.join(choices)}")
    return raw


def parse_session_list_request(body: Any) -> SessionListQuery:
    """The strict body: unknown keys (at the top, in a filter, in the date range) are a 400 naming
    the key; filters and ``dateRange`` are exactly those of ``POST /v1/events/search``."""
    conditions = strict_body_filters(body, REQUEST_KEYS)
    limit = strict_int(body.get("limit"), "limit", default=SESSION_LIST_DEFAULT_LIMIT,
                          maximum=SESSION_LIST_MAX_LIMIT)  # fmt: skip
    page = strict_int(body.get("page"), "page", default=1, maximum=MAX_PAGE)
    sort_by: Any = _choice(body.get("sort_by"), "sort_by", SORT_FIELDS, "start_time")
    return SessionListQuery(
        conditions=conditions,
        date_range=parse_search_date_range(body.get("dateRange")),
        sort_by=sort_by,
        descending=_choice(body.get("sort_order"), "sort_order", SORT_ORDERS, "desc") == "desc",
        limit=limit,
        offset=(page - 1) * limit,
    )
