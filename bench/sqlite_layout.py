#!/usr/bin/env python
"""SQLite events-table layouts side by side (issue #15): what each index costs a write.

One plain Python process inserts the same ~1 KB events (``bench/ingest.py``'s generator: chains,
model and tool events, 100 per body, one session per body) into a fresh database per layout, with
the server writer's pragmas (WAL, ``synchronous=FULL``, 32 MiB cache, autocheckpoint at 10,000
pages), ``--group`` bodies per transaction (the server's group commit joins concurrent requests),
and reports events/s, CPU per event, bytes the process wrote (``/proc/self/io``) per byte of JSON
payload, and the file's size per event. No server, no upserts: a ceiling per layout, to choose
which indexes a write should pay for. The read side of a choice is ``bench/query.py``.

Layouts: ``release`` is the events table and indexes of migrations 1-5; ``without-<index>`` drops
one of them; ``migration-6`` is the release without ``by_time``; ``wide`` serves type and name
filters from one time index that carries both (and session rows from a partial index) instead of
an index each; ``core`` keeps the key, session, parent and chart indexes only; ``int-<layout>``
is a layout with a small integer project key instead of the 36-character project id.

    python bench/sqlite_layout.py                              # every layout, 500 bodies, group 8
    python bench/sqlite_layout.py --bodies 1000 --group 1 release core
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import _uuid, make_events, proc_io  # noqa: E402  (bench helpers)

_COLUMNS = (
    "event_id", "session_id", "parent_id", "event_type", "event_name", "source", "start_time", "end_time",
    "duration", "error", "config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties",
    "children_ids", "org_id", "workspace_id", "implicit", "updated_at",
)  # fmt: skip
_TABLE = """event_id TEXT NOT NULL, session_id TEXT NOT NULL, parent_id TEXT, event_type TEXT NOT NULL,
    event_name TEXT NOT NULL, source TEXT NOT NULL, start_time NUMERIC NOT NULL, end_time NUMERIC NOT NULL,
    duration NUMERIC NOT NULL, error TEXT, config TEXT NOT NULL, inputs TEXT NOT NULL, outputs TEXT,
    metadata TEXT NOT NULL, feedback TEXT NOT NULL, metrics TEXT NOT NULL, user_properties TEXT NOT NULL,
    children_ids TEXT NOT NULL, org_id TEXT NOT NULL, workspace_id TEXT NOT NULL,
    implicit INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL"""

# The release's secondary indexes by name ({p}: the project column), as migrations 1-5 make them.
_INDEXES = {
    "by_session": "({p}, session_id, start_time)",
    "by_parent": "({p}, parent_id)",
    "by_time": "({p}, start_time)",
    "by_type": "({p}, event_type, start_time)",
    "by_name": "({p}, event_name, start_time)",
    "by_model": "({p}, json_extract(config, '$.\"model\"')) WHERE json_extract(config, '$.\"model\"') IS NOT NULL",
    "by_user_id": "({p}, json_extract(user_properties, '$.\"user_id\"')) "
                  "WHERE json_extract(user_properties, '$.\"user_id\"') IS NOT NULL",
    "by_rating": "({p}, json_extract(feedback, '$.\"rating\"')) "
                 "WHERE json_extract(feedback, '$.\"rating\"') IS NOT NULL",
    "chart_duration": "({p}, start_time, event_type, duration)",
    # Candidates, not in a release:
    "by_time_wide": "({p}, start_time, event_type, event_name, duration)",
    "sessions": "({p}, start_time) WHERE event_type = 'session'",
}  # fmt: skip
_RELEASE = ("by_session", "by_parent", "by_time", "by_type", "by_name", "by_model", "by_user_id", "by_rating",
            "chart_duration")  # fmt: skip
_CORE = ("by_session", "by_parent", "chart_duration")
# Type and name filters served by one wide time index (in-index checks) instead of two indexes
# of their own, and the session rows by a partial index.
_WIDE = ("by_session", "by_parent", "by_model", "by_user_id", "by_rating", "by_time_wide", "sessions")


def layout(name: str) -> tuple[str, str, Any]:
    """(DDL, project column, project value) of a layout; ``int-<layout>`` is ``<layout>`` with a
    small integer project key (rows in arrival order, the event id unique per project)."""
    integer = name.startswith("int-")
    base = name[4:] if integer else name
    if base == "release":
        keep = list(_RELEASE)
    elif base == "migration-6":
        keep = [i for i in _RELEASE if i != "by_time"]
    elif base == "core":
        keep = list(_CORE)
    elif base == "wide":
        keep = list(_WIDE)
    elif base.startswith("without-") and base[8:] in _RELEASE:
        keep = [i for i in _RELEASE if i != base[8:]]
    else:
        raise SystemExit(f"unknown layout {name!r}")
    if integer:
        ddl = [f"CREATE TABLE events (id INTEGER PRIMARY KEY, project INTEGER NOT NULL, {_TABLE})",
               "CREATE UNIQUE INDEX events_key ON events (project, event_id)"]
        column, value = "project", 1
    else:
        ddl = [f"CREATE TABLE events (project_id TEXT NOT NULL, {_TABLE}, PRIMARY KEY (project_id, event_id))"]
        column, value = "project_id", str(uuid.uuid4())
    ddl += [f"CREATE INDEX events_{i} ON events {_INDEXES[i].format(p=column)}" for i in keep]
    return ";".join(ddl), column, value


def bodies(n: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    sessions = [_uuid(rng) for _ in range(1000)]
    t_base = int(time.time() * 1000) - 3_600_000
    out = []
    for i in range(n):
        sid = rng.choice(sessions)
        out.append((sid, orjson.dumps({"events": make_events(rng, sid, 100, t_base + i * 10)})))
    return out


def rows_of(sid: str, body: bytes, org: str, ws: str) -> list[tuple[Any, ...]]:
    dumps = orjson.dumps
    now = time.time_ns() // 1_000_000
    rows = []
    for e in orjson.loads(body)["events"]:
        start, end, outputs = e["start_time"], e["end_time"], e.get("outputs")
        rows.append((
            e["event_id"], sid, e.get("parent_id") or sid, e["event_type"], e.get("event_name") or "unknown",
            e.get("source") or "unknown", start, end, end - start, e.get("error"),
            dumps(e.get("config") or {}).decode(), dumps(e["inputs"]).decode(),
            None if outputs is None else dumps(outputs).decode(), dumps(e.get("metadata") or {}).decode(),
            dumps(e.get("feedback") or {}).decode(), dumps(e.get("metrics") or {}).decode(),
            dumps(e.get("user_properties") or {}).decode(), dumps(e.get("children_ids") or []).decode(),
            org, ws, 0, now,
        ))  # fmt: skip
    return rows


def measure(name: str, data: list[tuple[str, bytes]], group: int, workdir: Path) -> dict[str, Any]:
    import sqlite3

    path = workdir / f"{name}.db"
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "cache_size = -32768", "wal_autocheckpoint = 10000"):
        db.execute(f"PRAGMA {pragma}")
    ddl, project_column, project = layout(name)
    db.executescript(ddl)
    insert = (f"INSERT INTO events ({project_column}, {', '.join(_COLUMNS)}) "
              f"VALUES (?, {', '.join('?' * len(_COLUMNS))})")
    org, ws = str(uuid.uuid4()), str(uuid.uuid4())
    io0, cpu0, t0 = proc_io("self"), time.process_time(), time.perf_counter()
    for i, (sid, body) in enumerate(data):
        if i % group == 0:
            db.execute("BEGIN")
        db.executemany(insert, [(project, *row) for row in rows_of(sid, body, org, ws)])
        if i % group == group - 1 or i == len(data) - 1:
            db.execute("COMMIT")
    wall, cpu, written = time.perf_counter() - t0, time.process_time() - cpu0, proc_io("self") - io0
    db.close()
    events = len(data) * 100
    payload = sum(len(b) for _, b in data)
    size = sum(f.stat().st_size for f in workdir.glob(f"{name}.db*"))
    for f in workdir.glob(f"{name}.db*"):
        f.unlink()
    return {"layout": name, "events_per_s": round(events / wall), "cpu_us_per_event": round(cpu / events * 1e6),
            "written_x_payload": round(written / payload, 1), "file_bytes_per_event": round(size / events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("layouts", nargs="*", help="layouts to measure (default: all)")
    parser.add_argument("--bodies", type=int, default=500, help="bodies of 100 events (default 500)")
    parser.add_argument("--group", type=int, default=8, help="bodies per transaction (default 8)")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    names = args.layouts or ["release", *(f"without-{i}" for i in _RELEASE), "migration-6", "wide", "core",
                             "int-migration-6", "int-wide", "int-core"]
    data = bodies(args.bodies, args.seed)
    print(f"{args.bodies * 100:,} events, {args.group} bodies per transaction, "
          f"{sum(len(b) for _, b in data) / args.bodies / 100:.0f} B of JSON per event")
    print(f"{'layout':24s} {'events/s':>9s} {'CPU us/ev':>9s} {'written/payload':>15s} {'file B/ev':>9s}")
    with tempfile.TemporaryDirectory(prefix="tracehive-layout-") as tmp:
        for name in names:
            r = measure(name, data, args.group, Path(tmp))
            print(f"{name:24s} {r['events_per_s']:9,d} {r['cpu_us_per_event']:9d} "
                  f"{r['written_x_payload']:14.1f}x {r['file_bytes_per_event']:9d}", flush=True)
    print("command: python bench/sqlite_layout.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
