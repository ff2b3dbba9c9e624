"""OTLP/gRPC trace ingest: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

A ``grpc.aio`` server runs on the application's event loop, started and stopped by the app's
lifespan when ``Settings.otlp_grpc_port`` is set (``tracehive serve --otlp-grpc-port 4317``). It
takes the same path as OTLP/HTTP: the request bytes go to ``decode_protobuf`` (the handler is
registered without a deserializer, so the message is parsed once, by the decoder, under its
limits), then the mapping and one atomic write (``ingest.otlp_ingest.ingest``) before the reply.

* Limits: the largest message accepted is ``max_body_bytes`` after decompression (gRPC answers
  RESOURCE_EXHAUSTED past it); more spans than ``max_batch_events`` is RESOURCE_EXHAUSTED too.
* Auth: ``authorization: Bearer <key>`` metadata; project and ingestion keys may export.
  Missing, malformed, unknown or revoked keys are UNAUTHENTICATED; a key that may not write
  would be PERMISSION_DENIED. The key is checked *before the message is read*: the handler takes
  the request as a stream (gRPC does not read, let alone decompress, a message nobody asks for),
  so a keyless caller cannot make the server inflate anything.
* At most ``otlp_grpc_max_concurrent_rpcs`` calls run at once; past it, RESOURCE_EXHAUSTED.
* ``x-source`` metadata is the default source (like the ``X-Source`` header).
* Overload (the writer's queue is full, or the store cannot commit) is UNAVAILABLE with a
  ``google.rpc.RetryInfo`` detail, which OTLP clients treat as "retry after this delay".
* Rejected spans are reported in ``partial_success``; undecodable messages are INVALID_ARGUMENT.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from tracehive.api.auth import KeyResolver
from tracehive.api.otlp import default_source, export_response, grpc_code, retry_info, rpc_status
from tracehive.api.otlp_journal import journal_ingest
from tracehive.ingest.otlp_decode_common import DecodeLimits
from tracehive.ingest.otlp_ingest import ingest
from tracehive.model.errors import ApiError, BadRequest, Overloaded, Unauthorized
from tracehive.model.scope import Scope

log = logging.getLogger("tracehive.otlp_grpc")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
STOP_GRACE_SECONDS = 5.0


async def authenticate_metadata(keys: KeyResolver, metadata: Mapping[str, str]) -> Scope:
    header = metadata.get("authorization")
    if not header:
        raise Unauthorized("missing authorization metadata; send 'authorization: Bearer <api key>'")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("malformed authorization metadata; expected 'Bearer <api key>'")
    scope = await keys.resolve(key)
    if scope is None:
        raise Unauthorized("invalid or revoked API key")
    return scope


class TraceService:
    """The ``Export`` method, bound to the app's store, keys and settings."""

    def __init__(self, app: Any) -> None:
        self.state = app.state
        # Calls being served now (a plain int: only the event loop changes it); a gauge in /metrics.
        self.in_flight = 0

    async def export(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        self.in_flight += 1
        try:
            return await self._export(requests, context)
        finally:
            self.in_flight -= 1

    async def _export(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        import grpc

        state = self.state
        try:
            metadata = {m.key: m.value for m in (context.invocation_metadata() or ()) if isinstance(m.value, str)}
            scope = await authenticate_metadata(state.keys, metadata)
            request = await _one_message(requests)
            journal = getattr(state, "otlp_journal", None)
            # Journal mode acks once durable in the journal, as over HTTP; a project with redaction
            # rules is written at once instead (the journal would hold the raw request).
            if journal is not None and not scope.redact:
                result = await journal_ingest(journal, scope, request, protobuf=True,
                                              limits=DecodeLimits.from_settings(state.settings),
                                              default_source=default_source(metadata.get("x-source")))
            else:
                result = await ingest(state.store, scope, request, protobuf=True,
                                      limits=DecodeLimits.from_settings(state.settings),
                                      default_source=default_source(metadata.get("x-source")),
                                      pool=state.decode_pool, tally=state.metrics.redacted)
        except ApiError as exc:
            code = grpc_code(exc)
            trailers: tuple[tuple[str, Any], ...] = ()
            if isinstance(exc, Overloaded):
                detail = rpc_status(code, exc.message, (retry_info(exc.retry_after),))
                trailers = (("grpc-status-details-bin", detail),)
            await context.abort(_STATUS[code], exc.message, trailing_metadata=trailers)
            raise AssertionError("unreachable") from None  # abort() raises
        except Exception:
            log.exception("unhandled error in OTLP/gRPC Export")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise AssertionError("unreachable") from None
        return export_response(result)


async def _one_message(requests: AsyncIterator[bytes]) -> bytes:
    """The call's single request message (read only after the key was accepted)."""
    message: bytes | None = None
    async for item in requests:
        if message is not None:
            raise BadRequest("Export takes exactly one request message")
        message = item
    if message is None:
        raise BadRequest("Export received no request message")
    return message


def _status_codes() -> dict[int, Any]:
    import grpc

    return {code.value[0]: code for code in grpc.StatusCode}


_STATUS: dict[int, Any] = {}


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[Any]:
    """Run the OTLP/gRPC server for the duration of the block when the settings ask for it."""
    settings = app.state.settings
    if not settings.otlp_grpc_port:
        yield None
        return
    import grpc

    _STATUS.update(_status_codes())
    server = grpc.aio.server(
        maximum_concurrent_rpcs=settings.otlp_grpc_max_concurrent_rpcs or None,
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ]
    )
    service = TraceService(app)
    app.state.metrics.registry.gauge(
        "tracehive_otlp_grpc_calls_in_flight",
        f"OTLP/gRPC Export calls being served now (at most otlp_grpc_max_concurrent_rpcs, "
        f"here {settings.otlp_grpc_max_concurrent_rpcs or 'unbounded'}).",
        sample=lambda: float(service.in_flight))
    handler = grpc.method_handlers_generic_handler(
        # Stream-unary on our side (the wire is the same for a unary client): the behaviour runs
        # before the message is read, so authentication comes first.
        SERVICE, {"Export": grpc.stream_unary_rpc_method_handler(service.export)}
    )
    server.add_generic_rpc_handlers((handler,))
    address = _address(settings.host, settings.otlp_grpc_port)
    try:
        if settings.tls_cert:
            with open(settings.tls_key, "rb") as key_file, open(settings.tls_cert, "rb") as cert_file:
                credentials = grpc.ssl_server_credentials([(key_file.read(), cert_file.read())])
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"OTLP/gRPC could not listen on {address}: {exc}") from None
    if not bound:
        raise RuntimeError(f"OTLP/gRPC could not listen on {address}")
    await server.start()
    app.state.otlp_grpc_port = bound
    log.info("OTLP/gRPC listening on %s", address)
    try:
        yield server
    finally:
        await server.stop(STOP_GRACE_SECONDS)
