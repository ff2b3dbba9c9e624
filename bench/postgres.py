"""PostgreSQL helpers of the benchmarks (``bench/ingest.py --store URL``, ``bench/query.py --store URL``).

- Databases on the server of a URL: create, drop, rename, a comment as a small cache label.
- ``PgCpu``: CPU used by the PostgreSQL processes that work for the bench's databases, from
  /proc (utime + stime) before and after a phase: the auxiliary processes (WAL writer,
  checkpointer, background writer, autovacuum launcher), the backends connected to the bench's
  databases, and the postmaster with its reaped children (a backend that exits mid-phase lands
  there; so does any other database's backend that exits then, a small overcount).
- ``limit_main``: "the limit" on PostgreSQL: one plain Python process decodes the request bodies
  with orjson and inserts the rows into the migrated schema with psycopg 3, one transaction per
  body, by ``executemany`` (pipelined) or by ``COPY ... FROM STDIN``.

No module of tracehive's web app is imported here; the schema and the row order come from
``tracehive.storage.postgres`` (migrations, ``rows.INSERT_COLUMNS``).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql

CLK_TCK = os.sysconf("SC_CLK_TCK")
LIMIT_MODES = ("executemany", "copy")


# ------------------------------------------------------------------------------------------------
# Databases
# ------------------------------------------------------------------------------------------------


def db_url(url: str, dbname: str) -> str:
    """``url`` naming the database ``dbname`` instead (user, host, port and options kept)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"--store wants a postgresql://user@host:port/dbname URL, not {url!r}")
    return urlunsplit(parts._replace(path="/" + dbname))


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or (urlsplit(url).username or "postgres")


def admin(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the database the URL names (for CREATE/DROP DATABASE)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def create_database(url: str, name: str) -> str:
    """A new, empty database ``name`` on the server of ``url`` (dropped first if it exists)."""
    with admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return db_url(url, name)


def drop_database(url: str, name: str) -> None:
    try:
        with admin(url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        print(f"could not drop database {name}: {exc}".strip())


def rename_database(url: str, old: str, new: str) -> None:
    with admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(new)))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


def database_comment(url: str, name: str) -> str | None:
    """The comment on database ``name`` (None if the database does not exist or has none)."""
    with admin(url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return None if row is None else row[0]


def set_database_comment(url: str, name: str, comment: str) -> None:
    with admin(url) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))


def database_size_mb(url: str, name: str) -> float:
    with admin(url) as conn:
        row = conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    return round(row[0] / 1e6, 1) if row else 0.0


def migrate(url: str) -> int:
    """The tracehive schema in the database of ``url`` (as ``tracehive migrate`` makes it)."""
    from tracehive.storage.postgres import PostgresStore

    return asyncio.run(PostgresStore(url).migrate())


def server_info(url: str) -> dict[str, Any]:
    """Version and the settings that decide write speed, for the report."""
    with admin(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)",
            (["fsync", "synchronous_commit", "shared_buffers", "wal_level", "full_page_writes", "max_connections"],),
        ).fetchall())
    return {"version": version, **settings}


def wal_bytes(conn: psycopg.Connection[Any]) -> int:
    """WAL the whole cluster has generated (pg_stat_wal, PostgreSQL 14+); 0 where unknown."""
    try:
        row = conn.execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()
        return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


def count_events(url: str) -> tuple[int, int]:
    """(non-session events, session rows) stored in the database of ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE event_type <> 'session'), count(*) FILTER (WHERE event_type = 'session') "
            "FROM events"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# ------------------------------------------------------------------------------------------------
# CPU of the PostgreSQL processes
# ------------------------------------------------------------------------------------------------


def _proc_cpu(pid: int, children: bool = False) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class PgCpu:
    """utime + stime of the PostgreSQL processes that serve ``dbnames`` (see the module doc).
    Needs /proc of the server's processes (same machine, readable): ``available`` says so."""

    def __init__(self, url: str, dbnames: list[str]) -> None:
        self.conn = admin(url)
        self.dbnames = set(dbnames)
        self.own_pid = self.conn.info.backend_pid
        self.postmaster = _ppid(self.own_pid)
        self.available = self.postmaster is not None and _proc_cpu(self.own_pid) is not None

    def sample(self) -> dict[int | str, float]:
        if not self.available:
            return {}
        rows = self.conn.execute("SELECT pid, datname FROM pg_stat_activity").fetchall()
        out: dict[int | str, float] = {}
        for pid, datname in rows:
            if pid == self.own_pid or (datname is not None and datname not in self.dbnames):
                continue
            cpu = _proc_cpu(pid)
            if cpu is not None:
                out[pid] = cpu
        pm = _proc_cpu(self.postmaster, children=True) if self.postmaster else None
        if pm is not None:
            out["postmaster"] = pm
        return out

    @staticmethod
    def used(before: dict[int | str, float], after: dict[int | str, float]) -> float | None:
        """CPU seconds between two samples. A process gone by ``after`` was reaped by the
        postmaster, whose children's time then holds its whole life: its ``before`` is taken off."""
        if not before or not after:
            return None
        total = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        total -= sum(cpu for pid, cpu in before.items() if pid not in after)
        return max(0.0, total)

    def wal(self) -> int:
        return wal_bytes(self.conn)

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------------------------
# The limit on PostgreSQL
# ------------------------------------------------------------------------------------------------


def limit_main(url: str, mode: str, requests: list[bytes], offsets: list[int], sessions: list[str],
               deadline: float, conn_out: Any) -> None:
    """Decode each body with orjson and insert its rows into ``events`` in one transaction:
    ``executemany`` of ``INSERT_COLUMNS`` (psycopg pipelines it) or ``COPY ... FROM STDIN``.
    Rows as the server's mapping makes them (``rows.event_params``), from the JSON straight."""
    from tracehive.storage.postgres.rows import INSERT_COLUMNS, PLACEHOLDERS

    conn = psycopg.connect(url, autocommit=True)
    backend = conn.info.backend_pid
    project_id, org_id, workspace_id = (str(uuid.uuid4()) for _ in range(3))
    insert = f"INSERT INTO events ({INSERT_COLUMNS}) VALUES ({PLACEHOLDERS})"
    copy_sql = f"COPY events ({INSERT_COLUMNS}) FROM STDIN"
    loads, dumps = orjson.loads, orjson.dumps
    cur = conn.cursor()
    done = 0
    cpu0 = time.process_time()
    backend_cpu0 = _proc_cpu(backend)
    t0 = time.perf_counter()
    for req, off, sid in zip(requests, offsets, sessions):
        data = loads(memoryview(req)[off:])
        now = time.time_ns() // 1_000_000
        rows = []
        for e in data["events"]:
            start, end = e["start_time"], e["end_time"]
            outputs = e.get("outputs")
            rows.append((
                project_id, e["event_id"], sid, e.get("parent_id") or sid, e["event_type"],
                e.get("event_name") or "unknown", e.get("source") or "unknown", start, end, end - start,
                e.get("error"), dumps(e.get("config") or {}).decode(), dumps(e["inputs"]).decode(),
                None if outputs is None else dumps(outputs).decode(), dumps(e.get("metadata") or {}).decode(),
                dumps(e.get("feedback") or {}).decode(), dumps(e.get("metrics") or {}).decode(),
                dumps(e.get("user_properties") or {}).decode(), dumps(e.get("children_ids") or []).decode(),
                org_id, workspace_id, now,
            ))  # fmt: skip
        with conn.transaction():
            if mode == "copy":
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cur.executemany(insert, rows)
        done += len(rows)
        if time.monotonic() > deadline:
            break
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    backend_cpu1 = _proc_cpu(backend)
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    conn.close()
    conn_out.send({
        "mode": mode, "events": done, "wall": wall, "cpu": cpu, "rows": count,
        "backend_cpu": None if backend_cpu0 is None or backend_cpu1 is None else backend_cpu1 - backend_cpu0,
        "cpu_total": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), "timed_out": time.monotonic() > deadline,
    })
    conn_out.close()


# ------------------------------------------------------------------------------------------------
# Bulk load of a data set with the rows the store writes (bench/query.py)
# ------------------------------------------------------------------------------------------------

# ``INSERT_COLUMNS`` and ``implicit``: what ``PostgresStore.write_events`` sets on a row it inserts.
def copy_columns() -> str:
    from tracehive.storage.postgres.rows import INSERT_COLUMNS

    return f"{INSERT_COLUMNS}, implicit"


SESSION_ORDERS = ("first_seen", "sorted")


def store_rows(events: list[Any], scope: Any, now: int, seen_sessions: set[str],
               session_order: str = "first_seen") -> list[tuple[Any, ...]]:
    """The rows ``PostgresStore.write_events(scope, events)`` inserts into an ``events`` table that
    holds none of these ids yet, in its order: each event (``rows.event_params``), then one implicit
    session per session named, spanning its events (``writes._implicit_session_params``), in the
    order of their first event or by id (``session_order``: ``store_session_order`` tells which
    the store uses). Only for what the bench generates: no session events, no aliases, every
    session's events in one batch (``seen_sessions`` checks that), ids never seen before."""
    from tracehive.storage.postgres import writes
    from tracehive.storage.rules import session_spans
    from tracehive.storage.postgres.rows import event_params

    out = []
    for e in events:
        if e.event_type == "session" or e.aliases:
            raise ValueError("store_rows handles plain events only (no session events, no aliases)")
        out.append((*event_params(e, scope.project_id, scope.org_id, scope.workspace_id, now), False))
    spans = session_spans(events).items()
    for sid, (start, end, first) in (sorted(spans) if session_order == "sorted" else spans):
        if sid in seen_sessions:
            raise ValueError(f"session {sid} spans two batches: its row would be an upsert, not an insert")
        seen_sessions.add(sid)
        out.append((*writes._implicit_session_params(sid, start, end, first, scope, now), True))
    return out


def store_session_order(conn: psycopg.Connection[Any], events: list[Any]) -> str:
    """In which order the store inserted the session rows of ``events`` (the first batch it wrote
    to an empty table): one of ``SESSION_ORDERS``."""
    from tracehive.storage.rules import session_spans

    stored = [r[0] for r in conn.execute("SELECT event_id FROM events WHERE implicit ORDER BY seq").fetchall()]
    first_seen = list(session_spans(events))
    if stored == first_seen:
        return "first_seen"
    if stored == sorted(first_seen):
        return "sorted"
    raise RuntimeError("the store inserts session rows in an order store_rows does not know")


def copy_in(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor().copy(f"COPY {table} ({copy_columns()}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def check_same_rows(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    """``rows`` (loaded into a temp table) must equal what is in ``events`` (written by the store),
    column for column (``updated_at`` aside: a clock) and in the same order (``seq``)."""
    cols = ("project_id, event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, "
            "duration, error, config::text, inputs::text, outputs::text, metadata::text, feedback::text, "
            "metrics::text, user_properties::text, children_ids::text, org_id, workspace_id, implicit")
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE bench_check (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY) ON COMMIT DROP")
        copy_in(conn, "bench_check", rows)
        diff = conn.execute(
            f"SELECT count(*) FROM ((SELECT {cols} FROM events EXCEPT ALL SELECT {cols} FROM bench_check) "
            f"UNION ALL (SELECT {cols} FROM bench_check EXCEPT ALL SELECT {cols} FROM events)) d"
        ).fetchone()[0]  # type: ignore[index]
        order = conn.execute(
            "SELECT (SELECT array_agg(event_id ORDER BY seq) FROM events) = "
            "(SELECT array_agg(event_id ORDER BY seq) FROM bench_check)"
        ).fetchone()[0]  # type: ignore[index]
    if diff or not order:
        raise RuntimeError(f"the COPY rows differ from the store's: {diff} rows differ, same order: {order}")
