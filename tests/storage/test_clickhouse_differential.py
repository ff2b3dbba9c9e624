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
