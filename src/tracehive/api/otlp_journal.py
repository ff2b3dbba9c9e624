"""OTLP journal mode (``settings.otlp_journal``): an export is acked once the request, checked
as the decoder would check it, is fsync'd in the ingest journal (``ingest.journal``); a background
applier decodes, maps and writes it through the same step as the default mode
(``ingest.journal_stages``), in its own process (``ingest.applier_process``) when the app opened
its store itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tracehive.ingest.applier_process import ApplierProcess
from tracehive.ingest.journal import Journal
from tracehive.ingest.journal_applier import Applier
from tracehive.ingest.journal_records import Record
from tracehive.ingest.journal_stages import journal_stages, merge_prepared
from tracehive.ingest.otlp_decode_common import DecodeLimits
from tracehive.ingest.otlp_decode_json import decode_json
from tracehive.ingest.otlp_ingest import INLINE_BODY_BYTES, Prepared
from tracehive.ingest.otlp_validate import Validated, validate_protobuf
from tracehive.model.scope import Scope

log = logging.getLogger("tracehive.otlp")


# A protobuf body is only validated before the ack (``validate_protobuf``: the decoder's verdict
# without building attribute values, ~2 us per KiB), cheap enough to run on the event loop for
# bodies up to this size, which spares the hand-off of the GIL to a worker thread and back.
VALIDATE_INLINE_BYTES = 4 * 1024 * 1024


def _verdict(body: bytes, protobuf: bool, limits: DecodeLimits) -> Validated:
    if protobuf:
        return validate_protobuf(body, limits)
    decoded = decode_json(body, limits)  # OTLP/JSON has no cheaper check: the decoder's own
    return Validated(len(decoded.spans), decoded.rejected, decoded.rejected_count)


async def journal_ingest(journal: Journal, scope: Scope, body: bytes, *, protobuf: bool, limits: DecodeLimits,
                         default_source: str | None) -> Prepared:
    """Validate, journal, ack. The decoder's verdict is known before the ack, so a malformed body
    is still a 400 and the spans it rejects are still reported as partial_success; decoding,
    mapping and the store write happen later, in the applier."""
    journal.check_room(len(body))  # a full journal sheds the request before it is checked
    if len(body) <= (VALIDATE_INLINE_BYTES if protobuf else INLINE_BODY_BYTES):
        verdict = _verdict(body, protobuf, limits)
    else:
        verdict = await asyncio.to_thread(_verdict, body, protobuf, limits)
    if verdict.kept:  # nothing to write otherwise: no journal record
        await journal.append(Record(scope, protobuf, default_source, body))
    return Prepared([], verdict.rejected_count, list(verdict.rejected))


def install_journal(app: Any, *, separate_process: bool) -> None:
    """Create the journal (not yet opened) and its metrics when ``settings.otlp_journal`` is on.

    ``separate_process``: run the applier in a child process (``ingest.applier_process``), which
    opens the store from the settings; only possible when the app opened its store from them too
    (a store object handed to ``create_app`` cannot be shared with another process)."""
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
    app.state.otlp_journal = journal
    if separate_process:
        restarts = registry.counter("tracehive_otlp_journal_applier_restarts_total",
                                    "Times the OTLP journal's applier process exited unasked and was started again.")
        app.state.otlp_applier = ApplierProcess(journal, settings, observer=app.state.metrics,
                                                on_skipped=skipped.inc,
                                                on_rejected=lambda n: rejected.inc(amount=float(n)),
                                                on_restart=restarts.inc)
        return
    prepare_record, write_record = journal_stages(app.state.store, DecodeLimits.from_settings(settings),
                                                  on_rejected=lambda n: rejected.inc(amount=float(n)),
                                                  pool=app.state.decode_pool)
    app.state.otlp_applier = Applier(journal, write_record, prepare=prepare_record, merge=merge_prepared,
                                     prepare_window=max(1, app.state.decode_pool.processes),
                                     on_skipped=lambda _exc: skipped.inc())


@asynccontextmanager
async def journal_serving(app: Any) -> AsyncIterator[None]:
    """Open the journal and run its applier (which first replays what an earlier run acked but did
    not index) for the duration of the block; the store must be open."""
    journal: Journal | None = app.state.otlp_journal
    applier: Applier | ApplierProcess | None = app.state.otlp_applier
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
