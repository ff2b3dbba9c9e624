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

import zlib
from typing import Any

from fastapi import APIRouter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.bodies import read_body
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors
from tracehive.api.otlp_journal import journal_ingest
from tracehive.api.responses import JSONResponse
from tracehive.ingest.journal import Journal
from tracehive.ingest.otlp_decode_common import DecodeLimits
from tracehive.ingest.otlp_ingest import Prepared, ingest
from tracehive.model.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MalformedBody,
    Overloaded,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)

router = APIRouter(tags=["otlp"])

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})
PROTOBUF = "application/x-protobuf"


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
        # A project with redaction rules skips the journal: it would hold the raw request.
        if journal is not None and not scope.redact:
            result = await journal_ingest(journal, scope, body, protobuf=is_protobuf,
                                          limits=DecodeLimits.from_settings(settings),
                                          default_source=default_source(request.headers.get("x-source")))
        else:
            result = await ingest(store_of(request), scope, body, protobuf=is_protobuf,
                                  limits=DecodeLimits.from_settings(settings),
                                  default_source=default_source(request.headers.get("x-source")),
                                  pool=request.app.state.decode_pool, tally=request.app.state.metrics.redacted)
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
