"""Differential property test: the PostgreSQL read side (``storage/postgres/compile.py``,
``chart.py``, ``session_list.py``, ``schema_fields.py``, ``export.py``) answers every query as the
SQLite backend does, on the same events.

Events are written to a real ``SQLiteStore``; the rows it stored are copied, in rowid order, into
a fresh PostgreSQL database (migrated by ``postgres/migrations.py``, dropped at the end). Then the
same parsed queries run on both: export pages (events in order and totals), the keyset stream,
schema fields, charts (rows, or the same refusal) and session lists (summaries and totals).

Three generators: events drawn per example (each in a new project) with filters on their own
fields and values (or near them); a fixed corpus of a few hundred events with such filters; the
property suite's bodies and chart parameters (``test_filters_property``) on its events.

Known differences, kept out of the generated data: U+0000 (PostgreSQL stores U+FFFD); the
string ``now`` as a datetime (the clock); doubles whose SQLite text (``%!.15g``) SQLite's digit
loop rounds unlike a correct rounding (a tie in the 16th significant digit: the generators keep
the doubles where both agree); times whose spans pass 2**53 ms (PostgreSQL's double precision
columns round them). SQLite raising "integer overflow" on a sum of INTEGERs is accepted (the
PostgreSQL chart answers the double sum). Sums of doubles are compared to 1e-12: both add in the
order of SQLite's index, but SQLite's planner may pick another one. Where no PostgreSQL answers,
the tests skip with one line.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import pg
from tests.fuzz.test_filters_property import BODY, CHART, seeded_events
from tracehive.model.errors import ApiError
from tracehive.model.event import Event
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import Aggregation, ChartQuery, parse_chart_request, within_calendar
from tracehive.query.filters import EventQuery, FILTER_FIELDS, parse_export_request
from tracehive.query.search import parse_search_request
from tracehive.query.session_list import SORT_FIELDS, SessionListQuery
from tracehive.storage.postgres import rows as pg_rows
from tracehive.storage.postgres.chart import run_chart
from tracehive.storage.postgres.export import export_page, stream_chunk, stream_pages
from tracehive.storage.postgres.migrations import migrate
from tracehive.storage.postgres.schema_fields import schema_fields
from tracehive.storage.postgres.session_list import list_sessions
from tracehive.storage.sqlite import SQLiteStore
from tracehive.storage.sqlite import rows as sqlite_rows

DIFF = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
NOW = 1_700_000_100_000


# SQLite's text of a REAL, as PostgreSQL's th_real_text computes it (correctly rounded): the
# generators keep the doubles on which SQLite's own rounding agrees.
_TEXT_DB = sqlite3.connect(":memory:")


def _correct_real_text(value: float) -> str:
    if value == 0:
        return "0.0"
    mantissa, exponent = ("%.14e" % value).split("e")
    power = int(exponent)
    if power < -4 or power >= 15:
        mantissa = mantissa.rstrip("0")
        mantissa += "0" if mantissa.endswith(".") else ""
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    plain = "%.*f" % (14 - power, value)
    plain = plain.rstrip("0") if "." in plain else plain + "."
    return plain + "0" if plain.endswith(".") else plain


def same_real_text(value: float) -> bool:
    return _TEXT_DB.execute("SELECT CAST(? AS TEXT)", (value,)).fetchone()[0] == _correct_real_text(value)


# The two backends --------------------------------------------------------------------------------


class Pair:
    """A SQLiteStore and a PostgreSQL database with the same events, driven on one event loop."""

    def __init__(self, directory: Path, dbname: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.path = directory / "diff.db"
        self.sqlite = SQLiteStore(self.path)
        self.run(self.sqlite.open())
        self.conn: psycopg.AsyncConnection[Any] = self.run(
            psycopg.AsyncConnection.connect(pg.url_of(dbname), autocommit=True))
        self.run(migrate(self.conn))

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def project(self, events: list[Event]) -> Scope:
        """A new project holding ``events`` in both databases."""
        project, _ = self.run(self.sqlite.ensure_project(f"diff-{uuid.uuid4().hex}"))
        _, key = self.run(self.sqlite.create_key(project.project_id, KeyKind.PROJECT))
        scope: Scope = self.run(self.sqlite.resolve_key(key))
        self.run(self.sqlite.import_events(scope, events))
        db = sqlite3.connect(self.path)
        try:
            stored = [sqlite_rows.row_to_event(r) for r in db.execute(
                f"SELECT {sqlite_rows.event_columns(scope.project_id)} FROM events "
                "WHERE project_key = (SELECT project_key FROM project_keys WHERE project_id = ?) ORDER BY rowid",
                (scope.project_id,))]
        finally:
            db.close()
        params = [pg_rows.event_params(e, scope.project_id, scope.org_id, scope.workspace_id, 0) for e in stored]

        async def insert() -> None:
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    f"INSERT INTO events ({pg_rows.INSERT_COLUMNS}) VALUES ({pg_rows.PLACEHOLDERS})", params)

        self.run(insert())
        return scope

    # The same query on both ----------------------------------------------------------------------

    def export(self, scope: Scope, query: EventQuery) -> None:
        expected = self.run(self.sqlite.export_events(scope, query))
        actual = self.run(export_page(self.conn, scope.project_id, query))
        if query.ignore_order:  # no order: the same set
            assert sorted(e.event_id for e in actual[0]) == sorted(e.event_id for e in expected[0]) or \
                query.limit < expected[1]
            assert actual[1] == expected[1]
            return
        assert [e.event_id for e in actual[0]] == [e.event_id for e in expected[0]]
        assert actual == expected

    def stream(self, scope: Scope, query: EventQuery, chunk: int = 4) -> None:
        async def sqlite_ids() -> list[str]:
            return [e.event_id async for part in self.sqlite.iter_events(scope, query, chunk_size=chunk)
                    for e in part]

        async def pg_ids() -> list[str]:
            pages, after, out = stream_pages(scope.project_id, query), None, []
            while True:
                part, after = await stream_chunk(self.conn, pages, after, chunk)
                out += [e.event_id for e in part]
                if len(part) < chunk or after is None:
                    return out

        assert self.run(pg_ids()) == self.run(sqlite_ids())

    def schema(self, scope: Scope, query: EventQuery, sample: int) -> None:
        expected = self.run(self.sqlite.schema_fields(scope, query, sample=sample))
        assert self.run(schema_fields(self.conn, scope.project_id, query, sample)) == expected

    def chart(self, scope: Scope, query: ChartQuery) -> None:
        assert_same_chart(lambda: self.run(run_chart(self.conn, scope.project_id, query)),
                          lambda: self.run(self.sqlite.chart_events(scope, query)), query)

    def sessions(self, scope: Scope, query: SessionListQuery) -> None:
        assert_same_sessions(self.run(list_sessions(self.conn, scope.project_id, query)),
                             self.run(self.sqlite.list_sessions(scope, query)))

    def close(self) -> None:
        self.run(self.conn.close())
        self.run(self.sqlite.close())
        self.loop.close()


def assert_same_chart(actual_call: Callable[[], Any], expected_call: Callable[[], Any], query: ChartQuery,
                      *, close_percentiles: bool = False) -> None:
    """Another backend's chart rows (``actual_call``) against SQLite's (``expected_call``): the
    same rows, or the same 4xx. Sums and averages (and, with ``close_percentiles``, percentiles)
    compare as doubles to 1e-12."""
    actual = _outcome(actual_call)
    try:
        expected = _outcome(expected_call)
    except sqlite3.OperationalError as exc:
        # SQLite's sum() of INTEGERs past int64 raises (a 500 on that backend); the others answer
        # with the double sum.
        assert "integer overflow" in str(exc) and query.aggregation is Aggregation.SUM, exc
        return
    if isinstance(expected, str) or isinstance(actual, str):
        assert actual == expected
        return
    assert len(actual) == len(expected), (actual, expected)
    summed = query.aggregation in (Aggregation.AVG, Aggregation.SUM) or (
        close_percentiles and query.aggregation.percentile is not None)
    for mine, theirs in zip(actual, expected):
        assert (mine.bucket, mine.count) == (theirs.bucket, theirs.count)
        assert _same(mine.group, theirs.group), (mine, theirs)
        assert _same(mine.value, theirs.value, close=bool(summed)), (query.aggregation, mine, theirs)


def assert_same_sessions(actual: tuple[list[Any], int], expected: tuple[list[Any], int]) -> None:
    """Another backend's session list page and total against SQLite's; summed cost and tokens
    compare as doubles to 1e-12."""
    (actual_rows, actual_total), (expected_rows, expected_total) = actual, expected
    assert actual_total == expected_total
    assert [s.session_id for s in actual_rows] == [s.session_id for s in expected_rows]
    close = {"cost", "total_tokens"}
    for mine, theirs in zip(actual_rows, expected_rows):
        assert {k: v for k, v in mine.to_dict().items() if k not in close} == \
            {k: v for k, v in theirs.to_dict().items() if k not in close}
        for key in close:
            assert _same(getattr(mine, key), getattr(theirs, key), close=True), (key, mine, theirs)


def _outcome(call: Any) -> Any:
    """The result, or the message of the 4xx it raised (too many buckets / rows)."""
    try:
        return call()
    except ApiError as exc:
        assert exc.status_code == 400, exc
        return str(exc)


def _same(a: Any, b: Any, *, close: bool = False) -> bool:
    """Equal, with the same type (an int is no float); doubles of a sum to 1e-12."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or (close and math.isclose(a, b, rel_tol=1e-12))
    if close and isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, (dict, list)):
        return orjson.dumps(a) == orjson.dumps(b)
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pg.require_postgres()
    dbname = f"th_diff_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    try:
        both = Pair(tmp_path_factory.mktemp("differential"), dbname)
        try:
            yield both
        finally:
            both.close()
    finally:
        with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shapes(pair: Pair) -> Scope:
    """The property suite's events of every value shape (test_filters_property.SHAPES). The far
    ones (start times up to 2**53 ms either side) each get a session of their own: one implicit
    session spanning them all would last 2**54 ms, which no double holds exactly (times are
    double precision in PostgreSQL)."""
    events = seeded_events()
    for i, event in enumerate(events):
        if event.event_name == "far":
            event.session_id = f"00000000-0000-4000-a000-{i:012d}"
    return pair.project(events)


# Generated events ------------------------------------------------------------------------------------

SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)
NICE_FLOATS = st.floats(allow_nan=False, allow_infinity=False).filter(same_real_text)
SPECIAL_NUMBERS = [0, -1, 1, 5, 7, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 10**15, 1.5, 5.0,
                   -0.0, 0.1, 0.2, 0.30000000000000004, 1e20, 1e-7, 2.5e-5, 1e308, -1e308, 5e-324, 9007199254740992.0,
                   1_700_000_000_000, 1_714_521_600_000.5, True, False, None]
SPECIAL_STRINGS = ["", "5", "5.0", " 7 ", "1e20", "-0", "true", "false", "null", "{}", "[]", "x", "ab", "AB", "é",
                   "😀", 'a"b', "\\", "%", "_", "2024-05-01T00:00:00Z", "2024-05-01", "2024-02-30",
                   "2024-05-01 10:00+05:30", "12:30", "24:00", "2460431.5", "5373484.4", "1e3", ".5", "-1", "2024-13-01",
                   "9999-12-31T23:59:59.999Z", "2023-11-14T22:13:20.5Z", "1700000000000"]
SCALARS = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.sampled_from(SPECIAL_STRINGS),
    st.integers(-1000, 1000),
    st.integers(-(2**63), 2**64 - 1),
    NICE_FLOATS,
    SAFE_TEXT,
)
KEYS = st.sampled_from(["v", "cost", "total_tokens", "model", "user_id", "rating", "n", "list", "0", "-1", "a.b", "x y", "k"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                    max_leaves=5)
PAYLOAD = st.dictionaries(KEYS, JSON, max_size=5)
TIMES = st.sampled_from([1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_000.5, 1_700_003_600_000, 1_699_999_999_999,
                         0, -1, -86_400_001, 1_704_067_200_000, 1_706_745_599_999, 253_402_300_799_999,
                         -62_135_596_800_000]) | st.integers(1_699_000_000_000, 1_702_000_000_000)


@st.composite
def event_sets(draw: st.DrawFn) -> list[Event]:
    sessions = [str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4)) for _ in range(draw(st.integers(1, 3)))]
    events = []
    for sid in sessions:
        if draw(st.booleans()):  # an explicit session row (else the store creates one)
            start = draw(TIMES)
            events.append(Event(event_id=sid, session_id=sid, event_type="session", event_name=draw(NAMES),
                                source="diff", start_time=start, end_time=start, duration=0,
                                metadata=draw(PAYLOAD), user_properties=draw(PAYLOAD), feedback=draw(PAYLOAD)))
    for _ in range(draw(st.integers(0, 12))):
        start = draw(TIMES)
        duration = draw(st.sampled_from([0, 1, 100, 2.5, 3_600_000]) | st.integers(0, 10**6))
        sid = draw(st.sampled_from(sessions))
        events.append(Event(
            event_id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4)), session_id=sid, parent_id=sid,
            event_type=draw(st.sampled_from(["model", "tool", "chain"])), event_name=draw(NAMES), source="diff",
            start_time=start, end_time=start + duration, duration=duration,
            error=draw(st.sampled_from([None, "", "boom"])), config=draw(PAYLOAD), inputs=draw(PAYLOAD),
            outputs=draw(st.none() | PAYLOAD), metadata=draw(PAYLOAD), feedback=draw(PAYLOAD), metrics=draw(PAYLOAD),
            user_properties=draw(PAYLOAD), children_ids=draw(st.lists(st.sampled_from(sessions) | SAFE_TEXT, max_size=2)),
        ))
    return events


NAMES = st.sampled_from(["a", "b", "B", "é", "a b", "Z", ""])

# Generated queries --------------------------------------------------------------------------------

PATHS = st.sampled_from(list(FILTER_FIELDS)) | st.sampled_from([
    "metadata.v", "metadata.cost", "metadata.n", "metadata.n.v", "metadata.list", "metadata.list.0", "metadata.list.1",
    "metadata.0", "metadata.-1", "metadata.k.v", "inputs.v", "inputs.list.0", "config.model", "user_properties.user_id",
    "feedback.rating", "outputs.v", "outputs.n.list", "children_ids.0", "metrics.total_tokens", "metadata.v.0",
])
OPERATORS = st.sampled_from(["exists", "not exists", "is", "is not", "contains", "not contains", "greater than",
                             "less than", "after", "before"])
TYPES = st.sampled_from([None, "string", "number", "boolean", "datetime"])
VALUES = SCALARS.filter(lambda v: v is not None) | st.sampled_from(["0.1", "1e20", "9007199254740993", "1.5",
                                                                     "2024-05-01T10:00:00.5Z", "1700000000000"])
DATE_RANGE = st.none() | st.fixed_dictionaries({}, optional={
    "$gte": st.sampled_from([1_699_999_999_999, 1_700_000_000_000.5, -1, 2**53 + 1, "2023-11-14T22:13:20Z"]),
    "$lte": st.sampled_from([1_700_000_000_000, 1_700_003_600_000, 2**62, 2**53 + 1])})


def parsed_query(filters: list[dict[str, Any]], date_range: Any) -> EventQuery:
    """The filters that parse (the others are dropped), ANDed."""
    kept = []
    for flt in filters:
        try:
            parse_export_request({"filters": [flt]})
        except ApiError:
            continue
        kept.append(flt)
    try:
        return parse_export_request({"filters": kept, "dateRange": date_range})
    except ApiError:
        return parse_export_request({"filters": kept})


def _walk(value: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
    yield ".".join(path), value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, [*path, key])
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, [*path, str(i)])


def seen(events: list[Event]) -> list[tuple[str, Any]]:
    """Every (field, value) of the events: columns, JSON paths and the values at them."""
    out: list[tuple[str, Any]] = []
    for event in events:
        for column in ("event_id", "event_name", "event_type", "error", "start_time", "duration", "end_time"):
            out.append((column, getattr(event, column)))
        for column in ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties",
                       "children_ids"):
            out.extend(_walk(getattr(event, column), [column]))
    return out


def _near(value: Any) -> st.SearchStrategy[Any]:
    """The value, its text, a neighbour or a piece of it: filters that hit and just miss."""
    options: list[Any] = [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        options += [str(value), value + 1, value - 1, value / 2, repr(float(value))]
    elif isinstance(value, str) and value:
        options += [value[:1], value[1:], value.upper()]
    elif isinstance(value, (dict, list)):
        options += [orjson.dumps(value).decode()]
    return st.sampled_from(options)


@st.composite
def filters_for(draw: st.DrawFn, events: list[Event]) -> dict[str, Any]:
    """A filter on a field the events have (or any path), with a value they hold (or near it)."""
    pool = [(f, v) for f, v in seen(events) if v is not None]
    mode = draw(st.integers(0, 9))
    if pool and mode < 8:
        field, value = draw(st.sampled_from(pool))
        if mode >= 6:
            value = draw(VALUES)
        elif isinstance(value, (dict, list)) or mode < 5:
            value = draw(_near(value))
    else:
        field, value = draw(PATHS), draw(VALUES)
    flt = {"field": field, "operator": draw(OPERATORS), "value": value}
    vtype = draw(TYPES) if draw(st.booleans()) else None
    if vtype is not None:
        flt["type"] = vtype
    return flt


CHART_PARAMS = st.fixed_dictionaries({
    "metric": st.sampled_from(["duration", "start_time", "metadata.cost", "metadata.v", "metadata.list.0", "inputs.v"]),
    "bucket": st.sampled_from(["minute", "hour", "day", "week", "month"]),
    "aggregation": st.sampled_from(["avg", "count", "sum", "min", "max", "median", "p75", "p90", "p95", "p99"]),
}, optional={"groupBy": PATHS})


# Properties -------------------------------------------------------------------------------------------


@DIFF
@given(events=event_sets(), data=st.data(), date_range=DATE_RANGE, limit=st.integers(1, 6), page=st.integers(1, 3),
       sample=st.integers(1, 12), chart=CHART_PARAMS, limits=st.sampled_from([(10_000, 100_000), (2, 100_000), (10_000, 3)]),
       sort=st.sampled_from(SORT_FIELDS), descending=st.booleans())
def test_generated_events(pair: Pair, events: list[Event], data: st.DataObject, date_range: Any, limit: int,
                          page: int, sample: int, chart: dict[str, Any], limits: tuple[int, int], sort: Any,
                          descending: bool) -> None:
    scope = pair.project(events)
    query = parsed_query(data.draw(st.lists(filters_for(events), max_size=3)), date_range)
    pair.export(scope, replace(query, limit=limit, page=page))
    pair.export(scope, replace(query, limit=1000, page=1))
    pair.stream(scope, query)
    pair.schema(scope, query, sample)
    chart_query = replace(parse_chart_request(chart, now=NOW), conditions=query.conditions,
                          date_range=within_calendar(query.date_range), max_buckets=limits[0], max_rows=limits[1])
    pair.chart(scope, chart_query)
    pair.sessions(scope, SessionListQuery(conditions=query.conditions, date_range=query.date_range, sort_by=sort,
                                          descending=descending, limit=limit, offset=(page - 1) * limit))


def corpus_events(seed: int = 20240501, count: int = 240) -> list[Event]:
    """A fixed corpus: events over a few sessions with values drawn from the special lists,
    nested a little, and repeated so that filters select some events and not others."""
    rnd = random.Random(seed)
    keys = ["v", "cost", "total_tokens", "model", "user_id", "rating", "n", "list", "0", "-1", "a.b", "k"]

    def leaf() -> Any:
        roll = rnd.random()
        if roll < 0.4:
            return rnd.choice(SPECIAL_NUMBERS)
        if roll < 0.75:
            return rnd.choice(SPECIAL_STRINGS)
        if roll < 0.9:
            return rnd.randint(-20, 20)
        return round(rnd.uniform(-100, 100), rnd.randint(0, 4))

    def value(depth: int = 0) -> Any:
        roll = rnd.random()
        if depth < 2 and roll < 0.12:
            return [value(depth + 1) for _ in range(rnd.randint(0, 3))]
        if depth < 2 and roll < 0.25:
            return payload(depth + 1)
        return leaf()

    def payload(depth: int = 0) -> dict[str, Any]:
        return {key: value(depth) for key in rnd.sample(keys, rnd.randint(0, 4))}

    sessions = [f"00000000-0000-4000-b000-{i:012d}" for i in range(12)]
    times = [1_700_000_000_000 + rnd.choice([0, 1, 59_999, 60_000, 3_600_000, 86_400_000, 7 * 86_400_000, 40 * 86_400_000])
             for _ in range(20)] + [1_700_000_000_000.25, -86_400_001, 0]
    events = []
    for i, sid in enumerate(sessions[:8]):
        start = rnd.choice(times)
        events.append(Event(event_id=sid, session_id=sid, event_type="session", event_name=rnd.choice(["a", "b", "B", "é"]),
                            source="diff", start_time=start, end_time=start, duration=0, metadata=payload(),
                            user_properties=payload(), feedback=rnd.choice([{}, {}, payload()])))
    for i in range(count):
        start = rnd.choice(times)
        duration = rnd.choice([0, 1, 100, 2.5, 1234, 3_600_000, rnd.randint(0, 10**6)])
        sid = rnd.choice(sessions)
        events.append(Event(
            event_id=f"{rnd.getrandbits(32):08x}-0000-4000-8000-{i:012d}", session_id=sid, parent_id=sid,
            event_type=rnd.choice(["model", "tool", "chain"]), event_name=rnd.choice(["a", "b", "B", "é", "a b", ""]),
            source="diff", start_time=start, end_time=start + duration, duration=duration,
            error=rnd.choice([None, None, "", "boom"]), config=payload(), inputs=payload(),
            outputs=rnd.choice([None, payload()]), metadata=payload(), feedback=payload(), metrics=payload(),
            user_properties=payload(), children_ids=rnd.sample(sessions, rnd.randint(0, 2)),
        ))
    return events


@pytest.fixture(scope="module")
def corpus(pair: Pair) -> tuple[Scope, list[Event]]:
    events = corpus_events()
    return pair.project(events), events


CORPUS = settings(DIFF, max_examples=150)


@CORPUS
@given(data=st.data(), date_range=DATE_RANGE, limit=st.integers(1, 30), page=st.integers(1, 4),
       sample=st.integers(1, 300), chart=CHART_PARAMS, sort=st.sampled_from(SORT_FIELDS), descending=st.booleans())
def test_corpus(pair: Pair, corpus: tuple[Scope, list[Event]], data: st.DataObject, date_range: Any, limit: int,
                page: int, sample: int, chart: dict[str, Any], sort: Any, descending: bool) -> None:
    """Generated filters (mostly on the corpus's own fields and values) over a fixed corpus."""
    scope, events = corpus
    query = parsed_query(data.draw(st.lists(filters_for(events), min_size=1, max_size=2)), date_range)
    pair.export(scope, replace(query, limit=limit, page=page))
    pair.stream(scope, query, chunk=50)
    pair.schema(scope, query, sample)
    pair.chart(scope, replace(parse_chart_request(chart, now=NOW), conditions=query.conditions,
                              date_range=within_calendar(query.date_range)))
    pair.sessions(scope, SessionListQuery(conditions=query.conditions, date_range=query.date_range, sort_by=sort,
                                          descending=descending, limit=limit, offset=(page - 1) * limit))


@DIFF
@given(BODY)
def test_shapes_with_any_body(pair: Pair, shapes: Scope, body: Any) -> None:
    """The property suite's bodies (SQL-looking values, huge numbers, odd paths) on its events."""
    for parse in (parse_export_request, parse_search_request):
        try:
            query = parse(body)
        except ApiError:
            continue
        pair.export(shapes, query)
        pair.stream(shapes, query, chunk=7)
        pair.schema(shapes, query, 10)


@DIFF
@given(CHART)
def test_shapes_with_any_chart(pair: Pair, shapes: Scope, params: dict[str, Any]) -> None:
    try:
        query = parse_chart_request(params, now=NOW)
    except ApiError:
        return
    pair.chart(shapes, query)
