"""A small app instrumented with the real ``honeyhive`` tracer, run as a subprocess by
``test_tracer.py`` (the tracer installs process-wide OpenTelemetry state and reads its protocol
from the environment, so every run gets a fresh process).

Usage: python tracer_app.py SCENARIO SERVER_URL API_KEY [INGESTION_KEY]
Prints one JSON object on its last stdout line with the ids the test needs.

Scenarios:
  nested    @trace chain/tool/model functions nested three deep (one of them async), a span
            from a third-party (OpenInference) instrumentor inside one, enrich_span on each kind,
            a traced function that raises, a span from tracer.start_span with a custom attribute,
            tracer.enrich_session; exported with disable_batch=True (one POST per span, children
            before their parents).
  batched   default batching; a caller-supplied (upper-case) session id; a parent with an explicit
            event_id (@trace(event_id=...)) and its child; enrich_span(event_id=...) before the
            flush (the event is not stored yet) and after it; the free function
            enrich_session(session_id, ...).
  explicit_unbatched
            @trace(event_id=...) on a parent with disable_batch=True: the child is exported (in
            its own request) before the parent that carries the explicit id.
  sessions  configured only by HH_API_URL / HH_API_KEY / HH_SOURCE in the environment;
            per-request sessions in one process (the web-server pattern), with
            skip_backend_session_creation=True: tracer.create_session(...) through the API, then
            create_session(session_id=..., skip_api_call=True), whose session exists only through
            its spans (honeyhive.session_auto_create) and is enriched before they are exported.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

from honeyhive import HoneyHiveTracer, enrich_session, enrich_span, trace  # noqa: E402
from opentelemetry import trace as otel_trace  # noqa: E402


def nested(url: str, key: str, ingestion_key: str | None) -> dict[str, object]:
    tracer = HoneyHiveTracer.init(
        api_key=key,
        ingestion_api_key=ingestion_key,
        server_url=url,
        project="conformance",
        source="conformance-src",
        session_name="tracer-nested",
        inputs={"topic": "otel"},
        disable_batch=True,
    )

    @trace(event_type="tool")
    def lookup(term: str) -> list[str]:
        enrich_span(outputs={"hits": 2}, user_properties={"tier": "pro"},
                    metadata={"tags": ["a", "b"], "nested": {"deep": {"x": 1}}})
        return ["doc-1", "doc-2"]

    @trace(event_type="model", event_name="call_llm")
    def call_llm(prompt: str, temperature: float = 0.2) -> dict[str, str]:
        enrich_span(metadata={"provider": "fake"}, metrics={"tokens": 7}, feedback={"rating": 4},
                    config={"model": "gpt-x"})
        # What an OpenInference instrumentor records inside the traced function: its own scope,
        # on the global provider that HoneyHiveTracer installed (which stamps the session on it).
        instrumentor = otel_trace.get_tracer("openinference.instrumentation.openai", "0.1.0")
        with instrumentor.start_as_current_span("ChatCompletion", attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": prompt,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": prompt.upper(),
            "llm.token_count.prompt": 3,
            "llm.token_count.completion": 2,
        }):
            pass
        return {"completion": prompt.upper()}

    @trace(event_type="chain", event_name="answer")
    def answer(question: str, docs: list[str]) -> dict[str, str]:
        return call_llm(f"{question} {docs}")

    @trace(event_type="tool", event_name="broken_tool")
    def broken_tool(x: str) -> None:
        raise ValueError("tool exploded")

    @trace(event_type="tool", event_name="async_fetch")
    async def async_fetch(url: str) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"status": 200}

    @trace(event_type="chain", event_name="pipeline")
    def pipeline(question: str) -> dict[str, str]:
        docs = lookup(question)
        asyncio.run(async_fetch("http://127.0.0.1/doc"))
        out = answer(question, docs)
        try:
            broken_tool(question)
        except ValueError:
            pass
        with tracer.start_span("manual-span") as span:
            span.set_attribute("custom.key", "custom-value")
            span.set_attribute("custom.list", ["x", "y"])  # an OTLP arrayValue
            span.set_attribute("custom.ints", [1, 2])
        return out

    pipeline("what is otel?")
    tracer.enrich_session(metadata={"sess": 1}, feedback={"liked": True}, metrics={"latency_ms": 123},
                          outputs={"final": "ok"}, user_properties={"user_id": "u-1"})
    flushed = tracer.flush()
    tracer.shutdown()
    return {"session_id": tracer.session_id, "flushed": flushed}


def batched(url: str, key: str, ingestion_key: str | None) -> dict[str, object]:
    session_id = str(uuid.uuid4())
    fixed_id = str(uuid.uuid4())
    tracer = HoneyHiveTracer.init(
        api_key=key,
        ingestion_api_key=ingestion_key,
        server_url=url,
        source="batched-src",
        session_name="tracer-batched",
        session_id=session_id.upper(),
    )

    @trace(event_type="tool", event_name="inner")
    def inner(n: int) -> int:
        return n + 1

    @trace(event_type="chain", event_name="outer", event_id=fixed_id)
    def outer(n: int) -> int:
        return inner(n) * 10

    outer(1)
    # Still queued in the batch processor: this update reaches the server before the span.
    enrich_span(event_id=fixed_id, metadata={"early": True})
    flushed = tracer.flush()
    enrich_span(event_id=fixed_id, metadata={"late": True}, feedback={"score": 3})
    enrich_session(session_id, metadata={"via": "free-function"}, tracer=tracer)
    tracer.shutdown()
    return {"session_id": tracer.session_id, "sent_session_id": session_id, "fixed_id": fixed_id,
            "flushed": flushed}


def explicit_unbatched(url: str, key: str, ingestion_key: str | None) -> dict[str, object]:
    fixed_id = str(uuid.uuid4())
    tracer = HoneyHiveTracer.init(api_key=key, server_url=url, source="unbatched-src",
                                  session_name="tracer-explicit-unbatched", disable_batch=True)

    @trace(event_type="tool", event_name="inner")
    def inner(n: int) -> int:
        return n + 1

    @trace(event_type="chain", event_name="outer", event_id=fixed_id)
    def outer(n: int) -> int:
        return inner(n) * 10

    outer(1)
    flushed = tracer.flush()
    tracer.shutdown()
    return {"session_id": tracer.session_id, "fixed_id": fixed_id, "flushed": flushed}


def sessions(url: str, key: str, ingestion_key: str | None) -> dict[str, object]:
    # Configured the way the README says to adopt tracehive: HH_API_URL / HH_API_KEY (and
    # HH_SOURCE) in the environment, nothing in code (the test sets them).
    assert os.environ["HH_API_URL"] == url and os.environ["HH_API_KEY"] == key
    tracer = HoneyHiveTracer.init(session_name="auto-app", skip_backend_session_creation=True)

    @trace(event_type="tool", event_name="step")
    def step(q: str) -> str:
        return q * 2

    @trace(event_type="chain", event_name="handle")
    def handle(q: str) -> str:
        return step(q)

    first = tracer.create_session(session_name="request-1", inputs={"path": "/a"}, metadata={"req": 1})
    handle("a")
    second = str(uuid.uuid4())
    tracer.create_session(session_id=second, session_name="request-2", skip_api_call=True)
    handle("b")
    # The spans of request-2 are still queued: this update names a session the server has not seen.
    tracer.enrich_session(session_id=second, metadata={"early": True}, feedback={"ok": True})
    flushed = tracer.flush()
    tracer.shutdown()
    return {"first": first, "second": second, "flushed": flushed}


if __name__ == "__main__":
    scenario, url, key = sys.argv[1:4]
    ingestion = sys.argv[4] if len(sys.argv) > 4 else None
    result = {
        "nested": nested,
        "batched": batched,
        "explicit_unbatched": explicit_unbatched,
        "sessions": sessions,
    }[scenario](url, key, ingestion)
    print(json.dumps(result), flush=True)
