"""The read side the store calls, each a function of a connection inside a read transaction:
a session's events here; the compiled queries (filters, pages, charts, session lists, schema)
in their own modules."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from tracehive.model.event import Event
from tracehive.storage.children import complete_session
from tracehive.storage.postgres.rows import EVENT_COLUMNS, row_to_event

Conn = AsyncConnection[Any]


async def session_events(conn: Conn, project_id: str, session_id: str) -> list[Event]:
    """Every event of a session, oldest first (ties in arrival order), with ``children_ids``
    completed from the parent links among them."""
    cur = await conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE project_id = %s AND session_id = %s ORDER BY start_time, seq",
        (project_id, session_id),
    )
    events = [row_to_event(r) for r in await cur.fetchall()]
    return complete_session(events)


# The compiled queries, re-exported so the store has one module to call.
from tracehive.storage.postgres.chart import run_chart  # noqa: E402
from tracehive.storage.postgres.export import export_page, stream_chunk, stream_pages  # noqa: E402
from tracehive.storage.postgres.schema_fields import schema_fields  # noqa: E402
from tracehive.storage.postgres.session_list import list_sessions  # noqa: E402

__all__ = ["export_page", "list_sessions", "run_chart", "schema_fields", "session_events", "stream_chunk",
           "stream_pages"]
