"""``kill -9`` of a real ``tracehive serve`` in OTLP journal mode while 4 senders post protobuf
batches, with acknowledged requests still waiting in the journal to be indexed; after a restart the
journal is replayed and every span of every 200 is stored, exactly once."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.faults.common import applier_pids, export_all, stored_event_ids
from tests.process.server import TracehiveServer
from tracehive.ingest.span_mapping import SPAN_NAMESPACE

SENDERS = 4
SPANS_PER_BATCH = 64
METRICS_TOKEN = "journal-crash-metrics"
# How long the replay of what was acked may take. The senders ack on while the applier is dead,
# and on a loaded 2-core machine (this suite beside another worker and other work) tens of
# thousands of acked spans took longer than 30 s to index; a lost span never shows up, however
# long the wait, so a longer bound weakens nothing.
REPLAY_WITHIN = 90.0


@dataclass
class Sender:
    number: int
    acked: set[str] = field(default_factory=set)  # event ids of spans in requests answered 200
    refused: list[int] = field(default_factory=list)  # statuses other than 200 (503 is allowed)
    batches: int = 0

    def batch(self) -> tuple[bytes, list[str]]:
        """One request of SPANS_PER_BATCH spans in a fresh trace; the event ids they map to."""
        self.batches += 1
        trace_id = os.urandom(16)
        request = ExportTraceServiceRequest()
        scope_spans = request.resource_spans.add().scope_spans.add()
        scope_spans.scope.name = "journal-crash"
        ids = []
        for i in range(SPANS_PER_BATCH):
            span_id = os.urandom(8)
            span = scope_spans.spans.add(trace_id=trace_id, span_id=span_id, name=f"s{self.number}-{self.batches}-{i}",
                                         kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                                         start_time_unix_nano=1_700_000_000_000_000_000 + i,
                                         end_time_unix_nano=1_700_000_000_500_000_000 + i)
            span.attributes.append(KeyValue(key="input.value", value=AnyValue(string_value="x" * 600)))
            ids.append(str(uuid.uuid5(SPAN_NAMESPACE, trace_id.hex() + span_id.hex())))
        return request.SerializeToString(), ids

    def run(self, url: str, key: str, stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while not stop.is_set():
                body, ids = self.batch()
                try:
                    r = client.post("/v1/traces", content=body)
                except httpx.HTTPError:
                    return  # the server was killed: this request was never acknowledged
                if r.status_code == 200:
                    self.acked.update(ids)
                else:
                    self.refused.append(r.status_code)


def backlog_bytes(server: TracehiveServer) -> float:
    r = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5)
    for line in r.text.splitlines():
        if line.startswith("tracehive_otlp_journal_backlog_bytes"):
            return float(line.split()[-1])
    raise AssertionError("no tracehive_otlp_journal_backlog_bytes in /metrics")


def alive(pid: int) -> bool:
    """Running (a zombie, killed and not yet reaped by the dead server's init, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def journaling_server(data_dir: Path) -> tuple[TracehiveServer, str]:
    server = TracehiveServer(data_dir, env={"TRACEHIVE_OTLP_JOURNAL": "1",
                                            "TRACEHIVE_METRICS_TOKEN": METRICS_TOKEN}).start()
    key = server.bootstrap_key
    assert key
    return server, key


class Load:
    """SENDERS senders posting batches to ``server`` from threads, until ``stop``."""

    def __init__(self, server: TracehiveServer, key: str) -> None:
        self.senders = [Sender(n) for n in range(SENDERS)]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=s.run, args=(server.url, key, self._stop), daemon=True)
                         for s in self.senders]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def test_kill9_loses_no_acknowledged_span(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server, key = journaling_server(data_dir)
    load = Load(server, key)
    senders = load.senders
    try:
        # Kill once enough is acked and the journal holds acked spans not yet indexed.
        deadline = time.monotonic() + 20
        while True:
            acked = sum(len(s.acked) for s in senders)
            if acked >= 8 * SPANS_PER_BATCH and backlog_bytes(server) > 0:
                break
            assert time.monotonic() < deadline, f"no backlog to crash on ({acked} spans acked)"
            time.sleep(0.05)
        appliers = applier_pids(server.pid)
        assert len(appliers) == 1, appliers
        server.kill9()
    finally:
        load.stop()
        if server.running:
            server.kill9()
    # The applier process dies with the server, as the server's threads would: nothing of the
    # crashed run writes on while the next one starts.
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in appliers):
        assert time.monotonic() < deadline, "the applier process outlived the killed server"
        time.sleep(0.02)
    acked_ids = set().union(*(s.acked for s in senders))
    assert all(status == 503 for s in senders for status in s.refused), [s.refused for s in senders]
    not_indexed_at_crash = acked_ids - stored_event_ids(data_dir / "tracehive.db")
    assert not_indexed_at_crash, "every acked span was indexed before the kill: the replay was not exercised"

    server.start()
    try:
        deadline = time.monotonic() + REPLAY_WITHIN
        while missing := acked_ids - stored_event_ids(data_dir / "tracehive.db"):
            assert time.monotonic() < deadline, (
                f"{len(missing)} acknowledged spans lost after the restart\n{server.stderr[-3000:]}")
            time.sleep(0.1)
        with server.client(key) as client:
            stored = Counter(e["event_id"] for e in export_all(client, ["event_id"]) if e.get("event_type") != "session")
    finally:
        server.stop()
    duplicated = [event_id for event_id, n in stored.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} spans stored more than once"
    assert acked_ids <= set(stored)
    print(f"acked {len(acked_ids)} spans; {len(not_indexed_at_crash)} were only in the journal at the kill")


def test_kill9_of_the_applier_process_alone_loses_nothing(tmp_path: Path) -> None:
    """The applier process is killed mid-burst, while the server keeps acking: the server starts
    another, which resumes from the checkpoint; every acked span ends up stored exactly once."""
    import signal

    data_dir = tmp_path / "data"
    server, key = journaling_server(data_dir)
    load = Load(server, key)
    senders = load.senders
    try:
        # Kill the applier once it has written some spans and has more acked ones to go.
        deadline = time.monotonic() + 20
        while not (stored_event_ids(data_dir / "tracehive.db") and backlog_bytes(server) > 0):
            assert time.monotonic() < deadline, "the applier never had a backlog to be killed in"
            time.sleep(0.05)
        (first,) = applier_pids(server.pid)
        os.kill(first, signal.SIGKILL)
        acked_at_kill = sum(len(s.acked) for s in senders)
        time.sleep(0.3)  # the server acks on, with no applier (it is restarted after 1 s)
        load.stop()
        acked_ids = set().union(*(s.acked for s in senders))
        assert len(acked_ids) > acked_at_kill, "nothing was acked after the applier was killed"
        assert all(status == 503 for s in senders for status in s.refused), [s.refused for s in senders]
        deadline = time.monotonic() + REPLAY_WITHIN
        while missing := acked_ids - stored_event_ids(data_dir / "tracehive.db"):
            assert time.monotonic() < deadline, (
                f"{len(missing)} acknowledged spans never indexed after the applier was killed\n{server.stderr[-3000:]}")
            time.sleep(0.1)
        (second,) = applier_pids(server.pid)
        assert second != first
        with server.client(key) as client:
            stored = Counter(e["event_id"] for e in export_all(client, ["event_id"]) if e.get("event_type") != "session")
    finally:
        load.stop()
        server.stop()
    assert not [event_id for event_id, n in stored.items() if n > 1], "spans stored more than once"
    assert acked_ids <= set(stored)
