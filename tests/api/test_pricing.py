"""Cost from the price table (issue 16): model events with token counts and no cost get
``metadata.cost`` and ``metadata.cost_computed``, through the real app and store, on every write
path (REST v1, legacy, OTLP/HTTP in the loop and in a decode worker, OTLP/gRPC, the journal's
applier process), and the computed cost feeds the roll-ups like a sent one."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api
from tests.otlp_data import protobuf_request
from tracehive import pricing
from tracehive.app import create_app
from tracehive.cli import main as cli_main
from tracehive.ingest.otlp_ingest import INLINE_BODY_BYTES
from tracehive.ingest.span_mapping import SPAN_NAMESPACE
from tracehive.model.span import DecodedSpan
from tracehive.settings import Settings

PB = {"Content-Type": "application/x-protobuf"}
T0 = 1_700_000_000_000
# gpt-4o: 2.50 / 10.00 USD per 1M tokens (cached 1.25); gpt-4o-mini 0.15 / 0.60.
GPT4O_1000_IN_500_OUT = 1000 * 2.5e-6 + 500 * 10e-6  # 0.0075
OVERRIDE = {"models": [
    {"model": "gpt-4o", "provider": "openai", "input": 1000, "output": 2000, "as_of": "2030-01-01"},
    {"model": "house-llm", "provider": "acme", "input": 1, "output": 3, "as_of": "2030-01-01"},
]}


@pytest.fixture(autouse=True)
def shipped_prices_after() -> Iterator[None]:
    """Each app installs its settings' table for the process; put the shipped one back."""
    yield
    pricing.use_table(pricing.load_table())


def model_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"event_type": "model", "event_name": "llm", "inputs": {}, "start_time": T0,
                             "end_time": T0 + 10, "config": {"model": "gpt-4o-2024-08-06", "provider": "openai"},
                             "metadata": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}
    event.update(fields)
    return event


def stored(api: Api, event_id: str) -> dict[str, Any]:
    reply = api.get(f"/v1/events/{event_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()["event"]


def post_event(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/events", json=model_event(**fields))
    assert reply.status_code == 200, reply.text
    return stored(api, reply.json()["event_id"])


# REST ------------------------------------------------------------------------------------------


def test_a_model_event_with_tokens_and_no_cost_gets_a_computed_cost(api: Api) -> None:
    event = post_event(api)
    assert event["metadata"]["cost"] == pytest.approx(GPT4O_1000_IN_500_OUT)
    assert event["metadata"]["cost_computed"] is True
    assert {k: v for k, v in event["metadata"].items() if k not in ("cost", "cost_computed")} == {
        "prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


@pytest.mark.parametrize("cost", [0.42, 0, None, "n/a"])
def test_an_explicit_cost_always_wins_and_is_not_flagged(api: Api, cost: Any) -> None:
    event = post_event(api, metadata={"prompt_tokens": 1000, "completion_tokens": 500, "cost": cost})
    assert event["metadata"] == {"prompt_tokens": 1000, "completion_tokens": 500, "cost": cost}


def test_events_that_are_not_model_events_are_not_priced(api: Api) -> None:
    for event_type in ("tool", "chain"):
        event = post_event(api, event_type=event_type)
        assert "cost" not in event["metadata"] and "cost_computed" not in event["metadata"], event_type


@pytest.mark.parametrize("config", [{"model": "gpt-4o-audio-preview"}, {"model": "my-finetune"}, {}, {"model": 5}])
def test_an_unknown_or_missing_model_is_not_priced(api: Api, config: dict[str, Any]) -> None:
    event = post_event(api, config=config)
    assert event["metadata"] == {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


def test_no_token_counts_no_cost(api: Api) -> None:
    event = post_event(api, metadata={"total_tokens": 1500, "prompt_tokens": "1000"})
    assert event["metadata"] == {"total_tokens": 1500, "prompt_tokens": "1000"}


def test_variants_cached_tokens_and_the_response_model(api: Api) -> None:
    # OpenAI usage: cached tokens are part of the prompt tokens, priced at the cached price.
    openai = post_event(api, config={"model": "openai/gpt-4o-mini-2024-07-18"},
                        metadata={"prompt_tokens": 2000, "completion_tokens": 100,
                                  "prompt_tokens_details": {"cached_tokens": 1000}})
    assert openai["metadata"]["cost"] == pytest.approx((1000 * 0.15 + 1000 * 0.075 + 100 * 0.6) / 1e6)
    # Anthropic's own usage on Bedrock: input_tokens excludes the cache reads and writes.
    anthropic = post_event(api, config={"model": "us.anthropic.claude-3-5-sonnet-20241022-v2:0"},
                           metadata={"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 1000,
                                     "cache_creation_input_tokens": 200})
    assert anthropic["metadata"]["cost"] == pytest.approx((100 * 3 + 1000 * 0.3 + 200 * 3.75 + 10 * 15) / 1e6)
    # No config.model: the model that answered.
    answered = post_event(api, config={}, metadata={"response_model": "gemini-2.0-flash-001", "prompt_tokens": 10})
    assert answered["metadata"]["cost"] == pytest.approx(10 * 0.1 / 1e6)
    assert answered["metadata"]["cost_computed"] is True


def test_every_rest_write_route_prices(api: Api) -> None:
    sid = str(uuid.uuid4())
    batch = api.post("/v1/events/batch", json={"events": [model_event(session_id=sid)]}).json()
    in_session = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [model_event()]}).json()
    legacy = api.post("/events/model", json={"model_event": {
        "model": "gpt-4o", "provider": "openai", "session_id": sid, "messages": [{"role": "user", "content": "hi"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}}).json()
    legacy_batch = api.post("/events/batch", json={"events": [{**model_event(), "session_id": sid}]}).json()
    ids = [batch["event_ids"][0], in_session["event_ids"][0], legacy["event_id"], legacy_batch["event_ids"][0]]
    for event_id in ids:
        metadata = stored(api, event_id)["metadata"]
        assert metadata["cost"] == pytest.approx(GPT4O_1000_IN_500_OUT) and metadata["cost_computed"] is True
    # A legacy model event's own cost wins.
    legacy_cost = api.post("/events/model", json={"model_event": {
        "model": "gpt-4o", "cost": 0.01, "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}}).json()
    assert "cost_computed" not in stored(api, legacy_cost["event_id"])["metadata"]


def test_updates_do_not_compute_a_cost(api: Api) -> None:
    event_id = post_event(api, metadata={})["event_id"]
    assert api.put(f"/v1/events/{event_id}", json={"metadata": {"prompt_tokens": 1000}}).status_code == 200
    assert stored(api, event_id)["metadata"] == {"prompt_tokens": 1000}


def test_a_cost_sent_by_an_update_replaces_the_computed_one_and_its_flag(api: Api) -> None:
    event_id = post_event(api)["event_id"]
    assert stored(api, event_id)["metadata"]["cost_computed"] is True
    for path in (f"/v1/events/{event_id}", "/events"):
        body = {"metadata": {"cost": 0.5}} if path != "/events" else {"event_id": event_id, "metadata": {"cost": 0.25}}
        assert api.put(path, json=body).status_code == 200
    metadata = stored(api, event_id)["metadata"]
    assert metadata["cost"] == 0.25 and metadata["cost_computed"] is False


def test_roll_ups_and_the_sessions_list_add_computed_costs(api: Api) -> None:
    sid = api.post("/v1/sessions", json={"session_name": "priced", "start_time": T0}).json()["session_id"]
    events = [model_event(), model_event(metadata={"cost": 1.0, "total_tokens": 5}),
              model_event(event_type="tool", metadata={"prompt_tokens": 10})]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert tree["metadata"]["cost"] == pytest.approx(1.0 + GPT4O_1000_IN_500_OUT)
    listed = api.post("/v1/sessions/search", json={"filters": [
        {"field": "event_name", "operator": "is", "value": "priced", "type": "string"}]}).json()
    (summary,) = [s for s in listed["sessions"] if s["session_id"] == sid]
    assert summary["cost"] == pytest.approx(1.0 + GPT4O_1000_IN_500_OUT)
    # The flag is a field like any other: filters find the computed costs.
    found = api.post("/v1/events/export", json={"filters": [
        {"field": "session_id", "operator": "is", "value": sid, "type": "string"},
        {"field": "metadata.cost_computed", "operator": "is", "value": "true", "type": "boolean"}]}).json()
    assert [e["metadata"]["cost"] for e in found["events"]] == [pytest.approx(GPT4O_1000_IN_500_OUT)]


# OTLP ------------------------------------------------------------------------------------------


def genai_span(session: str, model: str = "gpt-4o", **attributes: Any) -> DecodedSpan:
    """An OTel GenAI chat span: requested model gpt-4o, answered by a dated variant."""
    start = T0 * 1_000_000
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": model,
             "gen_ai.response.model": f"{model}-2024-08-06", "gen_ai.usage.input_tokens": 1000,
             "gen_ai.usage.output_tokens": 500, "honeyhive.session_id": session, **attributes}
    return DecodedSpan(trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], parent_span_id=None, name="chat",
                       kind="SPAN_KIND_CLIENT", start_time_unix_nano=start, end_time_unix_nano=start + 10_000_000,
                       attributes=attrs)


def span_event_id(span: DecodedSpan) -> str:
    return str(uuid.uuid5(SPAN_NAMESPACE, span.trace_id + span.span_id))


def wait_for(api: Api, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (reply := api.get(f"/v1/events/{event_id}")).status_code == 404:
        assert time.monotonic() < deadline, f"event {event_id} not visible after {timeout}s"
        time.sleep(0.05)
    assert reply.status_code == 200, reply.text
    return reply.json()["event"]


def test_otlp_spans_with_genai_usage_get_a_cost(api: Api) -> None:
    session = str(uuid.uuid4())
    spans = [genai_span(session),
             genai_span(session, "claude-3-5-haiku-20241022", **{"gen_ai.system": "anthropic",
                                                                 "gen_ai.usage.cache_read_input_tokens": 400}),
             genai_span(session, **{"gen_ai.usage.cost": 0.5}),
             genai_span(session, "some-local-model")]
    reply = api.post("/opentelemetry/v1/traces", content=protobuf_request(spans).SerializeToString(), headers=PB)
    assert reply.status_code == 200, reply.text
    priced, haiku, sent, unknown = (stored(api, span_event_id(s))["metadata"] for s in spans)
    assert priced["cost"] == pytest.approx(GPT4O_1000_IN_500_OUT) and priced["cost_computed"] is True
    # Traceloop's Anthropic spans count the cache reads in the prompt tokens.
    assert haiku["cost"] == pytest.approx((600 * 0.8 + 400 * 0.08 + 500 * 4) / 1e6)
    assert "cost_computed" not in unknown and "cost" not in unknown
    assert "cost_computed" not in sent
    tree = api.get(f"/v1/sessions/{session}").json()
    assert tree["metadata"]["cost"] == pytest.approx(priced["cost"] + haiku["cost"] + sent["cost"])


def test_otlp_grpc_prices(settings: Settings, keys: dict[str, str]) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    from tests.process.server import free_port

    port = free_port()
    with TestClient(create_app(dataclasses.replace(settings, otlp_grpc_port=port)),
                    raise_server_exceptions=False) as client:
        span = genai_span(str(uuid.uuid4()))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            stub.Export(protobuf_request([span]), metadata=[("authorization", f"Bearer {keys['a']}")], timeout=20)
        metadata = stored(Api(client, keys["a"]), span_event_id(span))["metadata"]
    assert metadata["cost"] == pytest.approx(GPT4O_1000_IN_500_OUT) and metadata["cost_computed"] is True


# The user's price file -------------------------------------------------------------------------


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(OVERRIDE))
    return path


def test_a_prices_file_overrides_and_extends_the_table(settings: Settings, keys: dict[str, str],
                                                       prices_file: Path) -> None:
    with TestClient(create_app(dataclasses.replace(settings, prices_file=str(prices_file))),
                    raise_server_exceptions=False) as client:
        api = Api(client, keys["a"])
        overridden = post_event(api)["metadata"]
        added = post_event(api, config={"model": "acme/house-llm"})["metadata"]
        shipped = post_event(api, config={"model": "gpt-4o-mini"})["metadata"]
    assert overridden["cost"] == pytest.approx((1000 * 1000 + 500 * 2000) / 1e6)
    assert added["cost"] == pytest.approx((1000 * 1 + 500 * 3) / 1e6)
    assert shipped["cost"] == pytest.approx((1000 * 0.15 + 500 * 0.6) / 1e6)


def test_the_prices_file_applies_where_spans_are_decoded_in_a_worker(settings: Settings, keys: dict[str, str],
                                                                    prices_file: Path) -> None:
    """A large export is mapped in a decode worker process, which never loads the user's file:
    the events are priced where they are written, with the server's table."""
    session = str(uuid.uuid4())
    spans = [genai_span(session, padding="x" * 2000) for _ in range(24)]
    body = protobuf_request(spans).SerializeToString()
    assert len(body) > INLINE_BODY_BYTES
    app_settings = dataclasses.replace(settings, prices_file=str(prices_file), otlp_decode_processes=1)
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        api = Api(client, keys["a"])
        assert api.post("/v1/traces", content=body, headers=PB).status_code == 200
        assert client.app.state.decode_pool._executor is not None  # type: ignore[attr-defined]  # a worker mapped it
        costs = {stored(api, span_event_id(s))["metadata"]["cost"] for s in spans}
    assert costs == {(1000 * 1000 + 500 * 2000) / 1e6}


def test_the_journal_applier_process_prices_with_the_prices_file(settings: Settings, keys: dict[str, str],
                                                                 prices_file: Path) -> None:
    app_settings = dataclasses.replace(settings, prices_file=str(prices_file), otlp_journal=True)
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        api = Api(client, keys["a"])
        span = genai_span(str(uuid.uuid4()))
        assert api.post("/v1/traces", content=protobuf_request([span]).SerializeToString(), headers=PB).status_code == 200
        metadata = wait_for(api, span_event_id(span))["metadata"]
    assert metadata["cost"] == pytest.approx((1000 * 1000 + 500 * 2000) / 1e6)
    assert metadata["cost_computed"] is True


def test_a_bad_prices_file_is_refused(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [{"model": "gpt-4o", "provider": "openai", "input": -1, "output": 2,
                                           "as_of": "2030-01-01"}]}))
    with pytest.raises(pricing.PriceFileError, match=r"models\[0\]\.input: must be a number >= 0"):
        create_app(dataclasses.replace(settings, prices_file=str(bad)))
    # tracehive serve stops before it binds or opens anything: one line, exit 2.
    code = cli_main(["serve", "--data-dir", str(tmp_path / "never"), "--port", "0", "--prices-file", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("tracehive serve: --prices-file ") and "input" in err
    assert not (tmp_path / "never").exists()
