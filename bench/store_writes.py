#!/usr/bin/env python
"""The SQLite store's write path alone (issue #15): ``SQLiteStore.write_events`` in-process
(``--chdb``: the ClickHouse event store's, on chDB, issue #14).

No HTTP, no JSON parsing, no validation: the same ~1 KB events as ``bench/ingest.py`` (its
generator, 100 per batch, one session per batch out of 1,000) are decoded, validated and
normalised before the clock starts; then ``--writers`` asyncio tasks write the batches through the
store (group commit, ``synchronous=FULL``, a fresh database). Compared with ``bench/ingest.py`` it
says how much of the server's time per event is the store's, and how much the request path (and
the GIL it shares with the writer thread) adds.

    python bench/store_writes.py                      # 500 batches of 100 events
    python bench/store_writes.py --stages             # + the request path's Python per event, by stage
    python bench/store_writes.py --chdb               # the ClickHouse event store on chDB
    PYTHONPATH=/tmp/prev/src python bench/store_writes.py   # another tree's store, same events
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import make_events

import tracehive
from tracehive.ingest.normalize import event_from_request
from tracehive.model.event import Event
from tracehive.model.scope import KeyKind
from tracehive.model.wire import SessionEventBatchRequest
from tracehive.storage.sqlite import SQLiteStore


def batches(count: int, size: int, seed: int) -> list[list[Event]]:
    rng = random.Random(seed)
    sessions = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(1000)]
    out = []
    for i in range(count):
        sid = rng.choice(sessions)
        body = SessionEventBatchRequest.model_validate({"events": make_events(rng, sid, size, 1_760_000_000_000 + i * 1000)})
        out.append([event_from_request(e, session_id=sid, now=1_760_000_000_000) for e in body.events])
    return out


def stages(count: int, size: int, seed: int) -> None:
    """Best-of-5 CPU per event of each step the REST batch route runs in Python, in order."""
    import orjson

    from tracehive.api.bodies import check_depth
    from tracehive.storage.sqlite.rows import event_params

    rng = random.Random(seed)
    sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    bodies = [orjson.dumps({"events": make_events(rng, sid, size, 1_760_000_000_000 + i * 1000)})
              for i in range(count)]
    docs = [orjson.loads(b) for b in bodies]
    models = [SessionEventBatchRequest.model_validate(d) for d in docs]
    events = [[event_from_request(e, session_id=sid, now=1) for e in m.events] for m in models]
    steps = {
        "orjson.loads": lambda: [orjson.loads(b) for b in bodies],
        "check_depth": lambda: [check_depth(d, 64) for d in docs],
        "pydantic validate": lambda: [SessionEventBatchRequest.model_validate(d) for d in docs],
        "event_from_request": lambda: [[event_from_request(e, session_id=sid, now=1) for e in m.events]
                                       for m in models],
        "event_params (rows)": lambda: [[event_params(e, 1, "org", "workspace", 1) for e in es] for es in events],
    }
    for name, step in steps.items():
        best = min(_timed(step) for _ in range(5))
        print(f"  {name:22s} {best / (count * size) * 1e6:6.1f} us/event")


def _timed(step: Any) -> float:
    t0 = time.process_time()
    step()
    return time.process_time() - t0


async def run(work: list[list[Event]], writers: int, directory: Path) -> tuple[float, float, int]:
    store = SQLiteStore(directory / "tracehive.db")
    await store.open()
    try:
        project, _ = await store.ensure_project("bench")
        _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
        scope = await store.resolve_key(key)
        assert scope is not None
        queue = list(reversed(work))

        async def writer() -> None:
            while queue:
                await store.write_events(scope, queue.pop())

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        return time.perf_counter() - t0, time.process_time() - cpu0, store.writer.commits
    finally:
        await store.close()


async def run_chdb(work: list[list[Event]], writers: int, directory: Path) -> tuple[float, float, int]:
    """The same writes into the ClickHouse event store on chDB (issue #14), in ``directory``."""
    from tracehive.model.scope import Scope
    from tracehive.storage.clickhouse import ClickHouseEventStore

    store = ClickHouseEventStore.chdb(directory / "events")
    await store.open()
    try:
        scope = Scope(org_id=str(uuid.uuid4()), workspace_id=str(uuid.uuid4()), project_id=str(uuid.uuid4()),
                      project_name="bench")
        queue = list(reversed(work))

        async def writer() -> None:
            while queue:
                await store.write_events(scope, queue.pop())

        ex = store._executor()
        block = "SELECT max(max_block_number) FROM system.parts WHERE database = currentDatabase() AND table = 'events'"
        (before,), = await ex.query(block)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        (after,), = await ex.query(block)  # every insert takes the next block number
        return wall, cpu, int(after or 0) - int(before or 0)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=500, help="batches (default 500)")
    parser.add_argument("--size", type=int, default=100, help="events per batch (default 100)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (default 8)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--stages", action="store_true", help="also time the request path's Python steps")
    parser.add_argument("--chdb", action="store_true",
                        help="the ClickHouse event store on chDB instead (issue #14; commits are its inserts)")
    args = parser.parse_args()
    work = batches(args.batches, args.size, args.seed)
    events = args.batches * args.size
    with tempfile.TemporaryDirectory(prefix="tracehive-store-writes-") as tmp:
        wall, cpu, commits = asyncio.run((run_chdb if args.chdb else run)(work, args.writers, Path(tmp)))
    print(f"tracehive: {Path(tracehive.__file__).parent}" + (" (events in chDB)" if args.chdb else ""))
    print(f"{events:,} events in batches of {args.size}, {args.writers} writers: {events / wall:,.0f} events/s, "
          f"{cpu / events * 1e6:.0f} us CPU/event (the process), {commits} commits ({wall:.2f} s)")
    if args.stages:
        print("the request path's Python, per event (50 batches):")
        stages(50, args.size, args.seed)
    print("command: python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
