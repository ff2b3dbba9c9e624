"""``tracehive serve --events-store chdb:///dir``: events in ClickHouse (in-process), projects and
keys in SQLite, through a real server process and the real CLI (issue #14, point 1). The API's
writes, trees, searches, exports, charts, session lists and deletes answer as on SQLite (the
storage contract suite runs on the store itself: tests/storage/test_clickhouse_store.py), OTLP
spans land, and ``export``/``import`` read and write the same store.

A server process per test: chDB is one engine per process, so the store is not shared with the
test process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chdb import require_chdb

require_chdb()

from tests.helpers import Api  # noqa: E402
from tests.otlp_data import SESSION_ID as OTLP_SESSION_ID  # noqa: E402
from tests.otlp_data import tracer_request  # noqa: E402
from tests.process.server import TracehiveServer, run_cli, serving  # noqa: E402


@pytest.fixture
def events_dir(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def server(tmp_path: Path, events_dir: Path) -> Iterator[TracehiveServer]:
    yield from serving(tmp_path / "data", extra_args=["--events-store", f"chdb://{events_dir}"])


def ok(reply: object) -> dict:
    assert reply.status_code == 200, reply.text  # type: ignore[attr-defined]
    return reply.json()  # type: ignore[attr-defined, no-any-return]


def test_the_api_on_a_chdb_events_store(server: TracehiveServer, events_dir: Path, tmp_path: Path) -> None:
    assert server.bootstrap_key is not None
    with server.client(server.bootstrap_key) as client:
        api = Api(client, server.bootstrap_key)  # type: ignore[arg-type]
        sid = ok(api.post("/v1/sessions", json={"session_name": "chat", "metadata": {"team": "a"}}))["session_id"]
        chain, tool = str(uuid.uuid4()), str(uuid.uuid4())
        ok(api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [
            {"event_id": tool, "parent_id": chain, "event_type": "tool", "event_name": "lookup", "inputs": {"q": "x"},
             "metadata": {"cost": 0.25}, "duration": 40},
            {"event_id": chain, "event_type": "chain", "event_name": "answer", "inputs": {"q": "x"}, "duration": 90},
        ]}))
        tree = ok(api.get(f"/v1/sessions/{sid}"))
        assert tree["event_id"] == sid and [c["event_id"] for c in tree["children"]] == [chain]
        assert [c["event_id"] for c in tree["children"][0]["children"]] == [tool]
        assert ok(api.get(f"/v1/events/{chain}"))["event"]["children_ids"] == [tool]
        found = ok(api.post("/v1/events/search", json={"filters": [
            {"field": "metadata.cost", "operator": "greater than", "value": 0.1, "type": "number"}]}))
        assert [e["event_id"] for e in found["events"]] == [tool]
        exported = ok(api.post("/v1/events/export", json={"limit": 100}))
        assert {e["event_id"] for e in exported["events"]} == {sid, chain, tool}
        chart = ok(api.get("/v1/events/chart", params={"aggregation": "count", "bucket": "day",
                                                      "dateRange": '{"relative": "7d"}'}))
        assert sum(row["count"] for row in chart["events"]) == 3  # the session and its two events
        sessions = ok(api.post("/v1/sessions/search", json={"limit": 10}))
        assert [s["session_id"] for s in sessions["sessions"]] == [sid]
        assert sessions["sessions"][0]["num_events"] == 2  # the session event is not counted
        assert sessions["sessions"][0]["cost"] == 0.25
        # OTLP spans land in the same store.
        headers, body = tracer_request()
        sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "authorization")}
        assert api.post("/opentelemetry/v1/traces", content=json.dumps(body), headers=sent).status_code == 200
        assert len(ok(api.get(f"/v1/sessions/{OTLP_SESSION_ID}"))["children"]) >= 1
        assert ok(api.delete(f"/v1/events/{tool}"))
        assert api.get(f"/v1/events/{tool}").status_code == 404
    server.stop()
    # The CLI reads the same store: export, then import into another project of it.
    out = tmp_path / "export.jsonl"
    store_args = ["--data-dir", str(server.data_dir), "--events-store", f"chdb://{events_dir}"]
    run_cli("export", *store_args, "-o", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["event_id"] for e in lines if "event_id" in e} >= {sid, chain}
    run_cli("import", str(out), "--project", "copy", *store_args)
    again = tmp_path / "again.jsonl"
    run_cli("export", *store_args, "--project", "copy", "-o", str(again))
    assert sorted(again.read_text().splitlines()) == sorted(out.read_text().splitlines())


def test_an_unsupported_events_store_is_one_clear_error(tmp_path: Path) -> None:
    # keys create: a reading command on a data dir with no database stops before opening anything.
    result = run_cli("keys", "create", "--project", "p", "--data-dir", str(tmp_path / "data"), "--events-store",
                     "cassandra://db:9042/x", check=False)
    assert result.returncode != 0
    assert "unsupported events store URL" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_clickhouse_server_is_one_clear_error(tmp_path: Path) -> None:
    result = run_cli("keys", "create", "--project", "p", "--data-dir", str(tmp_path / "data"), "--events-store",
                     "clickhouse://reader:s3cret@127.0.0.1:9/x", check=False)
    assert result.returncode != 0
    assert "cannot reach ClickHouse" in result.stderr and "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
