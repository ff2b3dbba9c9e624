"""The stock OpenTelemetry SDK and its OTLP exporters against a real ``tracehive serve``:
``opentelemetry.exporter.otlp.proto.http`` (protobuf over HTTP, to ``/v1/traces`` and to the
HoneyHive path ``/opentelemetry/v1/traces``, with ``Authorization: Bearer``) and
``opentelemetry.exporter.otlp.proto.grpc`` (to ``tracehive serve --otlp-grpc-port``, insecure,
with ``authorization`` metadata).

The spans look like what third-party instrumentors emit (contract 8.6): OpenInference
(``openinference.span.kind``, ``input.value``, ``llm.input_messages.*``, ``llm.token_count.*``,
``llm.model_name``) and GenAI semantic conventions (``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.usage.*``, ``gen_ai.input.messages``), each a parent/child pair.
They carry no HoneyHive attributes unless a test adds ``honeyhive.session_id``.

Spans are recorded with a private ``TracerProvider`` into memory, then handed to the real exporter
(``exporter.export(spans)``), so each test controls batching and can re-send the same spans.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import requests

from tests.conformance.readback import (
    assert_same_event,
    assert_subset,
    get_event,
    get_tree,
    meta,
    text_of,
    shape,
    walk,
)
from tests.process.server import TracehiveServer, free_port

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
from opentelemetry import trace as otel_trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: E402
    OTLPSpanExporter as HTTPExporter,
)
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

MS = 1_000_000  # ns per ms
EXPORT_TIMEOUT = 10.0


# Recording spans -------------------------------------------------------------------------------


class Recorder:
    """A private TracerProvider whose finished spans are kept in memory."""

    def __init__(self, service: str = "conformance-otel") -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("conformance.instrumentor", "1.2.3")

    def span(self, name: str, start_ns: int, end_ns: int, attributes: dict[str, Any],
             parent: Any = None, error: str | None = None) -> Any:
        ctx = otel_trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=ctx, start_time=start_ns, attributes=attributes)
        if error is not None:
            span.record_exception(RuntimeError(error))
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ns)
        return span

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.memory.get_finished_spans())

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


def base_ns() -> int:
    """Now, truncated to whole milliseconds (so expected ms times are exact)."""
    return (time.time_ns() // MS) * MS


def openinference_pair(
    rec: Recorder, tag: str, t0: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OpenInference agent (CHAIN) span with one LLM child."""
    extra = extra or {}
    root = rec.tracer.start_span(
        f"oi-agent-{tag}", start_time=t0,
        attributes={"openinference.span.kind": "CHAIN", "input.value": "What is OTel?",
                    "output.value": "An observability framework.", **extra},
    )
    llm = rec.span(
        f"oi-llm-{tag}", t0 + 10 * MS, t0 + 40 * MS, parent=root,
        attributes={
            "openinference.span.kind": "LLM",
            "input.value": "What is OTel?",
            "input.mime_type": "text/plain",
            "output.value": "An observability framework.",
            "llm.model_name": "gpt-4o-mini",
            "llm.invocation_parameters": json.dumps({"temperature": 0.1}),
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be brief.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "What is OTel?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "An observability framework.",
            "llm.token_count.prompt": 11,
            "llm.token_count.completion": 7,
            "llm.token_count.total": 18,
            "app.tenant": "acme",
            **extra,
        },
    )
    root.end(end_time=t0 + 50 * MS)
    return {"root": root, "llm": llm, "root_name": f"oi-agent-{tag}", "llm_name": f"oi-llm-{tag}"}


def genai_pair(rec: Recorder, tag: str, t0: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A GenAI-semconv chat span with an execute_tool child that failed."""
    extra = extra or {}
    chat = rec.tracer.start_span(
        f"chat gpt-4o {tag}", start_time=t0,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.temperature": 0.3,
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 20,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "hello 🌍 你好"}],
                  "finish_reason": "stop"}]
            ),
            **extra,
        },
    )
    tool = rec.span(
        f"execute_tool lookup {tag}", t0 + 5 * MS, t0 + 15 * MS, parent=chat, error="lookup failed",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup", **extra},
    )
    chat.end(end_time=t0 + 30 * MS)
    return {"root": chat, "tool": tool, "root_name": f"chat gpt-4o {tag}",
            "tool_name": f"execute_tool lookup {tag}"}


def by_name(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    return next(s for s in spans if s.name == name)


# Exporting -------------------------------------------------------------------------------------


class ResponseLog:
    """The HTTP exporter's responses (via a requests hook), to say why an export failed."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.seen: list[str] = []
        self.session.hooks["response"].append(self._hook)

    def _hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        self.seen.append(f"{request.method} {response.url} -> {response.status_code} {response.text[:500]!r}")


def http_exporter(server: TracehiveServer, key: str, path: str, gzip: bool = False) -> HTTPExporter:
    log = ResponseLog()
    exporter = HTTPExporter(
        endpoint=server.url + path,
        headers={"Authorization": f"Bearer {key}"},
        timeout=EXPORT_TIMEOUT,
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        session=log.session,
    )
    exporter._conformance_log = log  # type: ignore[attr-defined]
    return exporter


def export(exporter: Any, spans: Sequence[ReadableSpan]) -> None:
    try:
        result = exporter.export(list(spans))
        log = getattr(exporter, "_conformance_log", None)
        assert result == SpanExportResult.SUCCESS, (
            f"export of {[s.name for s in spans]} failed: "
            + ("; ".join(log.seen) if log else "see the exporter's log records above")
        )
    finally:
        exporter.shutdown()


def find_event(api: httpx.Client, event_name: str) -> dict[str, Any]:
    """The one stored event with this (test-unique) name, found without knowing how the server
    derives ids, via POST /v1/events/export."""
    r = api.post("/v1/events/export", json={
        "filters": [{"field": "event_name", "operator": "is", "value": event_name, "type": "string"}],
        "limit": 10,
    })
    assert r.status_code == 200, f"POST /v1/events/export -> {r.status_code} {r.text}"
    # A session derived from a trace may be named after its root span: skip session events.
    events = [e for e in r.json()["events"] if e["event_type"] != "session"]
    assert len(events) == 1, f"{len(events)} events named {event_name!r}: {events}"
    return events[0]  # type: ignore[no-any-return]


# Checks ----------------------------------------------------------------------------------------


def check_openinference(api: httpx.Client, pair: dict[str, Any], t0: int) -> dict[str, Any]:
    """The OpenInference pair was stored as a chain with a model child; returns the session tree
    (found through the root's event, since these spans name no session)."""
    sid = find_event(api, pair["root_name"])["session_id"]
    tree = get_tree(api, sid)
    assert shape(tree) == {pair["root_name"]: {pair["llm_name"]: {}}}, shape(tree)
    root = tree["children"][0]
    llm = root["children"][0]
    assert root["parent_id"] == sid and llm["parent_id"] == root["event_id"]
    assert root["children_ids"] == [llm["event_id"]]

    assert root["event_type"] == "chain", "openinference.span.kind=CHAIN"
    assert llm["event_type"] == "model", "openinference.span.kind=LLM"
    assert "What is OTel?" in text_of(root["inputs"]), root["inputs"]
    assert "An observability framework." in text_of(root["outputs"]), root["outputs"]

    # LLM payload: the messages land in inputs, the completion in outputs, the model in config,
    # token counts in metadata under the names the session roll-ups add up.
    assert "Be brief." in text_of(llm["inputs"]) and "What is OTel?" in text_of(llm["inputs"]), llm["inputs"]
    assert "An observability framework." in text_of(llm["outputs"]), llm["outputs"]
    assert "gpt-4o-mini" in text_of(llm["config"]), llm["config"]
    assert llm["config"].get("temperature") == 0.1, f"llm.invocation_parameters -> config: {llm['config']}"
    assert_subset(llm["metadata"], {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                  "llm tokens")
    assert meta(llm["metadata"], "app.tenant") == "acme", llm["metadata"]
    assert_subset(tree["metadata"], {"num_events": 2, "num_model_events": 1, "prompt_tokens": 11,
                                     "completion_tokens": 7, "total_tokens": 18}, "session roll-ups")

    # Times come from the span timestamps (ns -> ms).
    assert root["start_time"] == pytest.approx(t0 / MS) and root["end_time"] == pytest.approx(t0 / MS + 50)
    assert llm["start_time"] == pytest.approx(t0 / MS + 10) and llm["end_time"] == pytest.approx(t0 / MS + 40)
    assert llm["duration"] == pytest.approx(30) and root["duration"] == pytest.approx(50)
    assert tree["start_time"] <= root["start_time"] and tree["end_time"] >= root["end_time"]
    assert root["error"] in (None, "") and llm["error"] in (None, "")
    for node in walk(tree):
        assert_same_event(node, get_event(api, node["event_id"]))
    return tree


def check_genai(api: httpx.Client, pair: dict[str, Any], t0: int, session_id: str) -> dict[str, Any]:
    tree = get_tree(api, session_id)
    assert shape(tree) == {pair["root_name"]: {pair["tool_name"]: {}}}, shape(tree)
    chat = tree["children"][0]
    tool = chat["children"][0]
    assert chat["parent_id"] == session_id and tool["parent_id"] == chat["event_id"]
    assert chat["event_type"] == "model", "gen_ai.operation.name=chat"
    assert tool["event_type"] == "tool", "gen_ai.operation.name=execute_tool"
    assert "gpt-4o" in text_of(chat["config"]), chat["config"]
    assert chat["config"].get("temperature") == 0.3, f"gen_ai.request.* -> config: {chat['config']}"
    assert "hi" in text_of(chat["inputs"]), chat["inputs"]
    assert "hello 🌍 你好" in json.dumps(chat["outputs"], ensure_ascii=False), chat["outputs"]
    assert_subset(chat["metadata"], {"prompt_tokens": 20, "completion_tokens": 5}, "chat tokens")
    assert_subset(tree["metadata"], {"num_events": 2, "num_model_events": 1, "prompt_tokens": 20,
                                     "completion_tokens": 5}, "session roll-ups")
    assert tool["error"] and "lookup failed" in tool["error"], tool
    assert chat["error"] in (None, "")
    assert chat["start_time"] == pytest.approx(t0 / MS) and chat["duration"] == pytest.approx(30)
    assert tool["start_time"] == pytest.approx(t0 / MS + 5) and tool["duration"] == pytest.approx(10)
    for node in walk(tree):
        assert node["session_id"] == session_id
        assert_same_event(node, get_event(api, node["event_id"]))
    return tree


# OTLP/HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/traces", "/opentelemetry/v1/traces"])
def test_http_openinference_without_session_id(
    server: TracehiveServer, key: str, api: httpx.Client, recorder: Recorder, path: str
) -> None:
    """No HoneyHive attributes at all: the server derives a session from the trace; the child is
    exported (and stored) before its parent, in a separate request."""
    t0 = base_ns()
    pair = openinference_pair(recorder, uuid.uuid4().hex[:8], t0)
    spans = recorder.finished()
    child, parent = by_name(spans, pair["llm_name"]), by_name(spans, pair["root_name"])
    export(http_exporter(server, key, path), [child])
    export(http_exporter(server, key, path, gzip=True), [parent])
    tree = check_openinference(api, pair, t0)
    assert tree["event_type"] == "session"
    assert tree["session_id"] == tree["event_id"]


def test_http_trace_session_named_after_late_root(
    server: TracehiveServer, key: str, api: httpx.Client, recorder: Recorder
) -> None:
    """A session derived from a trace is named after the trace's root span (contract 8.7), also
    when the root arrives after its children, which is the usual order: a child span ends (and is
    exported) first, always with SimpleSpanProcessor and across batches with BatchSpanProcessor."""
    pair = openinference_pair(recorder, uuid.uuid4().hex[:8], base_ns())
    spans = recorder.finished()
    export(http_exporter(server, key, "/v1/traces"), [by_name(spans, pair["llm_name"])])
    export(http_exporter(server, key, "/v1/traces"), [by_name(spans, pair["root_name"])])
    tree = get_tree(api, find_event(api, pair["root_name"])["session_id"])
    assert tree["event_name"] == pair["root_name"]


def test_http_genai_with_honeyhive_session_id(
    server: TracehiveServer, key: str, api: httpx.Client, recorder: Recorder
) -> None:
    """``honeyhive.session_id`` on the spans names a session nobody started: it is created."""
    session_id = str(uuid.uuid4())
    t0 = base_ns()
    pair = genai_pair(recorder, uuid.uuid4().hex[:8], t0, {"honeyhive.session_id": session_id})
    export(http_exporter(server, key, "/opentelemetry/v1/traces"), recorder.finished())
    tree = check_genai(api, pair, t0, session_id)
    assert tree["event_id"] == session_id and tree["event_type"] == "session"


def test_http_reexport_is_idempotent(
    server: TracehiveServer, key: str, api: httpx.Client, recorder: Recorder
) -> None:
    """An exporter retry re-sends the same spans: same event ids, no duplicates, and an existing
    session (started through the API) receives them."""
    created = api.post("/v1/sessions", json={"session_name": "otel-reexport"})
    assert created.status_code == 200, created.text
    session_id = created.json()["session_id"]
    t0 = base_ns()
    pair = genai_pair(recorder, uuid.uuid4().hex[:8], t0, {"honeyhive.session_id": session_id})
    spans = recorder.finished()
    export(http_exporter(server, key, "/v1/traces"), spans)
    first = sorted(n["event_id"] for n in walk(get_tree(api, session_id)))
    export(http_exporter(server, key, "/opentelemetry/v1/traces"), spans)
    tree = check_genai(api, pair, t0, session_id)
    assert sorted(n["event_id"] for n in walk(tree)) == first
    assert tree["event_name"] == "otel-reexport"


def test_http_bad_key_is_refused(server: TracehiveServer, api: httpx.Client, recorder: Recorder) -> None:
    t0 = base_ns()
    pair = genai_pair(recorder, uuid.uuid4().hex[:8], t0)
    exporter = HTTPExporter(endpoint=server.url + "/v1/traces", headers={"Authorization": "Bearer hh_wrong"},
                            timeout=EXPORT_TIMEOUT)
    try:
        assert exporter.export(list(recorder.finished())) == SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    r = api.post("/v1/events/export", json={"filters": [
        {"field": "event_name", "operator": "is", "value": pair["root_name"], "type": "string"}]})
    assert r.status_code == 200 and r.json()["events"] == [], r.text


# OTLP/gRPC -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracehiveServer]:
    data = tmp_path_factory.mktemp("grpc")
    srv = TracehiveServer(data / "data", cwd=data, extra_args=["--otlp-grpc-port", str(free_port())])
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def grpc_target(grpc_server: TracehiveServer) -> str:
    port = grpc_server.extra_args[grpc_server.extra_args.index("--otlp-grpc-port") + 1]
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def grpc_api(grpc_server: TracehiveServer) -> Iterator[httpx.Client]:
    assert grpc_server.bootstrap_key is not None, grpc_server.stdout
    with grpc_server.client(grpc_server.bootstrap_key, timeout=10.0) as c:
        yield c


def grpc_exporter(target: str, key: str) -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCExporter

    from grpc import Compression as GRPCCompression

    return GRPCExporter(endpoint=target, insecure=True, headers=(("authorization", f"Bearer {key}"),),
                        timeout=EXPORT_TIMEOUT, compression=GRPCCompression.Gzip)


def test_grpc_openinference_and_genai(
    grpc_server: TracehiveServer, grpc_target: str, grpc_api: httpx.Client, recorder: Recorder
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
    key = grpc_server.bootstrap_key
    assert key is not None
    t0 = base_ns()
    tag = uuid.uuid4().hex[:8]
    session_id = str(uuid.uuid4())
    oi = openinference_pair(recorder, tag, t0)
    ga = genai_pair(recorder, tag, t0 + 100 * MS, {"honeyhive.session_id": session_id})
    export(grpc_exporter(grpc_target, key), recorder.finished())
    check_openinference(grpc_api, oi, t0)
    check_genai(grpc_api, ga, t0 + 100 * MS, session_id)


def test_grpc_bad_key_is_refused(grpc_server: TracehiveServer, grpc_target: str, grpc_api: httpx.Client,
                                 recorder: Recorder) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
    pair = genai_pair(recorder, uuid.uuid4().hex[:8], base_ns())
    exporter = grpc_exporter(grpc_target, "hh_wrong")
    started = time.monotonic()
    try:
        assert exporter.export(list(recorder.finished())) == SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert time.monotonic() - started < EXPORT_TIMEOUT, "a refused key must not be retried until timeout"
    r = grpc_api.post("/v1/events/export", json={"filters": [
        {"field": "event_name", "operator": "is", "value": pair["root_name"], "type": "string"}]})
    assert r.status_code == 200 and r.json()["events"] == [], r.text


@pytest.mark.parametrize("parent_first", [True, False], ids=["parent-first", "child-first"])
def test_http_explicit_event_id_across_requests(
    server: TracehiveServer, key: str, api: httpx.Client, recorder: Recorder, parent_first: bool
) -> None:
    """A parent span carrying ``honeyhive_event_id`` and its child, exported in two requests: the
    child's parent_id is the parent's explicit event id whichever arrives first (contract 8.7: the
    server keeps a spanId -> event_id index per trace)."""
    session_id, explicit = str(uuid.uuid4()), str(uuid.uuid4())
    t0 = base_ns()
    tag = uuid.uuid4().hex[:8]
    routing = {"honeyhive.session_id": session_id}
    parent = recorder.tracer.start_span(f"parent-{tag}", start_time=t0,
                                        attributes={**routing, "honeyhive_event_id": explicit,
                                                    "honeyhive_event_type": "chain"})
    recorder.span(f"child-{tag}", t0 + MS, t0 + 2 * MS, parent=parent,
                  attributes={**routing, "honeyhive_event_type": "tool"})
    parent.end(end_time=t0 + 3 * MS)
    spans = recorder.finished()
    order = [f"parent-{tag}", f"child-{tag}"] if parent_first else [f"child-{tag}", f"parent-{tag}"]
    for name in order:
        export(http_exporter(server, key, "/opentelemetry/v1/traces"), [by_name(spans, name)])
    tree = get_tree(api, session_id)
    assert shape(tree) == {f"parent-{tag}": {f"child-{tag}": {}}}, shape(tree)
    assert tree["children"][0]["event_id"] == explicit
    assert tree["children"][0]["children"][0]["parent_id"] == explicit
