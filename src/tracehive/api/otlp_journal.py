"""OTLP journal mode (``settings.otlp_journal``): an export is acked once the request, checked
by the decoder, is fsync'd in the ingest journal (``ingest.journal``); a background applier maps
and writes it through the same step as the default mode (``ingest.otlp_ingest``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tracehive.ingest.journal import Applier, Journal, PrepareRecord, Record, WriteRecord
from tracehive.ingest.otlp_decode import DecodedRequest, DecodeLimits, decode_json, decode_protobuf
from tracehive.ingest.otlp_ingest import INLINE_BODY_BYTES, Prepared, prepare_off_loop, write_prepared
from tracehive.model.scope import Scope
from tracehive.storage.base import Store

log = logging.getLogger("tracehive.otlp")


def _decode(body: bytes, protobuf: bool, limits: DecodeLimits) -> DecodedRequest:
    return decode_protobuf(body, limits) if protobuf else decode_json(body, limits)


async def journal_ingest(journal: Journal, scope: Scope, body: bytes, *, protobuf: bool, limits: DecodeLimits,
                         default_source: str | None) -> Prepared:
    """Validate, journal, ack. The decoder runs before the ack (about a fifth of decode + map on
    typical batches), so a malformed body is still a 400 and the spans it rejects are still
    reported as partial_success; mapping and the store write happen later, in the applier."""
    journal.check_room(len(body))  # a full journal sheds the request before it is decoded
    if len(body) <= INLINE_BODY_BYTES:
        decoded = _decode(body, protobuf, limits)
    else:
        decoded = await asyncio.to_thread(_decode, body, protobuf, limits)
    if decoded.spans:  # nothing to write otherwise: no journal record
        await journal.append(Record(scope, protobuf, default_source, body))
    return Prepared([], decoded.rejected_count, list(decoded.rejected))


def journal_stages(store: Store, limits: DecodeLimits,
                   on_rejected: Any = None) -> tuple[PrepareRecord, WriteRecord]:
    """The applier's two stages for a record: the same decode + map, then the same write (with the
    same per-span handling of id clashes) as the default mode's ``ingest``."""

    async def prepare_record(record: Record) -> Prepared:
        return await prepare_off_loop(record.body, protobuf=record.protobuf, limits=limits,
                                      default_source=record.default_source)

    async def write_record(record: Record, prepared: Prepared) -> None:
        result = await write_prepared(store, record.scope, prepared)
        if result.rejected:
            # The client was acked already; spans refused by mapping (or an id clash) can only be
            # reported here. Counts only: span content is user data.
            log.warning("otlp journal: %d span(s) of a journaled request to project %s were rejected when "
                        "indexed", result.rejected, record.scope.project_id)
            if on_rejected is not None:
                on_rejected(result.rejected)

    return prepare_record, write_record


def install_journal(app: Any) -> None:
    """Create the journal (not yet opened) and its metrics when ``settings.otlp_journal`` is on."""
    settings = app.state.settings
    app.state.otlp_journal = None
    app.state.otlp_applier = None
    if not settings.otlp_journal:
        return
    journal = Journal(settings.data_dir / "otlp-journal", max_backlog_bytes=settings.otlp_journal_max_bytes)
    registry = app.state.metrics.registry
    registry.gauge("tracehive_otlp_journal_backlog_bytes",
                   "OTLP journal bytes acknowledged but not yet indexed (written to the store).",
                   sample=lambda: float(journal.backlog_bytes))
    skipped = registry.counter("tracehive_otlp_journal_skipped_records_total",
                               "Journaled OTLP requests the store refused as bad input (a 4xx) when indexed.")
    rejected = registry.counter("tracehive_otlp_journal_rejected_spans_total",
                                "Spans of journaled OTLP requests rejected when indexed (after the ack).")
    prepare_record, write_record = journal_stages(app.state.store, DecodeLimits.from_settings(settings),
                                                  on_rejected=lambda n: rejected.inc(amount=float(n)))
    app.state.otlp_journal = journal
    app.state.otlp_applier = Applier(journal, write_record, prepare=prepare_record,
                                     on_skipped=lambda _exc: skipped.inc())


@asynccontextmanager
async def journal_serving(app: Any) -> AsyncIterator[None]:
    """Open the journal and run its applier (which first replays what an earlier run acked but did
    not index) for the duration of the block; the store must be open."""
    journal: Journal | None = app.state.otlp_journal
    applier: Applier | None = app.state.otlp_applier
    if journal is None or applier is None:
        yield
        return
    await asyncio.to_thread(journal.open)
    if journal.backlog_bytes:
        log.info("otlp journal: replaying %d bytes of acknowledged, unindexed requests", journal.backlog_bytes)
    applier.start()
    try:
        yield
    finally:
        # Unapplied records stay in the journal and are replayed at the next start.
        await applier.stop()
        await journal.close()
