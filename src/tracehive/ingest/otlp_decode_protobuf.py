"""Decoding a binary protobuf OTLP ``ExportTraceServiceRequest`` (OTLP/HTTP
``application/x-protobuf`` and OTLP/gRPC) with the OpenTelemetry project's generated classes.
``otlp_validate`` reuses the per-span and per-value functions, so that its reasons are these."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracehive.ingest.otlp_decode_common import (
    _UNSET_STATUS,
    _UNSPECIFIED_KIND,
    KIND_NAMES,
    STATUS_NAMES,
    DecodedRequest,
    DecodeLimits,
    SpanInvalid,
    check_span_count,
)
from tracehive.model.errors import MalformedBody, ValidationFailed
from tracehive.model.span import Attributes, DecodedSpan, SpanEvent


def decode_protobuf(data: bytes, limits: DecodeLimits | None = None) -> DecodedRequest:
    """Decode binary protobuf (an ``ExportTraceServiceRequest``)."""
    limits = limits or DecodeLimits()
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise MalformedBody(f"request body is not a valid protobuf ExportTraceServiceRequest: {exc}") from None
    total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    check_span_count(total, limits)
    out = DecodedRequest()
    for i, rs in enumerate(request.resource_spans):
        try:
            resource_attrs = attributes_from_pb(rs.resource.attributes, limits)
        except SpanInvalid as exc:
            raise ValidationFailed(f"resourceSpans[{i}].resource.attributes: {exc}") from None
        for j, ss in enumerate(rs.scope_spans):
            scope = ss.scope
            for k, span in enumerate(ss.spans):
                try:
                    out.spans.append(span_from_pb(span, resource_attrs, scope.name, scope.version, limits))
                except SpanInvalid as exc:
                    out.reject(span_location(i, j, k), str(exc))
    return out


def span_location(resource: int, scope: int, span: int) -> str:
    """Where a span is in an export request, as rejection reasons name it."""
    return f"resourceSpans[{resource}].scopeSpans[{scope}].spans[{span}]"


def span_from_pb(span: Any, resource_attrs: Attributes, scope_name: str, scope_version: str,
             limits: DecodeLimits) -> DecodedSpan:
    trace_id = _id_bytes(span.trace_id, 16, "traceId")
    span_id = _id_bytes(span.span_id, 8, "spanId")
    parent = span.parent_span_id
    parent_id = None if not parent or not any(parent) else _id_bytes(parent, 8, "parentSpanId")
    if len(span.attributes) > limits.max_attributes:
        raise SpanInvalid(f"{len(span.attributes)} attributes exceed the limit of {limits.max_attributes}")
    if len(span.events) > limits.max_events:
        raise SpanInvalid(f"{len(span.events)} span events exceed the limit of {limits.max_events}")
    events = tuple(
        SpanEvent(name=ev.name, time_unix_nano=ev.time_unix_nano, attributes=attributes_from_pb(ev.attributes, limits))
        for ev in span.events
    )
    status = span.status
    return DecodedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        name=span.name,
        kind=KIND_NAMES.get(span.kind, _UNSPECIFIED_KIND),
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        attributes=attributes_from_pb(span.attributes, limits),
        events=events,
        status_code=STATUS_NAMES.get(status.code, _UNSET_STATUS),
        status_message=status.message,
        resource_attributes=resource_attrs,
        scope_name=scope_name,
        scope_version=scope_version,
    )


def _id_bytes(raw: bytes, size: int, name: str) -> str:
    if not raw:
        raise SpanInvalid(f"{name} is missing")
    if len(raw) != size:
        raise SpanInvalid(f"{name} must be {size} bytes, got {len(raw)}")
    if not any(raw):
        raise SpanInvalid(f"{name} is all zeros (an invalid id)")
    return raw.hex()


def attributes_from_pb(kvs: Any, limits: DecodeLimits) -> Attributes:
    if len(kvs) > limits.max_attributes:
        raise SpanInvalid(f"{len(kvs)} attributes exceed the limit of {limits.max_attributes}")
    out: Attributes = {}
    for kv in kvs:
        value = kv.value
        # Most attribute values are non-empty strings: a non-empty string_value can only be the set
        # member of the oneof, so read it without WhichOneof; anything else goes through any_value_from_pb.
        text = value.string_value
        out[kv.key] = text if text else any_value_from_pb(value, 0, limits)
    return out


def any_value_from_pb(value: Any, depth: int, limits: DecodeLimits) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which is None:
        return None
    if which == "bytes_value":
        return bytes(value.bytes_value)
    if depth >= limits.max_depth:
        raise SpanInvalid(f"an attribute value is nested deeper than {limits.max_depth} levels")
    if which == "array_value":
        items = value.array_value.values
        if len(items) > limits.max_attributes:
            raise SpanInvalid(f"an arrayValue of {len(items)} items exceeds the limit of {limits.max_attributes}")
        return [any_value_from_pb(v, depth + 1, limits) for v in items]
    if which == "kvlist_value":
        kvs = value.kvlist_value.values
        if len(kvs) > limits.max_attributes:
            raise SpanInvalid(f"a kvlistValue of {len(kvs)} entries exceeds the limit of {limits.max_attributes}")
        return {kv.key: any_value_from_pb(kv.value, depth + 1, limits) for kv in kvs}
    return None  # a value type newer than this proto: treat as unset
