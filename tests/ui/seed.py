"""Realistic trace data for the web UI's browser tests, the UI benchmark and the README screenshot,
written through the real REST API of a running server (``httpx.Client`` with a project key)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

XSS_NAME = '<img src=x onerror="window.__xss = 1">'
BATCH_JOBS = 12  # enough sessions for two pages at 10 per page


@dataclass
class Seeded:
    """The ids the tests look for."""

    support_session: str = ""
    model_event: str = ""
    error_event: str = ""
    retrieve_event: str = ""
    eval_session: str = ""
    xss_session: str = ""
    xss_event: str = ""
    session_names: list[str] = field(default_factory=list)


def _id() -> str:
    return str(uuid.uuid4())


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()  # type: ignore[no-any-return]


def start_session(client: httpx.Client, name: str, source: str, start: float, **extra: Any) -> str:
    session_id = _id()
    _ok(
        client.post(
            "/v1/sessions",
            json={
                "session_id": session_id,
                "session_name": name,
                "source": source,
                "start_time": start,
                **extra,
            },
        )
    )
    return session_id


def add_events(client: httpx.Client, session_id: str, events: list[dict[str, Any]]) -> None:
    _ok(client.post(f"/v1/sessions/{session_id}/events/batch", json={"events": events}))


def event(
    event_type: str,
    name: str,
    start: float,
    duration: float,
    *,
    parent: str | None = None,
    event_id: str | None = None,
    source: str = "production",
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id or _id(),
        "event_type": event_type,
        "event_name": name,
        "source": source,
        "start_time": start,
        "end_time": start + duration,
        "duration": duration,
        "inputs": fields.pop("inputs", {}),
    }
    if parent:
        body["parent_id"] = parent
    body.update(fields)
    return body


def seed_support_session(client: httpx.Client, start: float, seeded: Seeded) -> None:
    """A support agent answering one question: retrieval, a model call with its chat messages,
    a failing tool call and a formatting step."""
    sid = start_session(
        client,
        "customer-support-agent",
        "production",
        start,
        user_properties={"user_id": "u-4821", "plan": "pro"},
        metadata={"app_version": "2.3.1", "region": "eu-west-1"},
        inputs={"question": "How do I rotate my API key without downtime?"},
    )
    chain, retrieve, model, lookup, fmt, render = (_id() for _ in range(6))
    question = "How do I rotate my API key without downtime?"
    answer = (
        "Create a second key with `tracehive keys create`, deploy it to your services, then revoke the "
        "old one with `tracehive keys revoke KEY_ID`. Both keys work in the meantime, so nothing breaks."
    )
    add_events(
        client,
        sid,
        [
            event(
                "chain",
                "handle_request",
                start + 5,
                2410,
                event_id=chain,
                inputs={"question": question},
                outputs={"answer": answer},
            ),
            event(
                "tool",
                "retrieve_docs",
                start + 20,
                320,
                parent=chain,
                event_id=retrieve,
                inputs={"query": question, "top_k": 4},
                outputs={
                    "documents": [
                        {
                            "id": "keys.md#rotate",
                            "score": 0.91,
                            "text": "Keys are stored only as SHA-256 hashes...",
                        },
                        {"id": "keys.md#revoke", "score": 0.84, "text": "tracehive keys revoke KEY_ID..."},
                    ]
                },
                metadata={"retriever": "bm25", "index": "docs-v3"},
            ),
            event(
                "model",
                "generate_answer",
                start + 360,
                1740,
                parent=chain,
                event_id=model,
                config={"model": "gpt-4o-mini", "provider": "openai", "temperature": 0.2, "max_tokens": 512},
                inputs={
                    "chat_history": [
                        {"role": "system", "content": "You are a concise support assistant for tracehive."},
                        {"role": "user", "content": question},
                    ]
                },
                outputs={"role": "assistant", "content": answer},
                metadata={
                    "prompt_tokens": 812,
                    "completion_tokens": 164,
                    "total_tokens": 976,
                    "cost": 0.00046,
                },
                metrics={"groundedness": 0.92, "latency_ok": True},
                feedback={"rating": 5, "comment": "Clear and correct"},
                user_properties={"user_id": "u-4821"},
            ),
            event(
                "tool",
                "lookup_account",
                start + 2110,
                290,
                parent=chain,
                event_id=lookup,
                inputs={"user_id": "u-4821"},
                error="TimeoutError: account service did not answer within 250 ms",
                metadata={"retries": 2},
            ),
            event(
                "chain",
                "format_reply",
                start + 2110,
                280,
                parent=chain,
                event_id=fmt,
                inputs={"answer": answer},
                outputs={"markdown": answer},
            ),
            event(
                "tool",
                "render_markdown",
                start + 2130,
                240,
                parent=fmt,
                event_id=render,
                inputs={"text": answer},
                outputs={"html_length": 312},
            ),
        ],
    )
    seeded.support_session, seeded.model_event = sid, model
    seeded.error_event, seeded.retrieve_event = lookup, retrieve
    seeded.session_names.append("customer-support-agent")


def seed_eval_session(client: httpx.Client, start: float, seeded: Seeded) -> None:
    """Three model calls whose messages come in the other shapes SDKs and span mapping store:
    a plain {role, content} answer, ``outputs.choices`` (several completions), and multi-part
    content with only ``outputs.content``."""
    sid = start_session(client, "nightly-eval", "evaluation", start, metadata={"run_id": "run-42"})
    cases = [
        ({"chat_history": [{"role": "user", "content": "2+2?"}]}, {"role": "assistant", "content": "4"}),
        (
            {"chat_history": [{"role": "user", "content": "Capital of France?"}]},
            {
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Paris"}},
                    {"index": 1, "message": {"role": "assistant", "content": "Paris, France"}},
                ]
            },
        ),
        (
            {
                "chat_history": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Largest planet?"},
                            {"type": "image_url", "image_url": {"url": "https://example.com/p.png"}},
                        ],
                    }
                ]
            },
            {"content": "Jupiter"},
        ),
    ]
    events = []
    for i, (inputs, outputs) in enumerate(cases):
        events.append(
            event(
                "model",
                f"eval_case_{i + 1}",
                start + 10 + i * 900,
                850,
                source="evaluation",
                config={"model": "gpt-4o", "provider": "openai"},
                inputs=inputs,
                outputs=outputs,
                metadata={"total_tokens": 40 + i, "cost": 0.0004 * (i + 1)},
                metrics={"exact_match": True},
            )
        )
    add_events(client, sid, events)
    seeded.eval_session = sid
    seeded.session_names.append("nightly-eval")


def seed_xss_session(client: httpx.Client, start: float, seeded: Seeded) -> None:
    sid = start_session(client, "xss-probe", "security-test", start)
    event_id = _id()
    add_events(
        client,
        sid,
        [
            event(
                "tool",
                XSS_NAME,
                start + 5,
                30,
                event_id=event_id,
                source="security-test",
                inputs={"html": "<script>window.__xss = 2</script>"},
            )
        ],
    )
    seeded.xss_session, seeded.xss_event = sid, event_id
    seeded.session_names.append("xss-probe")


def seed_batch_jobs(client: httpx.Client, start: float, seeded: Seeded) -> None:
    for i in range(BATCH_JOBS):
        sid = start_session(client, f"batch-job-{i + 1:02d}", "batch", start + i * 1000)
        add_events(
            client,
            sid,
            [
                event(
                    "tool",
                    "process_file",
                    start + i * 1000 + 5,
                    100 + 10 * i,
                    source="batch",
                    inputs={"file": f"input-{i}.csv"},
                    outputs={"rows": 100 * i},
                )
            ],
        )
        seeded.session_names.append(f"batch-job-{i + 1:02d}")


def seed_all(client: httpx.Client, now_ms: float | None = None) -> Seeded:
    """Every session above, the newest first in this order: support, eval, xss, then the jobs."""
    now = now_ms if now_ms is not None else time.time() * 1000
    seeded = Seeded()
    seed_batch_jobs(client, now - 60 * 60_000, seeded)
    seed_xss_session(client, now - 30 * 60_000, seeded)
    seed_eval_session(client, now - 20 * 60_000, seeded)
    seed_support_session(client, now - 10 * 60_000, seeded)
    return seeded


def seed_big_session(client: httpx.Client, events: int = 10_000, now_ms: float | None = None) -> str:
    """One session of ``events`` events: chains of a model and a tool call, 4 levels deep."""
    start = (now_ms if now_ms is not None else time.time() * 1000) - 3 * 60 * 60_000
    sid = start_session(client, "big-session", "load-test", start)
    body: list[dict[str, Any]] = []
    t = start
    while len(body) < events:
        step = len(body) // 4
        chain = event("chain", f"step_{step}", t, 30, source="load-test", inputs={"step": step})
        body.append(chain)
        for kind, name in (("model", f"llm_call_{step}"), ("tool", f"tool_call_{step}")):
            if len(body) < events:
                body.append(
                    event(
                        kind,
                        name,
                        t + 2,
                        12,
                        parent=chain["event_id"],
                        source="load-test",
                        inputs={"i": len(body)},
                        metadata={"total_tokens": 20, "cost": 0.00001},
                    )
                )
        if len(body) < events:
            body.append(
                event(
                    "tool", f"cache_write_{step}", t + 16, 4, parent=body[-1]["event_id"], source="load-test"
                )
            )
        t += 1
    body[-1]["event_name"] = "last_event"
    add_events(client, sid, body)
    return sid
