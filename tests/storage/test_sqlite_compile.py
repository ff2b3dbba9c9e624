"""The SQLite query compiler keeps every user value and path out of the SQL text."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tracehive.query.filters import Operator, ValueType, parse_export_request
from tracehive.storage.sqlite.compile import compile_export, json_path
from tracehive.storage.sqlite.migrations import migrate

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
    compiled = compile_export("project-" + MARK, query)
    for sql, params in ((compiled.select_sql, compiled.select_params), (compiled.count_sql, compiled.count_params)):
        assert MARK not in sql and "123456789" not in sql and "1234567" not in sql
        assert sql.count("?") == len(params)
        assert params[0] == "project-" + MARK
        conn.execute(sql, params).fetchall()  # valid SQL with these parameters


def test_json_paths_are_quoted_segments() -> None:
    assert json_path(()) == "$"
    assert json_path(("chat_history", 0, "content")) == '$."chat_history"[0]."content"'
    assert json_path(("a-b", "_")) == '$."a-b"."_"'
    with pytest.raises(ValueError):
        json_path(('a"b',))
