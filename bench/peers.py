#!/usr/bin/env python
"""Peer benchmark (issue 7): the same OTLP/HTTP protobuf workload sent to tracehive, Arize Phoenix
and the MLflow tracking server, one after another in one run on one machine (see BENCHMARKS.md).

What it does:

1. Pre-encodes the workload once: ``ExportTraceServiceRequest`` bodies of ``--batch`` spans (512,
   the OTel ``BatchSpanProcessor`` size) holding whole traces of a RAG/agent app as OpenInference
   instrumentations export them: a ``CHAIN`` root with a ``RETRIEVER`` (``retrieval.documents.*``),
   sometimes a ``TOOL`` and one or two ``LLM`` children (``llm.*`` messages, token counts and
   invocation parameters, ``gen_ai.*``, the request/response JSON in ``input.value`` /
   ``output.value``), ``session.id`` / ``user.id`` on every span. Every server gets the same bytes.
2. Peer comparison: tracehive (defaults: ``synchronous=FULL``), tracehive (journal:
   ``TRACEHIVE_OTLP_JOURNAL=1``, acking once a request is fsynced in the OTLP journal and indexing
   it in the background), Phoenix (``phoenix serve``, its
   SQLite default) and MLflow (``mlflow server --backend-store-uri sqlite:///...``; OTLP at
   ``/v1/traces`` into the Default experiment, ``x-mlflow-experiment-id: 0``), each on a fresh temp
   dir and free port, the peers run by ``--peers-python`` (their own venv). Per server:
   - 2 warm-up requests, waited for until queryable (not measured);
   - ``--spans`` spans from ``--clients`` keep-alive connections (threads of a forked client; a
     429/503 is retried after 0.05 s doubling to 1 s, the same for every server, inside that
     request's latency): acked spans/s and p50/p99 ack latency;
   - time to visible: from the last ack until the last span of the request acked last is returned
     by the server's own query API (tracehive ``GET /v1/events/{id}``, Phoenix ``GET
     /v1/projects/default/spans?span_id=...``, MLflow ``GET /api/3.0/mlflow/traces/batchGet``),
     polled every 20 ms, later every 5 % of the time waited; a hit counts when its query was sent;
     then, as an upper bound, until the last span of every acked request is returned;
   - 5 idle probes: one trace each, ack to visible;
   - peak RSS and PSS of the whole process tree (workers and helpers summed) from /proc every
     0.1 s, and the tree's CPU time until the headline visibility;
   - after the server stops, the spans in its SQLite file: every acked span must be there.
3. Durability comparison: tracehive alone with ``TRACEHIVE_SQLITE_SYNCHRONOUS`` FULL, NORMAL and
   OFF on ``--durability-spans`` spans, the same figures.
4. ``--rounds`` (2) repeats both, every other round in reverse order, and prints markdown tables
   (absolute figures, tracehive/peer ratios) per round; ``--json`` keeps every figure.

    python -m venv /work/peers-venv && /work/peers-venv/bin/pip install arize-phoenix mlflow
    python bench/peers.py --peers-python /work/peers-venv/bin/python      # ~10 minutes
    python bench/peers.py --quick                                       # ~5 minutes, one round
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import multiprocessing as mp
import os
import platform
import random
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
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ingest  # noqa: E402  (bench/ingest.py: tracehive Server, free_port, _read_response, load helpers)
from ingest import COMPLETIONS, MODELS, SNIPPETS, SYSTEM_PROMPTS, USER_PROMPTS  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402
from otlp import _attrs  # noqa: E402  (bench/otlp.py: dict -> OTLP KeyValue list)

from tracehive.ingest.span_mapping import SPAN_NAMESPACE  # noqa: E402

DEFAULT_PEERS_PYTHON = "/work/peers-venv/bin/python"
PEERS_PYTHON_ENV = "TRACEHIVE_PEERS_PYTHON"
OTLP_PATH = "/v1/traces"
# Visibility polls: every 20 ms at first, then every 5 % of the time waited (at most 250 ms), so a
# slow server is not slowed further by a storm of queries; the resolution stays within ~5 %.
POLL_MIN_S, POLL_MAX_S, POLL_RELATIVE = 0.02, 0.25, 0.05
SAMPLE_INTERVAL_S = 0.1
IDLE_PROBES = 5
WARMUP_REQUESTS = 2
RETRY_STATUSES = (429, 503)
MAX_RETRIES = 200  # ~3 minutes of 1 s backoffs: a server that sheds load is waited for, not failed
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# Full HTTP requests of the target being measured: a module global so the forked client shares it.
MEASURED: list[bytes] = []
PROBES: list[bytes] = []


# ------------------------------------------------------------------------------------------------
# The workload: traces of a RAG/agent app as OpenInference instrumentations export them
# ------------------------------------------------------------------------------------------------

TOOL_SPECS = [
    ("lookup_account", "Look up a customer account by id or e-mail.", {"account": "string"}),
    ("get_ticket", "Fetch a support ticket with its comments.", {"ticket_id": "integer"}),
    ("run_sql", "Run a read-only SQL query on the analytics replica.", {"query": "string"}),
    ("web_search", "Search the public web.", {"q": "string", "top_k": "integer"}),
]


@dataclass(frozen=True)
class Sentinel:
    """The span that proves a request is queryable: the last one in it (the root of its last trace)."""

    trace_id: str  # 32 hex
    span_id: str  # 16 hex


@dataclass
class Workload:
    warmup: list[bytes]
    measured: list[bytes]  # each ``batch`` spans
    probes: list[bytes]  # each one trace (3-5 spans): what an app exports when it is quiet
    sentinels: dict[int, Sentinel]  # id(body) -> its last span
    span_counts: dict[int, int]  # id(body) -> spans in it
    batch: int
    avg_span_bytes: int

    def sentinel(self, body: bytes) -> Sentinel:
        return self.sentinels[id(body)]

    def spans(self, bodies: list[bytes]) -> int:
        return sum(self.span_counts[id(b)] for b in bodies)


def _ids(rng: random.Random, n: int) -> bytes:
    return (rng.getrandbits(8 * n) or 1).to_bytes(n, "big")


def _span(
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    kind: trace_pb2.Span.SpanKind.ValueType,
    start: int,
    end: int,
    attrs: dict[str, Any],
    ok: bool = False,
) -> trace_pb2.Span:
    code = trace_pb2.Status.StatusCode.STATUS_CODE_OK if ok else trace_pb2.Status.StatusCode.STATUS_CODE_UNSET
    return trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_attrs(attrs),
        status=trace_pb2.Status(code=code),
    )


def _common(session_id: str, user_id: str) -> dict[str, Any]:
    return {"session.id": session_id, "user.id": user_id}


def _retriever(rng: random.Random, question: str, common: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    docs = rng.sample(SNIPPETS, 3)
    attrs = {
        "openinference.span.kind": "RETRIEVER",
        "input.value": question,
        "input.mime_type": "text/plain",
        **common,
    }
    for i, text in enumerate(docs):
        attrs[f"retrieval.documents.{i}.document.id"] = f"doc-{rng.randint(1, 99999)}"
        attrs[f"retrieval.documents.{i}.document.score"] = round(rng.uniform(0.55, 0.95), 4)
        attrs[f"retrieval.documents.{i}.document.content"] = text
        attrs[f"retrieval.documents.{i}.document.metadata"] = json.dumps(
            {"source": f"https://docs.acme.example/guide/{rng.randint(1, 400)}", "chunk": rng.randint(0, 40)}
        )
    return attrs, docs


def _tool(rng: random.Random, common: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name, description, params = rng.choice(TOOL_SPECS)
    args = {
        k: (rng.randint(1, 99999) if t == "integer" else rng.choice(USER_PROMPTS)[:60])
        for k, t in params.items()
    }
    result = {
        "status": "ok",
        "rows": [{"id": rng.randint(1, 99999), "text": rng.choice(SNIPPETS)} for _ in range(2)],
    }
    schema = {
        "type": "object",
        "properties": {k: {"type": t} for k, t in params.items()},
        "required": list(params),
    }
    return name, {
        "openinference.span.kind": "TOOL",
        "tool.name": name,
        "tool.description": description,
        "tool.parameters": json.dumps(schema),
        "input.value": json.dumps(args),
        "input.mime_type": "application/json",
        "output.value": json.dumps(result),
        "output.mime_type": "application/json",
        **common,
    }


def _llm(
    rng: random.Random, question: str, docs: list[str], common: dict[str, Any]
) -> tuple[str, dict[str, Any], str]:
    model, provider, cin, cout = rng.choice(MODELS)
    temperature = rng.choice((0.0, 0.2, 0.7))
    system = rng.choice(SYSTEM_PROMPTS)
    user = (
        "Context:\n" + "\n".join(f"[{i + 1}] {d}" for i, d in enumerate(docs)) + f"\n\nQuestion: {question}"
    )
    answer = rng.choice(COMPLETIONS)
    prompt_tokens, completion_tokens = rng.randint(300, 2500), rng.randint(40, 400)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    request = {"model": model, "messages": messages, "temperature": temperature, "max_tokens": 1024}
    response = {
        "id": f"chatcmpl-{rng.getrandbits(64):016x}",
        "model": model,
        "object": "chat.completion",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    attrs: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.system": provider,
        "llm.provider": provider,
        "llm.model_name": model,
        "llm.invocation_parameters": json.dumps({"temperature": temperature, "max_tokens": 1024}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": system,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": user,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": answer,
        "llm.token_count.prompt": prompt_tokens,
        "llm.token_count.completion": completion_tokens,
        "llm.token_count.total": prompt_tokens + completion_tokens,
        "llm.cost.total": round((prompt_tokens * cin + completion_tokens * cout) / 1e6, 6),
        "input.value": json.dumps(request),
        "input.mime_type": "application/json",
        "output.value": json.dumps(response),
        "output.mime_type": "application/json",
        "gen_ai.system": provider,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.usage.input_tokens": prompt_tokens,
        "gen_ai.usage.output_tokens": completion_tokens,
        "gen_ai.response.finish_reasons": "stop",
        **common,
    }
    return f"{provider}.chat", attrs, answer


def make_spans(
    rng: random.Random, sessions: list[str], n: int, t0_ns: int, one_trace: bool = False
) -> tuple[list[trace_pb2.Span], Sentinel]:
    """``n`` spans of whole traces (or the first trace only), children first (they end first),
    each trace's root last."""
    internal, client = trace_pb2.Span.SpanKind.SPAN_KIND_INTERNAL, trace_pb2.Span.SpanKind.SPAN_KIND_CLIENT
    spans: list[trace_pb2.Span] = []
    t = t0_ns
    last = Sentinel("", "")
    while len(spans) < n:
        room = n - len(spans) - 1  # children that still fit next to the root
        trace_id, root_id = _ids(rng, 16), _ids(rng, 8)
        common = _common(rng.choice(sessions), f"user_{rng.randint(1, 50000)}")
        question = rng.choice(USER_PROMPTS)
        root_start, answer = t, rng.choice(COMPLETIONS)
        children: list[trace_pb2.Span] = []
        if room >= 1:
            attrs, docs = _retriever(rng, question, common)
            dur = rng.randint(20, 300) * 1_000_000
            children.append(_span(trace_id, _ids(rng, 8), root_id, "retrieve", internal, t, t + dur, attrs))
            t += dur
        else:
            docs = rng.sample(SNIPPETS, 3)
        if room >= 3 and rng.random() < 0.4:
            name, attrs = _tool(rng, common)
            dur = rng.randint(10, 900) * 1_000_000
            children.append(_span(trace_id, _ids(rng, 8), root_id, name, internal, t, t + dur, attrs))
            t += dur
        for _ in range(min(room - len(children), rng.choice((1, 1, 2)))):
            name, attrs, answer = _llm(rng, question, docs, common)
            dur = rng.randint(300, 6000) * 1_000_000
            children.append(_span(trace_id, _ids(rng, 8), root_id, name, client, t, t + dur, attrs))
            t += dur
        root_attrs = {
            "openinference.span.kind": "CHAIN",
            "input.value": json.dumps({"question": question}),
            "input.mime_type": "application/json",
            "output.value": answer,
            "output.mime_type": "text/plain",
            "metadata": json.dumps(
                {
                    "environment": "production",
                    "app_version": "1.42.0",
                    "tier": rng.choice(("free", "pro", "team")),
                }
            ),
            **common,
        }
        t += rng.randint(1, 30) * 1_000_000
        root = _span(
            trace_id, root_id, b"", rng.choice(ingest.CHAINS), internal, root_start, t, root_attrs, ok=True
        )
        spans.extend(children)
        spans.append(root)
        last = Sentinel(trace_id.hex(), root_id.hex())
        t += rng.randint(100, 2000) * 1_000_000
        if one_trace:
            break
    return spans, last


def build_workload(n_requests: int, batch: int, n_sessions: int, seed: int, warmup: int) -> Workload:
    rng = random.Random(seed)
    sessions = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n_sessions)]
    t_base = time.time_ns() - 3_600 * 10**9
    bodies: list[bytes] = []
    sentinels: dict[int, Sentinel] = {}
    counts: dict[int, int] = {}
    raw = 0
    n_batches = warmup + n_requests
    for i in range(n_batches + IDLE_PROBES):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(
            _attrs(
                {
                    "service.name": "support-bot",
                    "service.version": "1.42.0",
                    "deployment.environment": "production",
                    "telemetry.sdk.language": "python",
                    "telemetry.sdk.name": "opentelemetry",
                    "telemetry.sdk.version": "1.45.2",
                }
            )
        )
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "openinference.instrumentation.openai", "0.1.66"
        spans, last = make_spans(rng, sessions, batch, t_base + i * 20 * 10**9, one_trace=i >= n_batches)
        ss.spans.extend(spans)
        body = request.SerializeToString()
        if i < n_batches:
            raw += len(body)
        bodies.append(body)
        sentinels[id(body)] = last
        counts[id(body)] = len(spans)
    return Workload(
        warmup=bodies[:warmup],
        measured=bodies[warmup:n_batches],
        probes=bodies[n_batches:],
        sentinels=sentinels,
        span_counts=counts,
        batch=batch,
        avg_span_bytes=round(raw / (n_batches * batch)),
    )


# ------------------------------------------------------------------------------------------------
# Process trees: RSS / PSS / CPU of a server and everything it forked
# ------------------------------------------------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


@dataclass
class TreeSample:
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    cpu_s: float = 0.0
    procs: int = 0
    by_process: dict[str, float] = field(default_factory=dict)  # cmd -> RSS MB


def sample_tree(root: int, with_pss: bool = True) -> TreeSample:
    s = TreeSample()
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            rss = int(fields[21]) * PAGE_KIB / 1024
            s.cpu_s += (int(fields[11]) + int(fields[12])) / CLK_TCK
            if with_pss:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        s.pss_mb += int(line.split()[1]) / 1024
                        break
            cmd = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
                .strip()
            )
        except (OSError, IndexError, ValueError):
            continue
        s.rss_mb += rss
        s.procs += 1
        s.by_process[f"{pid} {cmd[:120]}"] = round(rss, 1)
    return s


class TreeMonitor:
    """Samples a process tree every 0.1 s on a thread and keeps the peaks."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = TreeSample()
        self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.observe()
            self._stop.wait(SAMPLE_INTERVAL_S)

    def observe(self) -> TreeSample:
        s = sample_tree(self.root)
        if s.rss_mb > self.peak.rss_mb:
            self.peak = s
        self.peak_pss = max(self.peak_pss, s.pss_mb)
        return s

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# ------------------------------------------------------------------------------------------------
# Targets: how to start each server, what to send it, how to ask it for a span
# ------------------------------------------------------------------------------------------------


class Target:
    key = ""  # short id used in tables and JSON
    label = ""
    durability = ""  # what an ack means for this server, from its code (see BENCHMARKS.md)

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = ingest.free_port()
        self._conn: http.client.HTTPConnection | None = None

    # lifecycle
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> int | None:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def logs(self) -> str:
        return ""

    # wire
    def extra_headers(self) -> str:
        return ""

    def request(self, body: bytes) -> bytes:
        head = (
            f"POST {OTLP_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/x-protobuf\r\n{self.extra_headers()}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def close_queries(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        for attempt in range(2):  # one reconnect: the server may close an idle keep-alive connection
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self._conn.request("GET", path, headers=headers or {})
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def find(self, pending: list[Sentinel]) -> list[tuple[Sentinel, float]]:
        """The pending spans that the query API returns now, each with the time its query was sent."""
        raise NotImplementedError

    def stored_spans(self) -> int:
        """Spans in the server's database, read from its SQLite file after it stopped."""
        raise NotImplementedError

    def versions(self) -> str:
        return ""


class JournalServer(ingest.Server):
    """``ingest.Server`` (which starts from a clean ``TRACEHIVE_*`` environment) with the OTLP
    journal on. ``env`` execs the server in place, so the Popen pid is still the server's. The
    journal's applier is a child process; every figure here samples the whole process tree."""

    children_expected = True

    @property
    def command(self) -> list[str]:
        return ["env", "TRACEHIVE_OTLP_JOURNAL=1", *super().command]


class TracehiveTarget(Target):
    def __init__(self, tmp: Path, synchronous: str, key: str = "tracehive", journal: bool = False) -> None:
        super().__init__(tmp)
        self.synchronous = synchronous
        self.key = key
        self.label = "tracehive (journal)" if journal else f"tracehive (synchronous={synchronous})"
        self.durability = {
            "FULL": "ack after COMMIT + fsync of the WAL (group commit)",
            "NORMAL": "ack after COMMIT; WAL fsynced at checkpoints only",
            "OFF": "ack after COMMIT; never fsynced by SQLite",
        }.get(synchronous, synchronous)
        if journal:
            self.durability = "ack after the request is fsynced in the OTLP journal (group commit); indexed after"
        server_class = JournalServer if journal else ingest.Server
        self.server = server_class(tmp / "data", self.port, synchronous)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> int | None:
        return self.server.stop()

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def logs(self) -> str:
        return self.server.logs()

    def extra_headers(self) -> str:
        return f"Authorization: Bearer {self.server.key}\r\n"

    def find(self, pending: list[Sentinel]) -> list[tuple[Sentinel, float]]:
        found = []
        auth = {"Authorization": f"Bearer {self.server.key}"}
        for s in pending:
            event_id = uuid.uuid5(SPAN_NAMESPACE, s.trace_id + s.span_id)  # tracehive's id for an OTLP span
            t = time.monotonic()
            status, _ = self._get(f"/v1/events/{event_id}", auth)
            if status == 200:
                found.append((s, t))
            elif status != 404:
                raise RuntimeError(f"tracehive GET /v1/events/{event_id}: HTTP {status}")
        return found

    def stored_spans(self) -> int:
        db = sqlite3.connect(f"file:{self.server.data_dir / 'tracehive.db'}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM events WHERE event_type <> 'session'").fetchone()[0])
        finally:
            db.close()

    def versions(self) -> str:
        return ingest.source_info()


class PeerTarget(Target):
    """A server from the peers' venv, in its own process group (so its workers can be signalled)."""

    def __init__(self, tmp: Path, python: str) -> None:
        super().__init__(tmp)
        self.python = python
        self.data_dir = tmp / "data"
        self.data_dir.mkdir(parents=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PHOENIX_", "MLFLOW_", "TRACEHIVE_", "PYTHONPATH", "VIRTUAL_ENV"))
        }

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 180.0) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                cwd=self.data_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.ready():
                    return
            except (OSError, http.client.HTTPException):
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
            time.sleep(0.25)
        raise RuntimeError(f"{self.label} not ready after {timeout}s:\n{self.logs()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        self.close_queries()
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        pgid = self.proc.pid  # start_new_session: the group we created, led by our child
        try:
            os.killpg(pgid, signal.SIGINT)
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            return self.proc.wait(10)
        finally:
            try:  # workers left behind by a parent that exited first
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def _count(self, db_file: Path, sql: str) -> int:
        db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
        try:
            return int(db.execute(sql).fetchone()[0])
        finally:
            db.close()

    def _dist_version(self, dist: str) -> str:
        out = subprocess.run(
            [self.python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip() or "unknown"


class PhoenixTarget(PeerTarget):
    key, label = "phoenix", "Arize Phoenix"
    # phoenix/server/api/routers/v1/traces.py: the route parses the body, schedules the spans as a
    # background task and answers 200; phoenix/db/bulk_inserter.py inserts them later (every 0.1 s,
    # 100 per transaction); phoenix/db/engines.py sets PRAGMA synchronous = OFF (WAL).
    durability = "ack before the spans are written (in-memory queue); SQLite synchronous=OFF"

    def command(self) -> list[str]:
        return [self.python, "-m", "phoenix.server.main", "serve"]

    def env(self) -> dict[str, str]:
        return dict(
            super().env(),
            PHOENIX_WORKING_DIR=str(self.data_dir),
            PHOENIX_PORT=str(self.port),
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_GRPC_PORT=str(ingest.free_port()),
            PHOENIX_TELEMETRY_ENABLED="false",
        )

    def ready(self) -> bool:
        return self._get("/healthz")[0] == 200

    def find(self, pending: list[Sentinel]) -> list[tuple[Sentinel, float]]:
        found = []
        for i in range(0, len(pending), 100):
            chunk = {s.span_id: s for s in pending[i : i + 100]}
            query = urllib.parse.urlencode([("span_id", sid) for sid in chunk] + [("limit", "1000")])
            t = time.monotonic()
            status, body = self._get(f"/v1/projects/default/spans?{query}")
            if status == 404:  # the default project appears with the first inserted span
                continue
            if status != 200:
                raise RuntimeError(f"Phoenix spans query: HTTP {status}: {body[:300]!r}")
            for span in json.loads(body)["data"]:
                s = chunk.get(span["context"]["span_id"])
                if s is not None and span["context"]["trace_id"] == s.trace_id:
                    found.append((s, t))
        return found

    def stored_spans(self) -> int:
        return self._count(self.data_dir / "phoenix.db", "SELECT count(*) FROM spans")

    def versions(self) -> str:
        return "arize-phoenix " + self._dist_version("arize-phoenix")


class MlflowTarget(PeerTarget):
    key, label = "mlflow", "MLflow tracking server"
    # mlflow/server/otel_api.py: the route converts every span and awaits store.log_spans_async()
    # (one SQLAlchemy transaction per request) before answering. The SQLite backend sets no
    # journal_mode/synchronous pragma, so SQLite's defaults apply: rollback journal, synchronous=FULL.
    durability = "ack after COMMIT (rollback journal, SQLite default synchronous=FULL: fsynced)"

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--default-artifact-root",
            str(self.data_dir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def env(self) -> dict[str, str]:
        return dict(super().env(), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")

    def extra_headers(self) -> str:
        return "x-mlflow-experiment-id: 0\r\n"  # the Default experiment every new store has

    def ready(self) -> bool:
        return self._get("/health")[0] == 200

    def find(self, pending: list[Sentinel]) -> list[tuple[Sentinel, float]]:
        found = []
        for i in range(0, len(pending), 50):
            chunk = {
                (s.trace_id, base64.b64encode(bytes.fromhex(s.span_id)).decode()): s
                for s in pending[i : i + 50]
            }
            query = urllib.parse.urlencode([("trace_ids", f"tr-{trace_id}") for trace_id, _ in chunk])
            t = time.monotonic()
            status, body = self._get(f"/api/3.0/mlflow/traces/batchGet?{query}")
            if status != 200:
                raise RuntimeError(f"MLflow traces/batchGet: HTTP {status}: {body[:300]!r}")
            for trace in json.loads(body).get("traces", []):
                trace_id = trace["trace_info"]["trace_id"].removeprefix("tr-")
                for span in trace.get("spans", []):
                    s = chunk.get((trace_id, span.get("span_id")))
                    if s is not None:
                        found.append((s, t))
        return found

    def stored_spans(self) -> int:
        return self._count(self.data_dir / "mlflow.db", "SELECT count(*) FROM spans")

    def versions(self) -> str:
        return "mlflow " + self._dist_version("mlflow")


# ------------------------------------------------------------------------------------------------
# Sending and polling
# ------------------------------------------------------------------------------------------------


def send_one(sock: socket.socket, buf: bytearray, request: bytes) -> tuple[int, bytes, int]:
    """Send until accepted; 429/503 are retried with the same backoff for every server."""
    retries = 0
    while True:
        sock.sendall(request)
        status, body = ingest._read_response(sock, buf)
        if status not in RETRY_STATUSES or retries >= MAX_RETRIES:
            return status, body, retries
        time.sleep(min(1.0, 0.05 * 2 ** min(retries, 5)))
        retries += 1


@dataclass
class Visibility:
    """When the last of some spans became queryable, bracketed by the polls: after ``lower_s`` (a
    query sent then still missed it) and by ``upper_s`` (the query that found it was sent then)."""

    upper_s: float
    lower_s: float


def wait_visible(
    target: Target, sentinels: list[Sentinel], since: float, timeout: float
) -> Visibility | None:
    pending = list(dict.fromkeys(sentinels))
    upper = lower = since
    deadline = since + timeout
    while pending:
        t_round = time.monotonic()
        hits = target.find(pending)
        for _, t in hits:
            upper = max(upper, t)
        got = {s for s, _ in hits}
        pending = [s for s in pending if s not in got]
        if not pending:
            break
        lower = max(lower, t_round)
        now = time.monotonic()
        if now > deadline:
            return None
        time.sleep(min(POLL_MAX_S, max(POLL_MIN_S, POLL_RELATIVE * (now - since))))
    return Visibility(upper_s=upper - since, lower_s=lower - since)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(300)
    return sock


def client_main(
    target: Target,
    sentinels: list[Sentinel],
    probe_sentinels: list[Sentinel],
    clients: int,
    deadline: float,
    visible_timeout: float,
    started: Any,
    sent: Any,
    seen: Any,
    conn: Any,
) -> None:
    """The forked client: K keep-alive senders, then visibility polling, then the idle probes."""
    n = len(MEASURED)
    counter = itertools.count()
    results: list[list[tuple[int, float, float, int]]] = [
        [] for _ in range(clients)
    ]  # (index, t0, t1, retries)
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def worker(k: int) -> None:
        try:
            sock = connect(target.port)
        except OSError as exc:
            errors.append(f"client {k}: {exc!r}")
            barrier.abort()
            return
        buf = bytearray()
        out = results[k]
        try:
            barrier.wait()
            while not errors:
                i = next(counter)
                if i >= n or time.monotonic() > deadline:
                    break
                t0 = time.monotonic()
                status, body, retries = send_one(sock, buf, MEASURED[i])
                t1 = time.monotonic()
                if status != 200 or body != b"":  # OTLP success: 200 + empty ExportTraceServiceResponse
                    errors.append(f"request {i}: HTTP {status}: {body[:300]!r}")
                    break
                out.append((i, t0, t1, retries))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"client {k}: {exc!r}")
            ingest.abort_quietly(barrier)
        finally:
            sock.close()

    run = ingest.run_senders(clients, worker, barrier, started, clock=time.monotonic)
    t_start = run.t_start
    acked = sorted((r for rs in results for r in rs), key=lambda r: r[0])
    t_last_ack = max((r[2] for r in acked), default=t_start)
    sent.set()
    out: dict[str, Any] = {
        "requests": len(acked),
        "indexes": [r[0] for r in acked],
        "wall": t_last_ack - t_start,
        "latencies": sorted(r[2] - r[1] for r in acked),
        "retries": sum(r[3] for r in acked),
        "errors": errors,
        "client_cpu": run.cpu_user + run.cpu_sys,
        "timed_out": len(acked) < n,
        "visible": None,
        "complete_s": None,
        "idle_visible": [],
    }
    try:
        if not errors:
            # The headline: the last span of the request acknowledged last, one query per poll for
            # every server. Then the last span of every acked request (a server that stores requests
            # out of order must not look faster than it is); tracehive needs one GET per span there,
            # the peers one query per 50-100 spans, so that figure is an upper bound.
            last_acked = max((r for rs in results for r in rs), key=lambda r: r[2])[0]
            out["visible"] = wait_visible(target, [sentinels[last_acked]], t_last_ack, visible_timeout)
            seen.set()  # the parent reads the server's CPU time now: the work of ingesting ends here
            if out["visible"] is not None:
                complete = wait_visible(target, [sentinels[r[0]] for r in acked], t_last_ack, visible_timeout)
                out["complete_s"] = None if complete is None else complete.upper_s
        if not errors and out["complete_s"] is not None:
            for request, sentinel in zip(PROBES, probe_sentinels, strict=True):
                time.sleep(0.5)  # idle: the previous probe is stored, nothing else is in flight
                sock = connect(
                    target.port
                )  # a fresh connection: servers close idle keep-alives (uvicorn: 5 s)
                try:
                    status, body, _ = send_one(sock, bytearray(), request)
                finally:
                    sock.close()
                t1 = time.monotonic()
                if status != 200 or body != b"":
                    errors.append(f"probe: HTTP {status}: {body[:300]!r}")
                    break
                out["idle_visible"].append(wait_visible(target, [sentinel], t1, visible_timeout))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.append(f"visibility: {exc!r}")
    seen.set()
    conn.send(out)
    conn.close()


def warm_up(target: Target, workload: Workload, timeout: float) -> None:
    """A few requests on one connection (not measured), then wait until they are queryable, so
    every server starts the measured phase with its lazy imports done and its queue empty."""
    sock, buf = connect(target.port), bytearray()
    try:
        for body in workload.warmup:
            status, reply, _ = send_one(sock, buf, target.request(body))
            if status != 200:
                raise RuntimeError(f"{target.label} warm-up: HTTP {status}: {reply[:300]!r}\n{target.logs()}")
    finally:
        sock.close()
    if (
        wait_visible(target, [workload.sentinel(b) for b in workload.warmup], time.monotonic(), timeout)
        is None
    ):
        raise RuntimeError(f"{target.label}: warm-up spans not visible after {timeout}s")


def start_profiler(args: argparse.Namespace, target: Target) -> subprocess.Popen[bytes]:
    """py-spy on the server tree from the start of sending until every span is visible (collapsed
    stacks, one file per target and round: ``py-spy`` wants root or ptrace rights)."""
    out = Path(args.profile) / f"{target.key}-round{args.round}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            args.py_spy,
            "record",
            "--pid",
            str(target.pid),
            "--subprocesses",
            "--rate",
            "50",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_target(
    target: Target, workload: Workload, measured: list[bytes], args: argparse.Namespace
) -> dict[str, Any]:
    global MEASURED, PROBES
    ctx = mp.get_context("fork")
    if args.wait_quiet > 0:
        load = ingest.wait_quiet(args.wait_quiet)
        ingest.log(f"[{target.key}] other load before the run: {load:.2f} cores")
    t_boot = time.monotonic()
    target.start()
    boot_s = time.monotonic() - t_boot
    monitor = TreeMonitor(target.pid)
    monitor.start()
    client = None
    profiler: subprocess.Popen[bytes] | None = None
    try:
        idle = sample_tree(target.pid)
        ingest.log(
            f"[{target.key}] up in {boot_s:.1f}s, pid {target.pid}, {idle.procs} processes, "
            f"RSS {idle.rss_mb:.0f} MB; warming up"
        )
        warm_up(target, workload, args.visible_timeout)
        target.close_queries()  # the forked client opens its own query connection
        MEASURED = [target.request(b) for b in measured]
        PROBES = [target.request(b) for b in workload.probes]
        started, sent, seen = ctx.Event(), ctx.Event(), ctx.Event()
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        deadline = time.monotonic() + args.send_timeout
        client = ctx.Process(
            target=client_main,
            daemon=True,
            args=(
                target,
                [workload.sentinel(b) for b in measured],
                [workload.sentinel(b) for b in workload.probes],
                args.clients,
                deadline,
                args.visible_timeout,
                started,
                sent,
                seen,
                child_conn,
            ),
        )
        client.start()
        child_conn.close()
        if not started.wait(120):
            raise RuntimeError("client did not start")
        if args.profile:
            profiler = start_profiler(args, target)
        s0, busy0 = sample_tree(target.pid, with_pss=False), ingest.machine_busy()
        while not sent.wait(0.5):
            if not client.is_alive():
                break
        s1, busy1 = sample_tree(target.pid, with_pss=False), ingest.machine_busy()
        while not seen.wait(0.5):
            if not client.is_alive():
                break
        s2 = sample_tree(target.pid, with_pss=False)  # the polls of the headline figure are in it, no more
        res = parent_conn.recv() if parent_conn.poll(args.visible_timeout + 600) else None
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
            profiler = None
        client.join(30)
        if res is None:
            raise RuntimeError("the client process died without a result")
        if res["errors"]:
            raise RuntimeError(f"{target.label}: " + "\n".join(res["errors"][:10]) + "\n" + target.logs())
        monitor.observe()
    finally:
        monitor.stop()
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        if client is not None and client.is_alive():
            client.terminate()
            client.join(10)
        rc = target.stop()
    stored = target.stored_spans()
    acked_spans = res["requests"] * workload.batch
    expected = (
        workload.spans(workload.warmup)
        + acked_spans
        + workload.spans(workload.probes[: len(res["idle_visible"])])
    )
    lat, wall = res["latencies"], res["wall"]
    server_cpu = s1.cpu_s - s0.cpu_s
    vis: Visibility | None = res["visible"]
    idle_vis = sorted(v.upper_s for v in res["idle_visible"] if v is not None)
    out = {
        "target": target.key,
        "label": target.label,
        "durability": target.durability,
        "spans": acked_spans,
        "requests": res["requests"],
        "wall_s": round(wall, 3),
        "spans_per_s": round(acked_spans / wall) if wall > 0 else None,
        "p50_ms": round(ingest.percentile(lat, 50) * 1000, 1),
        "p99_ms": round(ingest.percentile(lat, 99) * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "retried_429_503": res["retries"],
        "visible_s": None if vis is None else round(vis.upper_s, 3),
        "visible_lower_s": None if vis is None else round(vis.lower_s, 3),
        "all_visible_s": None if res["complete_s"] is None else round(res["complete_s"], 3),
        "spans_per_s_to_visible": (round(acked_spans / (wall + vis.upper_s)) if vis is not None else None),
        "idle_visible_ms_median": round(ingest.percentile(idle_vis, 50) * 1000, 1) if idle_vis else None,
        "idle_visible_ms_max": round(idle_vis[-1] * 1000, 1) if idle_vis else None,
        "idle_visible_lower_ms": [round(v.lower_s * 1000, 1) for v in res["idle_visible"] if v is not None],
        "peak_rss_mb": round(monitor.peak.rss_mb, 1),
        "peak_pss_mb": round(monitor.peak_pss, 1),
        "rss_idle_mb": round(idle.rss_mb, 1),
        "processes": monitor.peak.procs,
        "rss_by_process_at_peak": monitor.peak.by_process,
        "server_cpu_s_sending": round(server_cpu, 2),
        "server_cores_sending": round(server_cpu / wall, 2) if wall > 0 else None,
        "server_cpu_ms_per_1k_spans": round((s2.cpu_s - s0.cpu_s) / acked_spans * 1e6, 1)
        if acked_spans
        else None,
        "client_cpu_s": round(res["client_cpu"], 2),
        "other_load_cores": round(max(0.0, (busy1 - busy0) - server_cpu - res["client_cpu"]) / wall, 2)
        if wall > 0
        else None,
        "boot_s": round(boot_s, 1),
        "stored_spans": stored,
        "expected_spans": expected,
        "timed_out": res["timed_out"],
        "exit_code": rc,
    }
    if stored < expected:
        raise RuntimeError(f"{target.label} stored {stored} spans, {expected} were acknowledged")
    ingest.log(
        f"[{target.key}] {out['spans_per_s']:,} spans/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, "
        f"visible after {out['visible_s']} s, idle visible {out['idle_visible_ms_median']} ms, "
        f"peak RSS {out['peak_rss_mb']} MB ({out['processes']} processes), {out['retried_429_503']} retries"
    )
    return out


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------

# (field, label, higher is better)
HEADLINE = [
    ("spans_per_s", "spans/s (acked)", True),
    ("p50_ms", "ack latency p50 (ms)", False),
    ("p99_ms", "ack latency p99 (ms)", False),
    ("visible_s", "time to visible after the last ack (s)", False),
    ("peak_rss_mb", "peak RSS, process tree (MB)", False),
]
SHORT_NAMES = {"phoenix": "Phoenix", "mlflow": "MLflow", "tracehive": "tracehive", "tracehive-journal": "journal"}
JOURNAL = "tracehive-journal"  # tracehive with TRACEHIVE_OTLP_JOURNAL=1: acks once journaled
EXTRA = [
    ("all_visible_s", "every acked request visible (s, upper bound)", False),
    ("spans_per_s_to_visible", "spans/s until the last ack is visible", True),
    ("idle_visible_ms_median", "idle: one trace, ack to visible, median of 5 (ms)", False),
    ("peak_pss_mb", "peak PSS, process tree (MB)", False),
    ("server_cpu_ms_per_1k_spans", "server CPU per 1k spans, until visible (ms)", False),
    ("processes", "server processes", False),
    ("retried_429_503", "429/503 answers retried", False),
    ("other_load_cores", "other load on the machine (cores)", False),
]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1 else f"{v:,.1f}"
    return f"{v:,}"


def _first_poll(result: dict[str, Any]) -> bool:
    """The span was there at the first query after the last ack: visible when acknowledged, as far
    as polling can tell (the figure is then only the poll's own delay)."""
    return result.get("visible_lower_s") == 0


def _ratio(ours: Any, theirs: Any, higher_better: bool) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "-"
    r = ours / theirs
    ahead = r > 1 if higher_better else r < 1
    return f"{r:.2f}" + (" ahead" if ahead else " **behind**")


def peers_table(rnd: dict[str, dict[str, Any]]) -> list[str]:
    mine = [k for k in ("tracehive", JOURNAL) if k in rnd]
    peers = [k for k in ("phoenix", "mlflow") if k in rnd]
    cols = [*mine, *peers]
    pairs = [(m, p) for m in mine for p in peers]  # ratio columns: each tracehive mode / each peer
    head = "| figure | " + " | ".join(rnd[k]["label"] for k in cols)
    head += "".join(f" | {SHORT_NAMES[m]} / {SHORT_NAMES[p]}" for m, p in pairs)
    lines = [head + " |", "|---" * (1 + len(cols) + len(pairs)) + "|"]
    for key, label, higher in HEADLINE + EXTRA:
        cells = []
        for k in cols:
            first = (key == "visible_s" and _first_poll(rnd[k])) or (
                key == "idle_visible_ms_median"
                and rnd[k]["idle_visible_lower_ms"]
                and not any(rnd[k]["idle_visible_lower_ms"])
            )
            cells.append(_fmt(rnd[k].get(key)) + (" (first poll)" if first else ""))
        row = f"| {label} | " + " | ".join(cells)
        for m, p in pairs:
            ours = rnd[m]
            if (key, label, higher) not in HEADLINE:
                row += " | "
            elif key == "visible_s" and _first_poll(ours) and _first_poll(rnd[p]):
                row += " | tie: both at the first poll"
            else:
                row += f" | {_ratio(ours.get(key), rnd[p].get(key), higher)}"
        lines.append(row + " |")
    return lines


def durability_table(rnd: dict[str, dict[str, Any]]) -> list[str]:
    cols = [k for k in ("tracehive-full", "tracehive-normal", "tracehive-off") if k in rnd]
    if not cols:
        return []
    base = rnd.get("tracehive-full")
    lines = [
        "| figure | " + " | ".join(rnd[k]["label"].split("(")[1].rstrip(")") for k in cols) + " |",
        "|---" * (1 + len(cols)) + "|",
    ]
    rows = [h for h in HEADLINE if h[0] != "visible_s"] + [
        e for e in EXTRA if e[0] in ("peak_pss_mb", "server_cpu_ms_per_1k_spans", "other_load_cores")
    ]
    for key, label, _ in rows:
        cells = []
        for k in cols:
            v = rnd[k].get(key)
            rel = f" ({v / base[key]:.2f}x)" if base and k != "tracehive-full" and v and base.get(key) else ""
            cells.append(_fmt(v) + rel)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def fsync_ms(directory: str, n: int = 50) -> float:
    """Median time of appending 4 KiB and fsyncing, on the disk the servers write to: the price
    of one durable commit (tracehive pays it once per group commit, FULL only)."""
    fd, path = tempfile.mkstemp(dir=directory, prefix="fsync-probe-")
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return round(ingest.percentile(sorted(times), 50) * 1000, 2)


def _filesystem(path: str) -> str:
    """The mount holding ``path``, from /proc/mounts (longest matching mount point)."""
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, mnt, fstype = line.split()[:3]
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
            best = (mnt, fstype, dev)
    return f"{best[1]} on {best[0]}"


def machine_info(peers_python: str | None) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    info = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024**2, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "fsync_ms_median": fsync_ms(tempfile.gettempdir()),
        "tmp_filesystem": _filesystem(tempfile.gettempdir()),
    }
    if peers_python:
        out = subprocess.run(
            [
                peers_python,
                "-c",
                "import platform, sqlite3; print(platform.python_version(), sqlite3.sqlite_version)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        if len(out) == 2:
            info["peers_python"], info["peers_sqlite"] = out
    return info


# ------------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------------


def make_target(key: str, tmp: Path, peers_python: str) -> Target:
    if key == "phoenix":
        return PhoenixTarget(tmp, peers_python)
    if key == "mlflow":
        return MlflowTarget(tmp, peers_python)
    if key == "tracehive":
        return TracehiveTarget(tmp, "FULL")
    if key == JOURNAL:
        return TracehiveTarget(tmp, "FULL", key=key, journal=True)
    if key.startswith("tracehive-"):
        return TracehiveTarget(tmp, key.removeprefix("tracehive-").upper(), key=key)
    raise ValueError(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--peers-python",
        default=os.environ.get(PEERS_PYTHON_ENV, DEFAULT_PEERS_PYTHON),
        help=f"python of the venv holding arize-phoenix and mlflow (env {PEERS_PYTHON_ENV}, "
        f"default {DEFAULT_PEERS_PYTHON})",
    )
    parser.add_argument(
        "--spans",
        type=int,
        default=None,
        help="measured spans per server in the peer comparison (default 6,144; --quick 2,048)",
    )
    parser.add_argument(
        "--durability-spans",
        type=int,
        default=None,
        help="measured spans per run in the durability comparison (default 25,600; --quick 5,120)",
    )
    parser.add_argument("--batch", type=int, default=512, help="spans per request (default 512)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--sessions", type=int, default=1000, help="session.id values the traces spread over")
    parser.add_argument("--rounds", type=int, default=None, help="repeat everything (default 2; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer spans, one round")
    parser.add_argument(
        "--targets",
        default="tracehive,tracehive-journal,phoenix,mlflow",
        help="servers of the peer comparison, comma-separated (default tracehive,tracehive-journal,phoenix,mlflow)",
    )
    parser.add_argument(
        "--durability",
        default="FULL,NORMAL,OFF",
        help="TRACEHIVE_SQLITE_SYNCHRONOUS values of the durability comparison (default FULL,NORMAL,OFF;"
        " '' skips it)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--send-timeout", type=float, default=150, help="cap on each server's sending phase (s)"
    )
    parser.add_argument(
        "--visible-timeout", type=float, default=300, help="cap on waiting for visibility (s)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=5,
        metavar="S",
        help="before each server wait up to S seconds for the rest of the machine to go quiet",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="record py-spy collapsed stacks of every server into DIR"
    )
    parser.add_argument(
        "--py-spy",
        default=shutil.which("py-spy") or str(Path(DEFAULT_PEERS_PYTHON).parent / "py-spy"),
        help="the py-spy binary for --profile",
    )
    parser.add_argument("--keep", action="store_true", help="keep each server's temp dir (data, logs)")
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables to this file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    n_peers = max(1, (args.spans or (2_048 if args.quick else 6_144)) // args.batch)
    n_durability = max(1, (args.durability_spans or (5_120 if args.quick else 25_600)) // args.batch)
    peer_keys = [k.strip() for k in args.targets.split(",") if k.strip()]
    durability_keys = [f"tracehive-{d.strip().lower()}" for d in args.durability.split(",") if d.strip()]
    unknown = [k for k in peer_keys if k not in ("tracehive", JOURNAL, "phoenix", "mlflow")]
    if unknown:
        parser.error(f"unknown --targets {unknown}")
    peers_python = args.peers_python if any(k in ("phoenix", "mlflow") for k in peer_keys) else None
    if peers_python and not Path(peers_python).exists():
        parser.error(
            f"--peers-python {peers_python} does not exist: python -m venv /work/peers-venv && "
            "/work/peers-venv/bin/pip install arize-phoenix mlflow"
        )
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    machine = machine_info(peers_python)
    t_gen = time.perf_counter()
    # One list of bodies: the peer comparison sends its first ``n_peers``, the durability one its
    # first ``n_durability``; every server of a comparison gets exactly the same bytes.
    n_bodies = max(n_peers if peer_keys else 0, n_durability if durability_keys else 0, 1)
    workload = build_workload(n_bodies, args.batch, args.sessions, args.seed, warmup=WARMUP_REQUESTS)
    ingest.log(
        f"workload: {n_bodies} requests x {args.batch} spans (+{WARMUP_REQUESTS} warm-up, {IDLE_PROBES} "
        f"one-trace probes), {workload.avg_span_bytes} B/span protobuf, "
        f"built in {time.perf_counter() - t_gen:.1f}s"
    )
    versions: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    sections = [
        ("peers", peer_keys, workload.measured[:n_peers]),
        ("durability", durability_keys, workload.measured[:n_durability]),
    ]
    for r in range(rounds):
        rnd: dict[str, Any] = {"peers": {}, "durability": {}, "order": []}
        for name, keys, measured in sections if r % 2 == 0 else reversed(sections):
            for key in keys if r % 2 == 0 else list(reversed(keys)):
                tmp = Path(tempfile.mkdtemp(prefix=f"tracehive-peers-{key}-"))
                try:
                    target = make_target(key, tmp, peers_python or "")
                    base = key.split("-")[0]
                    if base not in versions:
                        versions[base] = target.versions()
                    ingest.log(
                        f"round {r + 1}/{rounds}, {name}: {target.label}, "
                        f"{len(measured) * args.batch:,} spans"
                    )
                    args.round = r + 1
                    rnd[name][key] = run_target(target, workload, measured, args)
                    rnd["order"].append(key)
                finally:
                    if args.keep:
                        ingest.log(f"kept {tmp}")
                    else:
                        shutil.rmtree(tmp, ignore_errors=True)
        results.append(rnd)
    text = report(results, machine, versions, workload, args, n_peers, n_durability, command)
    print()
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": machine,
                    "versions": versions,
                    "workload": {
                        "peer_requests": n_peers,
                        "durability_requests": n_durability,
                        "batch": args.batch,
                        "clients": args.clients,
                        "sessions": args.sessions,
                        "avg_span_bytes": workload.avg_span_bytes,
                        "seed": args.seed,
                    },
                    "rounds": results,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"results: {args.json}")
    return 0


def report(
    results: list[dict[str, Any]],
    machine: dict[str, Any],
    versions: dict[str, str],
    workload: Workload,
    args: argparse.Namespace,
    n_peers: int,
    n_durability: int,
    command: str,
) -> str:
    lines = [
        f"Workload: requests of {args.batch} spans (~{workload.avg_span_bytes} B/span protobuf) from "
        f"{args.clients} concurrent senders, {args.sessions} sessions; "
        f"peer comparison {n_peers * args.batch:,} "
        f"spans per server, durability comparison {n_durability * args.batch:,} spans per run.",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['ram_gib']} GiB RAM, Python "
        f"{machine['python']} (peers: {machine.get('peers_python', '-')}), SQLite {machine['sqlite']} "
        f"(peers: {machine.get('peers_sqlite', '-')}); temp dir {machine['tmp_filesystem']}, "
        f"fsync of a 4 KiB append {machine['fsync_ms_median']} ms (median).",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()),
        "",
    ]
    for i, rnd in enumerate(results):
        lines += [f"Round {i + 1} (order: {', '.join(rnd['order'])})", ""]
        if rnd["peers"]:
            lines += peers_table(rnd["peers"]) + [""]
        dt = durability_table(rnd["durability"])
        if dt:
            lines += (
                [
                    f"Durability, round {i + 1}: the same ingest into tracehive with each SQLite synchronous "
                    "setting (factor vs FULL)",
                    "",
                ]
                + dt
                + [""]
            )
    lines.append(f"Command: `{command}`")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
