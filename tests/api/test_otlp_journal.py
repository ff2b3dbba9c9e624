"""OTLP ingest in journal mode (``otlp_journal``): the ack comes once the request is fsync'd in the
journal, the spans are indexed by the background applier, and what was acked survives a restart.
Through the real app and the real store; the journal module's recovery is tested on its own files."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error
from tests.otlp_data import SESSION_ID, overloaded_store, protobuf_request, tracer_request, tracer_spans
from tracehive.app import create_app
from tracehive.ingest.applier_process import ApplierProcess
from tracehive.ingest.journal import CHECKPOINT_NAME, HEADER, Applier, Journal, Record, valid_length
from tracehive.ingest.span_mapping import SPAN_NAMESPACE
from tracehive.model.scope import KeyKind, Scope
from tracehive.settings import Settings
from tracehive.storage.factory import store_from_settings

PB = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
VISIBLE_WITHIN = 10.0  # seconds; the applier normally needs milliseconds


def journal_settings(data_dir: Path, store_url: str, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, store=store_url, otlp_journal=True, **overrides)


def tracer_post(client: TestClient, key: str) -> Any:
    headers, body = tracer_request()
    headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "authorization")}
    headers["Authorization"] = f"Bearer {key}"
    return client.post("/opentelemetry/v1/traces", content=orjson.dumps(body), headers=headers)


def session_tree(api: Api) -> list[dict[str, Any]] | None:
    """Every event of the recorded session, or None while the session is not there yet."""
    r = api.get(f"/v1/sessions/{SESSION_ID}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        out.append(node)
        for child in node.get("children", []):
            walk(child)

    walk(r.json()["session"] if "session" in r.json() else r.json())
    return out


def wait_for_tree(api: Api, size: int, timeout: float = VISIBLE_WITHIN) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        tree = session_tree(api)
        if tree is not None and len(tree) >= size:
            return tree
        assert time.monotonic() < deadline, f"spans not visible after {timeout}s: {tree and len(tree)} events"
        time.sleep(0.02)


def span_event_id(trace_id: str, span_id: str) -> str:
    return str(uuid.uuid5(SPAN_NAMESPACE, trace_id + span_id))


@pytest.fixture(params=["applier process", "applier in the app"])
def journal_client(request: pytest.FixtureRequest, data_dir: Path, store_url: str, keys: dict[str, str]) -> Iterator[TestClient]:
    """The app in journal mode, both ways its applier runs: in a child process (the app opened its
    store from the settings, as ``tracehive serve`` does) or in the app (a store was handed in)."""
    settings = journal_settings(data_dir, store_url)
    store = store_from_settings(settings) if request.param == "applier in the app" else None
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as c:
        expected = Applier if store is not None else ApplierProcess
        assert type(c.app.state.otlp_applier) is expected  # type: ignore[attr-defined]
        yield c


def journal_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "otlp-journal").glob("*.seg"))


# ------------------------------------------------------------------------------------------------
# Through the app
# ------------------------------------------------------------------------------------------------


def test_acked_spans_become_visible(journal_client: TestClient, keys: dict[str, str]) -> None:
    spans = tracer_spans()
    r = journal_client.post("/v1/traces", content=protobuf_request(spans).SerializeToString(),
                            headers={**PB, "Authorization": f"Bearer {keys['a']}"})
    assert r.status_code == 200, r.content
    assert r.content == b""
    api = Api(journal_client, keys["a"])
    deadline = time.monotonic() + VISIBLE_WITHIN
    for span in spans:
        event_id = span_event_id(span.trace_id, span.span_id)
        while (got := api.get(f"/v1/events/{event_id}")).status_code == 404:
            assert time.monotonic() < deadline, f"span {span.name} not visible after {VISIBLE_WITHIN}s"
            time.sleep(0.02)
        assert got.status_code == 200, got.text
        assert got.json()["event"]["event_name"] == span.name
    # The request went through the journal: a segment file holds it.
    assert journal_files(journal_client.app.state.settings.data_dir)  # type: ignore[attr-defined]


def _normalized(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events, minus what differs between two data dirs (the generated org/workspace/project ids)."""
    generated = ("project_id", "org_id", "workspace_id", "tenant", "children")
    out = []
    for event in sorted(tree, key=lambda e: e["event_id"]):
        event = {k: v for k, v in event.items() if k not in generated}
        out.append(event)
    return out


def test_same_stored_events_as_the_default_mode(tmp_path: Path, store_url: str) -> None:
    from tests.helpers import make_key

    trees = {}
    for mode in ("default", "journal"):
        data_dir = tmp_path / mode
        key = make_key(Settings(data_dir=data_dir, store=store_url), "project-a")
        settings = Settings(data_dir=data_dir, store=store_url, otlp_journal=(mode == "journal"))
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            r = tracer_post(client, key)
            assert r.status_code == 200, r.text
            assert r.json() == {}
            trees[mode] = wait_for_tree(Api(client, key), 7)
    assert len(trees["journal"]) == 7  # the session and its six spans
    assert _normalized(trees["journal"]) == _normalized(trees["default"])


def test_malformed_bodies_are_still_a_400_and_not_journaled(journal_client: TestClient, keys: dict[str, str],
                                                            data_dir: Path) -> None:
    auth = {"Authorization": f"Bearer {keys['a']}"}
    r = journal_client.post("/v1/traces", content=b"{not json", headers={**JSON, **auth})
    assert_error(r, 400)
    r = journal_client.post("/v1/traces", content=b"\xff\xff\xff\xff", headers={**PB, **auth})
    assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
    r = journal_client.post("/v1/traces", content=orjson.dumps({"resourceSpans": 7}), headers={**JSON, **auth})
    assert_error(r, 400)
    assert all(p.stat().st_size == 0 for p in journal_files(data_dir))
    assert journal_client.app.state.otlp_journal.backlog_bytes == 0  # type: ignore[attr-defined]


def test_spans_the_decoder_rejects_are_reported_before_the_ack(journal_client: TestClient,
                                                               keys: dict[str, str]) -> None:
    good = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "kept",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"}
    bad = {**good, "spanId": "00", "name": "bad id"}
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "t"}, "spans": [good, bad]}]}]}
    r = journal_client.post("/v1/traces", content=orjson.dumps(body),
                            headers={**JSON, "Authorization": f"Bearer {keys['a']}"})
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    api = Api(journal_client, keys["a"])
    event_id = span_event_id(good["traceId"], good["spanId"])
    deadline = time.monotonic() + VISIBLE_WITHIN
    while (got := api.get(f"/v1/events/{event_id}")).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert got.json()["event"]["event_name"] == "kept"


def test_a_full_backlog_is_a_503_with_retry_after(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    body = protobuf_request(tracer_spans()).SerializeToString()
    # Room for one request's record, not two; the store refuses every write, so nothing drains.
    settings = journal_settings(data_dir, store_url, otlp_journal_max_bytes=int(len(body) * 1.5), metrics_token="m")
    store = overloaded_store(settings)
    headers = {**PB, "Authorization": f"Bearer {keys['a']}"}
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as client:
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
        r = client.post("/v1/traces", content=body, headers=headers)
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        metrics = client.get("/metrics", headers={"Authorization": "Bearer m"}).text
        backlog = [line for line in metrics.splitlines() if line.startswith("tracehive_otlp_journal_backlog_bytes")]
        assert backlog and float(backlog[0].split()[-1]) > len(body)


def test_acked_but_unindexed_requests_are_replayed_at_the_next_start(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    settings = journal_settings(data_dir, store_url)
    # First run: the store refuses every write (503 inside the applier, retried), so the request
    # is acked but never indexed before shutdown.
    with TestClient(create_app(settings, store=overloaded_store(settings)),
                    raise_server_exceptions=False) as client:
        assert tracer_post(client, keys["a"]).status_code == 200
        assert session_tree(Api(client, keys["a"])) is None
    first_segments = journal_files(data_dir)
    assert first_segments and first_segments[0].stat().st_size > 0
    # Second run, a working store: the applier replays the first run's record.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        tree = wait_for_tree(Api(client, keys["a"]), 7)
        assert {e["event_name"] for e in tree} >= {"pipeline", "call_llm", "manual-span"}
        deadline = time.monotonic() + VISIBLE_WITHIN
        while first_segments[0].exists():  # fully applied: deleted
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_re_applying_a_record_upserts_the_same_rows(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    settings = journal_settings(data_dir, store_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert tracer_post(client, keys["a"]).status_code == 200
        before = _normalized(wait_for_tree(Api(client, keys["a"]), 7))
        # The rows are visible a moment before the applier saves its position (a thread write):
        # wait for it, or the file could appear after the unlink below and nothing is re-applied.
        checkpoint = data_dir / "otlp-journal" / CHECKPOINT_NAME
        deadline = time.monotonic() + VISIBLE_WITHIN
        while not checkpoint.exists():
            assert time.monotonic() < deadline, "the applied position was never saved"
            time.sleep(0.02)
    # Forget the applied position: the next start re-applies the whole segment.
    checkpoint.unlink()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        applier = client.app.state.otlp_applier  # type: ignore[attr-defined]
        deadline = time.monotonic() + VISIBLE_WITHIN
        while applier.applied_records < 1:
            assert time.monotonic() < deadline, "the record was not re-applied"
            time.sleep(0.02)
        after = session_tree(Api(client, keys["a"]))
    assert after is not None and len(after) == 7  # the session and six spans, once each
    assert _normalized(after) == before


# ------------------------------------------------------------------------------------------------
# The applier's own process
# ------------------------------------------------------------------------------------------------


def _metric(client: TestClient, token: str, name: str) -> float:
    text = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def _post_spans(client: TestClient, key: str) -> list[Any]:
    # Fresh ids: new events each call (roots of their own traces, in the recorded session).
    spans = [dataclasses.replace(span, trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], parent_span_id=None)
             for span in tracer_spans()]
    r = client.post("/v1/traces", content=protobuf_request(spans).SerializeToString(),
                    headers={**PB, "Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.content
    return spans


def _wait_visible(client: TestClient, key: str, spans: list[Any]) -> None:
    api = Api(client, key)
    deadline = time.monotonic() + VISIBLE_WITHIN
    for span in spans:
        while api.get(f"/v1/events/{span_event_id(span.trace_id, span.span_id)}").status_code == 404:
            assert time.monotonic() < deadline, f"span {span.name} not visible after {VISIBLE_WITHIN}s"
            time.sleep(0.02)


def _applier_pid(client: TestClient) -> int:
    applier = client.app.state.otlp_applier  # type: ignore[attr-defined]
    deadline = time.monotonic() + VISIBLE_WITHIN
    while applier._proc is None or applier._proc.returncode is not None:
        assert time.monotonic() < deadline, "no applier process"
        time.sleep(0.02)
    return int(applier._proc.pid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # reaped already
        return b""


def test_the_applier_process_indexes_and_reports_to_the_servers_metrics(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:

    settings = journal_settings(data_dir, store_url, metrics_token="m")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        pid = _applier_pid(client)
        assert pid != os.getpid()
        # Read the running child's command line; an empty one is a child that has just exited
        # (seen once on a loaded CI machine): the supervisor starts another, so look again.
        deadline = time.monotonic() + VISIBLE_WITHIN
        while not (cmdline := _cmdline(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
            pid = _applier_pid(client)
        assert cmdline.split(b"\0")[1:3] == [b"-m", b"tracehive.ingest.applier_process"]
        before = _metric(client, "m", "tracehive_events_accepted_total")
        spans = _post_spans(client, keys["a"])
        _wait_visible(client, keys["a"], spans)
        deadline = time.monotonic() + VISIBLE_WITHIN
        # The child's store commits are counted by the server (forwarded store-observer calls), and
        # the backlog the server accounts for drains to zero as the child reports applied records.
        while _metric(client, "m", "tracehive_events_accepted_total") < before + len(spans):
            assert time.monotonic() < deadline, "the applier process's commits were not counted"
            time.sleep(0.02)
        while _metric(client, "m", "tracehive_otlp_journal_backlog_bytes") != 0:
            assert time.monotonic() < deadline, "the backlog did not drain"
            time.sleep(0.02)
        assert client.app.state.otlp_applier.applied_records >= 1  # type: ignore[attr-defined]
    # Stopping the app stops the child (end of its stdin), and it exits.
    deadline = time.monotonic() + VISIBLE_WITHIN
    while Path(f"/proc/{pid}").exists() and b"applier_process" in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the applier process outlived the app"
        time.sleep(0.02)


def test_a_killed_applier_process_is_replaced_and_loses_nothing(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    import signal

    with TestClient(create_app(journal_settings(data_dir, store_url, metrics_token="m")), raise_server_exceptions=False) as client:
        applier = client.app.state.otlp_applier  # type: ignore[attr-defined]
        first = _applier_pid(client)
        assert _metric(client, "m", "tracehive_otlp_journal_applier_restarts_total") == 0
        os.kill(first, signal.SIGKILL)
        # Acked while no applier runs: the request waits in the journal for the next one.
        spans = _post_spans(client, keys["a"])
        _wait_visible(client, keys["a"], spans)
        assert applier.restarts == 1
        assert _metric(client, "m", "tracehive_otlp_journal_applier_restarts_total") == 1
        assert _applier_pid(client) != first


# ------------------------------------------------------------------------------------------------
# The journal module: recovery of its files
# ------------------------------------------------------------------------------------------------

SCOPE = Scope("org", "ws", "project-id", "project", KeyKind.PROJECT, "key-id")


def _append_all(journal: Journal, records: list[Record]) -> None:
    async def run() -> None:
        journal.open()
        await asyncio.gather(*(journal.append(r) for r in records))
        await journal.close()

    asyncio.run(run())


def _records(n: int) -> list[Record]:
    return [Record(SCOPE, i % 2 == 0, f"src-{i}" if i % 3 else None, bytes([i]) * (100 + i)) for i in range(n)]


def _read_all(path: Path) -> list[Record]:
    from tracehive.ingest.journal import read_record

    data = path.read_bytes()
    out, offset = [], 0
    while (found := read_record(data, offset)) is not None:
        out.append(Record.decode(found[0]))
        offset = found[1]
    return out


def test_records_round_trip_and_concurrent_appends_share_a_segment(tmp_path: Path) -> None:
    records = _records(5)
    journal = Journal(tmp_path / "j", max_backlog_bytes=1 << 20)
    _append_all(journal, records)
    [segment] = sorted((tmp_path / "j").glob("*.seg"))
    assert _read_all(segment) == records
    assert journal.backlog_bytes == sum(len(r.encode()) for r in records)


def test_a_torn_tail_is_truncated_on_open(tmp_path: Path) -> None:
    records = _records(3)
    _append_all(Journal(tmp_path / "j", max_backlog_bytes=1 << 20), records)
    [segment] = sorted((tmp_path / "j").glob("*.seg"))
    whole = segment.stat().st_size
    partial = Record(SCOPE, True, None, b"x" * 500).encode()[:200]  # a crash mid-append
    with open(segment, "ab") as f:
        f.write(partial)
    journal = Journal(tmp_path / "j", max_backlog_bytes=1 << 20)
    journal.open()
    try:
        assert journal.truncated_bytes == len(partial)
        assert segment.stat().st_size == whole
        assert _read_all(segment) == records
        assert journal.backlog_bytes == whole  # the three acked records are still to apply
    finally:
        asyncio.run(journal.close())


def test_a_record_failing_its_crc_is_truncated_with_what_follows(tmp_path: Path) -> None:
    records = _records(3)
    _append_all(Journal(tmp_path / "j", max_backlog_bytes=1 << 20), records)
    [segment] = sorted((tmp_path / "j").glob("*.seg"))
    data = bytearray(segment.read_bytes())
    first = len(records[0].encode())
    data[first + HEADER.size + 10] ^= 0xFF  # flip a payload byte of the second record
    segment.write_bytes(bytes(data))
    assert valid_length(segment) == first
    journal = Journal(tmp_path / "j", max_backlog_bytes=1 << 20)
    journal.open()
    try:
        assert _read_all(segment) == records[:1]
        assert journal.truncated_bytes == len(data) - first
    finally:
        asyncio.run(journal.close())


def test_appends_past_the_backlog_bound_are_refused(tmp_path: Path) -> None:
    from tracehive.ingest.journal import JournalFull

    record = Record(SCOPE, True, None, b"y" * 1000)
    journal = Journal(tmp_path / "j", max_backlog_bytes=len(record.encode()) + 10)

    async def run() -> None:
        journal.open()
        await journal.append(record)
        with pytest.raises(JournalFull) as caught:
            await journal.append(record)
        assert caught.value.status_code == 503 and "Retry-After" in caught.value.headers()
        await journal.close()

    asyncio.run(run())


def test_the_response_reports_nothing_extra_in_protobuf(journal_client: TestClient, keys: dict[str, str]) -> None:
    r = journal_client.post("/opentelemetry/v1/traces", content=protobuf_request(tracer_spans()).SerializeToString(),
                            headers={**PB, "Authorization": f"Bearer {keys['a']}"})
    assert r.status_code == 200
    assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")


def test_the_applier_checkpoints_each_record_and_resumes_after_it(tmp_path: Path) -> None:
    """Several records per segment: the checkpoint lands exactly after the last applied record, so
    a restart applies only what follows it (this once double-counted offsets and skipped records)."""
    from tracehive.ingest.journal import Applier, Position

    records = _records(6)
    applied: list[Record] = []

    async def collect(record: Record, _prepared: object) -> None:
        applied.append(record)

    async def run_until_idle(journal: Journal, extra: list[Record]) -> None:
        journal.open()
        applier = Applier(journal, collect)
        applier.start()
        await asyncio.gather(*(journal.append(r) for r in extra))
        assert await applier.idle(VISIBLE_WITHIN)
        await applier.stop()
        await journal.close()

    directory = tmp_path / "j"
    asyncio.run(run_until_idle(Journal(directory, max_backlog_bytes=1 << 20), records[:4]))
    assert applied == records[:4]
    [segment] = sorted(directory.glob("*.seg"))
    assert Journal(directory, max_backlog_bytes=1)._read_checkpoint() == Position(int(segment.stem), segment.stat().st_size)
    applied.clear()
    asyncio.run(run_until_idle(Journal(directory, max_backlog_bytes=1 << 20), records[4:]))
    assert applied == records[4:]  # nothing of the first run again
    assert not segment.exists()  # the first run's segment was fully applied: deleted


def test_the_applier_retries_transient_failures_and_skips_refused_records(tmp_path: Path) -> None:
    from tracehive.ingest.journal import Applier
    from tracehive.model.errors import StoreUnavailable, ValidationFailed

    records = _records(3)
    attempts: list[Record] = []
    applied: list[Record] = []
    skipped: list[int] = []

    async def flaky(record: Record, prepared: str) -> None:
        attempts.append(record)
        assert prepared == f"prepared {len(record.body)}"  # what the prepare stage made of it
        if record == records[0] and attempts.count(record) < 3:
            raise StoreUnavailable("database is locked")
        if record == records[1]:
            raise ValidationFailed("refused")
        applied.append(record)

    async def prepare(record: Record) -> str:
        return f"prepared {len(record.body)}"

    async def run() -> None:
        journal = Journal(tmp_path / "j", max_backlog_bytes=1 << 20)
        journal.open()
        applier = Applier(journal, flaky, prepare=prepare, on_skipped=lambda exc: skipped.append(exc.status_code))
        applier.start()
        await asyncio.gather(*(journal.append(r) for r in records))
        assert await applier.idle(VISIBLE_WITHIN)
        assert (applier.applied_records, applier.skipped_records) == (2, 1)
        await applier.stop()
        await journal.close()

    asyncio.run(run())
    assert applied == [records[0], records[2]]  # in order, the transient failure retried, not dropped
    assert attempts.count(records[0]) == 3
    assert skipped == [400]


def test_grpc_exports_go_through_the_journal_too(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    from tests.process.server import free_port

    port = free_port()
    settings = journal_settings(data_dir, store_url, otlp_grpc_port=port)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            reply = stub.Export(protobuf_request(tracer_spans()), metadata=[("authorization", f"Bearer {keys['a']}")],
                                timeout=20)
        assert not reply.HasField("partial_success")
        assert journal_files(data_dir) and journal_files(data_dir)[0].stat().st_size > 0
        tree = wait_for_tree(Api(client, keys["a"]), 7)
        assert {e["event_name"] for e in tree} >= {"pipeline", "call_llm"}


def test_a_journal_is_open_in_one_journal_object_at_a_time(tmp_path: Path) -> None:
    from tracehive.ingest.journal import JournalInUse

    first = Journal(tmp_path / "j", max_backlog_bytes=1 << 20)
    first.open()
    try:
        with pytest.raises(JournalInUse):
            Journal(tmp_path / "j", max_backlog_bytes=1 << 20).open()
    finally:
        asyncio.run(first.close())
    second = Journal(tmp_path / "j", max_backlog_bytes=1 << 20)
    second.open()  # free again once the first is closed
    asyncio.run(second.close())


def test_write_all_writes_every_part_in_order(tmp_path: Path) -> None:
    from tracehive.ingest.journal import IOV_MAX, _write_all

    parts = [bytes([n % 251]) * (n % 7) for n in range(IOV_MAX * 3 + 5)]  # more than one writev, some empty
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        _write_all(fd, parts)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(parts)


def test_a_frame_is_the_encoded_record_and_its_crc_covers_the_payload() -> None:
    import zlib

    record = Record(SCOPE, True, "src", b"body" * 1000)
    head, body = record.frame()
    assert body is record.body  # not copied
    encoded = record.encode()
    assert encoded == head + body
    length, crc = HEADER.unpack_from(encoded)
    assert length == len(encoded) - HEADER.size and crc == zlib.crc32(encoded[HEADER.size:])
    assert Record.decode(encoded[HEADER.size:]) == record
