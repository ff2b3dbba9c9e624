"""Reads of settled days without FINAL (``storage/clickhouse/settled.py``), on chDB.

Each read is compared with the same read over ``events FINAL`` (the query functions called
without the store's ``SettledDays``) on the same data, after updates, rewrites that move events
between days, deletes (tombstones) and merges; and each test checks that the path it means to
exercise is the one taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.chdb import require_chdb

require_chdb()

from tests.storage.test_contract import make_event, new_id
from tracehive.model.event import EventUpdate
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import Aggregation, Bucket, ChartQuery
from tracehive.query.filters import Condition, DateRange, EventQuery, FieldRef, Operator, ValueType
from tracehive.query.session_list import SessionListQuery
from tracehive.storage.clickhouse import ClickHouseEventStore, reads
from tracehive.storage.clickhouse.chart import run_chart
from tracehive.storage.clickhouse.lines import event_lines
from tracehive.storage.clickhouse.sessions import list_sessions
from tracehive.storage.clickhouse.settled import FINAL, SettledDays, Source, day_of, read

pytestmark = pytest.mark.anyio

DAY = 86_400_000
T0 = 20_000 * DAY  # a day boundary
SCOPE = Scope(org_id="org", workspace_id="ws", project_id="project-settled", project_name="p",
              key_kind=KeyKind.PROJECT, key_id="k")


@pytest.fixture
async def events(tmp_path: Path) -> AsyncIterator[ClickHouseEventStore]:
    store = ClickHouseEventStore.chdb(tmp_path / "events")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def days_of(store: ClickHouseEventStore) -> SettledDays:
    days = store._days  # the store's own tracker is what is under test
    assert days is not None
    return days


async def three_days(store: ClickHouseEventStore) -> dict[str, Any]:
    """Sessions over three days with models and tools (costs, users), then an update, a rewrite
    that moves an event to the next day, and a delete: every kind of version a day can hold."""
    ids: dict[str, Any] = {"sessions": []}
    for day in range(3):
        session = new_id()
        ids["sessions"].append(session)
        batch = [make_event(session, event_type="session", parent_id=None, start=T0 + day * DAY + 1_000,
                            end=T0 + day * DAY + 90_000, name=f"s{day}")]
        for i in range(12):
            kind = "model" if i % 3 else "tool"
            batch.append(make_event(session, event_type=kind, start=T0 + day * DAY + 2_000 + i * 1_000,
                                    name=f"{kind}-{i % 4}", metadata={"cost": 0.001 * i, "total_tokens": 10 * i},
                                    config={"model": "gpt-4o" if i % 2 else "claude"},
                                    user_properties={"user_id": f"u{i % 3}"}))
        await store.write_events(SCOPE, batch)
        ids[day] = [e.event_id for e in batch[1:]]
    await store.update_event(SCOPE, ids[0][1], EventUpdate(metadata={"cost": 9.5}, feedback={"rating": 4}))
    moved = ids[1][2]
    [old] = [e for e in await store.session_events(SCOPE, ids["sessions"][1]) if e.event_id == moved]
    old.start_time, old.end_time = old.start_time + DAY, old.end_time + DAY
    await store.write_events(SCOPE, [old])
    await store.delete_event(SCOPE, ids[2][3])
    return ids


async def merge(store: ClickHouseEventStore) -> None:
    """Every day to one part, as background merges leave a day no longer written to (tombstones
    kept: no CLEANUP)."""
    ex = store._executor()
    await ex.command("OPTIMIZE TABLE events FINAL")
    await days_of(store).refresh(ex, force=True)


def searches() -> list[EventQuery]:
    week = DateRange(T0, T0 + 3 * DAY)
    model = Condition(FieldRef("event_type"), Operator.IS, ValueType.STRING, "model")
    cost = Condition(FieldRef("metadata", ("cost",)), Operator.GREATER_THAN, ValueType.NUMBER, 0.004)
    return [
        EventQuery(),
        EventQuery(date_range=week, limit=5),
        EventQuery(date_range=week, limit=5, page=4),
        EventQuery(conditions=(model, cost), date_range=week, limit=50),
        EventQuery(conditions=(model,), limit=7, page=2),
        EventQuery(date_range=DateRange(T0 + DAY, T0 + DAY + 50_000), limit=100),
        EventQuery(conditions=(cost,), ignore_order=True, limit=1000),
    ]


async def every_read(store: ClickHouseEventStore, days: SettledDays | None) -> dict[str, Any]:
    """Each query read of the store, through the query functions with ``days`` (None: FINAL)."""
    ex = store._executor()
    p = SCOPE.project_id
    out: dict[str, Any] = {}
    for i, q in enumerate(searches()):
        page, total = await reads.export_page(ex, p, q, days=days)
        out[f"page{i}"] = ([e.to_dict() for e in page], total)
        if q.ignore_order:
            out[f"page{i}"] = (sorted(out[f"page{i}"][0], key=lambda e: e["event_id"]), total)
        out[f"stream{i}"] = [e.event_id async for chunk in reads.stream(ex, p, q, chunk=4, days=days) for e in chunk]
        out[f"lines{i}"] = [line async for chunk in event_lines(ex, p, q, scope_fields=True, chunk=5, days=days)
                            for line in chunk]
        out[f"schema{i}"] = await reads.schema_fields(ex, p, q, 50, days=days)
    for aggregation in (Aggregation.COUNT, Aggregation.P95, Aggregation.SUM):
        chart = ChartQuery(date_range=DateRange(T0, T0 + 4 * DAY), metric=FieldRef("metadata", ("cost",)),
                           bucket=Bucket.DAY, aggregation=aggregation, group_by=FieldRef("event_type"))
        out[f"chart-{aggregation.value}"] = await run_chart(ex, p, chart, days=days)
    for sort_by in ("start_time", "cost", "num_events"):
        sessions, total = await list_sessions(ex, p, SessionListQuery(sort_by=sort_by, limit=2), days=days)
        out[f"sessions-{sort_by}"] = ([s.to_dict() for s in sessions], total)
    return out


async def test_settled_days_read_as_final_does(events: ClickHouseEventStore) -> None:
    await three_days(events)
    await merge(events)
    days = days_of(events)
    ex = events._executor()
    everything = await days.source(ex, None, None, mixed=False)
    assert everything.table == "events" and everything.live, "every day is one part: no FINAL"
    assert all(days.is_settled(day_of(T0 + d * DAY)) for d in range(3))
    assert await every_read(events, days) == await every_read(events, None)


async def test_some_days_settled_read_as_final_does(events: ClickHouseEventStore) -> None:
    ids = await three_days(events)
    await merge(events)
    # New versions in day 1 (an update) and a new day: those two are no longer settled.
    await events.update_event(SCOPE, ids[1][0], EventUpdate(metadata={"cost": 0.5}))
    await events.write_events(SCOPE, [make_event(ids["sessions"][2], event_type="model", start=T0 + 5 * DAY)])
    days = days_of(events)
    ex = events._executor()
    assert days.is_settled(day_of(T0)) and not days.is_settled(day_of(T0 + DAY))
    mixed = await days.source(ex, None, None, mixed=True)
    assert mixed.table.startswith("(SELECT"), "settled days without FINAL, the others with it"
    assert (await days.source(ex, None, None, mixed=False)).table == FINAL
    assert (await days.source(ex, T0, T0 + 100, mixed=False)).table == "events"
    assert await every_read(events, days) == await every_read(events, None)


async def test_a_write_unsettles_its_day_before_the_next_read(events: ClickHouseEventStore) -> None:
    ids = await three_days(events)
    await merge(events)
    q = EventQuery(date_range=DateRange(T0, T0 + DAY - 1), limit=100)
    before, total = await events.export_events(SCOPE, q)
    await events.update_event(SCOPE, ids[0][4], EventUpdate(metadata={"cost": 123.0}))
    after, total_after = await events.export_events(SCOPE, q)
    assert total_after == total == len(after), "the new version replaces the old one: no duplicate"
    [updated] = [e for e in after if e.event_id == ids[0][4]]
    assert updated.metadata["cost"] == 123.0
    assert {e.event_id for e in after} == {e.event_id for e in before}


async def test_a_read_that_overlaps_an_insert_is_read_again_with_final(events: ClickHouseEventStore) -> None:
    ids = await three_days(events)
    await merge(events)
    days = days_of(events)
    ex = events._executor()
    target = ids[0][5]
    sources: list[Source] = []

    async def run(source: Source) -> list[tuple[Any, ...]]:
        sources.append(source)
        rows = await ex.query(f"SELECT event_id, metadata FROM {source.table} WHERE project_id = {{p:String}}"
                              f"{source.live} AND event_id = {{e:String}}", {"p": SCOPE.project_id, "e": target})
        if len(sources) == 1:  # an insert into the day lands while the first read runs
            await events.update_event(SCOPE, target, EventUpdate(metadata={"cost": 77.0}))
        return rows

    rows = await read(days, ex, T0, T0 + DAY - 1, run)
    assert [s.table for s in sources] == ["events", FINAL]
    assert len(rows) == 1 and '"cost":77.0' in rows[0][1]


async def test_a_refresh_during_an_insert_leaves_its_day_unsettled(events: ClickHouseEventStore) -> None:
    days = days_of(events)
    ex = events._executor()
    session = new_id()
    day = day_of(T0 + 9 * DAY)
    # The insert is on the engine's one thread first, the refresh's question queued behind it:
    # the refresh sees the day as one part, but the insert had not returned when it was asked.
    insert = asyncio.create_task(events.write_events(SCOPE, [
        make_event(session, event_type="model", start=T0 + 9 * DAY + i) for i in range(2000)]))
    while not days._marked.get(day):  # (wait for the insert to have begun)
        await asyncio.sleep(0.001)
    await days.refresh(ex, force=True)
    await insert
    assert not days.is_settled(day)
    await days.refresh(ex, force=True)
    assert days.is_settled(day), "the next refresh settles it"
