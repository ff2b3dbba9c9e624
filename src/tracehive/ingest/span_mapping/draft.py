"""One span → a ``_Draft``: its event with everything that needs only the span itself (identity
candidates, type, name, source, times, payload, errors, the ``metadata`` sections to add). What needs
the whole batch (event ids, parents, session names, leftover attributes) is done by ``link``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracehive.ingest.span_mapping.conventions import _derive_total_tokens, _Filler, _map_conventions
from tracehive.ingest.span_mapping.families import _families
from tracehive.ingest.span_mapping.hygiene import _clean, _clean_attrs, _clean_str
from tracehive.ingest.span_mapping.identity import (
    _EVENT_ID_KEYS,
    _PARENT_KEYS,
    _SESSION_NAME_KEYS,
    _explicit_uuid,
    _hex_id,
    _is_zero_hex,
    _nanos,
    _session,
)
from tracehive.ingest.span_mapping.reporting import _short
from tracehive.ingest.span_mapping.span_events import _errors, _map_message_events, _span_events
from tracehive.ingest.span_mapping.type_and_name import (
    _NAME_KEYS,
    _SOURCE_KEYS,
    _capped,
    _event_type,
    _first_str,
    _service_name,
)
from tracehive.model.event import Event

_PROJECT_KEYS = ("honeyhive.project", "traceloop.association.properties.project", "honeyhive_project")


class _Rejected(Exception):
    pass


@dataclass(slots=True)
class _Draft:
    span: Any
    trace_id: str
    span_id: str
    parent_span_id: str | None
    attrs: dict[str, Any]
    consumed: set[str]
    session_id: str
    session_from_trace: bool
    session_hint: str | None  # explicit name for the session
    session_fallback_name: str | None  # the free-form id the session was derived from
    explicit_event_id: tuple[str, list[str]] | None
    explicit_parent: tuple[str, list[str]] | None
    event: Event
    meta_sections: dict[str, Any] = field(default_factory=dict)
    otel: dict[str, Any] = field(default_factory=dict)


def _draft(span: Any, default_source: str | None, resources: dict[int, tuple[Any, dict[str, Any]]]) -> _Draft:
    trace_id = _hex_id(getattr(span, "trace_id", None), 32)
    if trace_id is None:
        raise _Rejected(
            f"invalid trace id {_short(getattr(span, 'trace_id', None))} (want 32 hex digits, not all zero)"
        )
    span_id = _hex_id(getattr(span, "span_id", None), 16)
    if span_id is None:
        raise _Rejected(
            f"invalid span id {_short(getattr(span, 'span_id', None))} (want 16 hex digits, not all zero)"
        )
    raw_parent = getattr(span, "parent_span_id", None)
    parent_span_id = _hex_id(raw_parent, 16)

    start_ns = _nanos(getattr(span, "start_time_unix_nano", None))
    if start_ns is None:
        raise _Rejected(f"unusable start time {_short(getattr(span, 'start_time_unix_nano', None))}")
    end_ns = _nanos(getattr(span, "end_time_unix_nano", None))

    raw_attrs = getattr(span, "attributes", None)
    if raw_attrs is None:
        raw_attrs = {}
    if not isinstance(raw_attrs, Mapping):
        raise _Rejected(f"attributes are a {type(raw_attrs).__name__}, not a mapping")
    attrs = _clean_attrs(raw_attrs)
    consumed: set[str] = set(_PROJECT_KEYS)
    if isinstance(attrs.get("honeyhive.session_auto_create"), bool):
        consumed.add("honeyhive.session_auto_create")

    span_name = getattr(span, "name", "")
    span_name = _clean_str(span_name) if isinstance(span_name, str) else ""

    # Session.
    session_id, session_from_trace, fallback_name = _session(attrs, consumed, trace_id)
    hint = _first_str(attrs, _SESSION_NAME_KEYS, consumed)

    resource_attrs: dict[str, Any] | None = None
    resource = getattr(span, "resource_attributes", None)
    if isinstance(resource, Mapping) and resource:
        cached = resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            cached = resources[id(resource)] = (
                resource,
                _clean_attrs(resource),
            )
        resource_attrs = cached[1]

    named_source = _first_str(attrs, _SOURCE_KEYS, consumed) or default_source or _service_name(resource_attrs)
    source = _capped(named_source or "unknown")

    event_type = _event_type(attrs, consumed, span_name)
    event_name = _capped(_first_str(attrs, _NAME_KEYS, consumed) or (span_name if span_name.strip() else "unknown"))

    # Times.
    start_ms = start_ns / 1_000_000
    if end_ns is not None and end_ns >= start_ns:
        duration = (end_ns - start_ns) / 1_000_000
        end_ms = end_ns / 1_000_000
        _check_duration(attrs, consumed, duration)
    else:
        stopwatch = _finite_nonneg(attrs.get("honeyhive_duration_ms"))
        duration = stopwatch if stopwatch is not None else 0.0
        if stopwatch is not None:
            consumed.add("honeyhive_duration_ms")
        end_ms = start_ms + duration

    # Payload.
    fields, prefixed = _families(attrs, consumed)
    inputs, outputs, config = fields["inputs"], fields["outputs"], fields["config"]
    metadata, user_properties = fields["metadata"], fields["user_properties"]
    fill = _Filler(consumed)
    user_id = attrs.get("honeyhive_user_id")
    if user_id is not None:
        fill(user_properties, "user_id", user_id, ["honeyhive_user_id"])
    if prefixed is not None:
        _map_conventions(attrs, fill, inputs, outputs, config, metadata, user_properties, prefixed)

    events = _span_events(span)
    leftover_events = _map_message_events(events, fill, inputs, outputs) if events else events
    error, leftover_events = _errors(span, attrs, fill, metadata, leftover_events)
    _derive_total_tokens(metadata)

    explicit_event_id = _explicit_uuid(attrs, _EVENT_ID_KEYS)
    explicit_parent = _explicit_uuid(attrs, _PARENT_KEYS)

    otel: dict[str, Any] = {"trace_id": trace_id, "span_id": span_id}
    if parent_span_id is not None:
        otel["parent_span_id"] = parent_span_id
    elif raw_parent not in (None, "") and not (isinstance(raw_parent, str) and _is_zero_hex(raw_parent)):
        otel["parent_span_id"] = _clean(raw_parent)  # unusable: the span is treated as a root
    kind = getattr(span, "kind", "")
    if isinstance(kind, str) and kind:
        otel["kind"] = _clean_str(kind)
    status_code = getattr(span, "status_code", "")
    status_message = getattr(span, "status_message", "")
    if isinstance(status_code, str) and status_code and status_code != "STATUS_CODE_UNSET":
        status: dict[str, Any] = {"code": _clean_str(status_code)}
        if isinstance(status_message, str) and status_message:
            status["message"] = _clean_str(status_message)
        otel["status"] = status

    sections: dict[str, Any] = {}
    if resource_attrs is not None:
        sections["resource"] = dict(resource_attrs)
    scope: dict[str, Any] = {}
    for attr, key in (("scope_name", "name"), ("scope_version", "version")):
        value = getattr(span, attr, "")
        if isinstance(value, str) and value:
            scope[key] = _clean_str(value)
    if scope:
        sections["scope"] = scope
    if leftover_events:
        sections["events"] = leftover_events

    event = Event(
        event_id="",  # set by _link
        session_id=session_id,
        parent_id=None,
        event_type=event_type,
        event_name=event_name,
        source=source,
        inherit_source=not named_source and event_type != "session",
        start_time=start_ms,
        end_time=end_ms,
        duration=duration,
        error=error,
        config=config,
        inputs=inputs,
        outputs=outputs or None,
        metadata=metadata,
        feedback=fields["feedback"],
        metrics=fields["metrics"],
        user_properties=user_properties,
    )
    return _Draft(
        span=span,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        attrs=attrs,
        consumed=consumed,
        session_id=session_id,
        session_from_trace=session_from_trace,
        session_hint=hint,
        session_fallback_name=fallback_name,
        explicit_event_id=explicit_event_id,
        explicit_parent=explicit_parent,
        event=event,
        meta_sections=sections,
        otel=otel,
    )


def _check_duration(attrs: dict[str, Any], consumed: set[str], duration: float) -> None:
    stopwatch = _finite_nonneg(attrs.get("honeyhive_duration_ms"))
    if stopwatch is None:
        return
    if abs(stopwatch - duration) <= max(1.0, 0.1 * max(stopwatch, duration)):
        consumed.add("honeyhive_duration_ms")


def _finite_nonneg(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)
