"""The PostgreSQL query compiler (``storage/postgres/compile.py`` and the functions of migrations 2-3):
user values stay out of the SQL text, the SQLite rules it reproduces hold in the corners, and no
stored value makes a query raise. (Whole-query answers are compared with the SQLite backend in
``tests/fuzz/test_filters_differential.py``; the store contract in ``test_contract.py``.)"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from tests import pg
from tracehive.model.errors import ValidationFailed
from tracehive.model.event import Event
from tracehive.query.chart import parse_chart_request
from tracehive.query.filters import Operator, ValueType, parse_export_request
from tracehive.query.session_list import SORT_FIELDS, SessionListQuery
from tracehive.storage.postgres import rows
from tracehive.storage.postgres.chart import compile_chart, compile_ranks, run_chart
from tracehive.storage.postgres.compile import compile_export, compile_stream, number_ranges
from tracehive.storage.postgres.export import export_page
from tracehive.storage.postgres.migrations import migrate
from tracehive.storage.postgres.schema_fields import compile_schema
from tracehive.storage.postgres.session_list import compile_page, list_sessions

MARK = "zqxmarker"
PROJECT = "project-" + MARK


# Pure compilation ------------------------------------------------------------------------------------


def every_filter() -> list[dict[str, Any]]:
    """One filter per (field kind, operator, type) the parser accepts, all carrying the marker."""
    out = []
    for vtype in ValueType:
        for operator in Operator:
            for field in ("event_name", "duration", f"metadata.{MARK}-a.0.{MARK}_b", "config.model", "metadata"):
                value: Any = {ValueType.STRING: f"{MARK}' OR 1=1 --", ValueType.NUMBER: "123456789.5",
                              ValueType.BOOLEAN: "true", ValueType.DATETIME: "2024-05-01T00:00:00Z"}[vtype]
                out.append({"field": field, "operator": operator.value, "value": value, "type": vtype.value})
    # A value that can only equal a string takes the ``->>`` form (the hot path's index).
    out.append({"field": f"metadata.{MARK}.7", "operator": "is", "value": f"{MARK}%s"})
    out.append({"field": "config.model", "operator": "is not", "value": f"{MARK}%s"})
    return out


def accepted() -> list[dict[str, Any]]:
    good = []
    for flt in every_filter():
        try:
            parse_export_request({"filters": [flt]})
        except ValidationFailed:
            continue
        good.append(flt)
    return good


def statements(flt: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    query = parse_export_request({"filters": [flt], "dateRange": {"$gte": 1234567, "$lte": 7654321}})
    compiled = compile_export(PROJECT, query)
    stream = compile_stream(PROJECT, query)
    chart = parse_chart_request({"filters": [flt], "metric": f"metadata.{MARK}", "groupBy": f"inputs.{MARK}.3",
                                 "aggregation": "p95"}, now=1_700_000_000_000)
    count_sql, page_sql, count_params, page_params = compile_page(PROJECT, SessionListQuery(conditions=query.conditions,
                                                                                          sort_by="cost"))
    return [(compiled.select_sql, compiled.select_params), (compiled.count_sql, compiled.count_params),
            stream.first(10), stream.after(1.5, MARK, 10), compile_chart(PROJECT, chart),
            compile_ranks(PROJECT, chart), (count_sql, count_params), (page_sql, page_params),
            compile_schema(PROJECT, query, 100)]


def test_many_combinations_are_accepted() -> None:
    assert len(accepted()) >= 60


@pytest.mark.parametrize("flt", accepted(), ids=lambda f: f"{f['field'].split('.')[0]}|{f['operator']}|{f.get('type')}")
def test_values_and_paths_are_parameters(flt: dict[str, Any]) -> None:
    for sql, params in statements(flt):
        assert MARK not in sql and "123456789" not in sql and "1234567" not in sql and "OR 1=1" not in sql
        # Every placeholder has its parameter (a stray % would be one more).
        assert sql.count("%s") == len(params) and sql.count("%") == sql.count("%s"), sql
        assert params[0] == PROJECT or params[-1] == PROJECT or PROJECT in params


def test_hot_paths_use_the_index_expression() -> None:
    query = parse_export_request({"filters": [{"field": "config.model", "operator": "is", "value": "gpt-4o"}]})
    assert "(e.config ->> 'model') = %s::text" in compile_export(PROJECT, query).count_sql
    # A value that may be a number is no plain string comparison.
    query = parse_export_request({"filters": [{"field": "config.model", "operator": "is", "value": "5"}]})
    assert "->> 'model'" not in compile_export(PROJECT, query).count_sql


def test_number_ranges_are_exact() -> None:
    big = 2**53 + 1  # no double equals it
    assert number_ranges("=", big) == (big, big, 1.0, 0.0)
    assert number_ranges(">", big)[2] == 2.0**53 + 2 and number_ranges("<", big)[3] == 2.0**53
    assert number_ranges(">=", 1.5)[:2] == (2, None) and number_ranges("<", 1.5)[:2] == (None, 1)
    assert number_ranges("=", 1.5)[:2] == (1, 0)  # no integer equals 1.5
    assert number_ranges(">", 0.1)[2] == math.nextafter(0.1, math.inf)
    assert number_ranges("=", 5.0) == (5, 5, 5.0, 5.0)
    assert number_ranges("=", 1e300)[0] == int(1e300)


# Against PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture(scope="module")
def conn(loop: asyncio.AbstractEventLoop) -> Iterator[psycopg.AsyncConnection[Any]]:
    pg.require_postgres()
    name = f"th_queries_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        connection = loop.run_until_complete(psycopg.AsyncConnection.connect(pg.url_of(name), autocommit=True))
        loop.run_until_complete(migrate(connection))
        try:
            yield connection
        finally:
            loop.run_until_complete(connection.close())
    finally:
        with psycopg.connect(pg.ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scalar(loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection[Any], sql: str, params: Any = ()) -> Any:
    async def run() -> Any:
        row = await (await conn.execute(sql, params)).fetchone()
        return row[0] if row else None

    return loop.run_until_complete(run())


def insert(loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection[Any], project: str,
           events: list[Event]) -> None:
    async def run() -> None:
        async with conn.cursor() as cur:
            await cur.executemany(f"INSERT INTO events ({rows.INSERT_COLUMNS}) VALUES ({rows.PLACEHOLDERS})",
                                  [rows.event_params(e, project, "org", "ws", 0) for e in events])

    loop.run_until_complete(run())


def event(i: int, **fields: Any) -> Event:
    eid = f"00000000-0000-4000-8000-{i:012d}"
    return Event(event_id=eid, session_id=eid, event_type="tool", event_name="e", source="t",
                 start_time=1_700_000_000_000 + i, end_time=1_700_000_000_000 + i, duration=0, **fields)


@pytest.mark.parametrize("flt", accepted(), ids=lambda f: f"{f['field'].split('.')[0]}|{f['operator']}|{f.get('type')}")
def test_compiled_statements_run(loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection[Any],
                                 flt: dict[str, Any]) -> None:
    async def run() -> None:
        for sql, params in statements(flt):
            await (await conn.execute(sql, params)).fetchall()

    loop.run_until_complete(run())


JULIAN_CASES = [
    "2024-05-01", "2024-05-01T00:00:00Z", "2024-02-30", "2024-02-32", "2024-13-01", "5", "0", " 7 ", "1e3", "12:30",
    "12:30:45.5", "2024-05-01 10:00+05:30", "2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00,5Z", "+2024-05-01",
    "-0001-01-01", "0000-01-01", "10000-01-01", "2024-5-1", "2024-05-01T24:00", "2024-05-01T23:60", "2024-05-01T10",
    "2024-05-01x", "20240501", "9999-12-31T23:59:59-23:59", "2024-05-01T10:00:00.9999999Z", "5373484.4", "5373484.5",
    "-1", ".5", "5.", "1e400", "1e-400", "-1e-400", "NaN", "Infinity", "0x10", "2024-05-01T10:00:00.Z", "2024-05-01 ",
    " 2024-05-01", "2024-05-01T", "2024-05-01t10:00", "12:30Z", "24:00", "1:30", "2024-05-01T10:00:00.5 Z",
    "2024-05-01\t10:00", "١٢٣", "", ".", "+", "-4713-11-24T12:00:00", "-4713-11-24T11:59:59.999",
    "2024-05-01T10:00:00." + "9" * 400, "12:00:00." + "1" * 320, "2024-05-01T10:00+14:59", "2024-05-01T10:00+15:00",
]


def _random_datetime_text(rnd: random.Random) -> str:
    text = "-".join([rnd.choice(["2024", "0001", "9999", "0000", "-4713", "12"]), rnd.choice(["01", "02", "12", "13", "1"]),
                     rnd.choice(["01", "29", "31", "32", "00"])])
    if rnd.random() < 0.8:
        text += rnd.choice(["T", " ", "", "TT"]) + rnd.choice(["00", "23", "24", "25"]) + ":" + rnd.choice(["00", "59", "60"])
        if rnd.random() < 0.6:
            text += ":" + rnd.choice(["00", "59", "60"]) + rnd.choice(["", "." + str(rnd.randint(0, 10**9))])
        text += rnd.choice(["", "Z", " z", "+14:00", "-05:30", "+15:00", " ", "x"])
    return text


def test_datetimes_read_as_sqlite_reads_them(loop: asyncio.AbstractEventLoop,
                                             conn: psycopg.AsyncConnection[Any]) -> None:
    """th_julian_ms equals SQLite's round((julianday(s) - 2440587.5) * 86400000.0), NULL included
    (not ``now``: the clock), and never raises."""
    rnd = random.Random(4)
    cases = JULIAN_CASES + [_random_datetime_text(rnd) for _ in range(3000)]
    cases += [f"{rnd.choice(['', ' ', '+', '-'])}{rnd.randint(0, 10**7) / 10**rnd.randint(0, 6)}e{rnd.randint(-3, 3)}"
              for _ in range(500)]
    lite = sqlite3.connect(":memory:")
    expected = [lite.execute("SELECT round((julianday(?) - 2440587.5) * 86400000.0)", (s,)).fetchone()[0] for s in cases]

    async def actual() -> list[Any]:
        cur = await conn.execute("SELECT th_julian_ms(s) FROM unnest(%s::text[]) WITH ORDINALITY AS u (s, i) ORDER BY i",
                                 (cases,))
        return [r[0] for r in await cur.fetchall()]

    got = loop.run_until_complete(actual())
    wrong = [(s, e, g) for s, e, g in zip(cases, expected, got) if (e is None) != (g is None) or (e is not None and e != g)]
    assert not wrong, wrong[:10]


REALS = [5.0, 1e20, 0.1, 0.30000000000000004, 1e-7, 1.5, 123456789012345678.0, 1e308, 5e-324, -0.0, 1e16, 1e15,
         123456789.123, 0.7999999999999999, 2.5e-5, 1e21, 100.0, 1 / 3, 9.999999999999999e14, 0.0001, -1.5e300,
         float(2**63), float(2**64), 1.7976931348623157e308, 2.2250738585072014e-308, 4e-320, -123.456]


def test_real_text_is_sqlites(loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection[Any]) -> None:
    """th_real_text gives CAST(real AS TEXT) of SQLite; the one known difference: SQLite's digit
    loop rounds some ties in the 16th significant digit the other way."""
    lite = sqlite3.connect(":memory:")
    for value in REALS:
        assert scalar(loop, conn, "SELECT th_real_text(%s::float8)", (value,)) == \
            lite.execute("SELECT CAST(? AS TEXT)", (value,)).fetchone()[0], value
    tie = 2327210301333975.0  # SQLite: 2.32721030133397e+15; correctly rounded: ...398e+15
    assert scalar(loop, conn, "SELECT th_real_text(%s::float8)", (tie,)) == "2.32721030133398e+15"


def test_total_is_sqlites_and_never_raises(loop: asyncio.AbstractEventLoop,
                                           conn: psycopg.AsyncConnection[Any]) -> None:
    """th_total is SQLite's total(): a running double sum (0.1 + 0.2 is 0.30000000000000004),
    0.0 for no value, Infinity where PostgreSQL's sum(float8) raises "value out of range"."""
    lite = sqlite3.connect(":memory:")
    for values in ([1e308, 1e308], [-1e308, -1e308, 5.0], [1e308, 1e308, -1e308, -1e308], [1.7976931348623157e308, 1.0],
                   [8.98846567431158e307, 8.98846567431158e307], [0.1, 0.2], [None], [], [5e-324, 5e-324, -1e-323],
                   [2.0**53, 1.0, 1.0], [1.0, 1.0, 2.0**53]):
        expected = lite.execute("SELECT total(v) FROM (SELECT value AS v FROM json_each(?))",
                                (json.dumps(values),)).fetchone()[0]
        got = scalar(loop, conn, "SELECT th_total(v ORDER BY i) FROM unnest(%s::float8[]) WITH ORDINALITY AS u (v, i)",
                     (values,))
        assert got == expected, (values, got, expected)


HOSTILE = ["1e400", "-1e400", "1e-400", "now", "NaN", "Infinity", "2024-05-01T10:00:00." + "9" * 500, "9" * 5000,
           "1e99999999999", "٣", "2024-02-30", "24:00", "-4714-01-01", "{}", "[]", "", "5" * 400 + "e-400"]


def test_no_stored_value_makes_a_filter_raise(loop: asyncio.AbstractEventLoop,
                                              conn: psycopg.AsyncConnection[Any]) -> None:
    values: list[Any] = [*HOSTILE, 1e308, -1e308, 5e-324, 2**64 - 1, -(2**63), True, None, [1, "1e400", None], {"v": "x"}]
    events = [event(i, metadata={"v": v, "list": [v]}, inputs={"v": v}) for i, v in enumerate(values)]
    project = "hostile-" + uuid.uuid4().hex
    insert(loop, conn, project, events)
    total = 0
    for vtype in ValueType:
        for operator in Operator:
            for field in ("metadata.v", "metadata.list", "metadata.list.0", "inputs", "duration"):
                for value in ("2024-05-01", "5", "1e20", "true", "x"):
                    try:
                        query = parse_export_request({"filters": [{"field": field, "operator": operator.value,
                                                                   "value": value, "type": vtype.value}]})
                    except ValidationFailed:
                        continue
                    found, count = loop.run_until_complete(export_page(conn, project, query))
                    assert len(found) == count
                    total += 1
    assert total > 80


def test_paths_follow_sqlite_not_postgres(loop: asyncio.AbstractEventLoop,
                                          conn: psycopg.AsyncConnection[Any]) -> None:
    """A numeric segment only indexes arrays (``#>`` would read key "0" of an object), a key like
    "-1" only names a member (``#>`` would index from the end of an array)."""
    project = "paths-" + uuid.uuid4().hex
    insert(loop, conn, project, [event(1, metadata={"0": "zero", "list": ["a", "b"]}),
                                 event(2, metadata={"-1": "minus", "list": ["c"]})])

    def ids(field: str, value: str) -> list[str]:
        query = parse_export_request({"filters": [{"field": field, "operator": "is", "value": value}]})
        return [e.event_id[-1] for e in loop.run_until_complete(export_page(conn, project, query))[0]]

    assert ids("metadata.0", "zero") == []
    assert ids("metadata.list.-1", "b") == [] and ids("metadata.list.-1", "c") == []
    assert ids("metadata.-1", "minus") == ["2"]
    assert ids("metadata.list.1", "b") == ["1"]


def test_chart_refuses_past_its_limits(loop: asyncio.AbstractEventLoop, conn: psycopg.AsyncConnection[Any]) -> None:
    project = "limits-" + uuid.uuid4().hex
    insert(loop, conn, project, [event(i * 60_000, metadata={"g": i % 3}) for i in range(10)])
    query = parse_chart_request({"bucket": "minute", "groupBy": "metadata.g"}, now=1_700_001_000_000)
    assert len(loop.run_until_complete(run_chart(conn, project, query))) == 10
    with pytest.raises(ValidationFailed, match="buckets"):
        loop.run_until_complete(run_chart(conn, project, replace(query, max_buckets=9)))
    with pytest.raises(ValidationFailed, match="rows"):
        loop.run_until_complete(run_chart(conn, project, replace(query, max_rows=9)))


def test_reads_open_a_snapshot_only_when_idle(loop: asyncio.AbstractEventLoop,
                                              conn: psycopg.AsyncConnection[Any]) -> None:
    """On an idle connection the functions open REPEATABLE READ themselves; inside a caller's
    transaction they run in it, as they are."""
    query = parse_chart_request({"aggregation": "p95"}, now=1_700_000_000_000)

    async def run() -> None:
        await run_chart(conn, "nobody", query)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        async with conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            await run_chart(conn, "nobody", query)
            row = await (await conn.execute("SHOW transaction_isolation")).fetchone()
            assert row is not None and row[0] == "repeatable read"
            for sort in SORT_FIELDS:
                assert await list_sessions(conn, "nobody", SessionListQuery(sort_by=sort)) == ([], 0)

    loop.run_until_complete(run())
