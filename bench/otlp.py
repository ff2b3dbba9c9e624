#!/usr/bin/env python
"""OTLP ingest benchmark: OTLP/HTTP protobuf ``POST /v1/traces`` against a real server, with the
REST batch figure of ``bench/ingest.py`` from the same run beside it.

What it does:

1. Starts ``python -m tracehive serve`` on a fresh temp data dir with default settings (fsync on),
   reading the project key it prints (``bench/ingest.py``'s ``Server``).
2. Pre-generates traces shaped like the HoneyHive tracer's output: a ``chain`` root span with 2-4
   ``model``/``tool`` children, with the attributes the tracer sends (``honeyhive.session_id`` and
   the other routing keys, ``honeyhive_event_type``, flattened ``honeyhive_inputs.*`` /
   ``honeyhive_outputs.*`` / ``honeyhive_config.*`` / ``honeyhive_metadata.*`` including
   ``chat_history.<i>.role|content``, ``gen_ai.*`` request/usage attributes, ``honeyhive_duration_ms``),
   spread over ``--sessions`` sessions, packed ``--batch`` spans (default 512, the OTel
   ``BatchSpanProcessor`` size) per ``ExportTraceServiceRequest``, serialised with the OTLP proto
   classes, optionally gzip-compressed (``--gzip``), as full pre-built HTTP/1.1 requests.
3. Sends them from ``--clients`` keep-alive connections (threads in a forked client process), checks
   each reply is an empty protobuf ``ExportTraceServiceResponse`` (no ``partial_success``), and
   measures spans/s and request p50/p99 while sampling the server's RSS and CPU.
4. Stops the server and checks every span is stored as an event.
5. Runs the REST batch benchmark (``bench/ingest.py``: ``POST /v1/sessions/{id}/events/batch``,
   ``--rest-events`` events, plus its raw-SQLite "limit") and prints both tables side by side.

    python bench/otlp.py                       # 100,352 spans (196 x 512), then REST 100,000 events
    python bench/otlp.py --spans 20000 --no-rest
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import random
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ingest  # noqa: E402  (bench/ingest.py: server, client helpers, the REST run)
from ingest import COMPLETIONS, MODELS, SNIPPETS, SYSTEM_PROMPTS, TOOLS, USER_PROMPTS  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402

REQUESTS: list[bytes] = []
WARMUP: list[bytes] = []
PATH = "/v1/traces"


# ------------------------------------------------------------------------------------------------
# Span generation
# ------------------------------------------------------------------------------------------------


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def _attrs(d: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in d.items()]


def _routing(session_id: str, event_type: str, name: str) -> dict[str, Any]:
    return {
        "honeyhive.session_id": session_id,
        "traceloop.association.properties.session_id": session_id,
        "honeyhive.source": "production",
        "traceloop.association.properties.source": "production",
        "honeyhive.project": "bench",
        "honeyhive_event_type": event_type,
        "honeyhive_event_name": name,
        "honeyhive_metadata.event_type": event_type,
        "honeyhive_metadata.event_name": name,
    }


def _model_attrs(rng: random.Random, session_id: str, duration_ms: float) -> tuple[str, dict[str, Any]]:
    model, provider, cin, cout = rng.choice(MODELS)
    prompt_tokens, completion_tokens = rng.randint(150, 2500), rng.randint(20, 400)
    temperature = rng.choice((0.0, 0.2, 0.7, 1.0))
    name = f"{provider}.chat.completions"
    attrs = _routing(session_id, "model", name)
    attrs.update({
        "gen_ai.system": provider,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.request.temperature": temperature,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.usage.input_tokens": prompt_tokens,
        "gen_ai.usage.output_tokens": completion_tokens,
        "gen_ai.response.finish_reasons": "stop",
        "honeyhive_inputs.chat_history.0.role": "system",
        "honeyhive_inputs.chat_history.0.content": rng.choice(SYSTEM_PROMPTS),
        "honeyhive_inputs.chat_history.1.role": "user",
        "honeyhive_inputs.chat_history.1.content": rng.choice(USER_PROMPTS),
        "honeyhive_outputs.role": "assistant",
        "honeyhive_outputs.content": rng.choice(COMPLETIONS),
        "honeyhive_outputs.finish_reason": "stop",
        "honeyhive_config.model": model,
        "honeyhive_config.provider": provider,
        "honeyhive_config.temperature": temperature,
        "honeyhive_config.max_tokens": 1024,
        "honeyhive_metadata.cost": round((prompt_tokens * cin + completion_tokens * cout) / 1e6, 6),
        "honeyhive_metadata.prompt_tokens": prompt_tokens,
        "honeyhive_metadata.completion_tokens": completion_tokens,
        "honeyhive_metadata.total_tokens": prompt_tokens + completion_tokens,
        "honeyhive_metadata.request_id": f"req_{rng.getrandbits(64):016x}",
        "honeyhive_duration_ms": duration_ms,
    })
    return name, attrs


def _tool_attrs(rng: random.Random, session_id: str, duration_ms: float) -> tuple[str, dict[str, Any]]:
    name, kind = rng.choice(TOOLS)
    attrs = _routing(session_id, "tool", name)
    attrs.update({
        "honeyhive_inputs.query": rng.choice(USER_PROMPTS),
        "honeyhive_inputs.filters": json.dumps({"product": "acme", "lang": "en"}),
        "honeyhive_config.kind": kind,
        "honeyhive_config.top_k": 3,
    })
    for i, text in enumerate(rng.sample(SNIPPETS, 3)):
        attrs[f"honeyhive_outputs.result.{i}.id"] = rng.randint(1, 99999)
        attrs[f"honeyhive_outputs.result.{i}.score"] = round(rng.random(), 4)
        attrs[f"honeyhive_outputs.result.{i}.text"] = text
    attrs.update({"honeyhive_metadata.latency_ms": int(duration_ms), "honeyhive_metadata.cached": rng.random() < 0.3,
                  "honeyhive_metadata.index": "docs-v7", "honeyhive_duration_ms": duration_ms})
    return name, attrs


def _chain_attrs(rng: random.Random, session_id: str, duration_ms: float) -> tuple[str, dict[str, Any]]:
    name = rng.choice(ingest.CHAINS)
    attrs = _routing(session_id, "chain", name)
    attrs.update({
        "honeyhive_inputs.question": rng.choice(USER_PROMPTS),
        "honeyhive_inputs.user_tier": rng.choice(("free", "pro", "team")),
        "honeyhive_outputs.result.answer": rng.choice(COMPLETIONS),
        "honeyhive_config.pipeline_version": "2.3.1",
        "honeyhive_metadata.steps": rng.randint(2, 6),
        "honeyhive_metadata.environment": "production",
        "honeyhive_user_properties.user_id": f"user_{rng.randint(1, 50000)}",
        "honeyhive_duration_ms": duration_ms,
    })
    for i in range(3):
        attrs[f"honeyhive_outputs.result.sources.{i}"] = f"https://docs.acme.example/guide/{rng.randint(1, 400)}"
    return name, attrs


def _span(rng: random.Random, trace_id: bytes, parent: bytes, name: str, attrs: dict[str, Any],
          start_ns: int, end_ns: int) -> tuple[trace_pb2.Span, bytes]:
    span_id = rng.getrandbits(64).to_bytes(8, "big") or b"\x01" * 8
    span = trace_pb2.Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
                          kind=trace_pb2.Span.SpanKind.SPAN_KIND_INTERNAL, start_time_unix_nano=start_ns,
                          end_time_unix_nano=end_ns, attributes=_attrs(attrs),
                          status=trace_pb2.Status(code=trace_pb2.Status.StatusCode.STATUS_CODE_UNSET))
    return span, span_id


def make_batch(rng: random.Random, sessions: list[str], n: int, t0_ns: int) -> list[trace_pb2.Span]:
    """``n`` spans: traces of a chain root and 2-4 children, children first (they end first)."""
    spans: list[trace_pb2.Span] = []
    t = t0_ns
    while len(spans) < n:
        session_id = rng.choice(sessions)
        trace_id = rng.getrandbits(128).to_bytes(16, "big")
        children = min(rng.randint(2, 4), n - len(spans) - 1)
        root_start = t
        root_id = rng.getrandbits(64).to_bytes(8, "big")
        child_spans = []
        for _ in range(max(0, children)):
            t += rng.randint(1, 50) * 1_000_000
            dur = rng.randint(5, 4000) * 1_000_000
            make = _model_attrs if rng.random() < 0.55 else _tool_attrs
            name, attrs = make(rng, session_id, dur / 1e6)
            span, _ = _span(rng, trace_id, root_id, name, attrs, t, t + dur)
            child_spans.append(span)
        root_end = t + rng.randint(500, 8000) * 1_000_000
        name, attrs = _chain_attrs(rng, session_id, (root_end - root_start) / 1e6)
        root, _ = _span(rng, trace_id, b"", name, attrs, root_start, root_end)
        root.span_id = root_id
        spans.extend(child_spans)
        spans.append(root)
        t = root_end + rng.randint(100, 2000) * 1_000_000
    return spans


def build_requests(n_requests: int, batch: int, sessions: list[str], key: str, port: int, rng: random.Random,
                   use_gzip: bool) -> tuple[list[bytes], int, int]:
    t_base = time.time_ns() - 3_600 * 10**9
    reqs, raw_bytes, sent_bytes = [], 0, 0
    for i in range(n_requests):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(_attrs({"service.name": "support-bot", "telemetry.sdk.language": "python",
                                              "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.45.2"}))
        ss = rs.scope_spans.add()
        ss.scope.name = "honeyhive.140000000000000"
        ss.spans.extend(make_batch(rng, sessions, batch, t_base + i * 10**9))
        body = request.SerializeToString()
        raw_bytes += len(body)
        extra = ""
        if use_gzip:
            body = gzip.compress(body, compresslevel=6)
            extra = "Content-Encoding: gzip\r\n"
        sent_bytes += len(body)
        head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/x-protobuf\r\nX-Source: bench\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        reqs.append(head + body)
    return reqs, raw_bytes, sent_bytes


# ------------------------------------------------------------------------------------------------
# The client (forked: one thread per keep-alive connection)
# ------------------------------------------------------------------------------------------------


def client_main(port: int, clients: int, deadline: float, started: Any, done_spans: Any, batch: int,
                conn: Any) -> None:
    import itertools
    import socket
    import threading

    n = len(REQUESTS)
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    warm = iter(range(len(WARMUP)))
    barrier = threading.Barrier(clients + 1)
    finished_at = [0.0] * clients

    def check(status: int, body: bytes, what: str) -> None:
        # Full success: HTTP 200 and an empty ExportTraceServiceResponse (no partial_success).
        if status != 200 or body != b"":
            errors.append(f"{what}: HTTP {status}: {body[:300]!r}")

    def worker(k: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(120)
        buf = bytearray()
        lat = latencies[k]
        send, perf = sock.sendall, time.perf_counter
        try:
            while True:
                with lock:
                    w = next(warm, None)
                if w is None:
                    break
                send(WARMUP[w])
                check(*ingest._read_response(sock, buf), "warm-up")
            barrier.wait()
            while True:
                i = next(counter)
                if i >= n or time.monotonic() > deadline:
                    break
                t0 = perf()
                send(REQUESTS[i])
                status, body = ingest._read_response(sock, buf)
                lat.append(perf() - t0)
                check(status, body, f"request {i}")
                if len(errors) > 20:
                    break
                with done_spans.get_lock():
                    done_spans.value += batch
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"client {k}: {exc!r}")
            ingest.abort_quietly(barrier)
        finally:
            finished_at[k] = time.perf_counter()
            sock.close()

    run = ingest.run_senders(clients, worker, barrier, started)
    wall = max(finished_at) - run.t_start
    conn.send({"requests": sum(len(x) for x in latencies), "wall": wall,
               "latencies": sorted(x for lat in latencies for x in lat), "errors": errors,
               "cpu": run.cpu_user + run.cpu_sys,
               "timed_out": time.monotonic() > deadline})
    conn.close()


# ------------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------------


def run_otlp(args: argparse.Namespace) -> dict[str, Any]:
    global REQUESTS, WARMUP
    ctx = mp.get_context("fork")
    n_requests = max(1, args.spans // args.batch)
    spans_total = n_requests * args.batch
    rng = random.Random(args.seed)
    sessions = [ingest._uuid(rng) for _ in range(args.sessions)]
    tmp = Path(tempfile.mkdtemp(prefix="tracehive-otlp-bench-"))
    server: ingest.Server | None = None
    client = None
    try:
        port = ingest.free_port()
        server = ingest.Server(tmp / "server-data", port)
        server.start()
        ingest.log(f"server pid {server.proc.pid} on port {port}")  # type: ignore[union-attr]
        t_gen = time.perf_counter()
        REQUESTS, raw_bytes, sent_bytes = build_requests(n_requests, args.batch, sessions, server.key, port, rng,
                                                         args.gzip)
        WARMUP, _, _ = build_requests(max(2 * args.clients, 4), args.batch, sessions, server.key, port, rng, args.gzip)
        gen_s = time.perf_counter() - t_gen
        ingest.log(f"generated {n_requests} requests x {args.batch} spans in {gen_s:.1f}s "
                   f"({raw_bytes / 1e6:.0f} MB of protobuf, {raw_bytes / spans_total:.0f} B/span"
                   + (f", {sent_bytes / 1e6:.0f} MB gzipped" if args.gzip else "") + ")")
        if args.wait_quiet > 0:
            ingest.log(f"other load before the OTLP run: {ingest.wait_quiet(args.wait_quiet):.2f} cores")
        deadline = time.monotonic() + args.timeout
        started, done = ctx.Event(), ctx.Value("q", 0)
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        client = ctx.Process(target=client_main, args=(port, args.clients, deadline, started, done, args.batch,
                                                       child_conn), daemon=True)
        client.start()
        child_conn.close()
        if not started.wait(120):
            raise RuntimeError("client did not start")
        s0, busy0 = server.status(), ingest.machine_busy()
        peak_rss = s0.get("VmRSS", 0.0)
        while client.is_alive() and not parent_conn.poll():
            peak_rss = max(peak_rss, server.status().get("VmRSS", 0.0))
            if time.monotonic() > deadline + 60:
                raise RuntimeError("client exceeded its deadline")
            time.sleep(0.2)
        res = parent_conn.recv() if parent_conn.poll(30) else None
        s1, busy1 = server.status(), ingest.machine_busy()
        client.join(30)
        if res is None:
            raise RuntimeError("the client process died without a result")
        if res["errors"]:
            raise RuntimeError("request errors:\n" + "\n".join(res["errors"][:10]))
        server_cpu = s1.get("cpu", 0.0) - s0.get("cpu", 0.0)
        rc = server.stop()
        db = sqlite3.connect(f"file:{server.data_dir / 'tracehive.db'}?mode=ro", uri=True)
        try:
            stored = db.execute("SELECT count(*) FROM events WHERE event_type <> 'session'").fetchone()[0]
            stored_sessions = db.execute("SELECT count(*) FROM events WHERE event_type = 'session'").fetchone()[0]
        finally:
            db.close()
        sent = res["requests"] * args.batch
        expected = sent + len(WARMUP) * args.batch
        if stored != expected:
            raise RuntimeError(f"server stored {stored} events, expected {expected}")
        lat = res["latencies"]
        return {
            "config": {"spans": spans_total, "batch": args.batch, "clients": args.clients, "sessions": args.sessions,
                       "avg_span_protobuf_bytes": round(raw_bytes / spans_total), "gzip": args.gzip,
                       "sent_mb": round(sent_bytes / 1e6, 1), "path": PATH, "seed": args.seed},
            "spans": sent,
            "requests": res["requests"],
            "wall_s": round(res["wall"], 3),
            "spans_per_s": round(sent / res["wall"]),
            "p50_ms": round(ingest.percentile(lat, 50) * 1000, 2),
            "p99_ms": round(ingest.percentile(lat, 99) * 1000, 2),
            "max_ms": round(lat[-1] * 1000, 2) if lat else None,
            "server_cpu_s": round(server_cpu, 2),
            "server_cores_used": round(server_cpu / res["wall"], 2),
            "server_peak_rss_mb": round(max(peak_rss, s1.get("VmHWM", 0.0)), 1),
            "client_cpu_s": round(res["cpu"], 2),
            "other_load_cores": round(max(0.0, (busy1 - busy0) - server_cpu - res["cpu"]) / res["wall"], 2),
            "stored_events": stored,
            "stored_sessions": stored_sessions,
            "exit_code": rc,
            "generation_s": round(gen_s, 1),
        }
    finally:
        if client is not None and client.is_alive():
            client.terminate()
            client.join(10)
        if server is not None and server.proc is not None and server.proc.poll() is None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_rest(args: argparse.Namespace) -> dict[str, Any]:
    rest_args = argparse.Namespace(
        events=args.rest_events, quick=True, clients=args.clients, batch=100, sessions=1000, seed=2,
        timeout=args.timeout, port=0, json=None, py_spy=None, py_spy_args="", synchronous="FULL",
        wait_quiet=args.wait_quiet, keep=False, src=None,
        command_line=f"python bench/ingest.py --events {args.rest_events} --quick",
    )
    return ingest.run(rest_args)


def print_tables(o: dict[str, Any], rest: dict[str, Any] | None, command: str) -> None:
    cfg = o["config"]
    print()
    print(f"OTLP/HTTP protobuf ingest (POST {cfg['path']}): {o['spans']:,} spans, {cfg['batch']}/request "
          f"(~{cfg['avg_span_protobuf_bytes']} B/span protobuf{', gzip' if cfg['gzip'] else ''}), "
          f"{cfg['clients']} clients, {cfg['sessions']} sessions, synchronous=FULL")
    print(f"machine: {os.cpu_count()} CPUs; other load during the run {o['other_load_cores']} cores")
    rows = [("items", f"{o['spans']:,} spans", None), ("items/s", f"{o['spans_per_s']:,}", None),
            ("request p50 / p99", f"{o['p50_ms']} / {o['p99_ms']} ms", None),
            ("server CPU", f"{o['server_cpu_s']} s ({o['server_cores_used']} cores)", None),
            ("server peak RSS", f"{o['server_peak_rss_mb']} MB", None)]
    if rest is not None:
        s = rest["server"]
        rest_vals = [f"{s['events']:,} events", f"{s['events_per_s']:,}", f"{s['p50_ms']} / {s['p99_ms']} ms",
                     f"{s['cpu_s']} s ({s['cpu_cores_used']} cores)", f"{s['peak_rss_mb']} MB"]
        rows = [(name, a, b) for (name, a, _), b in zip(rows, rest_vals)]
        print(f"{'':<20}{'OTLP (512 spans/req)':>28}{'REST batch (100 ev/req)':>28}")
    for name, a, b in rows:
        print(f"{name:<20}{a:>28}{(b or ''):>28}")
    if rest is not None:
        print(f"REST raw-SQLite limit: {rest['limit']['events_per_s']:,} events/s; REST ratio {rest['ratio']}; "
              f"OTLP spans/s vs limit: {o['spans_per_s'] / rest['limit']['events_per_s']:.3f}")
    print(f"command: {command}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000, help="total spans (rounded down to whole batches)")
    parser.add_argument("--batch", type=int, default=512, help="spans per request (default 512)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions the traces spread over")
    parser.add_argument("--gzip", action="store_true", help="gzip the request bodies (Content-Encoding: gzip)")
    parser.add_argument("--rest-events", type=int, default=100_000, help="events for the REST run (bench/ingest.py)")
    parser.add_argument("--no-rest", action="store_true", help="skip the REST run")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="deadline of each phase in seconds")
    parser.add_argument("--wait-quiet", type=float, default=30, metavar="S",
                        help="before each phase wait up to S seconds for other processes to go quiet")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    ingest.log(f"tracehive under test: {ingest.source_info()}")
    otlp = run_otlp(args)
    rest = None if args.no_rest else run_rest(args)
    print_tables(otlp, rest, command)
    if args.json:
        Path(args.json).write_text(json.dumps({"otlp": otlp, "rest": rest, "command": command}, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
