"""``GET /metrics`` (issue 7, part 4): scraped from the real app after real requests.

The scrape is parsed by a small parser written here (the text exposition format 0.0.4), which
also checks the format itself: HELP/TYPE lines, label syntax, cumulative histogram buckets.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error
from tests.otlp_data import tracer_request
from tracehive.app import create_app
from tracehive.observability.metrics import Registry
from tracehive.settings import Settings

TOKEN = "scrape-" + uuid.uuid4().hex
BATCH_ROUTE = "/v1/sessions/{session_id}/events/batch"

# ------------------------------------------------------------------------------------------------
# A parser for the text format
# ------------------------------------------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
_VALUE = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN)$")

Labels = frozenset[tuple[str, str]]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        assert match, f"bad labels {text!r} at {position}"
        assert match.group(1) not in labels, f"label {match.group(1)} repeated"
        labels[match.group(1)] = _unescape(match.group(2))
        position = match.end()
    return labels


class Scrape:
    """Samples by (name, labels); types and help by metric family."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.help: dict[str, str] = {}
        self.samples: dict[tuple[str, Labels], float] = {}
        assert text.endswith("\n"), "the exposition ends with a newline"
        family = None
        for line in text.splitlines():
            assert line, "no empty lines"
            if line.startswith("# HELP "):
                name, _, doc = line[7:].partition(" ")
                assert name not in self.help, f"HELP twice for {name}"
                self.help[name], family = doc, name
            elif line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                assert name == family, f"TYPE {name} must follow its HELP"
                assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), kind
                self.types[name] = kind
            else:
                match = _SAMPLE.match(line)
                assert match, f"bad sample line {line!r}"
                name, _, label_text, value = match.groups()
                assert family is not None and name.startswith(family), f"{name} outside its family {family}"
                assert _VALUE.match(value), f"bad value in {line!r}"
                key = (name, frozenset(parse_labels(label_text or "").items()))
                assert key not in self.samples, f"duplicate series {line!r}"
                self.samples[key] = float(value)
        self._check_histograms()

    def _check_histograms(self) -> None:
        for family, kind in self.types.items():
            if kind != "histogram":
                continue
            series: dict[Labels, list[tuple[float, float]]] = {}
            for (name, labels), value in self.samples.items():
                if name == f"{family}_bucket":
                    le = dict(labels)["le"]
                    rest = frozenset(p for p in labels if p[0] != "le")
                    series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), value))
            for rest, buckets in series.items():
                buckets.sort()
                counts = [count for _, count in buckets]
                assert counts == sorted(counts), f"{family}{dict(rest)}: buckets are not cumulative"
                assert buckets[-1][0] == math.inf, f"{family}{dict(rest)}: no +Inf bucket"
                assert self.samples[(f"{family}_count", rest)] == buckets[-1][1]
                assert (f"{family}_sum", rest) in self.samples

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def series(self, name: str) -> Iterator[tuple[dict[str, str], float]]:
        for (sample, labels), value in self.samples.items():
            if sample == name:
                yield dict(labels), value


def scrape(client: TestClient) -> Scrape:
    reply = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Scrape(reply.text)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


@pytest.fixture
def settings(data_dir: Path, store_url: str) -> Settings:
    return Settings(data_dir=data_dir, store=store_url, metrics_token=TOKEN, max_batch_events=5)


def ev(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool", "inputs": {}, **fields}


# ------------------------------------------------------------------------------------------------
# Through the app
# ------------------------------------------------------------------------------------------------


def test_requests_and_events_are_counted_by_route_and_status(client: TestClient, api: Api) -> None:
    before = scrape(client)
    sid = str(uuid.uuid4())
    for n in (2, 3, 4):
        reply = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [ev() for _ in range(n)]})
        assert reply.status_code == 200, reply.text
    assert api.post("/v1/events", json=ev()).status_code == 200
    assert api.post("/v1/sessions", json={"session_name": "s"}).status_code == 200
    after = scrape(client)

    assert delta(before, after, "tracehive_http_requests_total", method="POST", route=BATCH_ROUTE, status="200") == 3
    assert delta(before, after, "tracehive_http_requests_total", method="POST", route="/v1/events", status="200") == 1
    assert delta(before, after, "tracehive_events_accepted_total", route=BATCH_ROUTE) == 9
    assert delta(before, after, "tracehive_events_accepted_total", route="/v1/events") == 1
    assert delta(before, after, "tracehive_events_accepted_total", route="/v1/sessions") == 1
    assert delta(before, after, "tracehive_http_request_duration_seconds_count", method="POST", route=BATCH_ROUTE) == 3
    assert after.value("tracehive_http_request_duration_seconds_sum", method="POST", route=BATCH_ROUTE) > 0
    # The first scrape is counted by the second, under its route template (never a raw path).
    assert delta(before, after, "tracehive_http_requests_total", method="GET", route="/metrics", status="200") == 1
    assert all(labels["route"].startswith(("/", "(")) and sid not in labels["route"]
               for labels, _ in after.series("tracehive_http_requests_total"))
    assert after.types["tracehive_http_requests_total"] == "counter"
    assert after.types["tracehive_http_request_duration_seconds"] == "histogram"


def test_rejections_are_counted_by_reason(client: TestClient, api: Api) -> None:
    before = scrape(client)
    sid = str(uuid.uuid4())
    assert_error(api.post("/v1/events", json={"inputs": {}}), 400)  # no event_type
    assert_error(api.post("/v1/events", content=b"{not json"), 400)
    assert_error(api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [ev() for _ in range(6)]}), 413)
    assert_error(Api(client, "hh_" + "x" * 90).post("/v1/events", json=ev()), 401)
    assert_error(api.post("/v1/events", content=b"<x/>", headers={"Content-Type": "application/xml"}), 415)
    assert_error(api.get(f"/v1/events/{uuid.uuid4()}"), 404)
    after = scrape(client)

    rejected = "tracehive_requests_rejected_total"
    assert delta(before, after, rejected, route="/v1/events", reason="validation") == 2
    assert delta(before, after, rejected, route=BATCH_ROUTE, reason="too_large") == 1
    assert delta(before, after, rejected, route="/v1/events", reason="auth") == 1
    assert delta(before, after, rejected, route="/v1/events", reason="unsupported_media_type") == 1
    assert delta(before, after, rejected, route="/v1/events/{event_id}", reason="not_found") == 1
    assert delta(before, after, "tracehive_http_requests_total", method="POST", route=BATCH_ROUTE, status="413") == 1
    assert delta(before, after, "tracehive_http_requests_total", method="POST", route="/v1/events", status="400") == 2
    # Nothing was stored by the refused requests.
    assert delta(before, after, "tracehive_events_accepted_total", route=BATCH_ROUTE) == 0
    assert delta(before, after, "tracehive_events_accepted_total", route="/v1/events") == 0


def test_writer_queue_and_commit_metrics_after_writes(client: TestClient, api: Api) -> None:
    before = scrape(client)
    assert before.types["tracehive_writer_queue_depth"] == "gauge"
    assert before.has("tracehive_writer_queue_depth")
    # The bound on writes waiting in the store (SQLite's writer queue, PostgreSQL's pending writes).
    capacity = client.app.state.store.stats().max_pending_writes  # type: ignore[attr-defined]
    assert capacity in (1024, 256) and before.value("tracehive_writer_queue_capacity") == capacity
    writes = 5
    for _ in range(writes):  # one write job each
        assert api.post("/v1/events", json=ev()).status_code == 200
    after = scrape(client)
    assert after.value("tracehive_writer_queue_depth") == 0  # every write has been answered
    groups = delta(before, after, "tracehive_writer_commit_seconds_count")
    assert 1 <= groups <= writes
    assert delta(before, after, "tracehive_writer_transaction_seconds_count") == groups
    # Every job is in exactly one group, however the writer grouped them.
    assert delta(before, after, "tracehive_writer_group_jobs_sum") == writes
    assert delta(before, after, "tracehive_writer_commit_seconds_sum") > 0  # a real commit (and fsync) takes time
    assert after.value("tracehive_writer_commit_seconds_sum") <= after.value("tracehive_writer_transaction_seconds_sum")
    assert after.value("tracehive_writer_commit_failures_total") == 0
    assert after.types["tracehive_writer_commit_seconds"] == "histogram"


def test_query_latency_by_kind(client: TestClient, api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    eid = api.post("/v1/events", json=ev(session_id=sid)).json()["event_id"]
    before = scrape(client)
    calls = [
        ("search", api.post("/v1/events/search", json={})),
        ("export", api.post("/v1/events/export", json={})),
        ("export", api.post("/v1/events/export", json={}, headers={"Accept": "application/x-ndjson"})),
        ("export", api.post("/events/export", json={})),
        ("list", api.get("/v1/events")),
        ("tree", api.get(f"/v1/sessions/{sid}")),
        ("tree", api.get(f"/session/{sid}")),
        ("event", api.get(f"/v1/events/{eid}")),
        ("chart", api.get("/v1/events/chart")),
        ("schema", api.get("/v1/events/schema")),
    ]
    for kind, reply in calls:
        assert reply.status_code == 200, (kind, reply.text)
    assert_error(api.post("/v1/events/search", json={"limit": 0}), 400)  # failed reads are not query latency
    after = scrape(client)
    expected: dict[str, int] = {}
    for kind, _ in calls:
        expected[kind] = expected.get(kind, 0) + 1
    for kind, count in expected.items():
        assert delta(before, after, "tracehive_query_duration_seconds_count", kind=kind) == count, kind
        assert after.value("tracehive_query_duration_seconds_sum", kind=kind) > 0


def test_otlp_spans_are_counted_as_accepted_events(client: TestClient, api: Api) -> None:
    _, body = tracer_request()
    scope_spans = body["resourceSpans"][0]["scopeSpans"][0]
    scope_spans["spans"] = scope_spans["spans"][:4]  # within this app's max_batch_events (5)
    spans = sum(len(s["spans"]) for r in body["resourceSpans"] for s in r["scopeSpans"])
    assert spans == 4
    before = scrape(client)
    assert api.post("/opentelemetry/v1/traces", json=body).status_code == 200
    after = scrape(client)
    assert delta(before, after, "tracehive_events_accepted_total", route="/opentelemetry/v1/traces") == spans


def test_request_ids(client: TestClient, api: Api) -> None:
    generated = {api.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(generated) == 5 and all(re.fullmatch(r"[0-9a-f]{16}", g) for g in generated)
    for given in ("abc", "A-b_c.9", "x" * 64):
        assert api.get("/healthz", headers={"X-Request-Id": given}).headers["x-request-id"] == given
    for unsafe in ("x" * 65, "a b", "a\"b", "a,b", "é".encode("latin-1"), "", api.key):
        answered = api.get("/healthz", headers={"X-Request-Id": unsafe}).headers["x-request-id"]  # type: ignore[dict-item]
        assert answered != unsafe and re.fullmatch(r"[0-9a-f]{16}", answered)
    # Errors carry it too (they are answered by the same middleware).
    assert re.fullmatch(r"[0-9a-f]{16}", api.post("/v1/events", content=b"{").headers["x-request-id"])
    assert client.get("/no/such/route").headers["x-request-id"]


def test_a_500_is_counted_logged_and_carries_its_request_id(
    data_dir: Path, store_url: str, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A handler bug (a route added here for the purpose: no route of ours fails on demand) is
    answered in the contract's shape by the error middleware, inside the request middleware."""

    async def broken() -> None:
        raise RuntimeError("a bug")

    app = create_app(Settings(data_dir=data_dir, store=store_url, metrics_token=TOKEN))
    app.add_api_route("/v1/broken/{thing}", broken)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level("INFO"):
        before = scrape(client)
        reply = client.get("/v1/broken/x", headers={"X-Request-Id": "bug-1"})
        assert_error(reply, 500)
        assert reply.headers["x-request-id"] == "bug-1"
        after = scrape(client)
    route = "/v1/broken/{thing}"
    assert delta(before, after, "tracehive_http_requests_total", method="GET", route=route, status="500") == 1
    assert delta(before, after, "tracehive_requests_rejected_total", route=route, reason="internal") == 1
    access = [r for r in caplog.records if r.name == "tracehive.access" and getattr(r, "request_id", None) == "bug-1"]
    assert len(access) == 1
    fields = access[0].__dict__
    assert access[0].levelname == "ERROR" and fields["status"] == 500
    assert fields["route"] == route and fields["path"] == "/v1/broken/x"
    assert access[0].getMessage() == "GET /v1/broken/x 500"  # answered in full, not "aborted"


# ------------------------------------------------------------------------------------------------
# Who may scrape
# ------------------------------------------------------------------------------------------------


def test_metrics_need_the_metrics_token(client: TestClient, keys: dict[str, str]) -> None:
    assert_error(client.get("/metrics"), 401, "Authorization")
    assert_error(client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}), 401, "API key")
    assert_error(client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}), 401, "Bearer")
    for name in ("a", "b"):  # a project key must not read numbers that cover every project
        assert_error(Api(client, keys[name]).get("/metrics"), 403, "metrics token")
    assert_error(Api(client, keys["ingest_a"]).get("/metrics"), 403, "ingestion key")
    assert scrape(client).has("tracehive_writer_queue_depth")


def test_metrics_are_closed_without_a_token(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    with TestClient(create_app(Settings(data_dir=data_dir, store=store_url)), raise_server_exceptions=False) as client:
        assert_error(client.get("/metrics"), 401)
        assert_error(client.get("/metrics", headers={"Authorization": "Bearer "}), 401)
        assert_error(client.get("/metrics", headers={"Authorization": "Bearer anything"}), 401, "API key")
        assert_error(Api(client, keys["a"]).get("/metrics"), 403, "TRACEHIVE_METRICS_TOKEN")


def test_each_app_has_its_own_registry(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    settings = Settings(data_dir=data_dir, store=store_url, metrics_token=TOKEN)
    with TestClient(create_app(settings), raise_server_exceptions=False) as one, \
            TestClient(create_app(settings), raise_server_exceptions=False) as two:
        for _ in range(3):
            assert Api(one, keys["a"]).post("/v1/events", json=ev()).status_code == 200
        assert scrape(one).value("tracehive_events_accepted_total", route="/v1/events") == 3
        assert scrape(two).value("tracehive_events_accepted_total", route="/v1/events") == 0
        assert scrape(two).value("tracehive_http_requests_total", method="POST", route="/v1/events", status="200") == 0


# ------------------------------------------------------------------------------------------------
# The registry on its own: rendering edge cases
# ------------------------------------------------------------------------------------------------


def test_registry_renders_what_the_parser_reads_back() -> None:
    registry = Registry()
    counter = registry.counter("t_total", "A counter\nwith a \\ in its help.", ("path",))
    gauge = registry.gauge("t_gauge", "A gauge.")
    histogram = registry.histogram("t_seconds", "A histogram.", ("kind",), buckets=(0.1, 1, 10))
    sampled = registry.gauge("t_sampled", "Read when scraped.", sample=lambda: 7)
    awkward = 'a "quoted"\nline\\with backslash'
    counter.inc(awkward, amount=2)
    counter.inc("plain")
    gauge.set(-3.5)
    for value in (0.05, 0.1, 0.5, 1, 5, 50):
        histogram.observe(value, "k")
    parsed = Scrape(registry.render())
    assert parsed.value("t_total", path=awkward) == 2 and parsed.value("t_total", path="plain") == 1
    assert parsed.help["t_total"] == "A counter\\nwith a \\\\ in its help."  # escaped on the wire
    assert parsed.value("t_gauge") == -3.5
    assert parsed.value("t_sampled") == 7 and sampled.value() == 7
    buckets = {le: parsed.value("t_seconds_bucket", kind="k", le=le) for le in ("0.1", "1", "10", "+Inf")}
    assert buckets == {"0.1": 2, "1": 4, "10": 5, "+Inf": 6}  # le is inclusive, buckets cumulative
    assert parsed.value("t_seconds_count", kind="k") == 6
    assert parsed.value("t_seconds_sum", kind="k") == pytest.approx(56.65)
    with pytest.raises(ValueError):
        counter.inc("x", amount=-1)
    with pytest.raises(ValueError):
        counter.inc()  # wrong number of labels
    with pytest.raises(ValueError):
        registry.counter("t_total", "again")
    with pytest.raises(ValueError):
        registry.counter("bad name", "x")
