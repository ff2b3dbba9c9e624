"""OTLP/HTTP trace ingest: ``POST /opentelemetry/v1/traces`` (the path the HoneyHive tracer
hard-codes) and ``POST /v1/traces`` (the OTLP default path).

* Bodies: ``application/x-protobuf`` or ``application/json`` (the standard OTLP/JSON and the
  tracer's dialect, see ``ingest.otlp_decode``); anything else is a 415.
* ``Content-Encoding: gzip`` or ``deflate``: inflated incrementally while the body streams in,
  with both the received and the inflated size capped at ``max_body_bytes`` (413), so a gzip bomb
  costs at most the cap.
* The reply uses the request's encoding: an ``ExportTraceServiceResponse`` (empty protobuf bytes,
  ``{}`` in JSON), with ``partial_success`` when spans were rejected. It is sent only after the
  one atomic ``write_events`` has committed: a 200 means the spans are durable. With
  ``otlp_journal`` on, it is sent once the request, checked by the decoder, is fsync'd in the ingest journal
  (``ingest.journal``) and the spans are indexed shortly after: durable, not yet queryable.
* Errors: JSON requests (and requests whose type is not known) get the contract's JSON error
  body; protobuf requests get the protobuf ``google.rpc.Status`` that OTLP/HTTP specifies, with
  the same HTTP status. Overload is a 503 with ``Retry-After`` (OTLP clients retry it).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.bodies import read_body
from tracehive.api.auth import authenticate
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors
from tracehive.api.responses import JSONResponse
from tracehive.ingest.journal import Applier, Journal, PrepareRecord, Record, WriteRecord
from tracehive.ingest.otlp_decode import DecodedRequest, DecodeLimits, decode_json, decode_protobuf
from tracehive.ingest.span_mapping import spans_to_events
from tracehive.model.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    IdRoleClash,
    MalformedBody,
    Overloaded,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.storage.base import Store

router = APIRouter(tags=["otlp"])
log = logging.getLogger("tracehive.otlp")

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})
PROTOBUF = "application/x-protobuf"
MAX_REASONS_IN_MESSAGE = 5
MAX_REASON_CHARS = 300
INLINE_BODY_BYTES = 32 * 1024  # smaller bodies (single spans, small batches) are decoded on the loop


# ------------------------------------------------------------------------------------------------
# The shared ingest step (HTTP and gRPC)
# ------------------------------------------------------------------------------------------------


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
                 default_source: str | None) -> Prepared:
    """Decode, map and write in one atomic commit (HTTP and gRPC)."""
    prepared = await prepare_off_loop(body, protobuf=protobuf, limits=limits, default_source=default_source)
    return await write_prepared(store, scope, prepared)


async def prepare_off_loop(body: bytes, *, protobuf: bool, limits: DecodeLimits,
                           default_source: str | None) -> Prepared:
    """``prepare``; bodies past ``INLINE_BODY_BYTES`` are decoded and mapped in a worker thread
    (about 0.2 ms of CPU per span), so that a large batch does not stall the event loop and every
    other request with it."""
    if len(body) <= INLINE_BODY_BYTES:
        return prepare(body, protobuf=protobuf, limits=limits, default_source=default_source)
    return await asyncio.to_thread(prepare, body, protobuf=protobuf, limits=limits, default_source=default_source)


async def write_prepared(store: Store, scope: Scope, prepared: Prepared) -> Prepared:
    """Write prepared events in one atomic commit; returns what was written and rejected."""
    if prepared.events:
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


# ------------------------------------------------------------------------------------------------
# Journal mode (settings.otlp_journal): ack once durable in the journal, index in the background
# ------------------------------------------------------------------------------------------------


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


def rejection_message(rejected: int, reasons: list[str]) -> str:
    if not rejected:
        return ""
    shown = [r if len(r) <= MAX_REASON_CHARS else r[: MAX_REASON_CHARS - 3] + "..." for r in reasons[:MAX_REASONS_IN_MESSAGE]]
    text = f"{rejected} span{'s' if rejected != 1 else ''} rejected: " + "; ".join(shown)
    if rejected > len(shown):
        text += f"; and {rejected - len(shown)} more"
    return text


def default_source(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:256] or None


# ------------------------------------------------------------------------------------------------
# google.rpc.Status (hand-encoded: three fields, no dependency on googleapis-common-protos)
# ------------------------------------------------------------------------------------------------

# gRPC status codes used here.
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


def grpc_code(error: ApiError) -> int:
    if isinstance(error, Unauthorized):
        return UNAUTHENTICATED
    if isinstance(error, Forbidden):
        return PERMISSION_DENIED
    if isinstance(error, PayloadTooLarge):
        return RESOURCE_EXHAUSTED
    if isinstance(error, Overloaded):
        return UNAVAILABLE
    if isinstance(error, (BadRequest, UnsupportedMediaType)):
        return INVALID_ARGUMENT
    return INTERNAL


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def rpc_status(code: int, message: str, details: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    """A serialized ``google.rpc.Status{code, message, details: [Any]}``."""
    out = (_varint(1 << 3) + _varint(code)) if code else b""
    if message:
        out += _len_field(2, message.encode("utf-8", "replace"))
    for type_url, value in details:
        out += _len_field(3, _len_field(1, type_url.encode()) + _len_field(2, value))
    return out


def retry_info(seconds: int) -> tuple[str, bytes]:
    """A ``google.rpc.RetryInfo{retry_delay: Duration{seconds}}`` detail."""
    duration = _varint(1 << 3) + _varint(max(0, seconds))
    return "type.googleapis.com/google.rpc.RetryInfo", _len_field(1, duration)


def _protobuf_error(error: ApiError) -> Response:
    return Response(rpc_status(grpc_code(error), error.message), status_code=error.status_code,
                    headers=error.headers(), media_type=PROTOBUF)


# ------------------------------------------------------------------------------------------------
# Reading the body
# ------------------------------------------------------------------------------------------------


class _Inflater:
    """Incremental gzip/deflate decoding whose output may not exceed ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.gzip = encoding != "deflate"
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []
        self._pending = b""  # deflate: bytes held until the header says zlib or raw
        self._d: Any = zlib.decompressobj(31) if self.gzip else None
        self.received = 0

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self._d is None:
            self._pending += data
            if len(self._pending) < 2:
                return
            data, self._pending = self._pending, b""
            cmf, flg = data[0], data[1]
            # RFC 9110 "deflate" is the zlib format (RFC 1950); some senders send raw deflate.
            zlib_wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._d = zlib.decompressobj(15 if zlib_wrapped else -15)
        while data:
            if self._d.eof:
                if not self.gzip:
                    raise MalformedBody("request body has data after the end of the deflate stream")
                self._d = zlib.decompressobj(31)  # the next member of a multi-member gzip
            try:
                out = self._d.decompress(data, self.limit + 1 - self.size)
            except zlib.error as exc:
                raise MalformedBody(f"request body is not valid {self.encoding} data: {exc}") from None
            self.size += len(out)
            if self.size > self.limit:
                raise PayloadTooLarge(
                    f"request body inflates to more than the limit of {self.limit} bytes ({self.encoding})"
                )
            self.parts.append(out)
            data = self._d.unconsumed_tail or (self._d.unused_data if self._d.eof else b"")

    def finish(self) -> bytes:
        if self.received == 0:
            return b""
        if self._d is None or not self._d.eof:
            raise MalformedBody(f"request body is a truncated {self.encoding} stream")
        return b"".join(self.parts)


def _content_encoding(request: Request) -> str:
    raw = request.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in raw.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1:
        raise UnsupportedMediaType(f"Content-Encoding {raw!r} is not supported; use gzip, deflate or none")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return "gzip"
    if coding == "deflate":
        return "deflate"
    raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; use gzip, deflate or none")


async def read_otlp_body(request: Request, limit: int) -> bytes:
    """The request body, inflated; neither the received nor the inflated size may exceed ``limit``."""
    encoding = _content_encoding(request)
    if encoding == "identity":
        return await read_body(request, limit)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    inflater = _Inflater(encoding, limit)
    async for chunk in request.stream():
        if inflater.received + len(chunk) > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        if chunk:
            inflater.feed(chunk)
    return inflater.finish()


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


# ------------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------------


class OtlpPartialSuccess(BaseModel):
    rejectedSpans: str = Field(description="number of rejected spans (int64, a string in proto3 JSON)")
    errorMessage: str = Field(description="why they were rejected")


class OtlpExportResponse(BaseModel):
    """``ExportTraceServiceResponse``: ``{}`` on full success; empty bytes in protobuf."""

    partialSuccess: OtlpPartialSuccess | None = None


_DOC = {
    "response_model": OtlpExportResponse,
    "responses": {
        **errors(400, 401, 403, 413, 415, 503),
        200: {"content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}},
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                PROTOBUF: {"schema": {"type": "string", "format": "binary",
                                      "description": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"}},
                "application/json": {"schema": {"type": "object",
                                                "description": "OTLP/JSON ExportTraceServiceRequest "
                                                               "(hex ids; enums as numbers or names)"}},
            },
        }
    },
}


async def export(request: Request) -> Response:
    media = _media_type(request)
    is_protobuf = media in PROTOBUF_TYPES
    try:
        scope = await authenticate(request, write=True)
        if not is_protobuf and media not in JSON_TYPES:
            shown = media or "none"
            raise UnsupportedMediaType(
                f"Content-Type must be application/x-protobuf or application/json, not {shown}"
            )
        settings = settings_of(request)
        body = await read_otlp_body(request, settings.max_body_bytes)
        journal: Journal | None = getattr(request.app.state, "otlp_journal", None)
        if journal is not None:
            result = await journal_ingest(journal, scope, body, protobuf=is_protobuf,
                                          limits=DecodeLimits.from_settings(settings),
                                          default_source=default_source(request.headers.get("x-source")))
        else:
            result = await ingest(store_of(request), scope, body, protobuf=is_protobuf,
                                  limits=DecodeLimits.from_settings(settings),
                                  default_source=default_source(request.headers.get("x-source")))
    except ApiError as exc:
        if is_protobuf:
            return _protobuf_error(exc)
        raise
    if is_protobuf:
        return Response(export_response(result), media_type=PROTOBUF)
    if result.rejected:
        return JSONResponse({"partialSuccess": {"rejectedSpans": str(result.rejected), "errorMessage": result.message}})
    return JSONResponse({})


def export_response(result: Prepared) -> bytes:
    """A serialized ``ExportTraceServiceResponse``: empty on full success."""
    reply = ExportTraceServiceResponse()
    if result.rejected:
        reply.partial_success.rejected_spans = result.rejected
        reply.partial_success.error_message = result.message
    return reply.SerializeToString()


@router.post("/opentelemetry/v1/traces", summary="Export spans (OTLP/HTTP, the HoneyHive tracer's path)", **_DOC)
async def export_traces_honeyhive(request: Request) -> Response:
    """OTLP/HTTP trace export as the HoneyHive tracer sends it (JSON by default, or protobuf).
    Each span becomes an event (``X-Source`` is the default source)."""
    return await export(request)


@router.post("/v1/traces", summary="Export spans (OTLP/HTTP)", **_DOC)
async def export_traces(request: Request) -> Response:
    """Standard OTLP/HTTP trace export (protobuf or JSON, optionally gzip/deflate)."""
    return await export(request)
