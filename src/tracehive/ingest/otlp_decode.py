"""Decoding an OTLP ``ExportTraceServiceRequest`` into ``DecodedSpan`` records.

Two wire forms, one result:

* protobuf bytes (OTLP/HTTP ``application/x-protobuf`` and OTLP/gRPC), parsed with the
  OpenTelemetry project's generated classes;
* JSON (OTLP/HTTP ``application/json``), walked by hand because senders differ from the
  protobuf JSON mapping in ways a stock parser gets wrong: trace and span ids are hex (the
  HoneyHive tracer and the OTLP spec), not base64; enums arrive as integers or as names
  (``SPAN_KIND_INTERNAL``); 64-bit integers as strings or numbers; ``parentSpanId: null`` on roots.
  Keys are read in lowerCamelCase (the spec) and also in the proto's snake_case; unknown keys are
  ignored, as the spec requires.

What is fatal and what is not:

* a body that is not an export request (undecodable protobuf, invalid JSON, a field of the wrong
  type, a timestamp that is not a number, an unknown enum name) is refused as a whole with a
  ``MalformedBody``/``ValidationFailed`` that names the place, e.g.
  ``resourceSpans[0].scopeSpans[1].spans[3].attributes[2].value.intValue: ...``;
* a span that decodes but cannot be stored (missing or wrong-length ids, all-zero ids, more
  attributes or events than the limits allow, attribute values nested too deep) is returned in
  ``rejected`` with a reason, so the route can answer ``partial_success``;
* more spans in one request than ``limits.max_spans`` is a ``PayloadTooLarge`` (413).

Attribute values keep their OTLP type: ``str``, ``bool``, ``int``, ``float``, ``bytes``,
``list`` (arrayValue), ``dict`` (kvlistValue) or ``None`` (an empty AnyValue).

The decoders live beside this module, which still offers every public name it defined:
``otlp_decode_protobuf`` (protobuf), ``otlp_decode_json`` (the JSON document) with
``otlp_decode_json_values`` (its leaf values), and ``otlp_decode_common`` (limits, the result, the
per-span error, kind and status names).
"""

from __future__ import annotations

from tracehive.ingest.otlp_decode_common import (
    DEFAULT_MAX_DEPTH,
    KIND_NAMES,
    MAX_REASONS_KEPT,
    STATUS_NAMES,
    DecodedRequest,
    DecodeLimits,
    SpanInvalid,
    check_span_count,
)
from tracehive.ingest.otlp_decode_json import decode_json, decode_json_document
from tracehive.ingest.otlp_decode_protobuf import (
    any_value_from_pb,
    attributes_from_pb,
    decode_protobuf,
    span_from_pb,
    span_location,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "KIND_NAMES",
    "MAX_REASONS_KEPT",
    "STATUS_NAMES",
    "DecodeLimits",
    "DecodedRequest",
    "SpanInvalid",
    "any_value_from_pb",
    "attributes_from_pb",
    "check_span_count",
    "decode_json",
    "decode_json_document",
    "decode_protobuf",
    "span_from_pb",
    "span_location",
]
