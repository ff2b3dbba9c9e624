"""The OTLP journal's applier writes a backlog several records at a time (``ingest/journal_applier``):
records prepared while a write is in flight are merged into the next write when they share a
scope, always in journal order; a merged write the store refuses falls back to one record per
write, so that only the refused record is skipped; a prepare window keeps the order too. The last
test runs the real stages on a real store."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from pathlib import Path
from typing import Any

from tests.otlp_data import protobuf_request, tracer_spans
from tracehive.ingest.journal import Applier, Journal, Record
from tracehive.ingest.journal_stages import journal_stages, merge_prepared
from tracehive.ingest.otlp_decode import DecodeLimits
from tracehive.model.errors import ValidationFailed
from tracehive.model.scope import KeyKind, Scope
from tracehive.storage.sqlite import SQLiteStore

SCOPE_A = Scope("org", "ws", "project-a", "a", KeyKind.PROJECT, "key-a")
SCOPE_B = Scope("org", "ws", "project-b", "b", KeyKind.PROJECT, "key-b")
IDLE_WITHIN = 10.0


def numbered(scopes: list[Scope]) -> list[Record]:
    """Record i carries the number i as its body."""
    return [Record(scope, True, None, str(i).encode()) for i, scope in enumerate(scopes)]


async def prepare_number(record: Record) -> list[int]:
    return [int(record.body)]


def concat(parts: list[list[int]]) -> list[int]:
    return [n for part in parts for n in part]


async def apply_all(directory: Path, records: list[Record], write: Any, **options: Any) -> Applier:
    """Append ``records`` first (a backlog), then run an applier over them until it is idle."""
    journal = Journal(directory, max_backlog_bytes=1 << 20)
    journal.open()
    for record in records:
        await journal.append(record)
    applier = Applier(journal, write, **options)
    applier.start()
    try:
        assert await applier.idle(IDLE_WITHIN)
    finally:
        await applier.stop()
        await journal.close()
    return applier


def test_records_prepared_during_a_write_go_in_the_next_write_in_journal_order(tmp_path: Path) -> None:
    writes: list[tuple[str, list[int]]] = []

    async def slow_write(record: Record, prepared: list[int]) -> None:
        await asyncio.sleep(0.2)  # the other records are prepared meanwhile
        writes.append((record.scope.project_id, prepared))

    applier = asyncio.run(apply_all(tmp_path / "j", numbered([SCOPE_A] * 8), slow_write,
                                    prepare=prepare_number, merge=concat))
    assert writes == [("project-a", [0]), ("project-a", [1, 2, 3, 4, 5, 6, 7])]
    assert (applier.applied_records, applier.skipped_records) == (8, 0)


def test_without_a_merge_stage_each_record_is_its_own_write(tmp_path: Path) -> None:
    writes: list[list[int]] = []

    async def slow_write(record: Record, prepared: list[int]) -> None:
        await asyncio.sleep(0.05)
        writes.append(prepared)

    asyncio.run(apply_all(tmp_path / "j", numbered([SCOPE_A] * 4), slow_write, prepare=prepare_number))
    assert writes == [[0], [1], [2], [3]]


def test_records_of_different_scopes_are_never_merged(tmp_path: Path) -> None:
    writes: list[tuple[str, list[int]]] = []

    async def slow_write(record: Record, prepared: list[int]) -> None:
        await asyncio.sleep(0.2)
        writes.append((record.scope.project_id, prepared))

    scopes = [SCOPE_A, SCOPE_A, SCOPE_A, SCOPE_B, SCOPE_B, SCOPE_A]
    asyncio.run(apply_all(tmp_path / "j", numbered(scopes), slow_write, prepare=prepare_number, merge=concat))
    assert writes == [("project-a", [0]), ("project-a", [1, 2]), ("project-b", [3, 4]), ("project-a", [5])]


def test_a_merged_write_refused_as_bad_input_goes_again_record_by_record(tmp_path: Path) -> None:
    """Only the record the store refuses is skipped; the ones merged with it are written."""
    attempts: list[list[int]] = []
    stored: list[int] = []
    skipped: list[int] = []

    async def write(record: Record, prepared: list[int]) -> None:
        await asyncio.sleep(0.1)
        attempts.append(prepared)
        if 3 in prepared:
            raise ValidationFailed("record 3 is refused")
        stored.extend(prepared)

    applier = asyncio.run(apply_all(tmp_path / "j", numbered([SCOPE_A] * 6), write, prepare=prepare_number,
                                    merge=concat, on_skipped=lambda exc: skipped.append(exc.status_code)))
    assert attempts == [[0], [1, 2, 3, 4, 5], [1], [2], [3], [4], [5]]
    assert stored == [0, 1, 2, 4, 5]
    assert skipped == [400]
    assert (applier.applied_records, applier.skipped_records) == (5, 1)


def test_a_prepare_window_keeps_journal_order_when_prepares_finish_out_of_order(tmp_path: Path) -> None:
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.03) for _ in range(30)]
    finished: list[int] = []
    written: list[int] = []

    async def uneven_prepare(record: Record) -> list[int]:
        number = int(record.body)
        await asyncio.sleep(delays[number])
        finished.append(number)
        return [number]

    async def write(record: Record, prepared: list[int]) -> None:
        written.extend(prepared)

    asyncio.run(apply_all(tmp_path / "j", numbered([SCOPE_A] * 30), write, prepare=uneven_prepare,
                          merge=concat, prepare_window=4))
    assert finished != sorted(finished)  # the prepares did overlap and finish out of order
    assert written == list(range(30))


def test_a_backlog_applied_in_merged_writes_on_a_real_store_keeps_the_last_version(tmp_path: Path) -> None:
    """Each record re-sends one span (same ids, a new attribute value) beside a span of its own:
    merged into one write, the stored span is the last record's, and every span is stored."""
    spans = tracer_spans()
    session = str(uuid.uuid4())

    def body(version: int) -> bytes:
        trace = uuid.uuid4().hex
        mine = [dataclasses.replace(s, trace_id=trace, attributes={**s.attributes, "honeyhive.session_id": session})
                for s in spans]
        shared = dataclasses.replace(spans[0], trace_id="ab" * 16, attributes={
            **spans[0].attributes, "honeyhive.session_id": session, "version": version})
        return protobuf_request([*mine, shared]).SerializeToString()

    async def run() -> tuple[list[int], list[Any], int]:
        store = SQLiteStore(tmp_path / "tracehive.db")
        await store.open()
        try:
            project, _ = await store.ensure_project("p")
            _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
            scope = await store.resolve_key(key)
            assert scope is not None
            prepare, write = journal_stages(store, DecodeLimits())
            sizes: list[int] = []

            async def slow_write(record: Record, prepared: Any) -> None:
                await asyncio.sleep(0.2)  # the backlog is prepared meanwhile
                sizes.append(len(prepared.events))
                await write(record, prepared)

            records = [Record(scope, True, None, body(v)) for v in range(6)]
            await apply_all(tmp_path / "j", records, slow_write, prepare=prepare, merge=merge_prepared)
            stored = await store.session_events(scope, session)
            return sizes, stored, len(spans)
        finally:
            await store.close()

    sizes, stored, per_trace = asyncio.run(run())
    per_record = per_trace + 1
    assert sum(sizes) == 6 * per_record and max(sizes) > per_record  # some write took several records
    shared = [e for e in stored if e.metadata.get("otel", {}).get("trace_id") == "ab" * 16]
    assert len(shared) == 1
    assert shared[0].metadata["attributes"]["version"] == 5
    assert len([e for e in stored if e.event_type != "session"]) == 6 * per_trace + 1
