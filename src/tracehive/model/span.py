"""The decoded OpenTelemetry span: what the OTLP decoders (JSON, protobuf, gRPC) produce and the
span-to-event mapping consumes. Decoders never build events; the mapping never sees bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Attribute values keep their OTLP type: str, bool, int, float, bytes, list (arrayValue) or dict
# (kvlistValue); flattened HoneyHive keys stay flat here and are rebuilt by the mapping.
Attributes = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecodedSpan:
    trace_id: str  # 32 lower-case hex digits
    span_id: str  # 16 lower-case hex digits
    parent_span_id: str | None  # None for a root span (absent, null or empty on the wire)
    name: str
    kind: str  # enum name, e.g. "SPAN_KIND_INTERNAL"
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    status_code: str = "STATUS_CODE_UNSET"  # STATUS_CODE_UNSET | STATUS_CODE_OK | STATUS_CODE_ERROR
    status_message: str = ""
    resource_attributes: Attributes = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
