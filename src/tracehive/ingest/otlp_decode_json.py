"""Decoding OTLP/JSON (OTLP/HTTP ``application/json``): the document walked by hand, because
senders differ from the protobuf JSON mapping in ways a stock parser gets wrong (see
``ingest.otlp_decode``). Keys are read in lowerCamelCase and in snake_case; unknown keys are
ignored. The leaf values are read by ``otlp_decode_json_values``."""

from __future__ import annotations

from typing import Any

import orjson

from tracehive.ingest.otlp_decode_common import (
    _KIND_BY_NAME,
    _STATUS_BY_NAME,
    _UNSET_STATUS,
    _UNSPECIFIED_KIND,
    KIND_NAMES,
    STATUS_NAMES,
    DecodedRequest,
    DecodeLimits,
    SpanInvalid,
    check_span_count,
)
from tracehive.ingest.otlp_decode_json_values import (
    _bytes,
    _double,
    _enum,
    _get,
    _id_json,
    _int64,
    _kind,
    _Malformed,
    _str,
    _uint64,
)
from tracehive.model.errors import MalformedBody, ValidationFailed
from tracehive.model.span import Attributes, DecodedSpan, SpanEvent


def _fatal(where: str, exc: _Malformed) -> ValidationFailed:
    exc.under(where)
    return ValidationFailed(f"{exc.path}: {exc.message}", details=[{"field": exc.path, "message": exc.message}])


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
