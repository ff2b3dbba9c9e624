#!/usr/bin/env python
"""Ingest benchmark (issue #2): ``POST /v1/sessions/{id}/events/batch`` against a real server.

What it does, in one run:

1. Pre-generates realistic LLM trace events (~1 KB each: model/tool/chain, chat messages,
   outputs, model config, cost and token counts, start/end times), groups them into request
   bodies of ``--batch`` events, each addressed to one of ``--sessions`` sessions picked at
   random, and pre-serialises every HTTP request with orjson (so the client only writes bytes).
2. Starts ``python -m tracehive serve`` (the same entry point as the ``tracehive`` script) on a
   fresh temp data dir with default settings (fsync on: ``synchronous=FULL``), and reads the
   project key it prints on first start.
3. Sends all bodies from ``--clients`` keep-alive HTTP/1.1 connections (one thread per
   connection, raw sockets, in a separate client process) and measures events/s and request
   latency, while the parent samples the *server process's* VmRSS/VmHWM from /proc/<pid>/status.
4. Stops the server, checks the rows are all there, and then runs "the limit": one plain Python
   process decodes the same bodies with orjson and inserts them straight into an identically
   migrated SQLite database (WAL, synchronous=FULL), one ``executemany`` + commit per body.
5. Prints a compact table (events/s, ratio server/limit, p50/p99, peak RSS, CPU) and the
   command, and writes ``--json`` if asked. Temp dirs are removed; every phase has a deadline.

    python bench/ingest.py --quick              # ~100,000 events
    python bench/ingest.py                      # 1,000,000 events (checks RSS < 300 MB)
    python bench/ingest.py --quick --py-spy /tmp/server.svg       # with a flame graph of the server

On PostgreSQL (``--store URL`` of a server the bench may create databases on): the database
``tracehive_bench_<pid>`` is created, migrated (``tracehive migrate``) and given a key
(``tracehive keys create``); ``--nodes N`` servers (``tracehive serve --store``, each its own port
and data dir) share it, the client's connections spread round-robin over them. The limit is one
plain Python process inserting the decoded rows with psycopg 3 into a fresh migrated database,
one transaction per body, by ``executemany`` and by ``COPY`` (the faster is the limit). The table
adds each node's peak RSS and the CPU of the PostgreSQL processes (/proc, see bench/postgres.py).
Both databases are dropped at the end (``--keep`` keeps the nodes').

    python bench/ingest.py --quick --store postgresql://postgres@127.0.0.1:5432/postgres --nodes 2

With events in ClickHouse (``--events-store chdb``, issue #14: durable ingest of at least 20,000
events/s): the server runs ``tracehive serve --data-dir D --events-store chdb://<D>/events``
(projects and keys stay in SQLite in D, events go to ClickHouse in-process through chDB) and the
client phase is the same as above. After the server stops, a forked child opens the events dir
with chDB and checks that every acknowledged event is stored exactly once (``count()`` and
``uniqExact(event_id)`` over ``events FINAL``, sessions apart); the table adds the events dir's
size and bytes per event (the dir keeps merged-away parts for a while: the active parts' size is
shown too). The limit is one plain process that creates the same table
(``schema.events_v2``) on a fresh chDB dir with the server's engine settings (``chdb_settings``:
``async_insert=0``, ``input_format_parallel_parsing=0``, fsync on insert) and inserts the same
events, built by the store's own ``rows.event_row``, with one synchronous ``JSONCompactEachRow``
INSERT per body; it writes events only (no session rows, no reads before writing), so it is meant
as a ceiling. It is serial, though (decode and build a body's rows, then insert), where the server
decodes the next requests on its event loop while chDB inserts on its own thread: when the cost
per INSERT dominates, the server can come out above it (ratio > 1). The table shows the 20,000 events/s target (met or not) and server/limit.
``--store``, ``--nodes`` and ``--synchronous`` do not combine with it.

    python bench/ingest.py --quick --events-store chdb

The machine has 2 cores and may be shared: the table reports the CPU that other processes used
during each phase and warns when it skews the figures (``--wait-quiet`` waits for calm first).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

RSS_LIMIT_MB = 300.0
RATIO_TARGET = 0.25
CHDB_TARGET_EPS = 20_000  # issue #14: durable ingest into ClickHouse (``--events-store chdb``)
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Request bodies live in module globals so that forked children (client, limit) share them
# copy-on-write instead of having them pickled.
REQUESTS: list[bytes] = []  # full HTTP request: head + body
BODY_OFFSETS: list[int] = []  # where the JSON body starts in each request
SESSION_OF: list[str] = []  # the session id in each request's path
WARMUP: list[bytes] = []


# ------------------------------------------------------------------------------------------------
# Event generation
# ------------------------------------------------------------------------------------------------

SYSTEM_PROMPTS = [
    "You are a helpful assistant for Acme Corp. Answer questions about our products using only the "
    "provided context. If the answer is not in the context, say you don't know.",
    "You are a senior support engineer. Be concise, cite the relevant documentation section, and "
    "propose a next step the customer can take.",
    "You are a SQL expert. Translate the user's question into a single PostgreSQL query over the given "
    "schema. Return only the query.",
    "You summarise customer conversations for the account team: list the issues raised, the sentiment, "
    "and any commitments made.",
]
USER_PROMPTS = [
    "How do I rotate the API keys for my workspace without downtime? We have three services using them.",
    "What's the difference between the Pro and Team plans when it comes to data retention and SSO?",
    "Our nightly export job started failing with a 429 after we upgraded. What limits apply to exports?",
    "Can you summarise the last five tickets from Globex and tell me whether they are related?",
    "Write a query that returns monthly active users for the last 6 months, grouped by plan.",
    "Why does the dashboard show a different total than the CSV export for the same date range?",
    "Is there a way to replay failed webhook deliveries from the last 24 hours?",
    "Explain how token usage is billed when a request is retried by the SDK.",
]
COMPLETIONS = [
    "You can rotate keys without downtime by creating a second key, deploying it to each service, and "
    "revoking the old key once traffic has moved. Keys are independent, so both work during the overlap. "
    "See Security > API keys for the exact steps.",
    "Pro keeps data for 30 days and has no SSO; Team keeps data for 1 year and includes SAML SSO and SCIM "
    "provisioning. Both plans can export data at any time.",
    "Exports are limited to 10 concurrent jobs and 100 requests per minute per workspace. The upgrade "
    "enabled per-workspace limits, so schedule the jobs a few minutes apart or request a higher limit.",
    "SELECT date_trunc('month', seen_at) AS month, plan, count(DISTINCT user_id) FROM activity "
    "WHERE seen_at >= now() - interval '6 months' GROUP BY 1, 2 ORDER BY 1, 2;",
    "The dashboard uses your workspace time zone while the CSV export uses UTC, so events near midnight "
    "fall on different days. Set the export time zone to match and the totals will agree.",
    "Yes: open Webhooks > Deliveries, filter by status 'failed' and the last 24 hours, select all and "
    "choose Replay. Replays are delivered in the original order.",
]
TOOLS = [
    ("search_docs", "vector"),
    ("get_ticket", "http"),
    ("run_sql", "database"),
    ("web_search", "http"),
    ("lookup_account", "crm"),
]
SNIPPETS = [
    "API keys can be rotated at any time. A workspace may hold several active keys at once.",
    "Exports are rate limited per workspace; limits are listed on the Usage page.",
    "Data retention depends on the plan: 30 days on Pro, 1 year on Team, custom on Enterprise.",
    "Webhook deliveries are retried 5 times with exponential backoff before being marked failed.",
    "Dashboards render in the workspace time zone; exports are always in UTC.",
]
MODELS = [
    ("gpt-4o-mini", "openai", 0.15, 0.60),
    ("gpt-4o", "openai", 2.5, 10.0),
    ("claude-3-5-sonnet-20241022", "anthropic", 3.0, 15.0),
    ("claude-3-5-haiku-20241022", "anthropic", 0.8, 4.0),
]
CHAINS = ["rag_pipeline", "support_agent", "sql_agent", "summarise_thread"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _model_event(rng: random.Random, parent: str, t: int) -> dict[str, Any]:
    model, provider, cin, cout = rng.choice(MODELS)
    prompt_tokens = rng.randint(150, 2500)
    completion_tokens = rng.randint(20, 400)
    latency = rng.randint(300, 4000)
    return {
        "event_type": "model",
        "event_name": f"{provider}.chat.completions",
        "event_id": _uuid(rng),
        "parent_id": parent,
        "source": "python-sdk",
        "config": {"model": model, "provider": provider, "temperature": rng.choice((0, 0.2, 0.7, 1.0)),
                   "max_tokens": 1024, "top_p": 1},
        "inputs": {"chat_history": [
            {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
            {"role": "user", "content": rng.choice(USER_PROMPTS)},
        ]},
        "outputs": {"role": "assistant", "content": rng.choice(COMPLETIONS), "finish_reason": "stop"},
        "metadata": {
            "cost": round((prompt_tokens * cin + completion_tokens * cout) / 1e6, 6),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "request_id": f"req_{rng.getrandbits(64):016x}",
        },
        "start_time": t,
        "end_time": t + latency,
    }


def _tool_event(rng: random.Random, parent: str, t: int) -> dict[str, Any]:
    name, kind = rng.choice(TOOLS)
    hits = rng.sample(SNIPPETS, 3)
    return {
        "event_type": "tool",
        "event_name": name,
        "event_id": _uuid(rng),
        "parent_id": parent,
        "source": "python-sdk",
        "config": {"tool": name, "kind": kind, "top_k": 3, "timeout_s": 10},
        "inputs": {"query": rng.choice(USER_PROMPTS), "filters": {"product": "acme", "lang": "en"}},
        "outputs": {"results": [{"id": rng.randint(1, 99999), "score": round(rng.random(), 4), "text": h}
                                for h in hits]},
        "metadata": {"latency_ms": rng.randint(5, 800), "cached": rng.random() < 0.3, "result_count": 3,
                     "index": "docs-v7"},
        "start_time": t,
        "end_time": t + rng.randint(5, 800),
    }


def _chain_event(rng: random.Random, parent: str, event_id: str, t: int) -> dict[str, Any]:
    return {
        "event_type": "chain",
        "event_name": rng.choice(CHAINS),
        "event_id": event_id,
        "parent_id": parent,
        "source": "python-sdk",
        "config": {"pipeline_version": "2.3.1", "retriever": "hybrid", "rerank": True},
        "inputs": {"question": rng.choice(USER_PROMPTS), "user_tier": rng.choice(("free", "pro", "team"))},
        "outputs": {"answer": rng.choice(COMPLETIONS),
                    "sources": [f"https://docs.acme.example/guide/{rng.randint(1, 400)}" for _ in range(3)]},
        "metadata": {"cost": round(rng.random() / 50, 6), "total_tokens": rng.randint(300, 5000),
                     "steps": rng.randint(2, 6), "user_id": f"user_{rng.randint(1, 50000)}",
                     "environment": "production", "app_version": "1.42.0"},
        "start_time": t,
        "end_time": t + rng.randint(500, 8000),
    }


def make_events(rng: random.Random, session_id: str, n: int, t0: int) -> list[dict[str, Any]]:
    """``n`` events shaped like traces: a chain, then its model and tool children, repeated."""
    events: list[dict[str, Any]] = []
    t = t0
    while len(events) < n:
        chain_id = _uuid(rng)
        events.append(_chain_event(rng, session_id, chain_id, t))
        for _ in range(min(rng.randint(2, 4), n - len(events))):
            t += rng.randint(1, 50)
            if rng.random() < 0.55:
                events.append(_model_event(rng, chain_id, t))
            else:
                events.append(_tool_event(rng, chain_id, t))
        t += rng.randint(100, 2000)
    return events


def build_requests(n_requests: int, batch: int, sessions: list[str], key: str, port: int,
                   rng: random.Random) -> tuple[list[bytes], list[int], list[str], int]:
    """Pre-serialised HTTP/1.1 requests; also the body offsets and session ids (for the limit)."""
    t_base = int(time.time() * 1000) - 3_600_000
    reqs, offsets, sids = [], [], []
    body_bytes = 0
    for i in range(n_requests):
        sid = rng.choice(sessions)
        body = orjson.dumps({"events": make_events(rng, sid, batch, t_base + i * 10)})
        head = (
            f"POST /v1/sessions/{sid}/events/batch HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        ).encode()
        reqs.append(head + body)
        offsets.append(len(head))
        sids.append(sid)
        body_bytes += len(body)
    return reqs, offsets, sids, body_bytes


# ------------------------------------------------------------------------------------------------
# The server under test
# ------------------------------------------------------------------------------------------------


def proc_io(pid: int | str) -> int:
    """Bytes a process caused to be written to storage (``write_bytes`` of /proc/<pid>/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m tracehive serve`` on a fresh data dir; the Popen pid *is* the server (no shell)."""

    # The default mode runs in one process, whose RSS and CPU this class samples; a subclass whose
    # server forks (journal mode's applier) must be sampled as a process tree (bench/peers.py).
    children_expected = False

    def __init__(self, data_dir: Path, port: int, synchronous: str = "FULL") -> None:
        self.synchronous = synchronous
        self.data_dir = data_dir
        self.port = port
        self.out_path = data_dir.parent / "server.out"
        self.err_path = data_dir.parent / "server.err"
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "tracehive", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir)]

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for name in list(env):  # defaults only: fsync on, default queue and readers
            if name.startswith("TRACEHIVE_"):
                del env[name]
        if self.synchronous != "FULL":  # a diagnostic only: the benchmark's figures are with FULL
            env["TRACEHIVE_SQLITE_SYNCHRONOUS"] = self.synchronous
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            if not self.key:
                lines = self.out_path.read_text(errors="replace").splitlines()
                for i, line in enumerate(lines[:-1]):
                    if "API key" in line and "shown only" in line:
                        self.key = lines[i + 1].strip()
            if self.key and self._healthy():
                self._check_pid()
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.logs()}")

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def _check_pid(self) -> None:
        """Make sure the pid we sample is the Python process that serves (not a wrapper)."""
        assert self.proc is not None
        cmdline = Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().split(b"\0")
        if b"tracehive" not in cmdline or b"serve" not in cmdline:
            raise RuntimeError(f"pid {self.proc.pid} is not the server: {cmdline}")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        if children and not self.children_expected:
            raise RuntimeError(f"the server forked children {children}; RSS would be of the wrong process")

    def status(self) -> dict[str, float]:
        """VmRSS / VmHWM in MB and utime+stime in seconds of the server process."""
        assert self.proc is not None
        out: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = int(line.split()[1]) / 1024
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out["cpu"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
            out["threads"] = int(fields[17])
            out["write_bytes"] = proc_io(self.proc.pid)
        except (OSError, IndexError, ValueError):
            pass
        return out

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)  # uvicorn: graceful shutdown, store closed
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def logs(self) -> str:
        text = ""
        for p in (self.out_path, self.err_path):
            if p.exists():
                text += p.read_text(errors="replace")[-3000:]
        return text


class PgServer(Server):
    """``tracehive serve --store URL``: one node on a PostgreSQL database (the key is made before,
    with ``tracehive keys create``; each node has its own port and data dir)."""

    def __init__(self, data_dir: Path, port: int, store_url: str, key: str) -> None:
        super().__init__(data_dir, port)
        self.store_url = store_url
        self.key = key

    @property
    def command(self) -> list[str]:
        return [*super().command, "--store", self.store_url]


class ChdbServer(Server):
    """``tracehive serve --events-store chdb://<data dir>/events``: projects and keys in SQLite in
    the data dir, events in ClickHouse inside the server process (chDB), in ``events/``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port)
        self.events_dir = data_dir.resolve() / "events"

    @property
    def command(self) -> list[str]:
        return [*super().command, "--events-store", f"chdb://{self.events_dir}"]


def tracehive_cli(*argv: str, timeout: float = 120) -> str:
    """Run ``python -m tracehive ARGV`` (defaults only: no TRACEHIVE_* variables); its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHIVE_")}
    proc = subprocess.run([sys.executable, "-m", "tracehive", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"tracehive {' '.join(argv[:2])} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------
# The client (a forked process: 8 threads, one keep-alive connection each, raw HTTP/1.1)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendersRun:
    """What ``run_senders`` measured in the client process."""

    t_start: float  # when the senders were released, on the clock given
    cpu_user: float  # client CPU seconds from the release to the last sender's end
    cpu_sys: float
    warmup_cpu: float  # client CPU seconds before the release (connecting, warm-up requests)


def abort_quietly(barrier: threading.Barrier) -> None:
    """Release the other senders (and the parent) when one sender fails before the start."""
    try:
        barrier.abort()
    except threading.BrokenBarrierError:
        pass


def run_senders(clients: int, worker: Any, barrier: threading.Barrier, started: Any,
                clock: Any = time.perf_counter) -> SendersRun:
    """Start one thread per sender running ``worker(k)``; each waits on ``barrier`` (of
    ``clients + 1``) once it is warm. Release them together, set ``started`` (the parent starts
    measuring the server then) and wait for them all."""
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    t_start = clock()
    started.set()
    for t in threads:
        t.join()
    cpu2 = resource.getrusage(resource.RUSAGE_SELF)
    return SendersRun(t_start, cpu2.ru_utime - cpu1.ru_utime, cpu2.ru_stime - cpu1.ru_stime,
                      (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime))


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    pos = head.find(b"content-length:")
    if pos < 0:
        raise RuntimeError(f"response without content-length: {head!r}")
    length = int(head[pos + 15: head.find(b"\r\n", pos) if head.find(b"\r\n", pos) > 0 else None])
    need = end + 4 + length
    while len(buf) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        buf += chunk
    body = bytes(buf[end + 4: need])
    del buf[:need]
    return status, body


def client_main(port: int | list[int], clients: int, deadline: float, started: Any, done_events: Any,
                batch: int, conn: Any) -> None:
    """``port`` may be a list (several nodes): connection ``k`` goes to ``port[k % len(port)]``."""
    ports = port if isinstance(port, list) else [port]
    n = len(REQUESTS)
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    warm = iter(range(len(WARMUP)))
    barrier = threading.Barrier(clients + 1)
    finished_at = [0.0] * clients

    def worker(k: int) -> None:
        sock = socket.create_connection(("127.0.0.1", ports[k % len(ports)]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(120)
        buf = bytearray()
        lat = latencies[k]
        send, perf = sock.sendall, time.perf_counter
        try:
            # Warm-up (not measured): distinct events, so nothing is re-sent later.
            while True:
                with lock:
                    w = next(warm, None)
                if w is None:
                    break
                send(WARMUP[w])
                status, body = _read_response(sock, buf)
                if status != 200:
                    errors.append(f"warm-up: HTTP {status}: {body[:300]!r}")
            barrier.wait()
            while True:
                i = next(counter)
                if i >= n or time.monotonic() > deadline:
                    break
                t0 = perf()
                send(REQUESTS[i])
                status, body = _read_response(sock, buf)
                lat.append(perf() - t0)
                if status != 200 or b'"success":true' not in body:
                    errors.append(f"request {i}: HTTP {status}: {body[:300]!r}")
                    if len(errors) > 20:
                        break
                with done_events.get_lock():
                    done_events.value += batch
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"client {k}: {exc!r}")
            abort_quietly(barrier)
        finally:
            finished_at[k] = time.perf_counter()
            sock.close()

    run = run_senders(clients, worker, barrier, started)
    wall = max(finished_at) - run.t_start
    lat_all = sorted(x for lat in latencies for x in lat)
    conn.send({
        "requests": len(lat_all),
        "wall": wall,
        "latencies": lat_all,
        "errors": errors,
        "cpu_user": run.cpu_user,
        "cpu_sys": run.cpu_sys,
        "warmup_cpu": run.warmup_cpu,
        "timed_out": time.monotonic() > deadline,
    })
    conn.close()


# ------------------------------------------------------------------------------------------------
# The limit: decode + executemany + commit per body, one plain Python process
# ------------------------------------------------------------------------------------------------

_COLUMNS = (
    "{project}, event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, "
    "duration, error, config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, implicit, updated_at"
)
_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * 23)})"


def limit_main(db_path: str, deadline: float, synchronous: str, conn_out: Any) -> None:
    from tracehive.storage.sqlite.connection import connect
    from tracehive.storage.sqlite.migrations import migrate

    db = connect(Path(db_path), synchronous=synchronous)  # WAL + synchronous=FULL, as the server's writer
    migrate(db)
    sync = db.execute("PRAGMA synchronous").fetchone()[0]
    journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    project_id, org_id, workspace_id = (str(uuid.uuid4()) for _ in range(3))
    # The schema of the tracehive under test (--src): since migration 8 rows hold a project key.
    if "project_key" in {row[1] for row in db.execute("PRAGMA table_info(events)")}:
        project: Any = 1
        insert = _INSERT.format(project="project_key")
    else:
        project = project_id
        insert = _INSERT.format(project="project_id")
    loads, dumps = orjson.loads, orjson.dumps
    done = 0
    io0 = proc_io("self")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for req, off, sid in zip(REQUESTS, BODY_OFFSETS, SESSION_OF):
        data = loads(memoryview(req)[off:])
        now = time.time_ns() // 1_000_000
        rows = []
        for e in data["events"]:
            start, end = e["start_time"], e["end_time"]
            outputs = e.get("outputs")
            rows.append((
                project, e["event_id"], sid, e.get("parent_id") or sid, e["event_type"],
                e.get("event_name") or "unknown", e.get("source") or "unknown", start, end, end - start,
                e.get("error"), dumps(e.get("config") or {}).decode(), dumps(e["inputs"]).decode(),
                None if outputs is None else dumps(outputs).decode(), dumps(e.get("metadata") or {}).decode(),
                dumps(e.get("feedback") or {}).decode(), dumps(e.get("metrics") or {}).decode(),
                dumps(e.get("user_properties") or {}).decode(), dumps(e.get("children_ids") or []).decode(),
                org_id, workspace_id, 0, now,
            ))  # fmt: skip
        db.execute("BEGIN")
        db.executemany(insert, rows)
        db.execute("COMMIT")
        done += len(rows)
        if time.monotonic() > deadline:
            break
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    written = proc_io("self") - io0
    count = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    conn_out.send({"events": done, "wall": wall, "cpu": cpu, "rows": count, "synchronous": sync,
                   "journal_mode": journal, "written": written,
                   "cpu_total": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), "timed_out": time.monotonic() > deadline})
    conn_out.close()


# ------------------------------------------------------------------------------------------------
# ClickHouse (chDB): the check of what the server stored, and the limit. Both run in forked
# children: chDB's engine is global to a process, so the bench process never loads it.
# ------------------------------------------------------------------------------------------------


def _chdb_scalars(session: Any, sql: str) -> list[int]:
    return [int(v or 0) for v in orjson.loads(session.query(sql, "JSONCompact").bytes())["data"][0]]


# The events table's live parts; the dir also holds merged-away parts until old_parts_lifetime.
_ACTIVE_PARTS = ("SELECT count(), sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() "
                 "AND table = 'events' AND active")


def chdb_check_main(path: str, conn_out: Any) -> None:
    """What the server left in the events dir ``path``: live events (``FINAL``) and their distinct
    ids, sessions, rows without ``FINAL`` (versions not merged away yet), active parts."""
    try:
        from chdb import session as chdb_session

        session = chdb_session.Session(path)
        events, distinct = _chdb_scalars(
            session, "SELECT count(), uniqExact(event_id) FROM events FINAL WHERE event_type != 'session'")
        (sessions,) = _chdb_scalars(session, "SELECT count() FROM events FINAL WHERE event_type = 'session'")
        rows, session_rows = _chdb_scalars(session, "SELECT count(), countIf(event_type = 'session') FROM events")
        parts, parts_bytes = _chdb_scalars(session, _ACTIVE_PARTS)
        session.close()
        conn_out.send({"events": events, "distinct_ids": distinct, "sessions": sessions, "rows": rows,
                       "session_rows": session_rows, "active_parts": parts, "active_parts_bytes": parts_bytes})
    except Exception:  # noqa: BLE001 - reported to the parent
        conn_out.send({"error": traceback.format_exc()})
    conn_out.close()


def chdb_limit_main(path: str, deadline: float, conn_out: Any) -> None:
    """The ClickHouse limit: the same events into the store's table on a fresh chDB dir, with the
    server's engine settings, one synchronous INSERT (``JSONCompactEachRow``, orjson lines, rows
    by ``rows.event_row``) per body. Events only: no session rows, no reads before writing."""
    try:
        from chdb import session as chdb_session

        from tracehive.model.event import Event
        from tracehive.storage.clickhouse.executor import (
            DEFAULT_MAX_QUERY_MEMORY,
            DEFAULT_MAX_SERVER_MEMORY,
            chdb_settings,
        )
        from tracehive.storage.clickhouse.rows import event_row
        from tracehive.storage.clickhouse.schema import EVENT_COLUMNS, events_v2

        Path(path).mkdir(parents=True, exist_ok=True)
        # As ChdbExecutor starts the server's engine (its default threads included).
        settings = chdb_settings(DEFAULT_MAX_SERVER_MEMORY, DEFAULT_MAX_QUERY_MEMORY, min(os.cpu_count() or 2, 8))
        session = chdb_session.Session(f"{path}?" + "&".join(f"{k}={v}" for k, v in settings.items()))
        session.query(events_v2("events"))
        effective = dict(zip(("async_insert", "input_format_parallel_parsing"), _chdb_scalars(
            session, "SELECT getSetting('async_insert'), getSetting('input_format_parallel_parsing')")))
        insert = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"
        project_id, org_id, workspace_id = (str(uuid.uuid4()) for _ in range(3))
        loads, dumps = orjson.loads, orjson.dumps
        seq = itertools.count(1)
        done = 0
        io0 = proc_io("self")
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for req, off, sid in zip(REQUESTS, BODY_OFFSETS, SESSION_OF):
            data = loads(memoryview(req)[off:])
            now = time.time_ns() // 1_000_000
            lines = []
            for e in data["events"]:
                n = next(seq)
                event = Event(**e, session_id=sid, duration=e["end_time"] - e["start_time"])
                lines.append(dumps(event_row(event, project_id, org_id, workspace_id, implicit=False, seq=n,
                                             version=n, now=now)))
            with session.send_insert(insert, "JSONCompactEachRow") as ins:
                ins.append(b"\n".join(lines) + b"\n")
                ins.finish()
            done += len(lines)
            if time.monotonic() > deadline:
                break
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        written = proc_io("self") - io0
        (count,) = _chdb_scalars(session, "SELECT count() FROM events FINAL")
        parts, parts_bytes = _chdb_scalars(session, _ACTIVE_PARTS)
        session.close()
        conn_out.send({"events": done, "wall": wall, "cpu": cpu, "rows": count, "written": written,
                       "active_parts": parts, "active_parts_bytes": parts_bytes,
                       "settings": effective, "cpu_total": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                       "timed_out": time.monotonic() > deadline})
    except Exception:  # noqa: BLE001 - reported to the parent
        conn_out.send({"error": traceback.format_exc()})
    conn_out.close()


def chdb_version() -> str:
    """chDB's version, without loading its engine into the bench process."""
    try:
        from importlib.metadata import version

        return version("chdb")
    except Exception:  # noqa: BLE001 - only shown
        return "?"


# ------------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------------


def run_child(ctx: Any, children: list[Any], target: Any, args: tuple[Any, ...], timeout: float,
              what: str) -> tuple[dict[str, Any], float, float]:
    """``target(*args, conn)`` in a forked child (added to ``children``): the dict it sends, and
    the machine's busy CPU seconds before and after (``machine_busy``)."""
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, child_conn), daemon=True)
    busy0 = machine_busy()
    proc.start()
    children.append(proc)
    child_conn.close()
    try:
        out = parent_conn.recv() if parent_conn.poll(timeout) else None
    except EOFError:  # the child died before sending
        out = None
    busy1 = machine_busy()
    proc.join(30)
    if out is None:
        raise RuntimeError(f"{what} died without a result (exit code {proc.exitcode})")
    if "error" in out:
        raise RuntimeError(f"{what} failed:\n{out['error']}")
    return out, busy0, busy1


def source_info() -> str:
    """Which tracehive the server runs: its package dir and git revision (dirty if edited)."""
    try:
        pkg = subprocess.run([sys.executable, "-c", "import tracehive, os; print(os.path.dirname(tracehive.__file__))"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        return f"unknown ({exc})"
    try:
        rev = subprocess.run(["git", "-C", pkg, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", pkg, "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10).stdout.split("\n")
        changed = sum(1 for line in dirty if line.strip())
        return f"{pkg} @ {rev}" + (f" + uncommitted changes in {changed} files" if changed else "")
    except (subprocess.SubprocessError, OSError):
        return f"{pkg} (not a git checkout)"


def machine_busy() -> float:
    """CPU seconds all CPUs spent busy (not idle, not iowait) since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most ``max_wait`` s) until the rest of the machine uses < ``threshold`` cores over 3 s."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, c0 = machine_busy(), time.process_time()
        time.sleep(3)
        load = max(0.0, machine_busy() - b0 - (time.process_time() - c0)) / 3
        if load < threshold or time.monotonic() > deadline:
            return load
        log(f"machine busy ({load:.2f} cores used by other processes); waiting for it to calm down")


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[k]


def dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """SQLite (the default), or events in ClickHouse in-process with ``args.events_store == "chdb"``:
    the same server, client and measurements; the check and the limit differ (``chdb_*_main``)."""
    global REQUESTS, BODY_OFFSETS, SESSION_OF, WARMUP
    on_chdb = getattr(args, "events_store", None) == "chdb"  # bench/otlp.py calls run() without it
    ctx = mp.get_context("fork")
    n_requests = max(1, args.events // args.batch)
    events_total = n_requests * args.batch
    rng = random.Random(args.seed)
    sessions = [_uuid(rng) for _ in range(args.sessions)]
    source = source_info()
    log(f"tracehive under test: {source}")
    tmp = Path(tempfile.mkdtemp(prefix="tracehive-bench-"))
    result: dict[str, Any] = {}
    server: Server | None = None
    pyspy: subprocess.Popen[bytes] | None = None
    children: list[Any] = []  # client and limit processes, ended in ``finally`` if still running
    try:
        port = args.port or free_port()
        server = ChdbServer(tmp / "server-data", port) if on_chdb else Server(tmp / "server-data", port,
                                                                             args.synchronous)
        server.start()
        log(f"server pid {server.proc.pid} on port {port} (data in {server.data_dir}"  # type: ignore[union-attr]
            + (f", events in chdb://{server.events_dir})" if isinstance(server, ChdbServer) else ")"))
        rules = getattr(args, "redact", None) or []
        if rules:  # the project's redaction rules (issue #17), set while the server runs
            flags = [a for rule in rules for a in ("--redact", rule)]
            log(tracehive_cli("projects", "update", "default", *flags, "--data-dir", str(server.data_dir)).strip())
            time.sleep(3)  # past key_cache_seconds (2): the server's next lookup of the key sees them
        result["redact"] = rules

        t_gen = time.perf_counter()
        REQUESTS, BODY_OFFSETS, SESSION_OF, body_bytes = build_requests(
            n_requests, args.batch, sessions, server.key, port, rng
        )
        WARMUP, _, _, _ = build_requests(max(2 * args.clients, 4), args.batch, sessions, server.key, port, rng)
        gen_s = time.perf_counter() - t_gen
        avg_event = body_bytes / events_total
        log(f"generated {n_requests:,} requests x {args.batch} events in {gen_s:.1f}s "
            f"({body_bytes / 1e6:.0f} MB of JSON, {avg_event:.0f} B/event)")

        # --- server run ---------------------------------------------------------------------
        if args.wait_quiet > 0:
            load = wait_quiet(args.wait_quiet)
            log(f"other load before the server run: {load:.2f} cores")
        deadline = time.monotonic() + args.timeout
        started, done_events = ctx.Event(), ctx.Value("q", 0)
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        client = ctx.Process(target=client_main, args=(port, args.clients, deadline, started, done_events,
                                                       args.batch, child_conn), daemon=True)
        before = server.status()
        client.start()
        children.append(client)
        child_conn.close()
        if not started.wait(120):
            raise RuntimeError("client did not start")
        s0 = server.status()
        busy0 = machine_busy()
        t0 = time.monotonic()
        if args.py_spy:
            pyspy = subprocess.Popen(["py-spy", "record", "--pid", str(server.proc.pid), "--rate", "50",  # type: ignore[union-attr]
                                      "--output", args.py_spy, "--threads", "--nonblocking",
                                      "--format", "raw" if args.py_spy.endswith(".txt") else "flamegraph",
                                      *shlex.split(args.py_spy_args)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak_rss = before.get("VmRSS", 0.0)
        rss_trace: list[tuple[int, float]] = []
        next_mark, last_print = 0, t0
        mark_every = max(events_total // 10, args.batch)
        while client.is_alive() and not parent_conn.poll():
            st = server.status()
            peak_rss = max(peak_rss, st.get("VmRSS", 0.0))
            done = done_events.value
            if done >= next_mark:
                rss_trace.append((done, round(st.get("VmRSS", 0.0), 1)))
                next_mark += mark_every
            now = time.monotonic()
            if now - last_print >= 10:
                last_print = now
                log(f"  {done:>10,} events  {done / (now - t0):>8,.0f} ev/s  server RSS {st.get('VmRSS', 0):.0f} MB")
            if now > deadline + 60:
                raise RuntimeError("client exceeded its deadline")
            time.sleep(0.2)
        res = parent_conn.recv() if parent_conn.poll(30) else None
        s1 = server.status()
        busy1 = machine_busy()
        peak_rss = max(peak_rss, s1.get("VmRSS", 0.0))
        rss_trace.append((done_events.value, round(s1.get("VmRSS", 0.0), 1)))
        client.join(30)
        if pyspy is not None:
            pyspy.send_signal(signal.SIGINT)
            pyspy.wait(60)
            pyspy = None
        if res is None:
            raise RuntimeError("the client process died without a result")
        if res["errors"]:
            raise RuntimeError("request errors:\n" + "\n".join(res["errors"][:10]))
        server_events = res["requests"] * args.batch
        server_cpu = s1.get("cpu", 0.0) - s0.get("cpu", 0.0)
        lat = res["latencies"]
        rc = server.stop()
        data_mb = dir_size_mb(server.data_dir)
        expected = server_events + len(WARMUP) * args.batch
        # Every acknowledged event must be in the database (on ClickHouse: exactly once).
        chdb_stored: dict[str, Any] = {}
        if isinstance(server, ChdbServer):
            if not server.events_dir.is_dir():  # chDB would make an empty one
                raise RuntimeError(f"the server wrote no events dir {server.events_dir}:\n{server.logs()}")
            events_mb = dir_size_mb(server.events_dir)  # before the check opens it (and merges may run)
            chdb_stored, _, _ = run_child(ctx, children, chdb_check_main, (str(server.events_dir),), 300,
                                          "the chDB check")
            chdb_stored["events_dir_mb"] = round(events_mb, 1)
            stored, stored_sessions = chdb_stored["events"], chdb_stored["sessions"]
            if chdb_stored["distinct_ids"] != stored:
                raise RuntimeError(f"server stored {stored} events under {chdb_stored['distinct_ids']} ids")
        else:
            db = sqlite3.connect(f"file:{server.data_dir / 'tracehive.db'}?mode=ro", uri=True)
            try:
                stored = db.execute("SELECT count(*) FROM events WHERE event_type <> 'session'").fetchone()[0]
                stored_sessions = db.execute("SELECT count(*) FROM events WHERE event_type = 'session'").fetchone()[0]
            finally:
                db.close()
        if stored != expected:
            raise RuntimeError(f"server stored {stored} events, expected {expected}")
        shutil.rmtree(server.data_dir, ignore_errors=True)

        # --- the limit ------------------------------------------------------------------------
        if args.wait_quiet > 0:
            load = wait_quiet(args.wait_quiet)
            log(f"other load before the limit run: {load:.2f} cores")
        limit_dir = tmp / "limit-data"
        limit_dir.mkdir()
        if on_chdb:
            target, targs = chdb_limit_main, (str(limit_dir / "events"), time.monotonic() + args.timeout)
        else:
            target, targs = limit_main, (str(limit_dir / "limit.db"), time.monotonic() + args.timeout,
                                         args.synchronous)
        lim, lbusy0, lbusy1 = run_child(ctx, children, target, targs, args.timeout + 120, "the limit process")
        if lim["rows"] != lim["events"]:
            raise RuntimeError(f"limit stored {lim['rows']} rows, expected {lim['events']}")

        client_cpu = res["cpu_user"] + res["cpu_sys"]
        # CPU used by anything else on the machine during each phase (another test run skews the figures);
        # the bench's own parent process (sampling /proc every 0.2 s) is counted here too, a few 0.01 cores.
        other_server = max(0.0, (busy1 - busy0) - server_cpu - client_cpu) / res["wall"]
        other_limit = max(0.0, (lbusy1 - lbusy0) - lim["cpu_total"]) / lim["wall"]
        server_eps = server_events / res["wall"]
        limit_eps = lim["events"] / lim["wall"]
        hwm = s1.get("VmHWM", 0.0)
        result = {
            "command": args.command_line,
            "tracehive": source,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
            "config": {"events": events_total, "batch": args.batch, "clients": args.clients,
                       "sessions": args.sessions, "avg_event_bytes": round(avg_event),
                       "body_bytes": body_bytes, "seed": args.seed, "synchronous": args.synchronous},
            "server": {
                "events": server_events,
                "requests": res["requests"],
                "wall_s": round(res["wall"], 3),
                "events_per_s": round(server_eps),
                "p50_ms": round(percentile(lat, 50) * 1000, 2),
                "p99_ms": round(percentile(lat, 99) * 1000, 2),
                "max_ms": round(lat[-1] * 1000, 2) if lat else None,
                "peak_rss_mb": round(max(hwm, peak_rss), 1),
                "vmhwm_mb": round(hwm, 1),
                "max_sampled_vmrss_mb": round(peak_rss, 1),
                "rss_at_start_mb": round(before.get("VmRSS", 0.0), 1),
                "rss_trace_events_mb": rss_trace,
                "cpu_s": round(server_cpu, 2),
                "cpu_cores_used": round(server_cpu / res["wall"], 2),
                "threads": s1.get("threads"),
                "stored_events": stored,
                "stored_sessions": stored_sessions,
                "data_dir_mb": round(data_mb, 1),
                "disk_written_mb": round((s1.get("write_bytes", 0) - s0.get("write_bytes", 0)) / 1e6, 1),
                "exit_code": rc,
                "timed_out": res["timed_out"],
            },
            "client": {
                "cpu_s": round(res["cpu_user"] + res["cpu_sys"], 2),
                "cpu_user_s": round(res["cpu_user"], 2),
                "cpu_sys_s": round(res["cpu_sys"], 2),
                "cpu_cores_used": round((res["cpu_user"] + res["cpu_sys"]) / res["wall"], 3),
                "kind": f"1 process, {args.clients} threads, raw HTTP/1.1 keep-alive sockets",
            },
            "limit": {
                "events": lim["events"],
                "wall_s": round(lim["wall"], 3),
                "events_per_s": round(limit_eps),
                "cpu_s": round(lim["cpu"], 2),
                "disk_written_mb": round(lim["written"] / 1e6, 1),
                **({} if on_chdb else {"synchronous": lim["synchronous"], "journal_mode": lim["journal_mode"]}),
                "timed_out": lim["timed_out"],
            },
            "other_load_cores": {"server_phase": round(other_server, 2), "limit_phase": round(other_limit, 2)},
            "ratio": round(server_eps / limit_eps, 3),
            "ratio_target": RATIO_TARGET,
            "rss_limit_mb": RSS_LIMIT_MB,
            "generation_s": round(gen_s, 1),
        }
        if on_chdb:
            add_chdb_results(result, chdb_stored, lim, dir_size_mb(limit_dir / "events"))
        return result
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(10)
        if pyspy is not None and pyspy.poll() is None:
            pyspy.kill()
        if server is not None:
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def add_chdb_results(result: dict[str, Any], stored: dict[str, Any], lim: dict[str, Any], limit_mb: float) -> None:
    """What ``--events-store chdb`` adds to ``run``'s result: the events dir, the engine's
    settings, the 20,000 events/s target; the ratio target and RSS limit are SQLite mode's."""
    s = result["server"]
    s["events_dir_mb"] = stored["events_dir_mb"]
    s["bytes_per_event"] = round(stored["events_dir_mb"] * 1e6 / max(1, stored["events"]))
    s["stored_distinct_event_ids"] = stored["distinct_ids"]
    s["stored_rows_without_final"] = stored["rows"]
    s["stored_session_rows_without_final"] = stored["session_rows"]
    s["active_parts"] = stored["active_parts"]
    s["active_parts_mb"] = round(stored["active_parts_bytes"] / 1e6, 1)
    s["active_bytes_per_event"] = round(stored["active_parts_bytes"] / max(1, stored["events"]))
    result["limit"].update({
        "events_dir_mb": round(limit_mb, 1),
        "bytes_per_event": round(limit_mb * 1e6 / max(1, lim["rows"])),
        "active_parts": lim["active_parts"],
        "active_parts_mb": round(lim["active_parts_bytes"] / 1e6, 1),
        "active_bytes_per_event": round(lim["active_parts_bytes"] / max(1, lim["rows"])),
        "settings": lim["settings"],
        "kind": "1 Python process: orjson + Event + rows.event_row, one synchronous chDB INSERT "
                "(JSONCompactEachRow) per body, events only",
    })
    result["store"] = "chdb"
    result["machine"]["chdb"] = chdb_version()
    result["config"]["events_store"] = "chdb://<data dir>/events"
    result["target_events_per_s"] = CHDB_TARGET_EPS
    result["target_met"] = s["events_per_s"] >= CHDB_TARGET_EPS
    del result["ratio_target"], result["rss_limit_mb"]


def run_pg(args: argparse.Namespace) -> dict[str, Any]:
    """The same run on PostgreSQL: ``--nodes`` servers on one fresh database of the ``--store``
    server, then the limit (``executemany`` and ``COPY``) on another; both databases dropped."""
    import postgres as pg

    global REQUESTS, BODY_OFFSETS, SESSION_OF, WARMUP
    ctx = mp.get_context("fork")
    n_requests = max(1, args.events // args.batch)
    events_total = n_requests * args.batch
    rng = random.Random(args.seed)
    sessions = [_uuid(rng) for _ in range(args.sessions)]
    source = source_info()
    log(f"tracehive under test: {source}")
    admin_url = args.store
    pg_info = pg.server_info(admin_url)
    log(f"PostgreSQL {pg_info['version']} at {pg.db_url(admin_url, '')[:-1]} "
        f"(fsync={pg_info.get('fsync')}, synchronous_commit={pg_info.get('synchronous_commit')})")
    bench_db = args.pg_database or f"tracehive_bench_{os.getpid()}"
    limit_db = f"{bench_db}_limit"
    tmp = Path(tempfile.mkdtemp(prefix="tracehive-bench-"))
    nodes: list[PgServer] = []
    pyspy: subprocess.Popen[bytes] | None = None
    children: list[Any] = []
    cpu_probe: Any = None
    created: list[str] = []
    try:
        url = pg.create_database(admin_url, bench_db)
        created.append(bench_db)
        t_setup = time.perf_counter()
        version = tracehive_cli("migrate", "--store", url).strip().splitlines()[-1]
        key = tracehive_cli("keys", "create", "--project", "default", "--store", url).strip().splitlines()[-1]
        log(f"database {bench_db}: {version} (migrate + keys create in {time.perf_counter() - t_setup:.1f}s)")
        ports = [free_port() for _ in range(args.nodes)] if not args.port else \
            [args.port + i for i in range(args.nodes)]
        for i, port in enumerate(ports):
            (tmp / f"node{i}").mkdir()
            node = PgServer(tmp / f"node{i}" / "data", port, url, key)
            node.start()
            nodes.append(node)
            log(f"node {i}: pid {node.proc.pid} on port {port}")  # type: ignore[union-attr]

        t_gen = time.perf_counter()
        REQUESTS, BODY_OFFSETS, SESSION_OF, body_bytes = build_requests(n_requests, args.batch, sessions, key,
                                                                        ports[0], rng)
        WARMUP, _, _, _ = build_requests(max(2 * args.clients, 4), args.batch, sessions, key, ports[0], rng)
        gen_s = time.perf_counter() - t_gen
        avg_event = body_bytes / events_total
        log(f"generated {n_requests:,} requests x {args.batch} events in {gen_s:.1f}s "
            f"({body_bytes / 1e6:.0f} MB of JSON, {avg_event:.0f} B/event)")

        # --- server run ---------------------------------------------------------------------
        cpu_probe = pg.PgCpu(admin_url, [bench_db, limit_db])
        if args.wait_quiet > 0:
            load = wait_quiet(args.wait_quiet)
            log(f"other load before the server run: {load:.2f} cores")
        deadline = time.monotonic() + args.timeout
        started, done_events = ctx.Event(), ctx.Value("q", 0)
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        client = ctx.Process(target=client_main, args=(ports, args.clients, deadline, started, done_events,
                                                       args.batch, child_conn), daemon=True)
        before = [n.status() for n in nodes]
        client.start()
        children.append(client)
        child_conn.close()
        if not started.wait(120):
            raise RuntimeError("client did not start")
        s0 = [n.status() for n in nodes]
        pg0, wal0 = cpu_probe.sample(), cpu_probe.wal()
        busy0 = machine_busy()
        t0 = time.monotonic()
        if args.py_spy:
            pyspy = subprocess.Popen(["py-spy", "record", "--pid", str(nodes[0].proc.pid), "--rate", "50",  # type: ignore[union-attr]
                                      "--output", args.py_spy, "--threads", "--nonblocking",
                                      "--format", "raw" if args.py_spy.endswith(".txt") else "flamegraph",
                                      *shlex.split(args.py_spy_args)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak_rss = [b.get("VmRSS", 0.0) for b in before]
        next_mark, last_print = 0, t0
        rss_trace: list[tuple[int, list[float]]] = []
        mark_every = max(events_total // 10, args.batch)
        while client.is_alive() and not parent_conn.poll():
            sts = [n.status() for n in nodes]
            peak_rss = [max(p, st.get("VmRSS", 0.0)) for p, st in zip(peak_rss, sts)]
            done = done_events.value
            if done >= next_mark:
                rss_trace.append((done, [round(st.get("VmRSS", 0.0), 1) for st in sts]))
                next_mark += mark_every
            now = time.monotonic()
            if now - last_print >= 10:
                last_print = now
                rss = " / ".join(f"{st.get('VmRSS', 0):.0f}" for st in sts)
                log(f"  {done:>10,} events  {done / (now - t0):>8,.0f} ev/s  node RSS {rss} MB")
            if now > deadline + 60:
                raise RuntimeError("client exceeded its deadline")
            time.sleep(0.2)
        res = parent_conn.recv() if parent_conn.poll(30) else None
        s1 = [n.status() for n in nodes]
        pg1, wal1 = cpu_probe.sample(), cpu_probe.wal()
        busy1 = machine_busy()
        peak_rss = [max(p, st.get("VmRSS", 0.0)) for p, st in zip(peak_rss, s1)]
        rss_trace.append((done_events.value, [round(st.get("VmRSS", 0.0), 1) for st in s1]))
        client.join(30)
        if pyspy is not None:
            pyspy.send_signal(signal.SIGINT)
            pyspy.wait(60)
            pyspy = None
        if res is None:
            raise RuntimeError("the client process died without a result")
        if res["errors"]:
            raise RuntimeError("request errors:\n" + "\n".join(res["errors"][:10]))
        server_events = res["requests"] * args.batch
        node_cpu = [b.get("cpu", 0.0) - a.get("cpu", 0.0) for a, b in zip(s0, s1)]
        server_cpu = sum(node_cpu)
        pg_cpu = pg.PgCpu.used(pg0, pg1)
        lat = res["latencies"]
        rcs = [n.stop() for n in nodes]
        stored, stored_sessions = pg.count_events(url)
        db_mb = pg.database_size_mb(admin_url, bench_db)
        expected = server_events + len(WARMUP) * args.batch
        if stored != expected:
            raise RuntimeError(f"the nodes stored {stored} events, expected {expected}")
        if not args.keep:
            pg.drop_database(admin_url, bench_db)
            created.remove(bench_db)

        # --- the limit: executemany and COPY, each on a fresh migrated database ----------------
        limits: dict[str, dict[str, Any]] = {}
        for mode in (pg.LIMIT_MODES if args.pg_limit == "both" else (args.pg_limit,)):
            lurl = pg.create_database(admin_url, limit_db)
            created.append(limit_db)
            pg.migrate(lurl)
            if args.wait_quiet > 0:
                load = wait_quiet(args.wait_quiet)
                log(f"other load before the limit run ({mode}): {load:.2f} cores")
            parent_conn, child_conn = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=pg.limit_main, args=(lurl, mode, REQUESTS, BODY_OFFSETS, SESSION_OF,
                                                           time.monotonic() + args.timeout, child_conn), daemon=True)
            l_pg0, l_wal0 = cpu_probe.sample(), cpu_probe.wal()
            lbusy0 = machine_busy()
            proc.start()
            children.append(proc)
            child_conn.close()
            lim = parent_conn.recv() if parent_conn.poll(args.timeout + 120) else None
            proc.join(30)
            time.sleep(0.3)  # the limit's backend exits and is reaped: its CPU is the postmaster's then
            lbusy1 = machine_busy()
            l_pg1, l_wal1 = cpu_probe.sample(), cpu_probe.wal()
            if lim is None:
                raise RuntimeError(f"the limit process ({mode}) died without a result")
            if lim["rows"] != lim["events"]:
                raise RuntimeError(f"limit ({mode}) stored {lim['rows']} rows, expected {lim['events']}")
            lim["pg_cpu"] = pg.PgCpu.used(l_pg0, l_pg1)
            lim["wal"] = l_wal1 - l_wal0
            lim["other"] = max(0.0, (lbusy1 - lbusy0) - lim["cpu_total"] - (lim["pg_cpu"] or 0.0)) / lim["wall"]
            lim["db_mb"] = pg.database_size_mb(admin_url, limit_db)
            limits[mode] = lim
            log(f"limit ({mode}): {lim['events'] / lim['wall']:,.0f} events/s")
            pg.drop_database(admin_url, limit_db)
            created.remove(limit_db)

        client_cpu = res["cpu_user"] + res["cpu_sys"]
        other_server = max(0.0, (busy1 - busy0) - server_cpu - client_cpu - (pg_cpu or 0.0)) / res["wall"]
        best = max(limits, key=lambda m: limits[m]["events"] / limits[m]["wall"])
        lim = limits[best]
        server_eps = server_events / res["wall"]
        limit_eps = lim["events"] / lim["wall"]
        hwm = [st.get("VmHWM", 0.0) for st in s1]
        node_rows = [{
            "port": node.port,
            "peak_rss_mb": round(max(h, p), 1), "vmhwm_mb": round(h, 1), "max_sampled_vmrss_mb": round(p, 1),
            "rss_at_start_mb": round(b.get("VmRSS", 0.0), 1), "cpu_s": round(c, 2),
            "cpu_cores_used": round(c / res["wall"], 2), "threads": st.get("threads"), "exit_code": rc,
        } for node, h, p, b, c, st, rc in zip(nodes, hwm, peak_rss, before, node_cpu, s1, rcs)]

        def limit_row(m: dict[str, Any]) -> dict[str, Any]:
            return {
                "events": m["events"], "wall_s": round(m["wall"], 3), "events_per_s": round(m["events"] / m["wall"]),
                "cpu_s": round(m["cpu"], 2),
                "postgres_cpu_s": None if m["pg_cpu"] is None else round(m["pg_cpu"], 2),
                "backend_cpu_s": None if m["backend_cpu"] is None else round(m["backend_cpu"], 2),
                "wal_mb": round(m["wal"] / 1e6, 1), "db_mb": m["db_mb"], "timed_out": m["timed_out"],
            }

        return {
            "command": args.command_line,
            "tracehive": source,
            "store": "postgresql",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": pg_info,
                        "platform": platform.platform()},
            "config": {"events": events_total, "batch": args.batch, "clients": args.clients, "nodes": args.nodes,
                       "sessions": args.sessions, "avg_event_bytes": round(avg_event), "body_bytes": body_bytes,
                       "seed": args.seed, "database": bench_db},
            "server": {
                "events": server_events,
                "requests": res["requests"],
                "wall_s": round(res["wall"], 3),
                "events_per_s": round(server_eps),
                "p50_ms": round(percentile(lat, 50) * 1000, 2),
                "p99_ms": round(percentile(lat, 99) * 1000, 2),
                "max_ms": round(lat[-1] * 1000, 2) if lat else None,
                "peak_rss_mb": max(n["peak_rss_mb"] for n in node_rows),
                "nodes": node_rows,
                "rss_trace_events_mb": rss_trace,
                "cpu_s": round(server_cpu, 2),
                "cpu_cores_used": round(server_cpu / res["wall"], 2),
                "postgres_cpu_s": None if pg_cpu is None else round(pg_cpu, 2),
                "postgres_cpu_cores_used": None if pg_cpu is None else round(pg_cpu / res["wall"], 2),
                "wal_mb": round((wal1 - wal0) / 1e6, 1),
                "stored_events": stored,
                "stored_sessions": stored_sessions,
                "db_mb": db_mb,
                "timed_out": res["timed_out"],
            },
            "client": {
                "cpu_s": round(client_cpu, 2),
                "cpu_user_s": round(res["cpu_user"], 2),
                "cpu_sys_s": round(res["cpu_sys"], 2),
                "cpu_cores_used": round(client_cpu / res["wall"], 3),
                "kind": f"1 process, {args.clients} threads, raw HTTP/1.1 keep-alive sockets, "
                        f"round-robin over {args.nodes} node(s)",
            },
            "limit": {**limit_row(lim), "mode": best,
                      "kind": "1 Python process: orjson + psycopg 3, one transaction per body"},
            "limits": {m: limit_row(v) for m, v in limits.items()},
            "other_load_cores": {"server_phase": round(other_server, 2),
                                 "limit_phase": round(max(v["other"] for v in limits.values()), 2)},
            "ratio": round(server_eps / limit_eps, 3),
            "ratio_target": RATIO_TARGET,
            "rss_limit_mb": RSS_LIMIT_MB,
            "generation_s": round(gen_s, 1),
        }
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(10)
        if pyspy is not None and pyspy.poll() is None:
            pyspy.kill()
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()
        if cpu_probe is not None:
            cpu_probe.close()
        for name in created:
            if args.keep and name == bench_db:
                log(f"kept database {name}")
            else:
                pg.drop_database(admin_url, name)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table_pg(r: dict[str, Any]) -> None:
    s, lim, c, cfg = r["server"], r["limit"], r["client"], r["config"]
    ok_ratio = "ok" if r["ratio"] >= RATIO_TARGET else "BELOW TARGET"
    info = r["machine"]["postgresql"]

    def opt(v: Any, fmt: str = "{:.1f}") -> str:
        return "?" if v is None else fmt.format(v)

    modes = list(r["limits"])
    print()
    print(f"tracehive ingest on PostgreSQL: {cfg['events']:,} events, {cfg['batch']}/request "
          f"(~{cfg['avg_event_bytes']} B/event), {cfg['clients']} clients over {cfg['nodes']} node(s), "
          f"{cfg['sessions']} sessions")
    print(f"tracehive: {r['tracehive']}")
    print(f"machine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, PostgreSQL {info['version']} "
          f"(fsync={info.get('fsync')}, synchronous_commit={info.get('synchronous_commit')}, "
          f"shared_buffers={info.get('shared_buffers')})")
    print(f"{'':<22}{'server':>26}" + "".join(f"{'limit ' + m:>20}" for m in modes))
    rows = [
        ("events", f"{s['events']:,}", [f"{r['limits'][m]['events']:,}" for m in modes]),
        ("wall s", f"{s['wall_s']:.1f}", [f"{r['limits'][m]['wall_s']:.1f}" for m in modes]),
        ("events/s", f"{s['events_per_s']:,}", [f"{r['limits'][m]['events_per_s']:,}" for m in modes]),
        ("CPU s (Python)", f"{s['cpu_s']:.1f} ({s['cpu_cores_used']:.2f} cores)",
         [f"{r['limits'][m]['cpu_s']:.1f}" for m in modes]),
        ("CPU s (PostgreSQL)", f"{opt(s['postgres_cpu_s'])} ({opt(s['postgres_cpu_cores_used'], '{:.2f}')} cores)",
         [opt(r["limits"][m]["postgres_cpu_s"]) for m in modes]),
        ("WAL MB (cluster)", f"{s['wal_mb']:,.0f}", [f"{r['limits'][m]['wal_mb']:,.0f}" for m in modes]),
        ("database MB", f"{s['db_mb']:,.0f}", [f"{r['limits'][m]['db_mb']:,.0f}" for m in modes]),
    ]
    for name, a, bs in rows:
        print(f"{name:<22}{a:>26}" + "".join(f"{b:>20}" for b in bs))
    print(f"{'ratio server/limit':<22}{r['ratio']:>26.3f}   (limit = {lim['mode']}, the faster; "
          f"target >= {RATIO_TARGET}: {ok_ratio})")
    print(f"{'request p50 / p99':<22}{str(s['p50_ms']) + ' / ' + str(s['p99_ms']) + ' ms':>26}   (max {s['max_ms']} ms)")
    for i, n in enumerate(s["nodes"]):
        ok_rss = "ok" if n["peak_rss_mb"] < RSS_LIMIT_MB else "OVER LIMIT"
        print(f"{'node ' + str(i) + ' peak RSS':<22}{str(n['peak_rss_mb']) + ' MB':>26}   (VmHWM {n['vmhwm_mb']}, "
              f"sampled VmRSS max {n['max_sampled_vmrss_mb']}; limit {RSS_LIMIT_MB:.0f} MB: {ok_rss}; "
              f"CPU {n['cpu_s']} s)")
    print(f"{'client CPU':<22}{str(c['cpu_s']) + ' s':>26}   ({c['cpu_cores_used']:.2f} cores; {c['kind']})")
    other = r["other_load_cores"]
    busy = (other["server_phase"] > 0.15 and s["wall_s"] >= 2) or (other["limit_phase"] > 0.15 and lim["wall_s"] >= 2)
    warn = "  WARNING: the machine was busy, figures are skewed" if busy else ""
    print(f"{'other CPU load':<22}{str(other['server_phase']) + ' / ' + str(other['limit_phase']) + ' cores':>26}"
          f"   (rest of the machine during server / limit phase){warn}")
    print(f"stored: {s['stored_events']:,} events + {s['stored_sessions']:,} sessions in {cfg['database']} (dropped)")
    print(f"command: {r['command']}")


def print_table(r: dict[str, Any]) -> None:
    """The table of ``run``: SQLite, or ClickHouse in-process (``r["store"] == "chdb"``)."""
    s, lim, c, cfg = r["server"], r["limit"], r["client"], r["config"]
    on_chdb = r.get("store") == "chdb"
    rows = [
        ("events", f"{s['events']:,}", f"{lim['events']:,}"),
        ("wall s", f"{s['wall_s']:.1f}", f"{lim['wall_s']:.1f}"),
        ("events/s", f"{s['events_per_s']:,}", f"{lim['events_per_s']:,}"),
        ("CPU s", f"{s['cpu_s']:.1f} ({s['cpu_cores_used']:.2f} cores)", f"{lim['cpu_s']:.1f}"),
        ("disk written MB", f"{s['disk_written_mb']:,.0f}", f"{lim['disk_written_mb']:,.0f}"),
    ]
    if on_chdb:
        rows += [("events dir MB", f"{s['events_dir_mb']:,.1f}", f"{lim['events_dir_mb']:,.1f}"),
                 ("bytes/event (dir)", f"{s['bytes_per_event']:,}", f"{lim['bytes_per_event']:,}"),
                 ("active parts MB", f"{s['active_parts_mb']:,.1f}", f"{lim['active_parts_mb']:,.1f}"),
                 ("bytes/event (parts)", f"{s['active_bytes_per_event']:,}", f"{lim['active_bytes_per_event']:,}")]
    print()
    store = "events in ClickHouse (chDB, in-process), projects and keys in SQLite" if on_chdb else \
        f"SQLite, synchronous={cfg['synchronous']}"
    print(f"tracehive ingest: {cfg['events']:,} events, {cfg['batch']}/request (~{cfg['avg_event_bytes']} B/event), "
          f"{cfg['clients']} clients, {cfg['sessions']} sessions; {store}")
    print(f"tracehive: {r['tracehive']}")
    engine = f", chDB {r['machine']['chdb']}" if on_chdb else ""
    print(f"machine: {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, SQLite {r['machine']['sqlite']}{engine}")
    print(f"{'':<22}{'server':>26}{'limit':>14}")
    for name, a, b in rows:
        print(f"{name:<22}{a:>26}{b:>14}")
    if on_chdb:
        met = "met" if r["target_met"] else "NOT MET"
        print(f"{'target':<22}{'>= ' + format(r['target_events_per_s'], ',') + ' events/s':>26}   "
              f"({met}: the server took {s['events_per_s']:,} events/s)")
        print(f"{'ratio server/limit':<22}{r['ratio']:>26.3f}   (limit: {lim['kind']})")
    else:
        ok_ratio = "ok" if r["ratio"] >= RATIO_TARGET else "BELOW TARGET"
        print(f"{'ratio server/limit':<22}{r['ratio']:>26.3f}   (target >= {RATIO_TARGET}: {ok_ratio})")
    print(f"{'request p50 / p99':<22}{str(s['p50_ms']) + ' / ' + str(s['p99_ms']) + ' ms':>26}   (max {s['max_ms']} ms)")
    if on_chdb:  # the 300 MB limit is SQLite mode's; the embedded engine has its own memory budget
        rss_note = f"{s['threads']} threads"
    else:
        rss_note = f"limit {RSS_LIMIT_MB:.0f} MB: {'ok' if s['peak_rss_mb'] < RSS_LIMIT_MB else 'OVER LIMIT'}"
    print(f"{'server peak RSS':<22}{str(s['peak_rss_mb']) + ' MB':>26}   (VmHWM {s['vmhwm_mb']}, "
          f"sampled VmRSS max {s['max_sampled_vmrss_mb']}; {rss_note})")
    print(f"{'client CPU':<22}{str(c['cpu_s']) + ' s':>26}   ({c['cpu_cores_used']:.2f} cores; {c['kind']})")
    other = r["other_load_cores"]
    busy = (other["server_phase"] > 0.15 and s["wall_s"] >= 2) or (other["limit_phase"] > 0.15 and lim["wall_s"] >= 2)
    warn = "  WARNING: the machine was busy, figures are skewed" if busy else ""
    print(f"{'other CPU load':<22}{str(other['server_phase']) + ' / ' + str(other['limit_phase']) + ' cores':>26}"
          f"   (rest of the machine during server / limit phase){warn}")
    if on_chdb:
        print(f"stored: {s['stored_events']:,} events, each id once (FINAL), + {s['stored_sessions']:,} sessions; "
              f"{s['stored_rows_without_final']:,} rows without FINAL in {s['active_parts']:,} active parts "
              f"after the run (the dir also keeps merged-away parts for a while)")
    print(f"command: {r['command']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=None, help="total events (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--batch", type=int, default=100, help="events per request (default 100)")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions the requests spread over")
    parser.add_argument("--seed", type=int, default=2, help="seed of the event generator")
    parser.add_argument("--timeout", type=float, default=1800, help="deadline of each phase in seconds")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--py-spy", metavar="SVG", help="record py-spy samples of the server while it runs (.svg: flame graph, .txt: collapsed stacks)")
    parser.add_argument("--py-spy-args", default="", help="extra py-spy record flags, written --py-spy-args=--idle (or =--gil)")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default=None,
                        help="diagnostic: SQLite synchronous of server and limit (default FULL, the server default)")
    parser.add_argument("--wait-quiet", type=float, default=60, metavar="S",
                        help="before each phase wait up to S seconds for other processes to go quiet (default 60)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    parser.add_argument("--store", metavar="URL", help="PostgreSQL: postgresql://user@host:port/dbname of a server "
                        "the bench may create databases on; the nodes run on a fresh database tracehive_bench_<pid> "
                        "(dropped afterwards) and the limit on another (default: SQLite in a temp data dir)")
    parser.add_argument("--nodes", type=int, default=1, help="with --store: tracehive serve processes on the same "
                        "database, clients spread round-robin over them (default 1)")
    parser.add_argument("--pg-limit", choices=("both", "executemany", "copy"), default="both",
                        help="with --store: how the limit inserts (default both; the faster is the limit)")
    parser.add_argument("--pg-database", metavar="NAME", help="with --store: the nodes' database name "
                        "(default tracehive_bench_<pid>; dropped and recreated)")
    parser.add_argument("--events-store", choices=("chdb",), default=None,
                        help="chdb: events in ClickHouse in-process (tracehive serve --events-store "
                        "chdb://<data dir>/events), projects and keys in SQLite; the limit inserts into chDB "
                        "(default: events in the store)")
    parser.add_argument("--redact", action="append", metavar="RULE", help="set this redaction rule on the "
                        "bench's project before sending (repeatable; tracehive projects update --redact)")
    parser.add_argument("--src", metavar="DIR", help="benchmark the tracehive package under DIR (e.g. an exported "
                        "src/ of another revision) instead of the installed one")
    args = parser.parse_args(argv)
    if args.src:
        src = str(Path(args.src).resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
        sys.path.insert(0, src)  # the limit (a forked child) imports the same schema code
    if args.events is None:
        args.events = 100_000 if args.quick else 1_000_000
    args.command_line = shlex.join([Path(sys.executable).name, *sys.argv])
    if args.events_store:
        given = [flag for flag, on in (("--store", args.store), ("--nodes", args.nodes != 1),
                                       ("--synchronous", args.synchronous), ("--pg-limit", args.pg_limit != "both"),
                                       ("--pg-database", args.pg_database)) if on]
        if given:
            parser.error(f"--events-store {args.events_store} does not combine with {', '.join(given)}: it runs one "
                         "server (one process per chDB store) with projects and keys in SQLite at its defaults")
    args.synchronous = args.synchronous or "FULL"
    if args.store:
        if args.synchronous != "FULL":
            parser.error("--synchronous is SQLite's; with --store the server's own settings apply")
        if args.nodes < 1:
            parser.error("--nodes must be at least 1")
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/postgres.py
        result = run_pg(args)
        print_table_pg(result)
    else:
        if args.nodes != 1 or args.pg_database or args.pg_limit != "both":
            parser.error("--nodes, --pg-limit and --pg-database need --store")
        result = run(args)
        print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
