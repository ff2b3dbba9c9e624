#!/usr/bin/env python
"""Hostile-client load test: an honest writer next to one attack at a time, before and after.

Each scenario runs on a fresh ``python -m tracehive serve`` (fresh temp data dir, HTTP and
OTLP/gRPC on 127.0.0.1). The bootstrap key it prints (key A) belongs to the attacker's project,
which is first seeded with 20,000 trace events (20 x POST /v1/events/batch of 1,000) so heavy
queries have something to chew; ``tracehive keys create --project honest`` mints key B for the
honest client. Then, for ``--seconds``:

* the honest client (key B, one thread, httpx, 10 s timeout) sends POST /v1/events/batch of 20
  small events every 50 ms; a 503/429 is retried once after its Retry-After (capped at 1 s) and
  counted as retried; any other non-200, or an exception, is an error. Every write's latency
  (retry included) is recorded;
* one attack runs in a separate process (so it does not share the honest client's GIL):

  0. quiet       no attack
  1. junk-keys   1 thread: GET /v1/whoami with a distinct ~1 MB junk ``Authorization: Bearer``
                 each time (raw sockets, a new connection per request)
  2. slow-bodies 4 connections with key A: POST /v1/events/batch declaring ~20 MB (just under
                 the 20 MiB max body), then 1 byte every 2 s; a connection cut off (408 or
                 closed) is replaced by a new one
  3. heavy-queries 6 threads with key A: GET /v1/events/chart?bucket=day with 100
                 ``inputs not contains needle-i`` filters, 5 s client timeout, in a loop
  4. grpc-bombs  4 threads: keyless OTLP/gRPC Export of a 19 MiB message of zeros sent gzipped
                 (inflates to 19 MiB, ~19 KB on the wire), in a loop;

* the server's VmRSS is sampled from /proc/<pid>/status every 100 ms.

"before" is the previous release (git 0cd7b13, exported with ``git archive`` into a temp dir
unless ``--before-src`` names a tree), "after" the code of this checkout; both run with the same
Python and venv, the tree chosen by PYTHONPATH (as bench/ingest.py's ``--src``). Targets, with any
one attack running: the honest writes keep succeeding (no errors, <= 1 % retried 503s), their p99
stays within 2x the quiet p99 of the same version, and the server's RSS stays under 400 MB.

    python bench/hostile.py                       # both versions, 10 s per scenario (~4 min)
    python bench/hostile.py --seconds 3           # smoke run
    python bench/hostile.py --only after --json /tmp/h.json --markdown /tmp/h.md

Everything goes to 127.0.0.1; each attack is bounded by the scenario's time and each server is
stopped (killed past a grace period) at the end of its scenario.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import random
import select
import shlex
import shutil
import socket
import string
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from ingest import Server, free_port, machine_busy, make_events, percentile, wait_quiet

REPO = Path(__file__).resolve().parents[1]
BEFORE_REV = "0cd7b13"
SCENARIOS = ("quiet", "junk-keys", "slow-bodies", "heavy-queries", "grpc-bombs")
VERSIONS = ("before", "after")

RSS_TARGET_MB = 400.0
P99_FACTOR_TARGET = 2.0
RETRIED_TARGET_PCT = 1.0

SEED_EVENTS = 20_000
SEED_BATCH = 1_000
HONEST_EVENTS = 20
HONEST_INTERVAL = 0.05
HONEST_TIMEOUT = 10.0
RETRY_AFTER_CAP = 1.0
RAMP_SECONDS = 1.0  # the attack runs this long before the honest client's measured writes start

JUNK_KEY_BYTES = 1024 * 1024
SLOW_CONNECTIONS = 4
SLOW_DECLARED = 20 * 1024 * 1024 - 1024  # just under the default max_body_bytes (20 MiB)
SLOW_BYTE_EVERY = 2.0
HEAVY_THREADS = 6
HEAVY_FILTERS = 100
HEAVY_TIMEOUT = 5.0
GRPC_THREADS = 4
GRPC_MESSAGE = 19 * 1024 * 1024
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# The trees under test
# ------------------------------------------------------------------------------------------------


def export_before(dest: Path) -> Path:
    """``git archive BEFORE_REV src`` unpacked under ``dest``; returns its src dir."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", BEFORE_REV, "src"],
                         capture_output=True, check=True, timeout=120).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(dest, filter="data")
    return dest / "src"


def src_dir(tree: str) -> Path:
    """The directory holding the ``tracehive`` package: DIR/src or DIR itself."""
    path = Path(tree).resolve()
    for cand in (path / "src", path):
        if (cand / "tracehive" / "__init__.py").is_file():
            return cand
    raise SystemExit(f"--before-src {tree}: no tracehive package in it or in its src/")


def describe_after() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], check=False,
                               capture_output=True,
                               text=True, timeout=10).stdout.splitlines()
    except (subprocess.SubprocessError, OSError):
        return str(REPO / "src")
    return f"{REPO / 'src'} @ {rev}" + (f" + uncommitted changes in {len(dirty)} files under src/" if dirty else "")


def mint_key(data_dir: Path, project: str) -> str:
    """``python -m tracehive keys create`` (the tree from PYTHONPATH, no TRACEHIVE_* variables);
    the key is alone on its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHIVE_")}
    proc = subprocess.run([sys.executable, "-m", "tracehive", "keys", "create", "--project", project,
                           "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"tracehive keys create failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1].strip()


class HostileServer(Server):
    """``python -m tracehive serve`` bound to 127.0.0.1 with OTLP/gRPC on; the tree comes from
    PYTHONPATH (set by the caller in os.environ, which Server.start copies)."""

    def __init__(self, data_dir: Path, port: int, grpc_port: int) -> None:
        super().__init__(data_dir, port)
        self.grpc_port = grpc_port

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "tracehive", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--otlp-grpc-port", str(self.grpc_port)]

    def rss_mb(self) -> float | None:
        assert self.proc is not None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            pass
        return None


# ------------------------------------------------------------------------------------------------
# Attackers (run in a spawned process; each returns a Counter of what it saw)
# ------------------------------------------------------------------------------------------------


def _status_of(data: bytes) -> str:
    if data.startswith(b"HTTP/1."):
        parts = data.split(b" ", 2)
        if len(parts) >= 2:
            return parts[1].decode(errors="replace")
    return "garbled" if data else "closed"


def _rst_close(sock: socket.socket) -> None:
    """Close with RST (no TIME_WAIT: attackers open many short connections)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def junk_keys(port: int, key: str, stop: Any, stats: Counter) -> None:
    alphabet = string.ascii_letters + string.digits + "-_"
    rng = random.Random(1)
    base = "".join(rng.choices(alphabet, k=JUNK_KEY_BYTES)).encode()
    n = 0
    while not stop.is_set():
        n += 1
        junk = f"{os.getpid():x}{n:012x}{rng.getrandbits(64):016x}".encode()
        request = (b"GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer " % port
                   + junk + base[len(junk):] + b"\r\n\r\n")
        stats["requests"] += 1
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as exc:
            stats[f"connect {type(exc).__name__}"] += 1
            time.sleep(0.05)
            continue
        try:
            try:
                sock.sendall(request)
            except OSError:
                stats["cut off while sending"] += 1
            try:
                data = sock.recv(256)
            except TimeoutError:
                data = None
                stats["no answer in 5 s"] += 1
            except OSError:
                data = b""
            if data is not None:
                stats[f"answer {_status_of(data)}"] += 1
        finally:
            _rst_close(sock)


def slow_bodies(port: int, key: str, stop: Any, stats: Counter, lifetimes: list[float]) -> None:
    head = (f"POST /v1/events/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {SLOW_DECLARED}\r\n\r\n").encode()
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(head + b"{")
        except OSError as exc:
            stats[f"connect {type(exc).__name__}"] += 1
            time.sleep(0.1)
            continue
        stats["connections"] += 1
        opened = last = time.monotonic()
        outcome = None
        try:
            while not stop.is_set():
                readable, _, _ = select.select([sock], [], [], 0.1)
                if readable:
                    try:
                        data = sock.recv(256)
                    except OSError:
                        data = b""
                    outcome = f"cut off: {_status_of(data)}"
                    break
                if time.monotonic() - last >= SLOW_BYTE_EVERY:
                    last = time.monotonic()
                    try:
                        sock.send(b" ")
                    except OSError:
                        outcome = "cut off: closed"
                        break
        finally:
            _rst_close(sock)
        if outcome is not None:
            stats[outcome] += 1
            lifetimes.append(time.monotonic() - opened)
        else:
            stats["still open at the end"] += 1


def heavy_queries(port: int, key: str, stop: Any, stats: Counter, index: int) -> None:
    import httpx

    filters = [{"field": "inputs", "operator": "not contains", "value": f"needle-{i}", "type": "string"}
               for i in range(HEAVY_FILTERS)]
    params = {"bucket": "day", "filters": json.dumps(filters, separators=(",", ":"))}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HEAVY_TIMEOUT, headers=headers) as client:
        while not stop.is_set():
            stats["requests"] += 1
            try:
                r = client.get("/v1/events/chart", params=params)
                stats[f"answer {r.status_code}"] += 1
                if r.status_code not in (200, 429, 503):
                    stats[f"body {r.status_code}: {r.text[:120]}"] += 1
            except httpx.TimeoutException:
                stats["client timeout (5 s), disconnected"] += 1
            except httpx.HTTPError as exc:
                stats[f"error {type(exc).__name__}"] += 1
                time.sleep(0.05)


def grpc_bombs(grpc_port: int, key: str, stop: Any, stats: Counter, message: bytes) -> None:
    import grpc

    options = [("grpc.max_send_message_length", 64 * 1024 * 1024),
               ("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=options) as channel:
        export = channel.unary_unary(GRPC_METHOD)
        while not stop.is_set():
            stats["calls"] += 1
            try:
                export(message, timeout=10, compression=grpc.Compression.Gzip)
                stats["OK"] += 1
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                name = getattr(code, "name", str(code))
                stats[name] += 1
                if name == "UNAVAILABLE":
                    time.sleep(0.05)


def attacker_main(kind: str, port: int, grpc_port: int, key: str, nice: int, stop: Any, ready: Any,
                  out: Any) -> None:
    """One attack, in its own process: threads until ``stop``; then its counters to ``out``."""
    if nice:
        os.nice(nice)
    stats: Counter = Counter()
    lifetimes: list[float] = []
    threads: list[threading.Thread] = []
    if kind == "junk-keys":
        threads = [threading.Thread(target=junk_keys, args=(port, key, stop, stats), daemon=True)]
    elif kind == "slow-bodies":
        threads = [threading.Thread(target=slow_bodies, args=(port, key, stop, stats, lifetimes), daemon=True)
                   for _ in range(SLOW_CONNECTIONS)]
    elif kind == "heavy-queries":
        threads = [threading.Thread(target=heavy_queries, args=(port, key, stop, stats, i), daemon=True)
                   for i in range(HEAVY_THREADS)]
    elif kind == "grpc-bombs":
        message = b"\x0a" + b"\x00" * GRPC_MESSAGE
        threads = [threading.Thread(target=grpc_bombs, args=(grpc_port, key, stop, stats, message), daemon=True)
                   for _ in range(GRPC_THREADS)]
    else:
        raise ValueError(kind)
    for t in threads:
        t.start()
    ready.set()
    stop.wait()
    deadline = time.monotonic() + 3
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    result: dict[str, Any] = {"stats": dict(stats), "threads_stuck_at_stop": stuck,
                              "cpu_s": round(time.process_time(), 2)}  # the whole process, imports included
    if lifetimes:
        lifetimes.sort()
        result["connection_lifetime_s"] = {"n": len(lifetimes), "min": round(lifetimes[0], 1),
                                           "median": round(lifetimes[len(lifetimes) // 2], 1),
                                           "max": round(lifetimes[-1], 1)}
    out.put(result)
    # daemon threads still blocked in a call die with the process


# ------------------------------------------------------------------------------------------------
# The honest client and the RSS sampler
# ------------------------------------------------------------------------------------------------


def honest_body(rng: random.Random) -> bytes:
    session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    now = int(time.time() * 1000)
    events = [{
        "event_type": "tool",
        "event_name": "honest.lookup",
        "session_id": session,
        "source": "hostile-bench",
        "inputs": {"query": f"order {rng.randint(1, 10**6)}", "step": i},
        "outputs": {"status": "found", "rows": rng.randint(0, 9)},
        "metadata": {"latency_ms": rng.randint(1, 50)},
        "start_time": now + i,
        "end_time": now + i + 5,
    } for i in range(HONEST_EVENTS)]
    return orjson.dumps({"events": events})


def retry_after(value: str | None) -> float:
    try:
        wait = float(value) if value is not None else RETRY_AFTER_CAP
    except ValueError:
        wait = RETRY_AFTER_CAP
    return min(max(wait, 0.0), RETRY_AFTER_CAP)


def honest_writes(client: Any, seconds: float, rng: random.Random) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: Counter = Counter()
    writes = retried = failed = 0
    start = time.monotonic()
    end = start + seconds
    next_at = start
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if next_at > now:
            time.sleep(next_at - now)
        next_at = max(next_at + HONEST_INTERVAL, time.monotonic())
        body = honest_body(rng)
        writes += 1
        t0 = time.perf_counter()
        outcome = "ok"
        try:
            r = client.post("/v1/events/batch", content=body)
            if r.status_code in (429, 503):
                retried += 1
                time.sleep(retry_after(r.headers.get("retry-after")))
                r = client.post("/v1/events/batch", content=body)
            if r.status_code != 200:
                outcome = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        latencies.append(time.perf_counter() - t0)
        if outcome != "ok":
            failed += 1
            errors[outcome] += 1
    latencies.sort()
    return {
        "writes": writes,
        "wall_s": round(time.monotonic() - start, 2),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "errors": failed,
        "errors_pct": round(100 * failed / writes, 2) if writes else None,
        "error_kinds": dict(errors),
        "retried": retried,
        "retried_pct": round(100 * retried / writes, 2) if writes else None,
        "latencies_ms": [round(x * 1000, 1) for x in latencies],  # sorted
    }


class RssSampler(threading.Thread):
    def __init__(self, server: HostileServer, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.server, self.every = server, every
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            rss = self.server.rss_mb()
            if rss is not None:
                self.samples.append(rss)
            self.halt.wait(self.every)


# ------------------------------------------------------------------------------------------------
# One scenario
# ------------------------------------------------------------------------------------------------


def seed(client: Any) -> float:
    rng = random.Random(7)
    t0 = time.monotonic()
    base = int(time.time() * 1000) - 6 * 86_400_000
    for b in range(SEED_EVENTS // SEED_BATCH):
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        events = make_events(rng, session, SEED_BATCH, base + b * 20_000_000)
        for e in events:
            e["session_id"] = session
        r = client.post("/v1/events/batch", content=orjson.dumps({"events": events}), timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"seeding failed: HTTP {r.status_code} {r.text[:300]}")
    return time.monotonic() - t0


def run_scenario(version: str, name: str, seconds: float, tmp: Path, quiet_wait: float,
                 attacker_nice: int) -> dict[str, Any]:
    import httpx

    work = tmp / f"{version}-{name}"
    work.mkdir()
    server = HostileServer(work / "data", free_port(), free_port())
    attacker: Any = None
    sampler: RssSampler | None = None
    ctx = mp.get_context("spawn")
    try:
        server.start(timeout=60)
        key_a = server.key
        key_b = mint_key(server.data_dir, "honest")
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}",
                          headers={"Authorization": f"Bearer {key_a}", "Content-Type": "application/json"}) as c:
            seed_s = seed(c)
        rng = random.Random(11)
        honest = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=HONEST_TIMEOUT,
                              headers={"Authorization": f"Bearer {key_b}", "Content-Type": "application/json"})
        with honest:
            for _ in range(3):  # warm-up: connection, key lookup (not measured)
                honest.post("/v1/events/batch", content=honest_body(rng)).raise_for_status()
            other_before = wait_quiet(quiet_wait) if quiet_wait > 0 else None
            rss_start = server.rss_mb()
            w0, busy0, me0 = time.monotonic(), machine_busy(), time.process_time()
            srv0 = server.status().get("cpu", 0.0)
            sampler = RssSampler(server)
            sampler.start()
            attack: dict[str, Any] = {}
            if name != "quiet":
                stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
                attacker = ctx.Process(target=attacker_main, name=f"attack-{name}",
                                       args=(name, server.port, server.grpc_port, key_a, attacker_nice, stop, ready, out))
                attacker.start()
                if not ready.wait(30):
                    raise RuntimeError(f"attacker {name} did not start")
                time.sleep(RAMP_SECONDS)
            result = honest_writes(honest, seconds, rng)
            if attacker is not None:
                stop.set()
                try:
                    attack = out.get(timeout=15)
                except Exception:  # noqa: BLE001 - a stuck attacker is reported, not fatal
                    attack = {"stats": {}, "note": "attacker sent no report"}
                attacker.join(5)
                if attacker.is_alive():
                    attacker.kill()
                    attacker.join(5)
        alive = server.proc is not None and server.proc.poll() is None
        window = time.monotonic() - w0
        server_cpu = server.status().get("cpu", srv0) - srv0 if alive else None
        bench_cpu = time.process_time() - me0 + (attack.get("cpu_s") or 0.0)
        busy = machine_busy() - busy0
        sampler.halt.set()
        sampler.join(2)
        samples = sampler.samples
        result.update({
            "scenario": name,
            "seed_s": round(seed_s, 1),
            "rss_start_mb": round(rss_start, 1) if rss_start is not None else None,
            "peak_rss_mb": round(max(samples), 1) if samples else None,
            "rss_samples": len(samples),
            "server_alive_at_end": alive,
            "window_s": round(window, 1),
            "server_cpu_cores": round(server_cpu / window, 2) if server_cpu is not None else None,
            "bench_cpu_cores": round(bench_cpu / window, 2),
            "attacker_cpu_cores": round((attack.get("cpu_s") or 0.0) / window, 2),
            "other_load_cores": (round(max(0.0, busy - bench_cpu - server_cpu) / window, 2)
                                 if server_cpu is not None else None),
            "other_load_before_cores": None if other_before is None else round(other_before, 2),
            "attack": attack,
        })
        if not alive:
            result["server_log_tail"] = server.logs()[-1500:]
        return result
    finally:
        if sampler is not None:
            sampler.halt.set()
        if attacker is not None and attacker.is_alive():
            attacker.kill()
            attacker.join(5)
        if server.proc is not None:
            server.stop(timeout=5)


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------


def add_verdicts(rows: dict[str, dict[str, Any]]) -> None:
    quiet = rows.get("quiet", {}).get("p99_ms")
    for name, r in rows.items():
        r["p99_vs_quiet"] = round(r["p99_ms"] / quiet, 2) if quiet and r.get("p99_ms") is not None else None
        misses = []
        if "failure" in r:
            misses.append("run failed")
        if r.get("errors"):
            misses.append("errors")
        if (r.get("retried_pct") or 0) > RETRIED_TARGET_PCT:
            misses.append("retried")
        if name != "quiet" and r["p99_vs_quiet"] is not None and r["p99_vs_quiet"] > P99_FACTOR_TARGET:
            misses.append("p99")
        if "failure" not in r and (r.get("peak_rss_mb") is None or r["peak_rss_mb"] >= RSS_TARGET_MB):
            misses.append("RSS")
        if not r.get("server_alive_at_end", True):
            misses.append("server died")
        r["meets_targets"] = not misses
        r["missed"] = misses


def _f(v: Any, fmt: str = "{:,.1f}") -> str:
    return "-" if v is None else fmt.format(v)


COLUMNS = [
    ("honest writes", "writes", "{:,}"),
    ("p50 ms", "p50_ms", "{:,.1f}"),
    ("p99 ms", "p99_ms", "{:,.1f}"),
    ("p99 ÷ quiet p99", "p99_vs_quiet", "{:.2f}"),
    ("errors %", "errors_pct", "{:.1f}"),
    ("retried %", "retried_pct", "{:.1f}"),
    ("peak RSS MB", "peak_rss_mb", "{:,.0f}"),
]


def version_table(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    table = [["scenario", *(c[0] for c in COLUMNS), "start RSS MB", "server CPU cores", "attacker CPU cores",
              "other load cores", "targets"]]
    for name, r in rows.items():
        table.append([name, *(_f(r.get(k), fmt) for _, k, fmt in COLUMNS), _f(r.get("rss_start_mb"), "{:,.0f}"),
                      _f(r.get("server_cpu_cores"), "{:.2f}"), _f(r.get("attacker_cpu_cores"), "{:.2f}"),
                      _f(r.get("other_load_cores"), "{:.2f}"),
                      "ok" if r["meets_targets"] else "MISSED: " + ", ".join(r["missed"])])
    return table


def side_by_side(results: dict[str, dict[str, dict[str, Any]]]) -> list[list[str]]:
    table = [["scenario", *(f"{c[0]} (before / after)" for c in COLUMNS), "targets (before / after)"]]
    names = [n for n in SCENARIOS if all(n in results[v] for v in VERSIONS)]
    for name in names:
        b, a = results["before"][name], results["after"][name]
        cells = [f"{_f(b.get(k), fmt)} / {_f(a.get(k), fmt)}" for _, k, fmt in COLUMNS]
        verdict = " / ".join("ok" if r["meets_targets"] else "missed " + "+".join(r["missed"]) for r in (b, a))
        table.append([name, *cells, verdict])
    return table


def text_table(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for j, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(table: list[list[str]]) -> str:
    out = ["| " + " | ".join(table[0]) + " |", "|" + "|".join("---" for _ in table[0]) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(out)


def attack_summary(r: dict[str, Any]) -> str:
    a = r.get("attack") or {}
    stats = a.get("stats") or {}
    if not stats:
        return a.get("note", "")
    parts = [f"{k} x{v:,}" for k, v in sorted(stats.items(), key=lambda kv: -kv[1])]
    text = ", ".join(parts)
    if "connection_lifetime_s" in a:
        lt = a["connection_lifetime_s"]
        text += f"; cut-off connections lived {lt['min']}-{lt['max']} s (median {lt['median']})"
    if a.get("threads_stuck_at_stop"):
        text += f"; {a['threads_stuck_at_stop']} attacker thread(s) still blocked at the end"
    return text


def honest_notes(r: dict[str, Any]) -> str:
    notes = []
    if r.get("error_kinds"):
        notes.append("honest errors: " + ", ".join(f"{k} x{v}" for k, v in r["error_kinds"].items()))
    if r.get("max_ms") is not None:
        notes.append(f"honest max {r['max_ms']:,.0f} ms")
    if not r.get("server_alive_at_end", True):
        notes.append("SERVER DIED")
    if "failure" in r:
        notes.append("RUN FAILED: " + r["failure"].strip().splitlines()[-1][:300])
    return "; ".join(notes)


def render(report: dict[str, Any]) -> tuple[str, str]:
    results = report["results"]
    txt: list[str] = []
    md: list[str] = []
    head = (f"tracehive under hostile clients: {report['config']['seconds']:g} s per scenario, honest client "
            f"{HONEST_EVENTS} events / {HONEST_INTERVAL * 1000:.0f} ms (key B), attacks with key A (project seeded "
            f"with {SEED_EVENTS:,} events) from a process at nice +{report['config']['attacker_nice']}; "
            f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}")
    targets = (f"targets with an attack running: no errors, retried <= {RETRIED_TARGET_PCT:g} %, p99 <= "
               f"{P99_FACTOR_TARGET:g}x the quiet p99, peak RSS < {RSS_TARGET_MB:.0f} MB")
    txt += [head, targets]
    md += [f"Command: `{report['command']}`", "", head + ".", "", targets + ".", ""]
    for v in VERSIONS:
        if v not in results:
            continue
        txt += ["", f"{v}: {report['sources'][v]}", text_table(version_table(results[v]))]
        md += [f"**{v}** ({report['sources'][v]})", "", md_table(version_table(results[v])), ""]
        busy = [f"{n} {r['other_load_cores']:.2f}" for n, r in results[v].items()
                if (r.get("other_load_cores") or 0) > 0.15]
        if busy:
            warn = ("WARNING: other processes used CPU during the measurement (cores: " + ", ".join(busy)
                    + "); on this machine that skews latency")
            txt.append("  " + warn)
            md.append("- " + warn)
        for name, r in results[v].items():
            notes = "; ".join(x for x in (attack_summary(r), honest_notes(r)) if x)
            if notes:
                txt.append(f"  {name}: {notes}")
                md.append(f"- {v}, {name}: {notes}")
        md.append("")
    if all(v in results for v in VERSIONS):
        table = side_by_side(results)
        txt += ["", "side by side (before / after):", text_table(table)]
        md += ["**Side by side** (before / after)", "", md_table(table), ""]
    txt += ["", f"command: {report['command']}"]
    return "\n".join(txt), "\n".join(md) + "\n"


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-src", metavar="DIR", help=f"the previous release's tree (DIR/src/tracehive or "
                        f"DIR/tracehive); default: git archive {BEFORE_REV} into a temp dir")
    parser.add_argument("--seconds", type=float, default=10.0, help="honest client's time per scenario (default 10)")
    parser.add_argument("--only", choices=VERSIONS, help="run one version only")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated subset (quiet is always run: the p99 reference)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown (for BENCHMARKS.md)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                        help="before each scenario's measured window wait up to S s for the rest of the machine "
                        "to use < 0.15 cores (default 0: don't wait; the tables report the other load anyway)")
    parser.add_argument("--attacker-nice", type=int, default=10, metavar="N",
                        help="nice value added to the attacker process (default 10: on a small shared machine "
                        "the attacker's own CPU work, e.g. gzipping 19 MiB per gRPC call, should not be what "
                        "slows the honest client; 0 = same priority as the server)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, data)")
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    scenarios = [s for s in SCENARIOS if s == "quiet" or s in scenarios]
    versions = [args.only] if args.only else list(VERSIONS)
    command = shlex.join(["python", *sys.argv])

    tmp = Path(tempfile.mkdtemp(prefix="tracehive-hostile-"))
    saved_pythonpath = os.environ.get("PYTHONPATH")
    t_start = time.monotonic()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    sources: dict[str, str] = {}
    try:
        trees: dict[str, Path] = {"after": REPO / "src"}
        sources["after"] = describe_after()
        if "before" in versions:
            if args.before_src:
                trees["before"] = src_dir(args.before_src)
                sources["before"] = f"{trees['before']} (--before-src)"
            else:
                trees["before"] = export_before(tmp / "before")
                sources["before"] = f"git {BEFORE_REV} (exported with git archive)"
        for v in versions:
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(trees[v]), saved_pythonpath) if p)
            results[v] = {}
            for name in scenarios:
                log(f"{v}: {name} ...")
                try:
                    r = run_scenario(v, name, args.seconds, tmp, args.wait_quiet, args.attacker_nice)
                except Exception as exc:  # noqa: BLE001 - one broken scenario must not lose the others
                    log(f"{v}: {name} FAILED: {exc}")
                    results[v][name] = {"scenario": name, "failure": str(exc)[-1500:]}
                    continue
                results[v][name] = r
                log(f"{v}: {name}: {r['writes']} writes, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                    f"errors {r['errors']}, retried {r['retried']}, peak RSS {r['peak_rss_mb']} MB"
                    + ("" if r["server_alive_at_end"] else ", SERVER DIED"))
            add_verdicts(results[v])
    finally:
        if saved_pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_pythonpath
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    report = {
        "command": command,
        "sources": sources,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {"seconds": args.seconds, "ramp_s": RAMP_SECONDS, "seed_events": SEED_EVENTS,
                   "attacker_nice": args.attacker_nice,
                   "honest": {"events_per_write": HONEST_EVENTS, "interval_ms": HONEST_INTERVAL * 1000,
                              "timeout_s": HONEST_TIMEOUT, "retry_after_cap_s": RETRY_AFTER_CAP},
                   "targets": {"retried_pct_max": RETRIED_TARGET_PCT, "p99_vs_quiet_max": P99_FACTOR_TARGET,
                               "rss_mb_max": RSS_TARGET_MB}},
        "total_s": round(time.monotonic() - t_start, 1),
        "results": results,
    }
    text, markdown = render(report)
    print(text)
    print(f"total: {report['total_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"results: {args.json}")
    if args.markdown:
        Path(args.markdown).write_text(markdown)
        print(f"markdown: {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
