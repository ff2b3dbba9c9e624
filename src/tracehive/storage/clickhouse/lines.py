"""The export's JSONL lines built by ClickHouse from the stored text (``iter_event_lines``).

Each line is byte for byte ``orjson.dumps(event.to_dict())`` (or of ``transfer.record(event)``
without the scope ids), as the contract requires, but the engine writes most of it: the JSON
columns are embedded as stored (orjson's own text, which ``dumps(loads(text))`` reproduces), the
text columns are quoted by ``toJSONString``, and the rows come back as ``TabSeparatedRaw`` (a JSON
text holds no raw tab or newline), so Python neither parses JSON nor builds events. Python adds
the three numbers (orjson formats them: ClickHouse prints doubles differently) and the newline.

``toJSONString`` escapes a few characters differently from orjson (upper-case hex for U+000B,
U+000E, U+000F, U+001A..U+001F; U+2028 and U+2029 escaped at all). orjson never writes those
escapes (lower-case hex; U+2028 and U+2029 as they are), so a row whose text holds one of them is
found by searching the page's text for them (``_SUSPECT``), and its line is built from the event
instead: every line is exact. Such rows are rare, and a false match (a string holding the six
characters ``\u000B`` itself) only costs that rebuild. (The engine flagged them before; the
search in Python costs less than the engine's per-row match, 7 of 36 ms a page at 10^7 events.)

Chunks are keyset pages in the stream's order (newest ``start_time`` first, then ``event_id``
descending), read in time windows (``windows.py``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import orjson

from tracehive.model.event import Event
from tracehive.query.event_query import EventQuery
from tracehive.storage.clickhouse.compile import Params
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.lookup import live_rows
from tracehive.storage.clickhouse.rows import READ_COLUMNS, number, row_to_event
from tracehive.storage.clickhouse.settled import SettledDays, Source
from tracehive.storage.clickhouse.windows import Page, newest_first
from tracehive.transfer import record

LINE_CHUNK = 5000

# toJSONString's escapes that orjson never writes (see the module's text).
_SUSPECT = re.compile(rb"\\u(?:000[BEF]|001[A-F]|202[89])")


def _q(column: str) -> str:
    # toJSONString of a NULL (parent_id, error) is NULL; the line says null.
    return f"coalesce(toJSONString({column}), 'null')"


def _line_select(scope_fields: bool) -> str:
    """head (up to ``"start_time":``), start, end, duration, tail, quoted event_id."""
    head = ", ".join([
        "'{\"event_id\":'", _q("event_id"), "',\"session_id\":'", _q("session_id"),
        "',\"parent_id\":'", _q("parent_id"), "',\"children_ids\":'", "children_ids",
        "',\"event_type\":'", _q("event_type"), "',\"event_name\":'", _q("event_name"),
        "',\"source\":'", _q("source"), "',\"config\":'", "config", "',\"inputs\":'", "inputs",
        "',\"outputs\":'", "coalesce(outputs, 'null')", "',\"error\":'", _q("error"), "',\"start_time\":'",
    ])  # fmt: skip
    tail = [
        "',\"metadata\":'", "metadata", "',\"feedback\":'", "feedback", "',\"metrics\":'", "metrics",
        "',\"user_properties\":'", "user_properties",
    ]  # fmt: skip
    if scope_fields:
        tail += ["',\"org_id\":'", _q("org_id"), "',\"workspace_id\":'", _q("workspace_id"),
                 "',\"project_id\":'", _q("project_id"), "',\"tenant\":'", _q("org_id")]  # fmt: skip
    tail.append("'}'")
    return (f"concat({head}), start_time, end_time, duration, concat({', '.join(tail)}), "
            "toJSONString(event_id)")


_SELECT = {True: _line_select(True), False: _line_select(False)}


def _num(text: bytes) -> bytes:
    # As the event path reads it (JSON output parsed, integral doubles as ints), then orjson's text.
    # Up to 15 digits alone (an integral time in ms, as most are) already are that text: ClickHouse
    # writes no leading zeros, and orjson writes an int's digits (longer ones may read as floats).
    if len(text) <= 15 and text.isdigit():
        return text
    return orjson.dumps(number(orjson.loads(text)))


def event_lines(ex: Executor, project_id: str, query: EventQuery, *, scope_fields: bool,
                settings: str = "", chunk: int = LINE_CHUNK,
                days: SettledDays | None = None) -> AsyncIterator[list[bytes]]:
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE

    async def fetch(where: str, params: Params, source: Source) -> Page[bytes]:
        n = params.add(chunk, "UInt64")
        data = await ex.query_raw(
            f"SELECT {_SELECT[scope_fields]} FROM {source.table} WHERE {where}{source.live} "
            f"ORDER BY start_time DESC, event_id DESC LIMIT {n}{settings}",
            params.values, "TabSeparatedRaw",
        )
        rows = data.split(b"\n")
        if rows and rows[-1] == b"":
            rows.pop()
        found: dict[str, Event] = {}
        redo: set[int] = set()
        if _SUSPECT.search(data):  # rows built from their events
            redo = {i for i, r in enumerate(rows) if _SUSPECT.search(r)}
            ids = [orjson.loads(rows[i].rsplit(b"\t", 1)[1]) for i in redo]
            found = {r[0]: row_to_event(r) for r in await live_rows(ex, project_id, "event_id", ids, READ_COLUMNS)}

        def build() -> list[bytes]:
            lines: list[bytes] = []
            for i, row in enumerate(rows):
                head, start, end, duration, tail, quoted_id = row.split(b"\t")
                if not redo or i not in redo:
                    lines.append(b"%b%b,\"end_time\":%b,\"duration\":%b%b\n"
                                 % (head, _num(start), _num(end), _num(duration), tail))
                    continue
                event = found.get(orjson.loads(quoted_id))
                if event is not None:
                    lines.append(dumps(event.to_dict() if scope_fields else record(event), option=newline))
            return lines

        last = rows[-1].split(b"\t") if rows else None
        return Page(build, len(rows), (float(orjson.loads(last[1])), orjson.loads(last[5])) if last else None)

    return newest_first(ex, project_id, query, fetch, chunk, settings, days)
