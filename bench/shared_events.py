#!/usr/bin/env python
"""What sharing a ClickHouse events store between nodes costs (issue #14): write leases.

The ClickHouse event store over HTTP (clickhouse-connect) against ``tests/clickhouse_shim.py``
(ClickHouse's HTTP interface answered by chDB in a subprocess; no ClickHouse server runs here),
written in-process through ``write_events`` with ``--writers`` tasks per node, the events of
``bench/store_writes.py`` (100 per batch, 1,000 sessions, one project), a fresh ClickHouse
database per run. Three set-ups, alternated ``--rounds`` times in one run:
- ``alone``: one node, no leases (as with a SQLite control store);
- ``leased``: one node, leases from PostgreSQL (``--pg``), as ``--store postgresql://`` wires it;
- ``two nodes``: two stores on the same database, each with its leases and half the writers.
Then the lease itself: hold, publish and release of one project, N times, on PostgreSQL.

    python bench/shared_events.py                    # 200 batches of 100 events, 3 rounds
    python bench/shared_events.py --pg postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import select
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from store_writes import batches

from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.storage.clickhouse import ClickHouseEventStore
from tracehive.storage.postgres import PostgresStore
from tracehive.storage.postgres.leases import PostgresWriteLeases


def start_shim(directory: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.clickhouse_shim", "--path", str(directory)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("port "):
        proc.kill()
        raise SystemExit(f"the ClickHouse shim did not start: {line!r}")
    return proc, int(line.split()[1])


async def admin(port: int, sql: str) -> None:
    from tracehive.storage.clickhouse.http_executor import HttpExecutor, HttpTarget

    ex = HttpExecutor(HttpTarget.from_url(f"clickhouse://default:@127.0.0.1:{port}/default"))
    try:
        await ex.command(sql)
    finally:
        await ex.close()


async def run(setup: str, work: list[list[Event]], writers: int, port: int, pg_url: str) -> float:
    database = f"b_{uuid.uuid4().hex[:12]}"
    await admin(port, f"CREATE DATABASE {database}")
    url = f"clickhouse://default:@127.0.0.1:{port}/{database}"
    nodes = 2 if setup == "two nodes" else 1
    stores = [ClickHouseEventStore.http(url, leases=None if setup == "alone" else PostgresWriteLeases(pg_url, wait=30))
              for _ in range(nodes)]
    for store in stores:
        await store.open()
    try:
        scope = Scope(org_id=str(uuid.uuid4()), workspace_id=str(uuid.uuid4()), project_id=str(uuid.uuid4()),
                      project_name="bench")
        queue = list(reversed(work))

        async def writer(store: ClickHouseEventStore) -> None:
            while queue:
                await store.write_events(scope, queue.pop())

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(stores[i % nodes]) for i in range(writers)))
        return sum(len(b) for b in work) / (time.perf_counter() - t0)
    finally:
        for store in stores:
            await store.close()
        await admin(port, f"DROP DATABASE IF EXISTS {database} SYNC")


async def lease_cycles(pg_url: str, count: int) -> float:
    """Seconds per hold + publish + release of one project."""
    leases = PostgresWriteLeases(pg_url, wait=30)
    try:
        t0 = time.perf_counter()
        for i in range(count):
            async with leases.hold(["bench-project"]):
                await leases.publish(i + 1)
        return (time.perf_counter() - t0) / count
    finally:
        await leases.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL the bench may create a database on (dropped afterwards)")
    args = parser.parse_args()
    work = batches(args.batches, 100, 2)
    name = f"tracehive_bench_leases_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    pg_url = urlunsplit(urlsplit(args.pg)._replace(path="/" + name))
    try:
        asyncio.run(PostgresStore(pg_url).migrate())
        with tempfile.TemporaryDirectory(prefix="tracehive-shared-") as tmp:
            proc, port = start_shim(Path(tmp) / "chdb")
            try:
                results: dict[str, list[float]] = {"alone": [], "leased": [], "two nodes": []}
                for _ in range(args.rounds):
                    for setup in results:
                        results[setup].append(asyncio.run(run(setup, work, args.writers, port, pg_url)))
            finally:
                proc.terminate()
                proc.wait(10)
        cycle = asyncio.run(lease_cycles(pg_url, 500))
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    events = args.batches * 100
    print(f"{events:,} events in batches of 100, {args.writers} writers, events over HTTP to the shim (chDB)")
    base = statistics.median(results["alone"])
    for setup, rates in results.items():
        shown = " / ".join(f"{r:,.0f}" for r in rates)
        print(f"  {setup:10s} {shown} events/s (median {statistics.median(rates) / base:.2f}x alone)")
    print(f"lease hold + publish + release, one project: {cycle * 1000:.2f} ms")
    print("command: python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
