"""``Store.schema_fields`` on PostgreSQL: the field paths seen in a bounded sample of matching
events, as the SQLite backend reports them (``storage/sqlite/schema.py``).

One statement: the newest ``sample`` matching events (the WHERE and order of ``compile_export``),
then a recursive walk of each JSON column of each sampled event through its objects (never into
arrays), keeping the distinct (event_type, column, path) of every member that is not null, and
the columns themselves where they hold something other than null, {} or [] (nor a JSON string
"{}" or "[]": SQLite compares json_tree's value, which for a string is its text). The walk runs
in PostgreSQL, so the JSON never leaves the database; Python only checks the names.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from tracehive.query.event_query import EventQuery
from tracehive.query.schema import MAX_SCHEMA_FIELDS, field_name
from tracehive.storage.postgres.compile import C, where_clause
from tracehive.storage.postgres.export import snapshot

Conn = AsyncConnection[Any]

_SCALAR_COLUMNS = ("event_id", "session_id", "parent_id", "event_type", "event_name", "source", "error",
                   "start_time", "end_time", "duration")  # fmt: skip
_JSON_COLUMNS = ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties", "children_ids")


def compile_schema(project_id: str, query: EventQuery, sample: int) -> tuple[str, list[Any]]:
    where, params = where_clause(project_id, query.date_range, query.conditions)
    columns = ", ".join(f"e.{c}" for c in dict.fromkeys(("event_type",) + _SCALAR_COLUMNS + _JSON_COLUMNS))
    scalars = ", ".join(f"('{c}', s.{c} IS NOT NULL)" for c in _SCALAR_COLUMNS)
    jsons = ", ".join(f"('{c}', s.{c})" for c in _JSON_COLUMNS)
    sql = f"""
WITH RECURSIVE sample AS MATERIALIZED (
    SELECT {columns} FROM events AS e WHERE {where}
    ORDER BY e.start_time DESC, e.seq DESC LIMIT %s
),
tree (event_type, name, path, value) AS (
    SELECT s.event_type, c.name, ARRAY[]::text[], c.value
    FROM sample AS s CROSS JOIN LATERAL (VALUES {jsons}) AS c (name, value)
    WHERE c.value IS NOT NULL
    UNION ALL
    SELECT t.event_type, t.name, t.path || m.key, m.value
    FROM tree AS t CROSS JOIN LATERAL json_each(CASE WHEN json_typeof(t.value) = 'object' THEN t.value END) AS m
),
found (event_type, name, path) AS (
    SELECT s.event_type, c.name, NULL::text[]
    FROM sample AS s CROSS JOIN LATERAL (VALUES {scalars}) AS c (name, present)
    WHERE c.present
    UNION
    SELECT event_type, name, path FROM tree
    WHERE json_typeof(value) <> 'null'
      AND (cardinality(path) > 0 OR value::text NOT IN ('{{}}', '[]', '"{{}}"', '"[]"'))
)
SELECT event_type, name, path FROM found
ORDER BY event_type {C}, name {C}, path {C} NULLS FIRST
LIMIT %s
"""
    return sql, [*params, sample, MAX_SCHEMA_FIELDS]


async def schema_fields(conn: Conn, project_id: str, query: EventQuery, sample: int) -> list[tuple[str, str]]:
    sql, params = compile_schema(project_id, query, sample)
    async with snapshot(conn):
        rows = await (await conn.execute(sql, params)).fetchall()
    found: set[tuple[str, str]] = set()
    for event_type, column, path in rows:
        if path is None:
            found.add((column, event_type))
            continue
        name = field_name(column, path)
        if name is not None:
            found.add((name, event_type))
            if path:
                found.add((column, event_type))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
