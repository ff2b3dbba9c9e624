"""The SQLite query compiler keeps every user value and path out of the SQL text."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tracehive.query.filters import Operator, ValueType, parse_export_request
from tracehive.storage.sqlite.compile import compile_export, json_path
from tracehive.storage.sqlite.migrations import migrate
from tracehive.storage.sqlite.project_keys import Owner, sql_text

MARK = "zqxmarker"


def every_filter() -> list[dict[str, Any]]:
    """One filter per (field kind, operator, type) the parser accepts, all carrying the marker."""
    out = []
    for vtype in ValueType:
        for operator in Operator:
            for field in ("event_name", "duration", f"metadata.{MARK}-a.0.{MARK}_b"):
                value: Any = {ValueType.STRING: f"{MARK}' OR 1=1 --", ValueType.NUMBER: "123456789.5",
                              ValueType.BOOLEAN: "true", ValueType.DATETIME: "2024-05-01T00:00:00Z"}[vtype]
                out.append({"field": field, "operator": operator.value, "value": value, "type": vtype.value})
    return out


def accepted() -> list[dict[str, Any]]:
    good = []
    for flt in every_filter():
        try:
            parse_export_request({"filters": [flt]})
        except Exception:
            continue
        good.append(flt)
    return good


# Rows hold the project's key; the project id (a UUID of ours) is selected as a constant.
OWNER = Owner(7, "0f9b6a52-3c1e-4d5a-9b7e-2f4c8d1a6e30", "org", "workspace")


def test_the_project_id_constant_is_a_quoted_sql_string() -> None:
    conn = sqlite3.connect(":memory:")
    for value in (OWNER.project_id, "it's", "'; DROP TABLE events; --", "\\'"):
        assert conn.execute(f"SELECT {sql_text(value)}").fetchone()[0] == value


@pytest.fixture(scope="module")
def conn() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db)
    return db


def test_many_combinations_are_accepted() -> None:
    assert len(accepted()) >= 50


@pytest.mark.parametrize("flt", accepted(), ids=lambda f: f"{f['field'].split('.')[0]}|{f['operator']}|{f['type']}")
def test_values_and_paths_are_parameters(conn: sqlite3.Connection, flt: dict[str, Any]) -> None:
    query = parse_export_request({"filters": [flt], "dateRange": {"$gte": 1234567, "$lte": 7654321}})
    compiled = compile_export(OWNER, query)
    for sql, params in ((compiled.select_sql, compiled.select_params), (compiled.count_sql, compiled.count_params)):
        assert MARK not in sql and "123456789" not in sql and "1234567" not in sql
        assert sql.count("?") == len(params)
        assert params[0] == OWNER.key
        conn.execute(sql, params).fetchall()  # valid SQL with these parameters


def test_json_paths_are_quoted_segments() -> None:
    assert json_path(()) == "$"
    assert json_path(("chat_history", 0, "content")) == '$."chat_history"[0]."content"'
    assert json_path(("a-b", "_")) == '$."a-b"."_"'
    with pytest.raises(ValueError):
        json_path(('a"b',))


# Hot JSON paths: literal constants that match the expression indexes of migration 3 ------------

HOT_FILTERS = [
    ({"field": "config.model", "operator": "is", "value": "gpt-4o", "type": "string"}, "events_by_model"),
    ({"field": "user_properties.user_id", "operator": "is", "value": "user_42"}, "events_by_user_id"),
    ({"field": "feedback.rating", "operator": "greater than", "value": 3, "type": "number"}, "events_by_rating"),
]


def _plan(conn: sqlite3.Connection, body: dict[str, Any]) -> str:
    compiled = compile_export(OWNER, parse_export_request(body))
    rows = conn.execute("EXPLAIN QUERY PLAN " + compiled.count_sql, compiled.count_params).fetchall()
    return " | ".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(("flt", "index"), HOT_FILTERS, ids=lambda x: x if isinstance(x, str) else x["field"])
def test_hot_paths_use_their_expression_index(conn: sqlite3.Connection, flt: dict[str, Any], index: str) -> None:
    plan = _plan(conn, {"filters": [flt]})
    assert f"USING INDEX {index} " in plan, plan


def test_hot_path_sql_carries_only_our_constant() -> None:
    from tracehive.storage.sqlite.compile import HOT_PATHS

    query = parse_export_request({"filters": [{"field": "metadata.cost", "operator": "greater than", "value": 1}]})
    sql = compile_export(OWNER, query).count_sql
    assert "json_extract(e.metadata, '$.\"cost\"')" in sql and HOT_PATHS[("metadata", ("cost",))] in sql
    # A path that is not hot stays a parameter, even one that looks like a hot path.
    for field in ("metadata.cost.0", "metadata.costs", "inputs.cost", "metadata.Cost"):
        query = parse_export_request({"filters": [{"field": field, "operator": "greater than", "value": 1}]})
        compiled = compile_export(OWNER, query)
        assert "'$." not in compiled.count_sql and compiled.count_sql.count("?") == len(compiled.count_params)


def test_type_and_name_searches_are_checked_inside_the_time_index(conn: sqlite3.Connection) -> None:
    """Migration 6: no index of their own (each cost every write); the time range's slice of
    events_timeline carries type and name, so the count never reads the table and the page is in
    time order (only ties on start_time are sorted, by rowid)."""
    for field in ("event_type", "event_name"):
        body = {"filters": [{"field": field, "operator": "is", "value": "model"}],
                "dateRange": {"$gte": 1, "$lte": 2}}
        compiled = compile_export(OWNER, parse_export_request(body))
        select = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + compiled.select_sql,
                                                              compiled.select_params))
        count = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + compiled.count_sql,
                                                             compiled.count_params))
        assert "USING INDEX events_timeline (project_key=? AND start_time>? AND start_time<?)" in select, select
        assert "TEMP B-TREE FOR ORDER BY" not in select, select  # "RIGHT PART OF ORDER BY": ties only
        assert count == "SEARCH e USING COVERING INDEX events_timeline (project_key=? AND start_time>? AND start_time<?)"


@pytest.mark.parametrize("sort_by", ["start_time", "event_name", "duration", "num_events", "cost", "total_tokens"])
@pytest.mark.parametrize("date_range", [None, {"start_time": "2026-01-01T00:00:00Z",
                                                "end_time": "2026-02-01T00:00:00Z"}])
def test_the_sessions_list_reads_session_rows_from_their_partial_index(
    conn: sqlite3.Connection, sort_by: str, date_range: dict[str, str] | None
) -> None:
    """Whatever the sort and filters, the sessions are found through events_sessions (the
    session rows only), never by walking every event of the project or of the range."""
    from tracehive.query.session_list import parse_session_list_request
    from tracehive.storage.sqlite.session_list import compile_page

    body: dict[str, Any] = {"sort_by": sort_by, "filters": [
        {"field": "event_name", "operator": "is not", "value": "x"},
        {"field": "metadata.cost", "operator": "greater than", "value": 0}]}
    if date_range:
        body["dateRange"] = date_range
    count_sql, page_sql, count_params, page_params = compile_page(OWNER.key, parse_session_list_request(body))
    for sql, params in ((count_sql, count_params), (page_sql, page_params)):
        plan = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING INDEX events_sessions (project_key=?" in plan, plan
        assert "events_timeline" not in plan and "events_by_parent" not in plan, plan


@pytest.mark.parametrize("value", ["gpt-4o", "5", "5.0", "true", "[\"a\"]", "{\"a\": 1}", "", " x"])
def test_hot_string_is_matches_like_the_general_form(conn: sqlite3.Connection, value: str) -> None:
    """The index-friendly form of ``is`` on a hot path selects exactly what the general form does."""
    from tracehive.query.filters import parse_filter
    from tracehive.storage.sqlite.compile import condition_sql

    docs = ['{"model": "gpt-4o"}', '{"model": 5}', '{"model": 5.0}', '{"model": true}', '{"model": ["a"]}',
            '{"model": {"a": 1}}', '{"model": ""}', '{"model": " x"}', '{"model": null}', "{}", '{"model": "5"}']
    cond = parse_filter({"field": "config.model", "operator": "is", "value": value, "type": "string"}, 0)
    hot_sql, hot_params = condition_sql(cond)
    general = parse_filter({"field": "config.model.x", "operator": "is", "value": value, "type": "string"}, 0)
    gen_sql, gen_params = condition_sql(general)
    gen_params = ['$."model"' if p == '$."model"."x"' else p for p in gen_params]
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS t (config TEXT)")
    conn.execute("DELETE FROM t")
    conn.executemany("INSERT INTO t VALUES (?)", [(d,) for d in docs])
    a = conn.execute(f"SELECT config FROM t AS e WHERE {hot_sql}", hot_params).fetchall()
    b = conn.execute(f"SELECT config FROM t AS e WHERE {gen_sql}", gen_params).fetchall()
    assert a == b
