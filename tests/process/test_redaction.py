"""Redaction at ingest on a real server (issue 17, point 2): a project's rules applied on every
write route (v1, legacy, OTLP over HTTP in JSON and protobuf, OTLP over gRPC, the CLI's import),
then every file under the data dir (database, WAL, OTLP journal) searched for the raw strings,
which are never there, while the events are (with their markers); counted in /metrics; rules
checked when set."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.process.server import TracehiveServer, free_port, run_cli

RULES = ["email", "phone", "credit_card", "ip", "api_key", "regex:SECRET-[0-9]{4}"]
CARD = "4111 1111 1111 1111"  # Luhn-valid
METRICS_TOKEN = "metrics-" + secrets.token_hex(8)


def pii(n: int) -> tuple[str, list[str]]:
    """A text holding one value of each rule, unique to route ``n``, and those raw values."""
    raws = [f"route{n}.person@example.com", f"+1 415 555 {1000 + n:04d}", f"10.20.30.{n}",
            f"sk-proj-{n:02d}Ab3dE6gH9jK2mN5pQ8rS1tU4", f"SECRET-{2000 + n}"]
    return f"write to {raws[0]} or call {raws[1]}, card {CARD}, from {raws[2]} with {raws[3]} ({raws[4]})", raws


def otlp_request(name: str, text: str) -> ExportTraceServiceRequest:
    now = time.time_ns()
    span = trace_pb2.Span(trace_id=secrets.token_bytes(16), span_id=secrets.token_bytes(8), name=name,
                          kind=trace_pb2.Span.SPAN_KIND_INTERNAL, start_time_unix_nano=now,
                          end_time_unix_nano=now + 1_000_000,
                          attributes=[common_pb2.KeyValue(key="input.value", value=common_pb2.AnyValue(string_value=text)),
                                      common_pb2.KeyValue(key="app.note", value=common_pb2.AnyValue(string_value=text))])
    return ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="t"), spans=[span])])])


def otlp_json(name: str, text: str) -> bytes:
    now = time.time_ns()
    span = {"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": name, "kind": 1,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1_000_000),
            "attributes": [{"key": "input.value", "value": {"stringValue": text}}]}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}]}]}).encode()


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, (r.request.method, r.request.url.path, r.status_code, r.text)
    return r.json()


def send_everywhere(client: httpx.Client, grpc_port: int, key: str, tmp: Path, data: Path) -> tuple[list[str], list[str]]:
    """One write per route, each with its own values; returns (raw values sent, names to read back)."""
    raws: list[str] = [CARD]
    names: list[str] = []

    def text(n: int) -> str:
        body, values = pii(n)
        raws.extend(values)
        names.append(f"r{n}")
        return body

    sid = str(uuid.uuid4())
    _ok(client.post("/v1/sessions", json={"session_id": sid, "session_name": "r0", "inputs": {"q": text(0)},
                                          "user_properties": {"email": text(1)}}))
    eid = _ok(client.post("/v1/events", json={"event_type": "tool", "event_name": "r2", "session_id": sid,
                                              "inputs": {"t": text(2)}}))["event_id"]
    _ok(client.post("/v1/events/batch", json={"events": [{"event_type": "chain", "event_name": "r3",
                                                           "inputs": {}, "metadata": {"n": [text(3)]}}]}))
    _ok(client.post(f"/v1/sessions/{sid}/events/batch", json={"events": [
        {"event_type": "model", "event_name": "r4", "inputs": {}, "outputs": {"answer": text(4)},
         "config": {"prompt": text(5)}}]}))
    _ok(client.put(f"/v1/events/{eid}", json={"feedback": {"comment": text(6)}, "metadata": {"deep": {"x": text(7)}}}))
    _ok(client.post("/events", json={"event": {"event_type": "tool", "event_name": "r8", "session_id": sid,
                                               "inputs": {"t": text(8)}}}))
    _ok(client.post("/events/batch", json={"events": [{"event_type": "tool", "event_name": "r9", "inputs": {"t": text(9)}}]}))
    _ok(client.post("/events/model", json={"model_event": {"model": "gpt-4o", "event_name": "r10",
                                                           "messages": [{"role": "user", "content": text(10)}]}}))
    _ok(client.put("/events", json={"event_id": eid, "user_properties": {"phone": text(11)}}))
    _ok(client.post("/session/start", json={"session": {"session_name": "r12", "inputs": {"t": text(12)}}}))
    r = client.post("/v1/traces", content=otlp_json("r13", text(13)), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    r = client.post("/opentelemetry/v1/traces", content=otlp_request("r14", text(14)).SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200, r.text
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(otlp_request("r15", text(15)), metadata=[("authorization", f"Bearer {key}")], timeout=30)
    line = {"event_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "event_type": "tool", "event_name": "r16",
            "source": "import", "start_time": 1_700_000_000_000, "end_time": 1_700_000_000_001, "duration": 1,
            "inputs": {"t": text(16)}, "outputs": None, "config": {}, "metadata": {}, "feedback": {}, "metrics": {},
            "user_properties": {}, "parent_id": None, "children_ids": [], "error": None}
    (tmp / "import.jsonl").write_text(json.dumps(line) + "\n")
    run_cli("import", str(tmp / "import.jsonl"), "--project", "default", "--data-dir", str(data))
    return raws, names


def test_no_raw_value_reaches_any_file_on_any_route(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = run_cli("keys", "create", "--project", "default", "--data-dir", str(data)).stdout.split()[-1]
    args = ["projects", "update", "default", *[a for rule in RULES for a in ("--redact", rule)], "--data-dir", str(data)]
    assert "redaction: email, phone, credit_card, ip, api_key, regex:SECRET-[0-9]{4}" in run_cli(*args).stdout
    grpc_port = free_port()
    # Journal mode on: the journal's files exist and are searched too (a project with rules skips it).
    env = {"TRACEHIVE_OTLP_JOURNAL": "1", "TRACEHIVE_METRICS_TOKEN": METRICS_TOKEN}
    with TracehiveServer(data, env=env, cwd=tmp_path, extra_args=["--otlp-grpc-port", str(grpc_port)]) as server:
        with server.client(key, timeout=30) as client:
            raws, names = send_everywhere(client, grpc_port, key, tmp_path, data)
            stored = [json.loads(line) for line in client.post(
                "/v1/events/export", json={}, headers={"Accept": "application/x-ndjson"}).text.splitlines()]
            metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    text = json.dumps(stored)
    for raw in raws:
        assert raw not in text, f"{raw!r} was stored"
    for marker in ("[REDACTED:email]", "[REDACTED:phone]", "[REDACTED:credit_card]", "[REDACTED:ip]",
                   "[REDACTED:api_key]", "[REDACTED:regex]"):
        assert marker in text
    # Every route's write is there (one marker of each rule per text at least), under its name or
    # inside the session, update or span it went to.
    assert text.count("[REDACTED:email]") >= 17
    counted = {line.split("{rule=\"")[1].split("\"")[0]: float(line.rsplit(" ", 1)[1])
               for line in metrics.splitlines() if line.startswith("tracehive_redactions_total{")}
    assert set(counted) == {"email", "phone", "credit_card", "ip", "api_key", "regex"}
    assert counted["email"] >= 16  # the import is the CLI's own process: its count is not the server's
    journal = data / "otlp-journal"
    assert journal.is_dir()
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files) or any(p.name == "tracehive.db" for p in files)
    for path in files:
        content = path.read_bytes()
        for raw in raws:
            assert raw.encode() not in content, f"{raw!r} found in {path}"


def test_rules_are_checked_when_set(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("keys", "create", "--project", "p", "--data-dir", str(data))
    for rule, says in [("bogus", "bogus"), ("regex:", "regex"), ("regex:(unclosed", "regex"),
                       ("regex:a*", "empty"), ("regex:(a+)+$", "regex"), ("regex:(a|a)*b", "regex")]:
        started = time.monotonic()
        result = run_cli("projects", "update", "p", "--redact", rule, "--data-dir", str(data), check=False)
        assert result.returncode == 2, (rule, result.stdout, result.stderr)
        assert says in result.stderr.strip().splitlines()[-1].lower(), (rule, result.stderr)
        assert "Traceback" not in result.stderr
        assert time.monotonic() - started < 30
    out = run_cli("projects", "update", "p", "--redact", "EMAIL", "--redact", "regex:ORDER-[0-9]+",
                  "--data-dir", str(data)).stdout
    assert "redaction: email, regex:ORDER-[0-9]+" in out
    assert "redaction: none" in run_cli("projects", "update", "p", "--no-redact", "--data-dir", str(data)).stdout
