"""Differential property test: the ClickHouse event store answers queries as the SQLite store
does, on the same events (random events, random filters near their values).

The events are imported into both stores (``import_events``: rows as given, in the same order,
so SQLite's rowid and ClickHouse's ``seq`` agree on ties); then the same parsed query runs on
both: export pages (events in order and totals), the keyset stream, schema fields, charts and
session lists. The generators are those of ``tests/fuzz/test_filters_differential.py`` (SQLite
vs PostgreSQL), whose comments list the known differences kept out of the generated data.
Known difference of this backend, also kept out: a string filter on the JSON text of a *nested*
object or array holding a double written with ``.0``/an exponent, or a non-ASCII escape
(ClickHouse re-serialises nested JSON: ``compile.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.chdb import require_chdb

require_chdb()
pytest.importorskip("psycopg")  # the shared generators' module imports it

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.test_filters_differential import (
    CHART_PARAMS,
    DATE_RANGE,
    DIFF,
    NOW,
    assert_same_chart,
    assert_same_sessions,
    event_sets,
    filters_for,
    parsed_query,
)
from tracehive.model.event import Event
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, parse_chart_request, within_calendar
from tracehive.query.filters import EventQuery
from tracehive.query.session_list import SORT_FIELDS, SessionListQuery
from tracehive.storage.clickhouse import ClickHouseEventStore
from tracehive.storage.sqlite import SQLiteStore

# As many examples as the PostgreSQL comparison, but no shrinking: each example is a few chDB
# queries of complex SQL, and shrinking a failure took minutes. A failure prints its draw.
CH_DIFF = settings(DIFF, max_examples=60, phases=[Phase.explicit, Phase.reuse, Phase.generate])


class Pair:
    """A SQLiteStore and a ClickHouse event store with the same events, on one event loop."""

    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.sqlite = SQLiteStore(directory / "diff.db")
        self.ch = ClickHouseEventStore.chdb(directory / "events")
        self.run(self.sqlite.open())
        self.run(self.ch.open())

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def project(self, events: list[Event]) -> Scope:
        project, _ = self.run(self.sqlite.ensure_project(f"diff-{uuid.uuid4().hex}"))
        _, key = self.run(self.sqlite.create_key(project.project_id, KeyKind.PROJECT))
        scope: Scope = self.run(self.sqlite.resolve_key(key))
        self.run(self.sqlite.import_events(scope, events))
        self.run(self.ch.import_events(scope, events))
        return scope

    def export(self, scope: Scope, query: EventQuery) -> None:
        expected = self.run(self.sqlite.export_events(scope, query))
        actual = self.run(self.ch.export_events(scope, query))
        assert actual[1] == expected[1]
        if query.ignore_order:
            return
        assert [e.event_id for e in actual[0]] == [e.event_id for e in expected[0]]
        assert actual == expected

    def stream(self, scope: Scope, query: EventQuery) -> None:
        async def ids(store: Any) -> list[str]:
            return [e.event_id async for part in store.iter_events(scope, query, chunk_size=4) for e in part]

        assert self.run(ids(self.ch)) == self.run(ids(self.sqlite))

    def schema(self, scope: Scope, query: EventQuery, sample: int) -> None:
        expected = self.run(self.sqlite.schema_fields(scope, query, sample=sample))
        assert self.run(self.ch.schema_fields(scope, query, sample=sample)) == expected

    def chart(self, scope: Scope, query: ChartQuery) -> None:
        # Percentiles compare to 1e-12 here: ClickHouse interpolates in doubles.
        assert_same_chart(lambda: self.run(self.ch.chart_events(scope, query)),
                          lambda: self.run(self.sqlite.chart_events(scope, query)), query, close_percentiles=True)

    def sessions(self, scope: Scope, query: SessionListQuery) -> None:
        assert_same_sessions(self.run(self.ch.list_sessions(scope, query)), self.run(self.sqlite.list_sessions(scope, query)))

    def close(self) -> None:
        self.run(self.ch.close())
        self.run(self.sqlite.close())
        self.loop.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    instance = Pair(tmp_path_factory.mktemp("ch-diff"))
    try:
        yield instance
    finally:
        instance.close()


@CH_DIFF
@given(events=event_sets(), data=st.data(), date_range=DATE_RANGE, limit=st.integers(1, 6), page=st.integers(1, 3))
def test_export_and_stream_match_sqlite(pair: Pair, events: list[Event], data: st.DataObject, date_range: Any,
                                        limit: int, page: int) -> None:
    scope = pair.project(events)
    query = parsed_query(data.draw(st.lists(filters_for(events), max_size=3)), date_range)
    pair.export(scope, replace(query, limit=limit, page=page))
    pair.export(scope, replace(query, limit=1000, page=1))
    pair.stream(scope, query)


@CH_DIFF
@given(events=event_sets(), data=st.data(), date_range=DATE_RANGE, sample=st.integers(1, 12), chart=CHART_PARAMS,
       limits=st.sampled_from([(10_000, 100_000), (2, 100_000), (10_000, 3)]), sort=st.sampled_from(SORT_FIELDS),
       descending=st.booleans(), limit=st.integers(1, 6), page=st.integers(1, 3))
def test_analytics_match_sqlite(pair: Pair, events: list[Event], data: st.DataObject, date_range: Any, sample: int,
                                chart: dict[str, Any], limits: tuple[int, int], sort: Any, descending: bool,
                                limit: int, page: int) -> None:
    scope = pair.project(events)
    query = parsed_query(data.draw(st.lists(filters_for(events), max_size=2)), date_range)
    pair.schema(scope, query, sample)
    chart_query = replace(parse_chart_request(chart, now=NOW), conditions=query.conditions,
                          date_range=within_calendar(query.date_range), max_buckets=limits[0], max_rows=limits[1])
    pair.chart(scope, chart_query)
    pair.sessions(scope, SessionListQuery(conditions=query.conditions, date_range=query.date_range, sort_by=sort,
                                          descending=descending, limit=limit, offset=(page - 1) * limit))


# Every kind of value a typed hot column (schema.NUMERIC_HOT_COLUMNS) may be computed from.
HOT_VALUES: list[Any] = [0, 1, -1, 7, 2**53 + 1, 2**63 - 1, -(2**63), 0.5, 0.005, 0.0050000001, 1e-300, 1.5e10, -2.5,
                         1.0, "0.5", "7", "", True, False, None, {"a": 1}, [1], "x"]


def test_numeric_filters_and_metrics_on_typed_hot_paths_match_sqlite(pair: Pair) -> None:
    """Numeric filters and chart metrics on the paths with typed columns (read there, not from
    the text), on integers, reals, int64's ends, numbers in strings and non-numbers. (Charts
    leave out integers past 2**53 and integral reals: a metric is a double on ClickHouse, read back
    as an integer when integral, where SQLite keeps the integer exact and the real a real; with or
    without the typed columns.)"""
    fields = ("metadata.cost", "metadata.total_tokens", "metadata.prompt_tokens", "metadata.completion_tokens",
              "feedback.rating")

    def project(values: list[Any]) -> Scope:
        sid = str(uuid.uuid4())
        events = [Event(event_id=str(uuid.uuid4()), session_id=sid, parent_id=sid, event_type="model", event_name="m",
                        source="diff", start_time=NOW - i * 1000, end_time=NOW - i * 1000, duration=0,
                        metadata={"cost": v, "total_tokens": v, "prompt_tokens": v, "completion_tokens": v},
                        feedback={"rating": v})
                  for i, v in enumerate(values)]
        events.append(Event(event_id=str(uuid.uuid4()), session_id=sid, parent_id=sid, event_type="tool",
                            event_name="t", source="diff", start_time=NOW, end_time=NOW, duration=0))  # no value
        return pair.project(events)

    scope = project(HOT_VALUES)
    for field in fields:
        for operator in ("greater than", "less than", "is", "is not"):
            for value in (0, 1, 7, 0.5, 0.005, -1, 2**53, 2**63 - 1, -(2**63), 1e-300, 1.5e10):
                query = parsed_query([{"field": field, "operator": operator, "value": value, "type": "number"}], None)
                assert query.conditions, (field, operator, value)
                pair.export(scope, replace(query, limit=1000))
    scope = project([v for v in HOT_VALUES if not (isinstance(v, int) and abs(v) >= 2**53)
                     and not (isinstance(v, float) and v.is_integer())])
    for field in fields:
        for aggregation in ("sum", "avg", "max", "p50", "p95"):
            chart = {"metric": field, "aggregation": aggregation, "bucket": "day", "groupBy": "event_type"}
            pair.chart(scope, replace(parse_chart_request(chart, now=NOW), date_range=None))


def test_objects_and_arrays_compare_as_their_stored_text(pair: Pair) -> None:
    """``is`` on a JSON object or array compares its text (SQLite's ``json_extract`` keeps the
    numbers as stored); ClickHouse rewrites numbers it extracts (1.0 as 1, exponents spelled
    out), which a generated filter once caught."""
    import orjson

    sid = str(uuid.uuid4())
    nested = {"list": -3.710605435811733e16, "one": 1.0, "many": [100000.0, -0.0, 1.5e300], "tiny": 4.7613018039910135e-137}
    values = [nested, [1.0, {"a": 2.5e-7}], {"one": 2.0}, "{}", 1.0, [1], {"one": 2}]
    events = [Event(event_id=str(uuid.uuid4()), session_id=sid, parent_id=sid, event_type="tool", event_name="t",
                    source="diff", start_time=NOW - i * 1000, end_time=NOW - i * 1000, duration=0,
                    user_properties={"v": v}) for i, v in enumerate(values)]
    scope = pair.project(events)
    for value in [*values[:3], *values[5:]]:  # [1] must not match the stored [1.0], nor {"one":2} {"one":2.0}
        text = orjson.dumps(value).decode()
        for operator in ("is", "is not"):
            query = parsed_query([{"field": "user_properties.v", "operator": operator, "value": text}], None)
            assert query.conditions
            pair.export(scope, replace(query, limit=1000))
        found = pair.run(pair.ch.export_events(scope, parsed_query(
            [{"field": "user_properties.v", "operator": "is", "value": text}], None)))
        assert found[1] == 1
        whole = parsed_query([{"field": "user_properties", "operator": "is", "value": f'{{"v":{text}}}'}], None)
        assert whole.conditions
        pair.export(scope, replace(whole, limit=1000))
        assert pair.run(pair.ch.export_events(scope, whole))[1] == 1
