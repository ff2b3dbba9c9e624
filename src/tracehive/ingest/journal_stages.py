"""How a journaled OTLP request is applied: the applier's two stages, the same decode + map and the
same write (with the same per-span handling of id clashes) as the default mode's ``ingest``. Used
by the applier whether it runs in the server or in its own process (``ingest.applier_process``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tracehive.ingest.decode_pool import DecodePool
from tracehive.ingest.journal_applier import PrepareRecord, WriteRecord
from tracehive.ingest.journal_records import Record
from tracehive.ingest.otlp_decode_common import DecodeLimits
from tracehive.ingest.otlp_ingest import Prepared, prepare_off_loop, write_prepared
from tracehive.storage.base import Store

log = logging.getLogger("tracehive.otlp")


def journal_stages(store: Store, limits: DecodeLimits, on_rejected: Callable[[int], None] | None = None,
                   pool: DecodePool | None = None) -> tuple[PrepareRecord, WriteRecord]:
    """``pool``: large records are decoded and mapped in its worker processes, beside the write of
    the record before (the applier runs the two stages overlapped), as the default mode does."""
    async def prepare_record(record: Record) -> Prepared:
        return await prepare_off_loop(record.body, protobuf=record.protobuf, limits=limits,
                                      default_source=record.default_source, pool=pool)

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


def merge_prepared(parts: list[Prepared]) -> Prepared:
    """The prepared forms of consecutive records of one scope as one write (the applier's
    ``merge`` stage): their events in journal order, and what each had rejected."""
    events = [event for part in parts for event in part.events]
    return Prepared(events, sum(part.rejected for part in parts), [r for part in parts for r in part.reasons])
