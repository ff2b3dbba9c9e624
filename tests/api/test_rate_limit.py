"""The per-key rate limit (issue 7, part 3): off by default; when on, a token bucket per key that
counts requests (not events) and answers 429 with the contract's body and ``Retry-After``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, make_key
from tracehive.api.auth import RateLimited, RateLimiter
from tracehive.app import create_app
from tracehive.settings import Settings

TOKEN = "scrape-" + uuid.uuid4().hex


def ev(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool", "inputs": {}, **fields}


def limited_app(data_dir: Path, store_url: str, per_second: float, burst: int) -> TestClient:
    settings = Settings(data_dir=data_dir, store=store_url, rate_limit_per_second=per_second, rate_limit_burst=burst,
                        metrics_token=TOKEN)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_off_by_default(client: TestClient, api: Api) -> None:
    assert Settings().rate_limit_per_second == 0
    for _ in range(60):
        assert api.get("/v1/whoami").status_code == 200
    assert api.post("/v1/events", json=ev()).status_code == 200


def test_over_the_rate_a_key_gets_429_with_retry_after(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    # 0.5 per second: a token comes back only after 2 s, far longer than these requests take.
    with limited_app(data_dir, store_url, 0.5, 3) as client:
        a, b = Api(client, keys["a"]), Api(client, keys["b"])
        sid = str(uuid.uuid4())
        # Requests are counted, not events: a batch of 100 events is one request.
        assert a.post(f"/v1/sessions/{sid}/events/batch", json={"events": [ev() for _ in range(100)]}).status_code == 200
        assert a.get(f"/v1/sessions/{sid}").status_code == 200
        assert a.post("/v1/events", json=ev()).status_code == 200
        refused = a.post("/v1/events", json=ev(inputs={"refused": True}))
        body = assert_error(refused, 429, "rate limit")
        assert body["errorCode"] == "RATE_LIMITED"
        retry_after = refused.headers["retry-after"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 2
        assert_error(a.get(f"/v1/sessions/{sid}"), 429)  # reads are limited too
        # The limit is per key: B (another project) and A's ingestion key are not affected.
        assert b.post("/v1/events", json=ev()).status_code == 200
        assert Api(client, keys["ingest_a"]).post("/v1/events", json=ev()).status_code == 200
        # A refused request stored nothing (read with another key of project A, its own bucket).
        other_a = Api(client, make_key(Settings(data_dir=data_dir, store=store_url), "project-a"))
        found = other_a.post("/v1/events/search", json={"filters": [{"field": "inputs.refused", "operator": "exists"}]})
        assert found.status_code == 200 and found.json()["count"] == 0
        tools = other_a.post("/v1/events/search", json={"filters": [
            {"field": "event_type", "operator": "is", "value": "tool"}]}).json()["count"]
        assert tools == 102  # the batch's 100, the one admitted POST, the ingestion key's
        # After Retry-After, the key may send again.
        time.sleep(int(retry_after) + 0.1)
        assert a.get(f"/v1/sessions/{sid}").status_code == 200
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert 'tracehive_requests_rejected_total{route="/v1/events",reason="rate_limited"} 1\n' in scraped
        assert 'tracehive_requests_rejected_total{route="/v1/sessions/{session_id}",reason="rate_limited"} 1\n' in scraped


def test_unknown_keys_are_401_not_429(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    with limited_app(data_dir, store_url, 0.5, 1) as client:
        unknown = Api(client, "hh_" + "Q" * 24 + "_" + "q" * 64)
        for _ in range(5):
            assert_error(unknown.get("/v1/whoami"), 401)
        assert Api(client, keys["a"]).get("/v1/whoami").status_code == 200


def test_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    limiter = RateLimiter(per_second=4, burst=5)  # binary fractions: exact arithmetic below
    for _ in range(5):
        limiter.admit("k", now=100.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("k", now=100.0)
    assert refused.value.status_code == 429 and refused.value.headers() == {"Retry-After": "1"}
    limiter.admit("k", now=100.25)  # one token back after 1/4 s
    with pytest.raises(RateLimited):
        limiter.admit("k", now=100.25)
    for _ in range(5):  # a long pause refills to the burst, no more
        limiter.admit("k", now=1000.0)
    with pytest.raises(RateLimited):
        limiter.admit("k", now=1000.0)
    limiter.admit("other", now=1000.0)  # buckets are per key id


def test_retry_after_says_when_a_token_is_back() -> None:
    limiter = RateLimiter(per_second=0.2, burst=1)  # one request per 5 s
    limiter.admit("k", now=0.0)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("k", now=1.0)
    assert refused.value.headers() == {"Retry-After": "4"}
    with pytest.raises(RateLimited):
        limiter.admit("k", now=4.9)
    limiter.admit("k", now=5.0)


def test_burst_defaults_to_the_rate_rounded_up() -> None:
    assert RateLimiter(per_second=2.5).burst == 3
    assert RateLimiter(per_second=0.1).burst == 1
    with pytest.raises(ValueError):
        RateLimiter(per_second=0)


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env({"TRACEHIVE_RATE_LIMIT_PER_SECOND": "2.5", "TRACEHIVE_RATE_LIMIT_BURST": "10",
                                  "TRACEHIVE_METRICS_TOKEN": "t0ken"})
    assert (settings.rate_limit_per_second, settings.rate_limit_burst, settings.metrics_token) == (2.5, 10, "t0ken")
    assert "t0ken" not in repr(settings)


def test_429_is_documented_on_every_keyed_operation(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if "401" in op.get("responses", {}):
                assert "429" in op["responses"], f"{method.upper()} {path} does not document 429"
