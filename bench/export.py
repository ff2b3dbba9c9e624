#!/usr/bin/env python
"""Export benchmark (issue #4 point 4): ``tracehive export`` of N events, events/s and peak RSS.

1. Builds a data dir of ``--events`` realistic events (~1 KB: model/tool/chain with chat
   messages, model config, cost, tokens, feedback; 100 events per session, plus the sessions)
   through ``SQLiteStore.write_events`` (synchronous=OFF for the build only).
2. Runs ``python -m tracehive export -o FILE`` (JSONL, then CSV) as a subprocess at 10% and at
   100% of the events (a date-range filter picks the 10%), timing each and reading the child's
   peak RSS (VmHWM from /proc). Flat RSS = the 100% run peaks no higher than the 10% run
   plus a little.
3. Times ``tracehive import`` of the JSONL into an empty data dir, and checks the round trip.

    python bench/export.py                  # 100,000 events
    python bench/export.py --events 20000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.storage.sqlite import SQLiteStore

T0 = 1_700_000_000_000
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3.1-70b")


def make_events(n: int, rng: random.Random) -> list[list[Event]]:
    batches, batch = [], []
    sid = ""
    for i in range(n):
        if i % 100 == 0:
            sid = str(uuid.UUID(int=rng.getrandbits(128)))
            if batch:
                batches.append(batch)
            batch = []
        start = T0 + i * 60
        kind = ("model", "tool", "chain")[i % 3]
        prompt = " ".join(rng.choice(("what", "is", "the", "answer", "to", "ünïcode", "🐝", "life")) for _ in range(40))
        batch.append(Event(
            event_id=str(uuid.UUID(int=rng.getrandbits(128))), session_id=sid, parent_id=sid, event_type=kind,
            event_name=f"{kind}-{i % 7}", source="bench", start_time=start, end_time=start + 250.5, duration=250.5,
            config={"model": rng.choice(MODELS), "temperature": 0.7, "max_tokens": 512},
            inputs={"chat_history": [{"role": "system", "content": "You are helpful."},
                                     {"role": "user", "content": prompt}]},
            outputs={"content": prompt[::-1], "finish_reason": "stop"},
            metadata={"cost": rng.random() / 100, "prompt_tokens": rng.randint(10, 900),
                      "completion_tokens": rng.randint(1, 300), "total_tokens": 1000},
            feedback={"rating": rng.randint(1, 5)} if i % 5 == 0 else {},
            user_properties={"user_id": f"user-{i % 500}"},
        ))  # fmt: skip
    if batch:
        batches.append(batch)
    return batches


async def build(data_dir: Path, n: int) -> None:
    store = SQLiteStore(data_dir / "tracehive.db", synchronous="OFF")
    await store.open()
    try:
        project, _ = await store.ensure_project("default")
        scope = Scope(project.org_id, project.workspace_id, project.project_id, project.name)
        for batch in make_events(n, random.Random(42)):
            await store.write_events(scope, batch)
    finally:
        await store.close()


def _hwm_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def run(args: list[str]) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS in MB (VmHWM sampled until it exits: ru_maxrss
    would report this big parent's peak, which a forked child inherits)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tracehive", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm_mb(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tracehive {' '.join(args)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    opts = parser.parse_args()
    n = opts.events
    with tempfile.TemporaryDirectory(prefix="tracehive-bench-export-") as tmp:
        root = Path(tmp)
        data = root / "data"
        started = time.perf_counter()
        asyncio.run(build(data, n))
        total = n + (n + 99) // 100
        print(f"built {total:,} events (incl. sessions) in {time.perf_counter() - started:.1f}s; "
              f"db {(data / 'tracehive.db').stat().st_size / 1e6:.0f} MB")
        tenth = T0 + (n - n // 10) * 60
        rows = []
        for label, fmt, extra, count in (
            ("jsonl 10%", "jsonl", ["--since", str(tenth)], n // 10),
            ("jsonl 100%", "jsonl", [], total),
            ("csv 100%", "csv", [], total),
        ):
            out = root / f"out.{fmt}"
            secs, rss = run(["export", "--data-dir", str(data), "--format", fmt, "-o", str(out), *extra])
            rows.append((label, count, secs, rss, out.stat().st_size))
        first = root / "out.jsonl"
        run(["export", "--data-dir", str(data), "-o", str(first)])
        secs, rss = run(["import", str(first), "--data-dir", str(root / "copy")])
        rows.append(("import jsonl", total, secs, rss, first.stat().st_size))
        second = root / "again.jsonl"
        run(["export", "--data-dir", str(root / "copy"), "-o", str(second)])
        same = first.read_bytes() == second.read_bytes()
    print(f"{'run':<14}{'events':>10}{'seconds':>10}{'events/s':>12}{'peak RSS MB':>13}{'file MB':>10}")
    for label, count, secs, rss, size in rows:
        print(f"{label:<14}{count:>10,}{secs:>10.2f}{count / secs:>12,.0f}{rss:>13}{size / 1e6:>10.1f}")
    print(f"round trip (export, import into an empty dir, export) identical: {same}")
    print("(wall time of the whole CLI process, start-up included)")


if __name__ == "__main__":
    main()
