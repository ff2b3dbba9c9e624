"""``GET /v1/events/chart`` (contract 4.9) parsed into a backend-neutral ``ChartQuery``.

Like ``tracehive.query.filters`` (whose filter, date-range and field-path grammar it reuses),
nothing here knows about SQL. Semantics every backend implements (``tests/storage/test_contract.py``):

* The events are those ``filters`` / ``dateRange`` / ``evaluation_id`` select, as for export;
  ``only_experiments`` keeps the events of experiment runs (``metadata.run_id`` exists).
* Each event falls in the bucket that contains its ``start_time``, in UTC: minute, hour and day
  buckets are aligned on the Unix epoch, weeks start on Monday 00:00 UTC, months on the 1st.
  A row's ``bucket`` is the bucket's start in Unix ms.
* With ``groupBy`` (a column or a JSON dot path) there is one row per bucket and distinct value of
  the field; events without it form the group ``None``. JSON ``true``/``false`` group as booleans,
  ``1`` and ``"1"`` are different groups, objects and arrays group by their JSON text.
* The metric (default ``duration``) is a number column or a dot path into a JSON column. Only
  numbers count: an event whose metric is missing, null, a string or a boolean is counted in
  ``count`` but ignored by the aggregation (as SQL aggregates ignore NULL).
* ``count`` is the number of events in the row; ``value`` is the aggregation over their numeric
  metric values: ``count`` = how many there are; ``avg``/``sum``/``min``/``max`` as usual; ``pNN``
  and ``median`` (= ``p50``) are percentiles by **linear interpolation between closest ranks**
  (NumPy's default, Hyndman-Fan type 7: with the n values sorted, rank h = (n-1)*p, value =
  x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h])). ``value`` is ``None`` when no
  event of the row has a numeric metric (``0`` for ``count``).
* Rows are ordered by bucket, then group; buckets without events are not returned.
* A chart shows the calendar years 0001 to 9999 (``CALENDAR_START_MS``..``CALENDAR_END_MS``, what
  ISO 8601 dates, Python's ``datetime`` and SQLite's date functions can express): the write routes
  accept start times up to 2**53 ms either side of the epoch, but a bucket in the year 285,000 has
  no date to show, so such events are left out of charts (export still returns them) and a
  ``dateRange`` reaching past those years is cut to them.
* At most ``max_buckets`` distinct buckets and ``max_rows`` rows: past that the query is refused
  (a 400 that suggests a bigger bucket or a narrower range). A backend must refuse rather than
  return a truncated chart, and must not hold more than that in memory.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from tracehive.model.errors import ValidationFailed
from tracehive.model.times import now_ms as _now_ms
from tracehive.query.date_range import parse_date_range
from tracehive.query.event_query import Condition, DateRange, Operator, ValueType
from tracehive.query.fields import JSON_FIELDS, NUMBER_FIELDS, FieldRef, parse_field
from tracehive.query.filters import evaluation_condition, parse_filters
from tracehive.query.params import _date_range as date_range_param
from tracehive.query.params import _filters as filters_param
from tracehive.query.params import parse_query_string
from tracehive.query.values import parse_flag

MAX_BUCKETS = 10_000
# 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in Unix ms (see the module docstring).
CALENDAR_START_MS = -62_135_596_800_000
CALENDAR_END_MS = 253_402_300_799_999
MAX_ROWS = 100_000  # buckets x groups
RUN_ID_FIELD = FieldRef("metadata", ("run_id",))

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday: weeks start on Monday 1969-12-29 00:00 UTC.
WEEK_ORIGIN_MS = -3 * DAY_MS


class Bucket(str, Enum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def fixed_ms(self) -> int | None:
        """The width of a fixed-size bucket; None for months."""
        return _FIXED.get(self)

    @property
    def origin_ms(self) -> int:
        """A bucket boundary: buckets start at origin + k * width."""
        return WEEK_ORIGIN_MS if self is Bucket.WEEK else 0


_FIXED = {Bucket.MINUTE: MINUTE_MS, Bucket.HOUR: HOUR_MS, Bucket.DAY: DAY_MS, Bucket.WEEK: WEEK_MS}
# Case matters for 1m (minute) vs 1M (month); the words are matched case-insensitively.
BUCKET_ALIASES: dict[str, Bucket] = {
    "minute": Bucket.MINUTE, "minutes": Bucket.MINUTE, "1m": Bucket.MINUTE,
    "hour": Bucket.HOUR, "hours": Bucket.HOUR, "1h": Bucket.HOUR,
    "day": Bucket.DAY, "days": Bucket.DAY, "1d": Bucket.DAY,
    "week": Bucket.WEEK, "weeks": Bucket.WEEK, "1w": Bucket.WEEK,
    "month": Bucket.MONTH, "months": Bucket.MONTH, "1M": Bucket.MONTH,
}  # fmt: skip


class Aggregation(str, Enum):
    AVG = "avg"
    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    P50 = "p50"
    P75 = "p75"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"

    @property
    def percentile(self) -> int | None:
        """The percentile as an integer 0..100, for the pNN aggregations."""
        return int(self.value[1:]) if self.value.startswith("p") else None


AGGREGATION_ALIASES: dict[str, Aggregation] = {
    "avg": Aggregation.AVG, "average": Aggregation.AVG, "mean": Aggregation.AVG,
    "count": Aggregation.COUNT, "sum": Aggregation.SUM, "min": Aggregation.MIN, "max": Aggregation.MAX,
    "median": Aggregation.P50, "p50": Aggregation.P50, "p75": Aggregation.P75, "p90": Aggregation.P90,
    "p95": Aggregation.P95, "p99": Aggregation.P99,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChartQuery:
    conditions: tuple[Condition, ...] = ()
    date_range: DateRange | None = None
    metric: FieldRef = FieldRef("duration")
    bucket: Bucket = Bucket.HOUR
    aggregation: Aggregation = Aggregation.AVG
    group_by: FieldRef | None = None
    max_buckets: int = MAX_BUCKETS
    max_rows: int = MAX_ROWS


@dataclass(frozen=True, slots=True)
class ChartRow:
    bucket: int  # start of the bucket, Unix ms (UTC)
    group: Any  # the groupBy value (str, int, float, bool, dict, list) or None
    value: float | int | None
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "bucket_iso": iso_ms(self.bucket),
            "group": self.group,
            "value": self.value,
            "count": self.count,
        }


def iso_ms(ms: int) -> str:
    # Integer arithmetic (ms / 1000 as a float is off by a microsecond in the year 9999), and
    # isoformat, not strftime("%Y"), which writes the year 1 as "1" rather than ISO 8601's "0001".
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def too_many_buckets(found: str, query: ChartQuery) -> ValidationFailed:
    message = (
        f"the chart would have {found} {query.bucket.value} buckets, more than the limit of {query.max_buckets:,}; "
        "use a bigger bucket or a narrower dateRange"
    )
    return ValidationFailed(message, details=[{"field": "bucket", "message": message}])


def too_many_rows(query: ChartQuery) -> ValidationFailed:
    message = (
        f"the chart would have more than {query.max_rows:,} rows (buckets x groups); "
        "use a bigger bucket, a narrower dateRange or filters, or a groupBy with fewer values"
    )
    return ValidationFailed(message, details=[{"field": "groupBy", "message": message}])


# Bucketing (also the reference the backends are tested against) --------------------------------


def bucket_start(ms: float, bucket: Bucket) -> int:
    """The start of the bucket containing ``ms``, in Unix ms (UTC)."""
    whole = int(ms // 1)
    width = bucket.fixed_ms
    if width is not None:
        return whole - (whole - bucket.origin_ms) % width
    moment = datetime.fromtimestamp(whole // 1000, tz=timezone.utc)
    return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)) * 1000


def count_buckets(start: float, end: float, bucket: Bucket) -> int:
    """How many buckets the range [start, end] touches."""
    start, end = max(start, CALENDAR_START_MS), min(end, CALENDAR_END_MS)
    if end < start:
        return 0
    first, last = bucket_start(start, bucket), bucket_start(end, bucket)
    width = bucket.fixed_ms
    if width is not None:
        return (last - first) // width + 1
    a = datetime.fromtimestamp(first // 1000, tz=timezone.utc)
    b = datetime.fromtimestamp(last // 1000, tz=timezone.utc)
    return (b.year - a.year) * 12 + (b.month - a.month) + 1


# Parsing ---------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", details=[{"field": where, "message": message}])


def _single(raw: Any, where: str) -> Any:
    """A scalar parameter given once (a repeated key is refused, not silently picked)."""
    if isinstance(raw, list):
        if len(raw) == 1:
            return raw[0]
        raise _fail(where, "given more than once")
    if isinstance(raw, dict):
        raise _fail(where, "must be a single value")
    return raw


def _named(raw: Any, where: str, aliases: dict[str, Any], default: Any, lookup: Any, what: str) -> Any:
    """One of ``aliases`` (found with ``lookup`` on the stripped text), ``default`` when absent."""
    raw = _single(raw, where)
    if raw is None or raw == "":
        return default
    expected = ", ".join(aliases)
    if not isinstance(raw, str):
        raise _fail(where, f"must be one of: {expected}")
    text = raw.strip()
    found = lookup(text)
    if found is None:
        raise _fail(where, f"{text[:40]!r} is not {what}; expected one of: {expected}")
    return found


def parse_bucket(raw: Any) -> Bucket:
    # Case matters for the short forms only: "1m" is a minute, "1M" a month.
    return _named(raw, "bucket", BUCKET_ALIASES, Bucket.HOUR, lambda text: BUCKET_ALIASES.get(text) or (
        BUCKET_ALIASES.get(text.lower()) if len(text) > 2 else None), "a bucket")  # fmt: skip


def parse_aggregation(raw: Any) -> Aggregation:
    return _named(raw, "aggregation", AGGREGATION_ALIASES, Aggregation.AVG,
                  lambda text: AGGREGATION_ALIASES.get(text.lower()), "an aggregation")


def parse_metric(raw: Any) -> FieldRef:
    raw = _single(raw, "metric")
    if raw is None or raw == "":
        return FieldRef("duration")
    ref = parse_field(raw, "metric", allowed=NUMBER_FIELDS + JSON_FIELDS)
    if ref.column in JSON_FIELDS and not ref.path:
        raise _fail("metric", f"{ref.column} is a JSON object; name a number inside it, e.g. {ref.column}.cost")
    return ref


def parse_group_by(raw: Any) -> FieldRef | None:
    raw = _single(raw, "groupBy")
    if raw is None or raw == "":
        return None
    return parse_field(raw, "groupBy")


def parse_chart_params(pairs: Iterable[tuple[str, str]], *, now: int | None = None) -> ChartQuery:
    """The query string of ``GET /v1/events/chart``, read like the other GET routes' (bracket
    form, repeated keys, JSON strings: ``tracehive.query.params``)."""
    return parse_chart_request(parse_query_string(pairs), now=now)


def parse_chart_request(params: dict[str, Any], *, now: int | None = None) -> ChartQuery:
    """The chart's parameters, already nested; unknown keys are ignored (the SDKs send ``project``).
    ``filters`` and ``dateRange`` may be JSON strings (or the Python SDK's ``str()`` forms)."""
    now = now if now is not None else _now_ms()
    conditions = parse_filters(filters_param(params.get("filters")), default_type=ValueType.STRING)
    run = evaluation_condition(_single(params.get("evaluation_id"), "evaluation_id"))
    if run is not None:
        conditions += (run,)
    if parse_flag(_single(params.get("only_experiments"), "only_experiments"), "only_experiments"):
        conditions += (Condition(RUN_ID_FIELD, Operator.EXISTS, ValueType.STRING, None),)
    date_raw = params.get("dateRange")
    if isinstance(date_raw, list):
        date_raw = _single(date_raw, "dateRange")
    date_range = parse_date_range(date_range_param(date_raw), now=now)
    query = ChartQuery(
        conditions=conditions,
        date_range=date_range,
        metric=parse_metric(params.get("metric")),
        bucket=parse_bucket(params.get("bucket")),
        aggregation=parse_aggregation(params.get("aggregation")),
        group_by=parse_group_by(params.get("groupBy")),
    )
    check_range(query, now)
    return replace(query, date_range=within_calendar(date_range))


def within_calendar(date_range: DateRange | None) -> DateRange:
    """``date_range`` cut to the years a chart can show (an open bound becomes the calendar's)."""
    start = CALENDAR_START_MS if date_range is None or date_range.start is None else date_range.start
    end = CALENDAR_END_MS if date_range is None or date_range.end is None else date_range.end
    return DateRange(max(start, CALENDAR_START_MS), min(end, CALENDAR_END_MS))


def check_range(query: ChartQuery, now: int) -> None:
    """Refuse up front a range that spans too many buckets (an open end = now). An open start
    leaves the check to the backend, which counts the buckets it finds."""
    if query.date_range is None or query.date_range.start is None:
        return
    end = query.date_range.end if query.date_range.end is not None else max(now, query.date_range.start)
    found = count_buckets(query.date_range.start, end, query.bucket)
    if found > query.max_buckets:
        raise too_many_buckets(f"{found:,}", query)
