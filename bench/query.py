#!/usr/bin/env python
"""Query benchmark (issue #4): the read side against a real server on a million events.

What it does, in one run:

1. Builds (or reuses) a data dir of ``--events`` realistic events: ``--events / 100`` sessions
   spread over 30 days, each a run of traces (chain -> model / tool / nested chain -> model /
   tool) with chat messages, model names, costs, token counts, user ids and, on some model
   events, feedback ratings. Session 0 has exactly 1,000 events (the tree case). Events are
   written straight through ``SQLiteStore.write_events`` in big batches (synchronous=OFF while
   building), so the result is an ordinary tracehive data dir with a project and a key. It is
   cached under ``bench/out/query-data-<events>-<seed>/`` (gitignored): reruns skip the build.
2. Starts ``python -m tracehive serve`` on it and measures, over HTTP, warm (after a few
   warm-up calls), ``--reps`` times each:
   (a) search: ``event_type is model`` + ``metadata.cost greater than`` + a 7-day range, first
       page of 50, newest first (``POST /v1/events/search``; ``POST /v1/events/export`` with the
       same body if search is not there, and the table says so);
   (b) the tree of the 1,000-event session (``GET /v1/sessions/{id}``);
   (c) a 7-day hourly chart of p95 duration grouped by event_type (``GET /v1/events/chart``;
       'not available' if the route 404s);
   (d) an export of 100,000 events: JSONL (``Accept: application/x-ndjson``) if the server
       streams it, else pages of 7,500 of JSON export; events/s and the server's RSS (sampled
       every 20 ms: before, peak, after).
3. Prints the figures against the targets and the command; ``--json`` writes them.

    python bench/query.py                      # 1,000,000 events (first build takes minutes)
    python bench/query.py --events 100000      # quick (or --quick: 100,000 events, 10 reps)

On PostgreSQL (``--store URL`` of a server the bench may create databases on) the same data set
is the database ``tracehive_query_<events>_<seed>`` on that server (its meta, key included, is the
database's comment), reused by reruns; it is built by COPY of exactly the rows
``PostgresStore.write_events`` writes (``--pg-build store`` writes it all through the store),
then VACUUM (ANALYZE)d. The server is ``tracehive serve --store`` on it; the queries and the
table are the same as on SQLite.

    python bench/query.py --quick --store postgresql://postgres@127.0.0.1:5432/postgres

With ``--chdb`` the events go to ClickHouse in-process (``tracehive serve --events-store
chdb://...``), the project and key to SQLite beside them; built through the same store calls.

    python bench/query.py --quick --chdb
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import shlex
import shutil
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (  # noqa: E402  (bench helpers: real server, quiet machine, percentiles)
    CHAINS,
    COMPLETIONS,
    MODELS,
    SNIPPETS,
    SYSTEM_PROMPTS,
    TOOLS,
    USER_PROMPTS,
    PgServer,
    Server,
    free_port,
    log,
    percentile,
    source_info,
    wait_quiet,
)

OUT = Path(__file__).resolve().parent / "out"
DAY_MS = 86_400_000
SPAN_DAYS = 30
TREE_EVENTS = 1000
EXPORT_EVENTS = 100_000
COST_OVER = 0.005
TARGETS = {"search_p50_ms": 250.0, "tree_p50_ms": 50.0, "chart_p50_ms": 500.0, "export_events_per_s": 50_000.0}
RSS_FLAT_MB = 64.0  # "flat": the export may not grow the server by more than this
FORMAT_VERSION = 3  # bump when the generated data changes, so old caches are not reused


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def model(self, sid: str, parent: str, t: int, user: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        model, provider, cin, cout = rng.choice(MODELS)
        prompt_tokens = rng.randint(150, 2500)
        completion_tokens = rng.randint(20, 400)
        feedback: dict[str, Any] = {}
        if rng.random() < 0.1:
            feedback = {"rating": rng.randint(1, 5), "comment": rng.choice(("great", "wrong source", "too long"))}
        return dict(
            event_type="model", event_name=f"{provider}.chat.completions", event_id=_uuid(rng), session_id=sid,
            parent_id=parent, source="python-sdk",
            config={"model": model, "provider": provider, "temperature": rng.choice((0, 0.2, 0.7, 1.0)),
                    "max_tokens": 1024},
            inputs={"chat_history": [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
                                     {"role": "user", "content": rng.choice(USER_PROMPTS)}]},
            outputs={"role": "assistant", "content": rng.choice(COMPLETIONS), "finish_reason": "stop"},
            metadata={"cost": round((prompt_tokens * cin + completion_tokens * cout) / 1e6, 6),
                      "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            feedback=feedback, user_properties=user,
            start_time=t, end_time=t + rng.randint(300, 4000),
        )  # fmt: skip

    def tool(self, sid: str, parent: str, t: int, user: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        name, kind = rng.choice(TOOLS)
        return dict(
            event_type="tool", event_name=name, event_id=_uuid(rng), session_id=sid, parent_id=parent,
            source="python-sdk", config={"tool": name, "kind": kind, "top_k": 3},
            inputs={"query": rng.choice(USER_PROMPTS)},
            outputs={"results": [{"id": rng.randint(1, 99999), "text": h} for h in rng.sample(SNIPPETS, 2)]},
            metadata={"latency_ms": rng.randint(5, 800), "cached": rng.random() < 0.3},
            user_properties=user, start_time=t, end_time=t + rng.randint(5, 800),
        )  # fmt: skip

    def chain(self, sid: str, parent: str, t: int, user: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        return dict(
            event_type="chain", event_name=rng.choice(CHAINS), event_id=_uuid(rng), session_id=sid,
            parent_id=parent, source="python-sdk", config={"pipeline_version": "2.3.1"},
            inputs={"question": rng.choice(USER_PROMPTS)}, outputs={"answer": rng.choice(COMPLETIONS)},
            metadata={"cost": round(rng.random() / 50, 6), "total_tokens": rng.randint(300, 5000)},
            user_properties=user, start_time=t, end_time=t + rng.randint(500, 8000),
        )  # fmt: skip

    def session(self, sid: str, n: int, t0: int) -> list[dict[str, Any]]:
        """``n`` events: traces of a root chain with model/tool children and a nested chain."""
        rng = self.rng
        user = {"user_id": f"user_{rng.randint(1, 50_000)}", "plan": rng.choice(("free", "pro", "team"))}
        out: list[dict[str, Any]] = []
        t = t0
        while len(out) < n:
            root = self.chain(sid, sid, t, user)
            out.append(root)
            parents = [root["event_id"]]
            for _ in range(min(rng.randint(2, 6), n - len(out))):
                t += rng.randint(1, 50)
                r = rng.random()
                parent = rng.choice(parents)
                if r < 0.15 and len(parents) < 3:
                    child = self.chain(sid, parent, t, user)
                    parents.append(child["event_id"])
                elif r < 0.65:
                    child = self.model(sid, parent, t, user)
                else:
                    child = self.tool(sid, parent, t, user)
                out.append(child)
            t += rng.randint(200, 5000)
        return out


def plan(events: int, seed: int) -> tuple[random.Random, Generator, int, list[tuple[str, int, int]]]:
    """The seeded generator, the anchor time and the sessions (id, size, start) of a data set, in
    the order they are written: by start time, as live traffic arrives (a backfill in random time
    order is slower to read on ClickHouse until its parts merge: see BENCHMARKS.md)."""
    rng = random.Random(seed)
    gen = Generator(rng)
    n_sessions = max(1, events // 100)
    t_end = int(time.time() * 1000)
    t_start = t_end - SPAN_DAYS * DAY_MS
    sizes = [TREE_EVENTS if events >= TREE_EVENTS else events]
    rest, others = events - sizes[0], n_sessions - 1
    for i in range(others):
        left = others - i
        sizes.append(rest // left)
        rest -= sizes[-1]
    ids = [_uuid(rng) for size in sizes if size > 0]
    # The big session sits in the middle of the newest 7 days; the rest anywhere.
    starts = [t_end - 3 * DAY_MS if k == 0 else rng.randint(t_start, t_end - 3_600_000) for k in range(len(ids))]
    sessions = sorted(zip(ids, [s for s in sizes if s > 0], starts), key=lambda s: s[2])
    return rng, gen, t_end, sessions


def batches(events: int, seed: int) -> tuple[int, list[tuple[str, int, int]], Any]:
    """(t_end, sessions, iterator of event batches of >= 5,000 whole sessions), as ``build`` writes them."""
    from tracehive.model.event import Event

    rng, gen, t_end, sessions = plan(events, seed)

    def each() -> Any:
        batch: list[Event] = []
        for k, (sid, size, start) in enumerate(sessions):
            for e in gen.session(sid, size, start):
                e["duration"] = e["end_time"] - e["start_time"]
                e["session_name_hint"] = "support_chat"
                batch.append(Event(**e))
            if len(batch) >= 5000 or k == len(sessions) - 1:
                yield batch
                batch = []

    return t_end, sessions, each()


def sqlite_store(tmp: Path) -> Any:
    from tracehive.storage.sqlite import SQLiteStore

    return SQLiteStore(tmp / "tracehive.db", synchronous="OFF", writer_queue=4)


def chdb_store(tmp: Path) -> Any:
    """Projects and the key in SQLite (``tmp``), events in chDB (``tmp/events``)."""
    from tracehive.storage.clickhouse import ClickHouseEventStore, CombinedStore

    return CombinedStore(sqlite_store(tmp), ClickHouseEventStore.chdb(tmp / "events"))


def build(data_dir: Path, events: int, seed: int, make_store: Any = sqlite_store) -> dict[str, Any]:
    """Write the data set through the store; returns the meta (key, anchor time, big session)."""
    from tracehive.cli import DEFAULT_PROJECT
    from tracehive.model.scope import KeyKind, Scope

    t_end, sessions, each = batches(events, seed)
    tree_session = max(sessions, key=lambda s: s[1])[0]

    tmp = data_dir.with_name(data_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    async def go() -> dict[str, Any]:
        store = make_store(tmp)
        await store.open()
        try:
            project, _ = await store.ensure_project(DEFAULT_PROJECT)
            record, key = await store.create_key(project.project_id, KeyKind.PROJECT)
            scope = Scope(org_id=project.org_id, workspace_id=project.workspace_id, project_id=project.project_id,
                          project_name=project.name, key_kind=KeyKind.PROJECT, key_id=record.key_id)
            written, t0 = 0, time.monotonic()
            for batch in each:
                await store.write_events(scope, batch)
                written += len(batch)
                if written % 100_000 < len(batch):
                    rate = written / (time.monotonic() - t0)
                    log(f"  built {written:,} / {events:,} events ({rate:,.0f}/s)")
            settled = await settle(store)
        finally:
            await store.close()
        return {"key": key, "t_end": t_end, "tree_session": tree_session, "events": events, "seed": seed,
                "sessions": len(sessions), "format": FORMAT_VERSION, **settled}

    meta = asyncio.run(go())
    (tmp / "bench-meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(data_dir, ignore_errors=True)
    tmp.rename(data_dir)
    return meta


async def settle(store: Any, timeout: float = 1800.0) -> dict[str, Any]:
    """ClickHouse only: wait until the engine's background merges caught up, as a server's have
    after a while: no merge running for 5 s and every day but the newest a single part (the
    table force-merges a day a minute after its last insert). Returns the active parts, the
    days with more than one part left and the time waited."""
    events = getattr(store, "events", None)
    if events is None:
        return {}
    ex = events._executor()
    parts_per_day = ("SELECT countIf(n > 1) FROM (SELECT partition, count() AS n FROM system.parts WHERE active "
                     "AND database = currentDatabase() AND table = 'events' GROUP BY partition "
                     "ORDER BY partition DESC LIMIT 1000000 OFFSET 1)")
    t0, idle = time.monotonic(), 0
    while time.monotonic() - t0 < timeout and idle < 5:
        [(running,)] = await ex.query("SELECT count() FROM system.merges")
        [(split_days,)] = await ex.query(parts_per_day)
        idle = idle + 1 if int(running) == 0 and int(split_days) == 0 else 0
        await asyncio.sleep(1)
    [(parts,)] = await ex.query("SELECT count() FROM system.parts WHERE active AND database = currentDatabase() "
                                "AND table = 'events'")
    [(split_days,)] = await ex.query(parts_per_day)
    waited = round(time.monotonic() - t0, 1)
    log(f"  merges settled after {waited} s: {parts} active parts, {split_days} past days in more than one part")
    return {"merge_wait_s": waited, "parts": int(parts), "split_days": int(split_days)}


def data_set(events: int, seed: int, rebuild: bool, chdb: bool = False) -> tuple[Path, dict[str, Any], float | None]:
    data_dir = OUT / (f"query-chdb-{events}-{seed}" if chdb else f"query-data-{events}-{seed}")
    meta_path = data_dir / "bench-meta.json"
    if not rebuild and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == FORMAT_VERSION:
            log(f"reusing the data dir {data_dir}")
            return data_dir, meta, None
    log(f"building {events:,} events in {data_dir} (cached for reruns)")
    t0 = time.monotonic()
    meta = build(data_dir, events, seed, chdb_store if chdb else sqlite_store)
    return data_dir, meta, time.monotonic() - t0


class ChdbServer(Server):
    """``tracehive serve --events-store chdb://<data dir>/events`` (issue #14)."""

    @property
    def command(self) -> list[str]:
        return [*super().command, "--events-store", f"chdb://{(self.data_dir / 'events').resolve()}"]


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def build_pg(admin_url: str, name: str, events: int, seed: int, method: str) -> dict[str, Any]:
    """The same data set in a PostgreSQL database ``name`` (built as ``<name>_building``, renamed
    when complete). ``store``: every batch through ``PostgresStore.write_events``. ``copy``: the
    first batch through the store, then ``COPY`` of the rows the store would write
    (``postgres.store_rows``), checked against the store's own rows of that first batch first.
    Then ``VACUUM (ANALYZE)`` and a checkpoint: the tables as autovacuum leaves them, settled."""
    import psycopg

    import postgres as pg
    from tracehive.cli import DEFAULT_PROJECT
    from tracehive.model.scope import KeyKind, Scope
    from tracehive.storage.postgres import PostgresStore
    from tracehive.storage.postgres.migrations import latest_version

    building = f"{name}_building"
    url = pg.create_database(admin_url, building)
    t_end, sessions, each = batches(events, seed)
    tree_session = max(sessions, key=lambda s: s[1])[0]

    async def go() -> dict[str, Any]:
        store = PostgresStore(url, pool_size=4)
        await store.open()  # migrates
        written, t0 = 0, time.monotonic()
        try:
            project, _ = await store.ensure_project(DEFAULT_PROJECT)
            record, key = await store.create_key(project.project_id, KeyKind.PROJECT)
            scope = Scope(org_id=project.org_id, workspace_id=project.workspace_id, project_id=project.project_id,
                          project_name=project.name, key_kind=KeyKind.PROJECT, key_id=record.key_id)
            seen: set[str] = set()
            order = "first_seen"
            with psycopg.connect(url, autocommit=True) as conn:
                for i, batch in enumerate(each):
                    if method == "store" or i == 0:
                        await store.write_events(scope, batch)
                        if method == "copy":
                            order = pg.store_session_order(conn, batch)
                            pg.check_same_rows(conn, pg.store_rows(batch, scope, int(time.time() * 1000), seen, order))
                            log(f"  the COPY rows of the first batch equal the store's (sessions {order})")
                    else:
                        rows = pg.store_rows(batch, scope, int(time.time() * 1000), seen, order)
                        with conn.transaction():
                            pg.copy_in(conn, "events", rows)
                    written += len(batch)
                    if written % 100_000 < len(batch):
                        log(f"  built {written:,} / {events:,} events ({written / (time.monotonic() - t0):,.0f}/s)")
                log("  VACUUM (ANALYZE), CHECKPOINT")
                conn.execute("VACUUM (ANALYZE)")
                try:
                    conn.execute("CHECKPOINT")
                except psycopg.Error:
                    pass  # needs superuser or pg_checkpoint: only settles the WAL
        finally:
            await store.close()
        return {"key": key, "t_end": t_end, "tree_session": tree_session, "events": events, "seed": seed,
                "sessions": len(sessions), "format": FORMAT_VERSION, "schema": latest_version(), "build": method,
                "session_rows": order if method == "copy" else "store"}

    try:
        meta = asyncio.run(go())
    except BaseException:
        pg.drop_database(admin_url, building)
        raise
    pg.rename_database(admin_url, building, name)
    pg.set_database_comment(admin_url, name, json.dumps(meta))
    return meta


def data_set_pg(admin_url: str, events: int, seed: int, rebuild: bool, method: str
                ) -> tuple[str, str, dict[str, Any], float | None]:
    """(URL, database name, meta, build seconds or None when cached): the database
    ``tracehive_query_<events>_<seed>`` on the server of ``admin_url``, its meta in its comment."""
    import postgres as pg
    from tracehive.storage.postgres.migrations import latest_version

    name = f"tracehive_query_{events}_{seed}"
    url = pg.db_url(admin_url, name)
    comment = None if rebuild else pg.database_comment(admin_url, name)
    if comment:
        try:
            meta = json.loads(comment)
        except ValueError:
            meta = {}
        if meta.get("format") == FORMAT_VERSION and meta.get("schema") == latest_version():
            log(f"reusing the database {name}")
            return url, name, meta, None
    log(f"building {events:,} events in the database {name} ({method}; cached for reruns)")
    t0 = time.monotonic()
    meta = build_pg(admin_url, name, events, seed, method)
    return url, name, meta, time.monotonic() - t0


# ------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.headers = {"Authorization": f"Bearer {key}"}

    def request(self, method: str, path: str, body: Any = None, accept: str | None = None
                ) -> tuple[int, bytes, float, str]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if accept:
            headers["Accept"] = accept
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        return resp.status, payload, (time.perf_counter() - t0) * 1000, resp.getheader("content-type") or ""


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def timed(client: Client, method: str, path: str, body: Any, reps: int, warmup: int = 3) -> dict[str, Any]:
    status, payload, _, _ = client.request(method, path, body)
    if status != 200:
        client.conn.close()  # the server may drop the connection after an error: the next call reconnects
        return {"status": status, "error": payload[:300].decode(errors="replace")}
    for _ in range(warmup - 1):
        client.request(method, path, body)
    times = []
    for _ in range(reps):
        status, payload, ms, _ = client.request(method, path, body)
        if status != 200:
            return {"status": status, "error": payload[:300].decode(errors="replace")}
        times.append(ms)
    times.sort()
    return {"status": 200, "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
            "mean_ms": round(statistics.fmean(times), 1), "reps": reps, "bytes": len(payload),
            "sample": orjson.loads(payload)}


class RssSampler(threading.Thread):
    def __init__(self, server: Server, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.server, self.every = server, every
        self.samples: list[float] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            rss = self.server.status().get("VmRSS")
            if rss:
                self.samples.append(rss)
            time.sleep(self.every)


def export_run(client: Client, server: Server, port: int, key: str, n: int) -> dict[str, Any]:
    """``n`` events out, as JSONL if the server streams it (read incrementally), else JSON pages."""
    rss_before = server.status().get("VmRSS", 0.0)
    sampler = RssSampler(server)
    sampler.start()
    body = {"filters": []}  # no limit: a JSONL export streams every match; we stop reading at n
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/events/export", body=orjson.dumps(body),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                          "Accept": "application/x-ndjson"})
    resp = conn.getresponse()
    ctype = resp.getheader("content-type") or ""
    got, nbytes, mode = 0, 0, ""
    if resp.status == 200 and "ndjson" in ctype:
        mode = "JSONL stream (Accept: application/x-ndjson)"
        tail = b""
        while got < n:
            chunk = resp.read1(1 << 16) if hasattr(resp, "read1") else resp.read(1 << 16)
            if not chunk:
                break
            nbytes += len(chunk)
            data = tail + chunk
            got += data.count(b"\n")
            tail = data[data.rfind(b"\n") + 1:] if b"\n" in data else data
        conn.close()
    else:
        resp.read()
        conn.close()
        mode = "paged JSON export, 7,500 per page (no JSONL stream on this server)"
        page = 1
        while got < n:
            status, payload, _, _ = client.request(
                "POST", "/v1/events/export", {"filters": [], "limit": 7500, "page": page})
            if status != 200:
                break
            nbytes += len(payload)
            count = len(orjson.loads(payload)["events"])
            if count == 0:
                break
            got += count
            page += 1
    wall = time.perf_counter() - t0
    time.sleep(0.2)
    sampler.stop_flag.set()
    sampler.join()
    rss_after = server.status().get("VmRSS", 0.0)
    peak = max(sampler.samples or [rss_before])
    return {"mode": mode, "events": min(got, n), "wall_s": round(wall, 2),
            "events_per_s": round(min(got, n) / wall) if wall else 0, "mb": round(nbytes / 1e6, 1),
            "rss_before_mb": round(rss_before, 1), "rss_peak_mb": round(peak, 1), "rss_after_mb": round(rss_after, 1)}


# ------------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    source = source_info()
    log(f"tracehive under test: {source}")
    port = args.port or free_port()
    result: dict[str, Any]
    if args.store:
        import postgres as pg

        url, name, meta, build_s = data_set_pg(args.store, args.events, args.seed, args.rebuild, args.pg_build)
        info = pg.server_info(args.store)
        result = {
            "tracehive": source, "command": args.command_line, "store": "postgresql",
            "data_dir": f"PostgreSQL {info['version']} database {name} (built by {meta.get('build', '?')}; "
                        f"shared_buffers={info.get('shared_buffers')})",
            "database": name, "postgresql": info, "events": meta["events"], "sessions": meta["sessions"],
            "build_s": build_s, "db_mb": round(pg.database_size_mb(args.store, name)),
        }
        (OUT / "query-pg-node").mkdir(exist_ok=True)
        server: Server = PgServer(OUT / "query-pg-node" / "data", port, url, meta["key"])
        server.out_path = OUT / "query-pg-server.out"
        server.err_path = OUT / "query-pg-server.err"
    elif args.chdb:
        data_dir, meta, build_s = data_set(args.events, args.seed, args.rebuild, chdb=True)
        result = {"tracehive": source, "command": args.command_line, "store": "chdb", "data_dir": str(data_dir),
                  "events": meta["events"], "sessions": meta["sessions"], "build_s": build_s,
                  "db_mb": round(dir_mb(data_dir / "events"))}
        server = ChdbServer(data_dir, port)
        server.out_path = OUT / "query-chdb-server.out"
        server.err_path = OUT / "query-chdb-server.err"
        server.key = meta["key"]
    else:
        data_dir, meta, build_s = data_set(args.events, args.seed, args.rebuild)
        result = {"tracehive": source, "command": args.command_line, "data_dir": str(data_dir),
                  "events": meta["events"], "sessions": meta["sessions"], "build_s": build_s,
                  "db_mb": round((data_dir / "tracehive.db").stat().st_size / 1e6)}
        server = Server(data_dir, port)
        server.out_path = OUT / "query-server.out"
        server.err_path = OUT / "query-server.err"
        server.key = meta["key"]
    t_end = meta["t_end"]
    week = {"$gte": t_end - 7 * DAY_MS, "$lte": t_end}
    try:
        if args.wait_quiet > 0:
            result["other_load_cores"] = round(wait_quiet(args.wait_quiet), 2)
        server.start(timeout=300)
        client = Client(port, meta["key"])

        # (a) search
        search_body = {
            "filters": [{"field": "event_type", "operator": "is", "value": "model", "type": "string"},
                        {"field": "metadata.cost", "operator": "greater than", "value": COST_OVER,
                         "type": "number"}],
            "dateRange": week, "limit": 50,
        }
        iso = {"start_time": _iso(week["$gte"]), "end_time": _iso(week["$lte"])}  # search is strict: ISO
        a = timed(client, "POST", "/v1/events/search", {**search_body, "dateRange": iso}, args.reps)
        a["route"] = "POST /v1/events/search"
        if a["status"] in (404, 405):
            a = timed(client, "POST", "/v1/events/export", search_body, args.reps)
            a["route"] = "POST /v1/events/export (no /v1/events/search on this server)"
        if a.get("status") == 200:
            sample = a.pop("sample")
            a["page"] = len(sample.get("events", []))
            a["count"] = sample.get("count", sample.get("totalEvents"))
        result["search"] = a
        log(f"(a) search: {a}")

        # (b) tree
        b = timed(client, "GET", f"/v1/sessions/{meta['tree_session']}", None, args.reps)
        if b.get("status") == 200:
            b["num_events"] = b.pop("sample").get("metadata", {}).get("num_events")
        result["tree"] = b
        log(f"(b) tree: {b}")

        # (c) chart
        query = urlencode({"dateRange": json.dumps(week), "metric": "duration", "aggregation": "p95",
                           "bucket": "hour", "groupBy": "event_type"})
        c = timed(client, "GET", f"/v1/events/chart?{query}", None, max(5, args.reps // 2))
        if c.get("status") == 200:
            sample = c.pop("sample")
            rows = sample.get("events", sample) if isinstance(sample, dict) else sample
            c["rows"] = len(rows) if isinstance(rows, list) else None
        result["chart"] = c
        log(f"(c) chart: {c}")

        # (e)-(g): reads an index change moves (issue #15), no targets of their own: the sessions
        # list's first page, a search by event name and one by model (the filter indexes' users).
        extra = {
            "sessions_list": ("POST", "/v1/sessions/search", {"dateRange": iso, "limit": 50}),
            "search_name": ("POST", "/v1/events/search", {
                "filters": [{"field": "event_name", "operator": "is", "value": TOOLS[0][0], "type": "string"}],
                "dateRange": iso, "limit": 50}),
            "search_model": ("POST", "/v1/events/search", {
                "filters": [{"field": "config.model", "operator": "is", "value": MODELS[1][0], "type": "string"}],
                "limit": 50}),
        }
        for name, (method, path, body) in extra.items():
            m = timed(client, method, path, body, args.reps)
            if m.get("status") == 200:
                sample = m.pop("sample")
                m["count"] = sample.get("count", sample.get("totalSessions"))
            result[name] = m
            log(f"{name}: {m}")

        # (d) export
        n = min(EXPORT_EVENTS, meta["events"])
        d = export_run(client, server, port, meta["key"], n)
        result["export"] = d
        log(f"(d) export: {d}")
        result["server_vmhwm_mb"] = round(server.status().get("VmHWM", 0.0), 1)
    finally:
        server.stop()
    return result


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_table(r: dict[str, Any]) -> None:
    print()
    print(f"tracehive queries: {r['events']:,} events, {r['sessions']:,} sessions over {SPAN_DAYS} days, "
          f"database {r['db_mb']:,} MB" + (f" (built in {r['build_s']:.0f} s)" if r.get("build_s") else " (cached)"))
    print(f"tracehive: {r['tracehive']}")
    print(f"{'database' if r.get('store') == 'postgresql' else 'data dir'}: {r['data_dir']}")
    print(f"{'':<44}{'p50':>10}{'p95':>10}   target")
    a, b, c, d = r["search"], r["tree"], r["chart"], r["export"]

    def line(name: str, m: dict[str, Any], target: float, extra: str = "") -> None:
        if m.get("status") != 200:
            what = "not available (404)" if m.get("status") == 404 else f"HTTP {m.get('status')}: {m.get('error')}"
            print(f"{name:<44}{what}")
            return
        ok = _verdict(m["p50_ms"] <= target)
        print(f"{name:<44}{m['p50_ms']:>8} ms{m['p95_ms']:>7} ms   p50 <= {target:.0f} ms: {ok}{extra}")

    line("(a) search model + cost > x + 7 days, 50", a, TARGETS["search_p50_ms"],
         f"  ({a.get('count', '?')} matches)" if a.get("status") == 200 else "")
    if a.get("status") == 200:
        print(f"{'':<44}via {a['route']}")
    line(f"(b) tree of a {TREE_EVENTS:,}-event session", b, TARGETS["tree_p50_ms"])
    line("(c) chart 7 d hourly p95 duration by type", c, TARGETS["chart_p50_ms"],
         f"  ({c.get('rows')} rows)" if c.get("status") == 200 else "")
    for key, label in (("sessions_list", "(e) sessions list, 7 days, first 50"),
                       ("search_name", "(f) search event_name is x + 7 days, 50"),
                       ("search_model", "(g) search config.model is x, all time, 50")):
        m = r.get(key)
        if m is None:
            continue
        if m.get("status") != 200:
            print(f"{label:<44}HTTP {m.get('status')}")
            continue
        print(f"{label:<44}{m['p50_ms']:>8} ms{m['p95_ms']:>7} ms   (no target; {m.get('count', '?')} matches)")
    flat = d["rss_peak_mb"] - d["rss_before_mb"] <= RSS_FLAT_MB
    print(f"(d) export {d['events']:,} events: {d['events_per_s']:,} events/s ({d['wall_s']} s, {d['mb']} MB)   "
          f"target >= {TARGETS['export_events_per_s']:,.0f}/s: {_verdict(d['events_per_s'] >= TARGETS['export_events_per_s'])}")
    print(f"    server RSS {d['rss_before_mb']} MB before, {d['rss_peak_mb']} peak, {d['rss_after_mb']} after   "
          f"flat (+{RSS_FLAT_MB:.0f} MB at most): {_verdict(flat)}")
    print(f"    via {d['mode']}")
    if "other_load_cores" in r:
        warn = "  WARNING: the machine was busy, figures are skewed" if r["other_load_cores"] > 0.15 else ""
        print(f"other CPU load before the run: {r['other_load_cores']} cores{warn}")
    print(f"command: {r['command']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=None, help="events in the data set (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 events (unless --events) and 10 reps "
                        "(unless --reps)")
    parser.add_argument("--seed", type=int, default=4, help="seed of the generator (part of the cache key)")
    parser.add_argument("--reps", type=int, default=None, help="timed calls per query (default 30)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data dir (or database)")
    parser.add_argument("--store", metavar="URL", help="PostgreSQL: postgresql://user@host:port/dbname of a server "
                        "the bench may create databases on; the data set is the database "
                        "tracehive_query_<events>_<seed> there, kept for reruns (default: SQLite in bench/out)")
    parser.add_argument("--pg-build", choices=("copy", "store"), default="copy",
                        help="with --store: build by COPY of the store's rows (default; the first batch is "
                        "written by PostgresStore and compared) or all through PostgresStore.write_events")
    parser.add_argument("--chdb", action="store_true", help="events in ClickHouse through chDB (--events-store "
                        "chdb://...; issue #14): the same data set, cached in bench/out/query-chdb-<events>-<seed>")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--wait-quiet", type=float, default=60, metavar="S",
                        help="wait up to S seconds for other processes to go quiet first (default 60)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 100_000 if args.quick else 1_000_000
    if args.reps is None:
        args.reps = 10 if args.quick else 30
    args.command_line = shlex.join([Path(sys.executable).name, *sys.argv])
    OUT.mkdir(parents=True, exist_ok=True)
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
