"""Property tests of the filter language: the parsers (``query/filters.py``, ``query/search.py``,
``query/params.py``, ``query/chart.py``) and the SQLite compiler (``storage/sqlite/compile.py``,
``storage/sqlite/chart.py``), executed against a real ``SQLiteStore`` holding events of every
value shape.

Properties, for any filter (field paths and values included, SQL-looking or not):
* parsing raises nothing but an ``ApiError`` (a 4xx);
* whatever parses compiles and runs in the store without any error (no sqlite3 error, no
  overflow binding a number, no bad JSON path);
* no filter value and no path segment ever appears in the SQL text (they are bound parameters);
* the database is intact afterwards: same events, same keys.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.fuzz.strategies import FLOATS, INTS, NUMERIC_TRAPS, TEXT, json_values
from tests.helpers import Api, assert_error, make_key
from tracehive.app import create_app
from tracehive.model.errors import ApiError
from tracehive.model.event import Event
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import parse_chart_params, parse_chart_request
from tracehive.query.filters import (
    FILTER_FIELDS,
    JSON_FIELDS,
    OPERATORS_BY_TYPE,
    EventQuery,
    Operator,
    ValueType,
    parse_export_request,
)
from tracehive.query.params import parse_events_params, parse_schema_params
from tracehive.query.search import parse_search_request
from tracehive.settings import Settings
from tracehive.storage.sqlite import SQLiteStore
from tracehive.storage.sqlite.compile import compile_export
from tracehive.storage.sqlite.project_keys import Owner

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MARK = "zqmark"  # prefixed to generated values and segments, to look for them in the SQL text


# A real store with events of every value shape ---------------------------------------------------

SHAPES: list[Any] = [0, -1, 1.5, 2**53 + 1, 1e308, -1e308, True, False, None, "", "5", "5.0", "true",
                     "2024-05-01T00:00:00Z", "x' OR '1'='1", [], [1, "a", None], {"k": "v"}, {"a": {"b": [1, 2]}},
                     [{"content": "c"}], "\u00e9\U0001F600"]


def seeded_events() -> list[Event]:
    events = []
    for i, value in enumerate(SHAPES):
        payload = {"v": value, "cost": value, "nested": {"v": value}, "list": [value, value]}
        events.append(Event(
            event_id=f"00000000-0000-4000-8000-{i:012d}", session_id="00000000-0000-4000-8000-999999999999",
            event_type=("model", "tool", "chain")[i % 3], event_name=f"e{i}", source="fuzz",
            start_time=1_700_000_000_000 + i, end_time=1_700_000_000_100 + i, duration=100 + i,
            error=None if i % 2 else "boom", config={"model": value, **payload}, inputs=payload, outputs=payload,
            metadata=payload, feedback={"rating": value, **payload}, metrics=payload,
            user_properties={"user_id": value, **payload},
        ))
    # Start times the write routes accept (up to 2**53 ms either side of the epoch) that no
    # calendar can show.
    for i, start in enumerate((2**53 - 1, -(2**53), 1e14, -1e13)):
        events.append(Event(event_id=f"00000000-0000-4000-9000-{i:012d}", session_id="00000000-0000-4000-8000-999999999999",
                            event_type="tool", event_name="far", source="fuzz", start_time=start, end_time=start,
                            duration=0, inputs={"v": start}, metadata={"v": start}))
    return events


class StoreRunner:
    """A real, open SQLiteStore driven from synchronous Hypothesis tests on one event loop."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = SQLiteStore(path)
        self.path = path
        self.run(self.store.open())
        project, _ = self.run(self.store.ensure_project("fuzz"))
        _, key = self.run(self.store.create_key(project.project_id, KeyKind.PROJECT))
        scope = self.run(self.store.resolve_key(key))
        assert scope is not None
        self.scope: Scope = scope
        self.run(self.store.write_events(scope, seeded_events()))

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def query(self, query: EventQuery) -> None:
        events, total = self.run(self.store.export_events(self.scope, query))
        assert total >= len(events)

        async def first_chunk() -> None:
            chunks = self.store.iter_events(self.scope, query, chunk_size=7)
            try:
                async for _ in chunks:
                    break
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]

        self.run(first_chunk())
        self.run(self.store.schema_fields(self.scope, query, sample=10))

    def counts(self) -> tuple[int, int]:
        conn = sqlite3.connect(self.path)
        try:
            return (conn.execute("SELECT count(*) FROM events").fetchone()[0],
                    conn.execute("SELECT count(*) FROM api_keys").fetchone()[0])
        finally:
            conn.close()

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreRunner]:
    r = StoreRunner(tmp_path_factory.mktemp("filters") / "fuzz.db")
    before = r.counts()
    assert before[0] == len(SHAPES) + 4 + 1  # the events and their implicit session
    yield r
    # Whatever was sent as a filter, nothing was written, dropped or deleted.
    assert r.counts() == before
    r.close()


# Strategies ------------------------------------------------------------------------------------------

SQL_TEXT = st.sampled_from(["x'); DROP TABLE events;--", "metadata.x'); DROP TABLE events;--", "1 OR 1=1",
                            "\" OR \"\"=\"", "$.a", "'", "\\", "`", "]", "*", "%", ";", "--", "/*", "\x00"])
GOOD_SEGMENT = st.from_regex(r"[A-Za-z0-9_\-]{1,12}", fullmatch=True) | st.integers(0, 10**12).map(str)
SEGMENT = GOOD_SEGMENT | SQL_TEXT | st.text(max_size=8)
GOOD_FIELD = (
    st.sampled_from(FILTER_FIELDS)
    | st.sampled_from(["metadata.cost", "config.model", "feedback.rating", "user_properties.user_id",
                       "metadata.v", "inputs.list.0", "metadata.nested.v", "metadata.list.1", "outputs.v"])
    | st.tuples(st.sampled_from(JSON_FIELDS), st.lists(GOOD_SEGMENT, min_size=1, max_size=5)).map(
        lambda t: ".".join([t[0], *t[1]]))
    | st.tuples(st.sampled_from(JSON_FIELDS), st.lists(GOOD_SEGMENT, min_size=1, max_size=3)).map(
        lambda t: ".".join([t[0], *(MARK + s for s in t[1])]))
)
FIELD = GOOD_FIELD | st.one_of(
    st.tuples(st.sampled_from(JSON_FIELDS), st.lists(SEGMENT, min_size=1, max_size=5)).map(lambda t: ".".join([t[0], *t[1]])),
    st.just("metadata." + "a." * 40 + "a"), SQL_TEXT, TEXT, st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2),
)
GOOD_OPERATOR = (st.sampled_from([op.value for op in Operator])
                 | st.sampled_from(["greater_than", "IS", "  is   not ", "NOT_CONTAINS", "Before"]))
OPERATOR = GOOD_OPERATOR | st.sampled_from(["=", "like", "", "is not not"]) | TEXT | st.integers() | st.none()
GOOD_TYPE = st.none() | st.sampled_from([t.value for t in ValueType]) | st.sampled_from(["id", "STRING", " number "])
VALUE_TYPE = GOOD_TYPE | TEXT | st.integers()
# Numbers past every range: 64-bit integers, doubles (1e309 is no float), Python's int() digit limit.
HUGE_NUMBERS = st.sampled_from([10**400, -(10**400), 2**64, -(2**63) - 1, 1.7976931348623157e308, "1" + "0" * 320,
                                "-" + "9" * 400, "1e400", "9" * 5000])
SCALAR = (st.none() | st.booleans() | INTS | FLOATS | TEXT | NUMERIC_TRAPS | SQL_TEXT | HUGE_NUMBERS
          | st.text(max_size=10).map(lambda s: MARK + s)
          | st.sampled_from(["2024-05-01T00:00:00.123456Z", "0001-01-01"]))
VALUE = SCALAR | json_values(max_leaves=4)
EXTREME_MS = st.sampled_from([2**53, -(2**53), 1e300, -1e300, 2**63, "1" + "0" * 320, "0001-01-01", "9999-12-31T23:59:59Z"])


def _without_nones(flt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flt.items() if v is not None or k == "value"}


JSON_PATH = st.tuples(st.sampled_from(JSON_FIELDS), st.lists(GOOD_SEGMENT, min_size=1, max_size=4)).map(
    lambda t: ".".join([t[0], *t[1]])) | st.sampled_from(["metadata.cost", "metadata.v", "inputs.list.0", "feedback.rating"])
VALUES_BY_TYPE = {
    ValueType.STRING: SCALAR,
    ValueType.NUMBER: HUGE_NUMBERS | INTS | FLOATS | NUMERIC_TRAPS | st.integers().map(str) | st.floats().map(repr),
    ValueType.BOOLEAN: st.booleans() | st.sampled_from(["true", "0", 1]),
    ValueType.DATETIME: EXTREME_MS | HUGE_NUMBERS | st.integers() | st.sampled_from(["2024-05-01T00:00:00Z", "2024-05-01 10:00+05:30"]),
}


@st.composite
def typed_filter(draw: st.DrawFn) -> dict[str, Any]:
    """A filter whose operator fits its type (so most parse and reach the compiler)."""
    vtype = draw(st.sampled_from(list(ValueType)))
    operators = [op.value for op in OPERATORS_BY_TYPE[vtype]]
    if Operator.GREATER_THAN.value in operators:
        operators += [Operator.AFTER.value, Operator.BEFORE.value]
    field = draw(JSON_PATH if vtype is ValueType.BOOLEAN else GOOD_FIELD)
    flt = {"field": field, "operator": draw(st.sampled_from(sorted(operators))),
           "value": draw(VALUES_BY_TYPE[vtype] | SCALAR)}
    if draw(st.booleans()):
        flt["type"] = vtype.value
    return flt


GOOD_FILTER = typed_filter() | st.fixed_dictionaries({"field": GOOD_FIELD, "operator": GOOD_OPERATOR, "value": SCALAR,
                                                     "type": GOOD_TYPE}).map(_without_nones)
ANY_FILTER = st.fixed_dictionaries({"field": FIELD, "operator": OPERATOR}, optional={"value": VALUE, "type": VALUE_TYPE})


def filters() -> st.SearchStrategy[Any]:
    """Mostly well-formed filter lists (so the values reach the compiler), sometimes anything."""
    return st.lists(GOOD_FILTER, max_size=4) | st.lists(GOOD_FILTER | ANY_FILTER, max_size=4) | json_values(max_leaves=4)


DATE = st.none() | SCALAR | st.sampled_from(["7d", "0m", "999999999w", "2024-05-01", "9999-12-31T23:59:59-23:59"])
DATE_RANGE = (st.fixed_dictionaries({}, optional={"$gte": DATE, "$lte": DATE})
              | st.fixed_dictionaries({}, optional={"start_time": DATE, "end_time": DATE})
              | st.fixed_dictionaries({"relative": DATE}) | DATE | json_values(max_leaves=3))
PAGE = st.none() | INTS | FLOATS | TEXT | st.booleans()
GOOD_PAGE = st.none() | st.integers(1, 10) | st.sampled_from([7500, 10**9, "3", 2.0])
GOOD_DATE_RANGE = st.none() | st.fixed_dictionaries({}, optional={
    "$gte": st.sampled_from([1_699_999_999_999, "2023-11-14T22:13:20Z", "1700000000005", 1.5e12]) | EXTREME_MS,
    "$lte": st.sampled_from([1_700_000_000_010, "2100-01-01", 9e15]) | EXTREME_MS}) | st.just({"relative": "7d"})
# Mostly well-formed bodies (their filters reach the compiler), sometimes any key may be junk.
GOOD_BODY = st.fixed_dictionaries({"filters": st.lists(GOOD_FILTER, min_size=1, max_size=4)}, optional={
    "dateRange": GOOD_DATE_RANGE, "limit": GOOD_PAGE, "page": GOOD_PAGE,
    "projections": st.lists(GOOD_FIELD, max_size=4), "ignore_order": st.booleans(),
})
ANY_BODY = st.fixed_dictionaries({}, optional={
    "filters": filters(), "dateRange": DATE_RANGE, "limit": PAGE, "page": PAGE, "evaluation_id": SCALAR,
    "projections": st.lists(GOOD_FIELD, max_size=4) | st.lists(FIELD, max_size=4) | json_values(max_leaves=3),
    "ignore_order": SCALAR,
})
BODY = GOOD_BODY | ANY_BODY


def no_value_in_sql(query: EventQuery, project_id: str) -> None:
    compiled = compile_export(Owner(1, project_id, "org", "workspace"), query)
    for sql in (compiled.select_sql, compiled.count_sql):
        assert MARK not in sql, sql
        assert "DROP" not in sql and "--" not in sql and ";" not in sql, sql


def parsed(parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except ApiError as exc:
        assert 400 <= exc.status_code < 500, exc
        return None


# Properties ------------------------------------------------------------------------------------------


@FUZZ
@given(BODY)
def test_export_bodies(runner: StoreRunner, body: dict[str, Any]) -> None:
    query = parsed(parse_export_request, body)
    if query is not None:
        no_value_in_sql(query, runner.scope.project_id)
        runner.query(query)


@FUZZ
@given(BODY | json_values(max_leaves=6))
def test_search_bodies(runner: StoreRunner, body: Any) -> None:
    query = parsed(parse_search_request, body)
    if query is not None:
        no_value_in_sql(query, runner.scope.project_id)
        runner.query(query)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """A nested value as qs-style bracket pairs (what axios and the SDK send)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _flatten(f"{prefix}[{k}]", v)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _flatten(f"{prefix}[{i}]", v)]
    return [(prefix, "" if value is None else str(value))]


QUERY_KEY = st.sampled_from(["filters", "dateRange", "limit", "page", "projections", "evaluation_id", "ignore_order",
                             "metric", "bucket", "aggregation", "groupBy", "only_experiments"])
PAIRS = st.one_of(
    # bracket form of a generated body
    BODY.map(lambda body: [p for k, v in body.items() for p in _flatten(k, v)]),
    # JSON or Python-literal strings (the SDK sends str() of dicts), and raw keys
    st.lists(st.tuples(QUERY_KEY | st.text(max_size=12).map(lambda k: "filters" + k),
                       st.one_of(filters().map(repr), filters().map(str), DATE_RANGE.map(repr), TEXT, SQL_TEXT,
                                 st.just("[" * 5000 + "]" * 5000), st.just("{'a': " * 200 + "1" + "}" * 200))),
             max_size=6),
)


@FUZZ
@given(PAIRS)
def test_get_events_query_strings(runner: StoreRunner, pairs: list[tuple[str, str]]) -> None:
    for parse in (parse_events_params, parse_schema_params):
        query = parsed(parse, pairs)
        if query is not None:
            no_value_in_sql(query, runner.scope.project_id)
            runner.query(query)


CHART = st.fixed_dictionaries({}, optional={
    "filters": filters(), "dateRange": GOOD_DATE_RANGE | DATE_RANGE, "evaluation_id": SCALAR, "only_experiments": SCALAR,
    "metric": FIELD, "groupBy": FIELD,
    "bucket": st.sampled_from(["minute", "hour", "day", "week", "month", "1h", "year"]) | TEXT,
    "aggregation": st.sampled_from(["avg", "count", "sum", "min", "max", "median", "p50", "p99", "p100", "p0"]) | TEXT,
})


@FUZZ
@given(CHART, PAIRS)
def test_chart_queries(runner: StoreRunner, params: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    now = 1_700_000_100_000
    for query in (parsed(lambda: parse_chart_request(params, now=now)), parsed(lambda: parse_chart_params(pairs, now=now))):
        if query is not None:
            try:
                rows = runner.run(runner.store.chart_events(runner.scope, query))
                orjson.dumps([row.to_dict() for row in rows])  # what the route answers
            except ApiError as exc:  # too many buckets / rows is a 400 found while reading
                assert exc.status_code == 400, exc


PARSED: dict[str, int] = {"bodies": 0, "with_conditions": 0}


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(BODY)
def _count_parsed(body: dict[str, Any]) -> None:
    PARSED["bodies"] += 1
    query = parsed(parse_export_request, body)
    PARSED["with_conditions"] += query is not None and len(query.conditions) > 0


def test_the_strategies_reach_the_compiler() -> None:
    """Not vacuous: a fair share of the generated bodies parse into conditions for the compiler."""
    _count_parsed()
    assert PARSED["with_conditions"] >= PARSED["bodies"] // 5, PARSED


# The same through the routes --------------------------------------------------------------------

READ_ROUTES = [("POST", "/v1/events/export"), ("POST", "/events/export"), ("POST", "/v1/events/search"),
               ("POST", "/v1/sessions/search")]
QUERY_ROUTES = ["/v1/events", "/events", "/v1/events/chart", "/v1/events/schema"]


@pytest.fixture(scope="module")
def app_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("filters-app") / "data"
    key = make_key(data_dir, "fuzz")
    with TestClient(create_app(Settings(data_dir=data_dir)), raise_server_exceptions=False) as client:
        api = Api(client, key)
        for i, value in enumerate(SHAPES):
            reply = api.post("/v1/events", json={"event_type": "tool", "inputs": {"v": value}, "metadata": {"v": value,
                             "cost": value}, "start_time": (2**53 - 1, -(2**53), 1_700_000_000_000)[i % 3]})
            assert reply.status_code == 200, reply.text
        yield api


def answered(response: Any) -> None:
    """A 2xx, or a 4xx with the contract's error body; never a 5xx."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)


ROUTE_FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ROUTE_FUZZ
@given(BODY)
def test_read_routes_with_any_body(app_api: Api, body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()  # NaN / huge integers as JSON literals
    for method, path in READ_ROUTES:
        answered(app_api.request(method, path, content=content, headers={"Content-Type": "application/json"}))


@ROUTE_FUZZ
@given(PAIRS, CHART.map(lambda params: [p for k, v in params.items() for p in _flatten(k, v)]))
def test_query_routes_with_any_query_string(app_api: Api, pairs: list[tuple[str, str]],
                                            chart_pairs: list[tuple[str, str]]) -> None:
    for path in QUERY_ROUTES:
        answered(app_api.get(path, params=pairs))
    answered(app_api.get("/v1/events/chart", params=chart_pairs))
