"""The OTLP ingest step shared by OTLP/HTTP, OTLP/gRPC and the journal's applier: decode, map,
then one atomic write; what was rejected on the way becomes OTLP's ``partial_success``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracehive.ingest.otlp_decode_common import DecodeLimits
from tracehive.ingest.otlp_decode_json import decode_json
from tracehive.ingest.otlp_decode_protobuf import decode_protobuf
from tracehive.ingest.redact_writes import Tally, redact_events
from tracehive.ingest.span_mapping import spans_to_events
from tracehive.model.errors import IdRoleClash
from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.pricing import active_table, price_events
from tracehive.storage.base import Store

if TYPE_CHECKING:  # decode_pool imports this module
    from tracehive.ingest.decode_pool import DecodePool

MAX_REASONS_IN_MESSAGE = 5
MAX_REASON_CHARS = 300
INLINE_BODY_BYTES = 32 * 1024  # smaller bodies (single spans, small batches) are decoded on the loop


@dataclass(slots=True)
class Prepared:
    """Events ready to write, and what was rejected on the way (decoder and mapping)."""

    events: list[Event]
    rejected: int
    reasons: list[str]

    @property
    def message(self) -> str:
        """The partial_success error_message; "" when nothing was rejected."""
        return rejection_message(self.rejected, self.reasons)


def prepare(body: bytes, *, protobuf: bool, limits: DecodeLimits, default_source: str | None) -> Prepared:
    """Decode and map: pure CPU work, no I/O."""
    decoded = decode_protobuf(body, limits) if protobuf else decode_json(body, limits)
    reasons = list(decoded.rejected)
    rejected = decoded.rejected_count
    events: list[Event] = []
    if decoded.spans:
        mapped = spans_to_events(decoded.spans, default_source=default_source)
        events = mapped.events
        reasons.extend(mapped.rejected)
        rejected += len(mapped.rejected)
    return Prepared(events, rejected, reasons)


async def ingest(store: Store, scope: Scope, body: bytes, *, protobuf: bool, limits: DecodeLimits,
                 default_source: str | None, pool: DecodePool | None = None, tally: Tally | None = None) -> Prepared:
    """Decode, map, redact and write in one atomic commit (HTTP and gRPC)."""
    prepared = await prepare_off_loop(body, protobuf=protobuf, limits=limits, default_source=default_source,
                                      pool=pool)
    return await write_prepared(store, scope, prepared, tally)


async def prepare_off_loop(body: bytes, *, protobuf: bool, limits: DecodeLimits,
                           default_source: str | None, pool: DecodePool | None = None) -> Prepared:
    """``prepare``; bodies past ``INLINE_BODY_BYTES`` are decoded and mapped off the event loop
    (about 0.1 ms of CPU per span), so that a large batch does not stall it and every other
    request with it: in ``pool``'s worker processes when given, else in a thread."""
    if len(body) <= INLINE_BODY_BYTES:
        return prepare(body, protobuf=protobuf, limits=limits, default_source=default_source)
    if pool is not None:
        return await pool.prepare(body, protobuf=protobuf, limits=limits, default_source=default_source)
    return await asyncio.to_thread(prepare, body, protobuf=protobuf, limits=limits, default_source=default_source)


async def write_prepared(store: Store, scope: Scope, prepared: Prepared, tally: Tally | None = None) -> Prepared:
    """Write prepared events in one atomic commit; returns what was written and rejected.
    Model events are priced here (``tracehive.pricing``), in the process that writes (the server
    or the journal's applier), not where spans were mapped (possibly a decode worker, which does
    not load the user's price file): every OTLP path (HTTP, gRPC, journal) writes through here."""
    if prepared.events:
        redact_events(scope, prepared.events, tally)  # the project's rules, before any write
        price_events(prepared.events, active_table())
        try:
            await store.write_events(scope, prepared.events)
        except IdRoleClash as clash:
            # OTLP reports rejected spans per request, so a span whose id collides with a
            # session's (or whose session id is another event's) is rejected alone; the others
            # are written, in one atomic commit as before.
            kept = [e for e in prepared.events if e.event_id not in clash.ids and e.session_id not in clash.ids]
            dropped = len(prepared.events) - len(kept)
            prepared = Prepared(kept, prepared.rejected + dropped, [*prepared.reasons, clash.message])
            if kept:
                await store.write_events(scope, kept)
    return prepared


def rejection_message(rejected: int, reasons: list[str]) -> str:
    if not rejected:
        return ""
    shown = [r if len(r) <= MAX_REASON_CHARS else r[: MAX_REASON_CHARS - 3] + "..." for r in reasons[:MAX_REASONS_IN_MESSAGE]]
    text = f"{rejected} span{'s' if rejected != 1 else ''} rejected: " + "; ".join(shown)
    if rejected > len(shown):
        text += f"; and {rejected - len(shown)} more"
    return text
