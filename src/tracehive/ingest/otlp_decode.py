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
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from tracehive.model.errors import MalformedBody, PayloadTooLarge, ValidationFailed
from tracehive.model.span import Attributes, DecodedSpan, SpanEvent

KIND_NAMES: dict[int, str] = {v.number: v.name for v in trace_pb2.Span.SpanKind.DESCRIPTOR.values}
STATUS_NAMES: dict[int, str] = {v.number: v.name for v in trace_pb2.Status.StatusCode.DESCRIPTOR.values}
_KIND_BY_NAME = {name: name for name in KIND_NAMES.values()}
_STATUS_BY_NAME = {name: name for name in STATUS_NAMES.values()}
_UNSPECIFIED_KIND = KIND_NAMES[0]
_UNSET_STATUS = STATUS_NAMES[0]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
_HEX = frozenset("0123456789abcdefABCDEF")
MAX_REASONS_KEPT = 1000  # rejected-span reasons kept per request (the count is always exact)
DEFAULT_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on one request, on top of the byte cap on the (decompressed) body."""

    max_spans: int = 10_000  # spans per request; more is a 413
    max_attributes: int = 4096  # per span, span event, resource or scope; also kvlist/array length
    max_events: int = 1024  # span events per span
    max_depth: int = DEFAULT_MAX_DEPTH  # nesting of arrayValue/kvlistValue inside one attribute value

    @classmethod
    def from_settings(cls, settings: Any) -> DecodeLimits:
        return cls(max_spans=settings.max_batch_events, max_depth=min(DEFAULT_MAX_DEPTH, settings.max_json_depth))


@dataclass(slots=True)
class DecodedRequest:
    spans: list[DecodedSpan] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per rejected span (capped)
    rejected_count: int = 0  # exact number of rejected spans

    def reject(self, where: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REASONS_KEPT:
            self.rejected.append(f"{where}: {reason}")


class SpanInvalid(Exception):
    """This span cannot be kept (the request as a whole is fine); also raised by the checks
    ``otlp_validate`` shares with the decoder."""


class _Malformed(Exception):
    """Internal: the document is not an export request; ``path`` is relative to the raiser's
    caller, which prefixes its own part on the way up."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    def under(self, prefix: str) -> _Malformed:
        if not self.path:
            self.path = prefix
        elif self.path.startswith("["):
            self.path = prefix + self.path
        else:
            self.path = f"{prefix}.{self.path}"
        return self


def _fatal(where: str, exc: _Malformed) -> ValidationFailed:
    exc.under(where)
    return ValidationFailed(f"{exc.path}: {exc.message}", details=[{"field": exc.path, "message": exc.message}])


# ------------------------------------------------------------------------------------------------
# Protobuf
# ------------------------------------------------------------------------------------------------


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


def check_span_count(total: int, limits: DecodeLimits) -> None:
    if total > limits.max_spans:
        raise PayloadTooLarge(f"request of {total} spans exceeds the limit of {limits.max_spans} spans per request")


# ------------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------------


def decode_json(data: bytes, limits: DecodeLimits | None = None) -> DecodedRequest:
    """Decode OTLP/JSON bytes (standard or the HoneyHive tracer's dialect)."""
    if not data.strip():
        raise MalformedBody("request body is empty; an OTLP/JSON ExportTraceServiceRequest is required")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(_not_json(data, exc)) from None
    return decode_json_document(document, limits)


def _not_json(data: bytes, exc: orjson.JSONDecodeError) -> str:
    """What is wrong with a body orjson refused. For bytes that are not UTF-8 orjson only says
    "str is not valid UTF-8: surrogates not allowed", whatever the byte: name the byte instead."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        hint = " (it looks gzip-compressed)" if data[:2] == b"\x1f\x8b" else ""
        return f"request body is not valid UTF-8: invalid byte 0x{data[bad.start]:02x} at offset {bad.start}{hint}"
    return f"request body is not valid JSON: {exc}"


def decode_json_document(document: Any, limits: DecodeLimits | None = None) -> DecodedRequest:
    """Decode an already parsed OTLP/JSON document."""
    limits = limits or DecodeLimits()
    if type(document) is not dict:
        raise ValidationFailed(f"body: must be a JSON object (an ExportTraceServiceRequest), not {_kind(document)}")
    resource_spans = _list(document, "resourceSpans", "resource_spans", "")
    total = 0
    for i, rs in enumerate(resource_spans):
        if type(rs) is not dict:
            raise ValidationFailed(f"resourceSpans[{i}]: must be an object, not {_kind(rs)}")
        for j, ss in enumerate(_list(rs, "scopeSpans", "scope_spans", f"resourceSpans[{i}]")):
            if type(ss) is not dict:
                raise ValidationFailed(f"resourceSpans[{i}].scopeSpans[{j}]: must be an object, not {_kind(ss)}")
            total += len(_list(ss, "spans", "spans", f"resourceSpans[{i}].scopeSpans[{j}]"))
    check_span_count(total, limits)

    out = DecodedRequest()
    for i, rs in enumerate(resource_spans):
        where_rs = f"resourceSpans[{i}]"
        resource = _get(rs, "resource", "resource")
        resource_attrs: Attributes = {}
        if resource is not None:
            if type(resource) is not dict:
                raise ValidationFailed(f"{where_rs}.resource: must be an object, not {_kind(resource)}")
            try:
                resource_attrs = _attrs_json(_get(resource, "attributes", "attributes"), limits)
            except _Malformed as exc:
                raise _fatal(f"{where_rs}.resource.attributes", exc) from None
            except SpanInvalid as exc:
                raise ValidationFailed(f"{where_rs}.resource.attributes: {exc}") from None
        for j, ss in enumerate(_list(rs, "scopeSpans", "scope_spans", where_rs)):
            where_ss = f"{where_rs}.scopeSpans[{j}]"
            scope_name, scope_version = _scope_json(_get(ss, "scope", "scope"), where_ss)
            for k, span in enumerate(_list(ss, "spans", "spans", where_ss)):
                where = f"{where_ss}.spans[{k}]"
                try:
                    out.spans.append(_span_json(span, resource_attrs, scope_name, scope_version, limits))
                except SpanInvalid as exc:
                    out.reject(where, str(exc))
                except _Malformed as exc:
                    raise _fatal(where, exc) from None
    return out


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    if value is None and snake != camel:
        value = obj.get(snake)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _list(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if type(value) is not list:
        place = f"{where}.{camel}" if where else camel
        raise ValidationFailed(f"{place}: must be an array, not {_kind(value)}")
    return value


def _scope_json(scope: Any, where: str) -> tuple[str, str]:
    if scope is None:
        return "", ""
    if type(scope) is not dict:
        raise ValidationFailed(f"{where}.scope: must be an object, not {_kind(scope)}")
    try:
        return _str(scope, "name", "name"), _str(scope, "version", "version")
    except _Malformed as exc:
        raise _fatal(f"{where}.scope", exc) from None


def _span_json(span: Any, resource_attrs: Attributes, scope_name: str, scope_version: str,
               limits: DecodeLimits) -> DecodedSpan:
    if type(span) is not dict:
        raise _Malformed("", f"must be an object, not {_kind(span)}")
    trace_id = _id_json(_get(span, "traceId", "trace_id"), 16, "traceId")
    span_id = _id_json(_get(span, "spanId", "span_id"), 8, "spanId")
    parent_raw = _get(span, "parentSpanId", "parent_span_id")
    parent_id = None
    if parent_raw is not None and parent_raw != "" and not (type(parent_raw) is str and set(parent_raw) == {"0"}):
        parent_id = _id_json(parent_raw, 8, "parentSpanId")
    name = _str(span, "name", "name")
    kind = _enum(_get(span, "kind", "kind"), KIND_NAMES, _KIND_BY_NAME, "SPAN_KIND_", _UNSPECIFIED_KIND, "kind")
    start = _uint64(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _uint64(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    try:
        attributes = _attrs_json(_get(span, "attributes", "attributes"), limits)
    except _Malformed as exc:
        raise exc.under("attributes") from None
    raw_events = _get(span, "events", "events")
    events: tuple[SpanEvent, ...] = ()
    if raw_events is not None:
        if type(raw_events) is not list:
            raise _Malformed("events", f"must be an array, not {_kind(raw_events)}")
        if len(raw_events) > limits.max_events:
            raise SpanInvalid(f"{len(raw_events)} span events exceed the limit of {limits.max_events}")
        decoded_events = []
        for n, ev in enumerate(raw_events):
            try:
                decoded_events.append(_event_json(ev, limits))
            except _Malformed as exc:
                raise exc.under(f"events[{n}]") from None
        events = tuple(decoded_events)
    status_code, status_message = _UNSET_STATUS, ""
    status = _get(span, "status", "status")
    if status is not None:
        if type(status) is not dict:
            raise _Malformed("status", f"must be an object, not {_kind(status)}")
        status_code = _enum(_get(status, "code", "code"), STATUS_NAMES, _STATUS_BY_NAME, "STATUS_CODE_",
                            _UNSET_STATUS, "status.code")
        try:
            status_message = _str(status, "message", "message")
        except _Malformed as exc:
            raise exc.under("status") from None
    return DecodedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=attributes,
        events=events,
        status_code=status_code,
        status_message=status_message,
        resource_attributes=resource_attrs,
        scope_name=scope_name,
        scope_version=scope_version,
    )


def _event_json(ev: Any, limits: DecodeLimits) -> SpanEvent:
    if type(ev) is not dict:
        raise _Malformed("", f"must be an object, not {_kind(ev)}")
    time_ns = _uint64(_get(ev, "timeUnixNano", "time_unix_nano"), "timeUnixNano")
    name = _str(ev, "name", "name")
    try:
        attributes = _attrs_json(_get(ev, "attributes", "attributes"), limits)
    except _Malformed as exc:
        raise exc.under("attributes") from None
    return SpanEvent(name=name, time_unix_nano=time_ns, attributes=attributes)


def _str(obj: dict[str, Any], camel: str, snake: str) -> str:
    value = _get(obj, camel, snake)
    if value is None:
        return ""
    if type(value) is not str:
        raise _Malformed(camel, f"must be a string, not {_kind(value)}")
    return value


def _uint64(value: Any, name: str) -> int:
    """A fixed64 field: a JSON number or a decimal string (protobuf JSON accepts both)."""
    if value is None:
        return 0
    kind = type(value)
    if kind is str:
        text = value.strip()
        if text.isdigit() and text.isascii():
            # Python refuses int() of more than 4300 digits (ValueError); no uint64 has over 20.
            digits = text.lstrip("0") or "0"
            if len(digits) > len(str(_UINT64_MAX)):
                raise _Malformed(name, f"{value[:40]!r}... is out of the unsigned 64-bit range")
            n = int(digits)
        else:
            try:
                as_float = float(text)
            except ValueError:
                raise _Malformed(name, f"must be an unsigned 64-bit integer, got {value[:40]!r}") from None
            if not as_float.is_integer():
                raise _Malformed(name, f"must be an unsigned 64-bit integer, got {value[:40]!r}")
            n = int(as_float)
    elif kind is int:
        n = value
    elif kind is float and value.is_integer():
        n = int(value)
    else:
        raise _Malformed(name, f"must be an unsigned 64-bit integer, not {_kind(value)}")
    if not 0 <= n <= _UINT64_MAX:
        raise _Malformed(name, f"{n} is out of the unsigned 64-bit range")
    return n


def _int64(value: Any, name: str) -> int:
    kind = type(value)
    if kind is int:
        n = value
    elif kind is str:
        text = value.strip()
        try:
            n = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise _Malformed(name, f"must be a 64-bit integer, got {value[:40]!r}") from None
            if not as_float.is_integer():
                raise _Malformed(name, f"must be a 64-bit integer, got {value[:40]!r}") from None
            n = int(as_float)
    elif kind is float and value.is_integer():
        n = int(value)
    else:
        raise _Malformed(name, f"must be a 64-bit integer, not {_kind(value)}")
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise _Malformed(name, f"{n} is out of the signed 64-bit range")
    return n


def _double(value: Any, name: str) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if kind is str:
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _Malformed(name, f"must be a number, got {_kind(value) if kind is not str else repr(value[:40])}")


def _enum(value: Any, by_number: dict[int, str], by_name: dict[str, str], prefix: str, default: str,
          name: str) -> str:
    """An enum given as an integer (the OTLP rule) or as a name (``SPAN_KIND_INTERNAL``; the
    tracer's dialect). Unknown integers are unspecified (open enums); unknown names are errors."""
    if value is None:
        return default
    kind = type(value)
    if kind is int:
        return by_number.get(value, default)
    if kind is str:
        text = value.strip().upper()
        found = by_name.get(text) or by_name.get(prefix + text)
        # isascii: str.isdigit() is also true of "²" and other digits int() refuses; an enum number
        # of more than 10 digits is unknown anyway (and int() refuses more than 4300 digits).
        if found is None and text.isascii() and text.isdigit():
            digits = text.lstrip("0") or "0"
            return by_number.get(int(digits), default) if len(digits) <= 10 else default
        if found is None:
            raise _Malformed(name, f"unknown value {value[:40]!r}; expected one of {', '.join(by_number.values())}")
        return found
    raise _Malformed(name, f"must be an enum name or number, not {_kind(value)}")


def _id_json(value: Any, size: int, name: str) -> str:
    """A trace/span id: hex (OTLP/JSON), any letter case. Base64 (the plain protobuf JSON
    mapping) is accepted too: its lengths (24/12 chars) never collide with hex (32/16)."""
    if value is None or value == "":
        raise SpanInvalid(f"{name} is missing")
    if type(value) is not str:
        raise SpanInvalid(f"{name} must be a hex string, not {_kind(value)}")
    if len(value) == 2 * size and _HEX.issuperset(value):
        hex_id = value.lower()
    else:
        raw = None
        if len(value) == 4 * ((size + 2) // 3):
            try:
                raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                raw = None
        if raw is None or len(raw) != size:
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise SpanInvalid(f"{name} must be {2 * size} hex digits ({size} bytes), got {shown!r}")
        hex_id = raw.hex()
    if hex_id.count("0") == len(hex_id):
        raise SpanInvalid(f"{name} is all zeros (an invalid id)")
    return hex_id


def _attrs_json(items: Any, limits: DecodeLimits) -> Attributes:
    if items is None:
        return {}
    if type(items) is not list:
        raise _Malformed("", f"must be an array of {{key, value}} objects, not {_kind(items)}")
    if len(items) > limits.max_attributes:
        raise SpanInvalid(f"{len(items)} attributes exceed the limit of {limits.max_attributes}")
    out: Attributes = {}
    for n, kv in enumerate(items):
        if type(kv) is not dict:
            raise _Malformed(f"[{n}]", f"must be a {{key, value}} object, not {_kind(kv)}")
        key = kv.get("key")
        if type(key) is not str:
            raise _Malformed(f"[{n}].key", "must be a string" if key is not None else "is required")
        try:
            out[key] = _any_json(kv.get("value"), 0, limits)
        except _Malformed as exc:
            raise exc.under(f"[{n}].value") from None
    return out


def _any_json(value: Any, depth: int, limits: DecodeLimits) -> Any:
    """An AnyValue object: exactly one of its value keys is set (an empty object is unset)."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Malformed("", f"must be an AnyValue object, not {_kind(value)}")
    for key, inner in value.items():
        if inner is None:
            continue
        if key == "stringValue" or key == "string_value":
            if type(inner) is not str:
                raise _Malformed(key, f"must be a string, not {_kind(inner)}")
            return inner
        if key == "intValue" or key == "int_value":
            return _int64(inner, key)
        if key == "doubleValue" or key == "double_value":
            return _double(inner, key)
        if key == "boolValue" or key == "bool_value":
            if type(inner) is not bool:
                raise _Malformed(key, f"must be true or false, not {_kind(inner)}")
            return inner
        if key == "bytesValue" or key == "bytes_value":
            return _bytes(inner, key)
        if key in ("arrayValue", "array_value", "kvlistValue", "kvlist_value"):
            if depth >= limits.max_depth:
                raise SpanInvalid(f"an attribute value is nested deeper than {limits.max_depth} levels")
            if type(inner) is not dict:
                raise _Malformed(key, f"must be an object with 'values', not {_kind(inner)}")
            values = inner.get("values")
            if values is None:
                values = []
            elif type(values) is not list:
                raise _Malformed(f"{key}.values", f"must be an array, not {_kind(values)}")
            if len(values) > limits.max_attributes:
                raise SpanInvalid(f"a {key} of {len(values)} items exceeds the limit of {limits.max_attributes}")
            if key[0] == "a":
                items = []
                for n, item in enumerate(values):
                    try:
                        items.append(_any_json(item, depth + 1, limits))
                    except _Malformed as exc:
                        raise exc.under(f"{key}.values[{n}]") from None
                return items
            mapping: dict[str, Any] = {}
            for n, kv in enumerate(values):
                if type(kv) is not dict or type(kv.get("key")) is not str:
                    raise _Malformed(f"{key}.values[{n}]", "must be a {key, value} object with a string key")
                try:
                    mapping[kv["key"]] = _any_json(kv.get("value"), depth + 1, limits)
                except _Malformed as exc:
                    raise exc.under(f"{key}.values[{n}].value") from None
            return mapping
    return None  # {} or only unknown keys: an unset value


def _bytes(value: Any, name: str) -> bytes:
    if type(value) is not str:
        raise _Malformed(name, f"must be a base64 string, not {_kind(value)}")
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed(name, "must be base64") from None
