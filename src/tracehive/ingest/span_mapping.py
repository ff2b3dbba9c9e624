"""OTLP span → event mapping (contract 5.4, 8.3–8.7): turns the decoder's ``DecodedSpan``s into
canonical ``Event``s. Pure: no I/O, no clock, no randomness, so a re-exported span maps to the same
event (the store upserts by ``event_id``). Never raises; a span that cannot be mapped is reported in
``MappedSpans.rejected``.

Decisions (each also covered by ``tests/unit/test_span_mapping.py``):

Identity
- ``event_id``: ``honeyhive_event_id`` (then ``honeyhive.event_id``) when it is a UUID, lower-cased;
  otherwise ``uuid5(SPAN_NAMESPACE, trace_id + span_id)`` with lower-case hex ids, where
  ``SPAN_NAMESPACE = uuid5(NAMESPACE_URL, "tracehive:otlp:span")``. An explicit id equal to a session
  id of the batch is ignored (the store refuses an id that has both roles).
- ``session_id``: the first UUID among ``honeyhive.session_id``, ``traceloop.association.properties.
  session_id``, ``honeyhive_session_id``; else the first non-empty string among them; else
  ``gen_ai.conversation.id``; else OpenInference ``session.id``; a non-UUID string becomes
  ``uuid5(SESSION_NAMESPACE, value)`` (so OpenLLMetry users' free-form session ids still group) and
  names the implicit session. With none of these, the session is the trace: the 128-bit trace id read
  as a UUID (``uuid.UUID(hex=trace_id)``), named after the event name of the trace's root span when
  that root is in the batch.
- ``session_name_hint``: ``honeyhive.session_name`` → ``honeyhive_session_name`` → (see above); the
  same hint is put on every event of that session in the batch (the store reads the first one).
- ``parent_id``: spans with a ``parentSpanId`` point at the parent span's event id (an explicit
  ``honeyhive_event_id`` of a parent in the same batch is honoured; across batches the child names
  the derived id, which the parent's event carries in ``aliases`` and the store links, 8.7).
  ``honeyhive.parent_id`` / ``traceloop.association.properties.parent_id`` (a UUID) is used only
  for spans *without* a ``parentSpanId``: it comes from baggage and is stamped on every descendant,
  so using it everywhere would flatten the tree. Otherwise the parent is the session. A span is never
  its own parent.
- ``source``: ``honeyhive.source`` → ``honeyhive_source`` → ``traceloop.association.properties.
  source`` → ``default_source`` (X-Source) → the resource's ``service.name`` (not the SDKs'
  ``unknown_service...`` placeholder) → ``"unknown"``.

Type and name
- ``event_type``: a HoneyHive type present (``honeyhive_event_type``, ``honeyhive_event_type_raw``,
  ``honeyhive.event_type``; case-insensitive; ``session`` counts as ``tool``) is final: the first
  non-``tool`` one in that order, else ``tool``. Only spans with none of them get the resolution of
  8.5: ``gen_ai.operation.name`` → ``openinference.span.kind`` (unknown kinds → tool) →
  ``traceloop.span.kind`` (workflow/agent/task → chain, tool → tool) → span-name and attribute
  heuristics (the tracer's lists) → ``tool``.
- ``event_name``: ``honeyhive_event_name`` → ``honeyhive.event_name`` → ``traceloop.entity.name``
  → span name → ``"unknown"`` (non-string candidates are skipped).

Times
- ``start_time``/``end_time`` = ns / 1e6 (float ms), ``duration`` = (end - start) in ms from the
  integer nanoseconds. A missing or earlier end uses ``honeyhive_duration_ms`` when given, else
  end = start. ``honeyhive_duration_ms`` (the tracer's own stopwatch) is dropped when it agrees with
  the timestamps within max(1 ms, 10 %), and kept in ``metadata.attributes`` when it does not (it
  does not on ``<name>_error`` spans, where it is the failed call's duration). A span without a
  usable start time is rejected (inventing "now" would break idempotency).

Payload
- ``honeyhive_{inputs,outputs,config,metadata,metrics,feedback,user_properties}.*`` are rebuilt into
  objects; numeric segments make lists when every key of that level is a canonical index and the
  highest index < 2 × count + 8 (so ``None`` items the tracer skipped come back as ``None`` holes);
  anything else (mixed keys, very sparse or huge indexes, ``01``) stays a dict with string keys and
  never allocates by index. A key that is both a leaf and a prefix keeps the children and puts the
  leaf under ``_value``. Paths are capped at 32 segments (the rest stays one dotted key). The bare
  ``honeyhive_<field>`` key: an object (or a JSON-object string) is the field, merged under the
  dotted keys; any other value goes under ``_value``. Legacy ``honeyhive_prompt_template.*`` →
  ``config.prompt_template``. ``honeyhive_user_id`` → ``user_properties.user_id``.
- String values stay strings: ``@trace`` sends dict/list *arguments* as ``json.dumps`` strings and
  flattens return values itself (the fixture), and a ``str`` argument holding JSON is
  indistinguishable from a serialized dict; the REST path stores such strings verbatim too.
- HoneyHive keys win over third-party conventions, which only fill what is missing (OpenInference,
  OpenLLMetry/Traceloop, GenAI semconv, see ``_map_conventions``). Messages become
  ``inputs.chat_history`` (a list of ``{role, content, ...}``); output messages put the first
  message's fields at the top of ``outputs`` and all of them under ``outputs.choices`` when there are
  several. JSON-object input/output blobs are merged into ``inputs``/``outputs``; other blobs go to
  ``inputs.input`` / ``outputs.output``. Token counts use the HoneyHive names ``prompt_tokens``,
  ``completion_tokens``, ``total_tokens`` (total derived from the other two when absent).
- Errors: ``error`` = ``honeyhive_error`` (prefixed ``<honeyhive_error_type>: `` unless it already
  starts with it) → ERROR status message → first ``exception`` event's ``"<type>: <message>"`` →
  ``"span status ERROR"``. The first exception event goes to ``metadata.exception`` (keys without
  the ``exception.`` prefix), its type (or ``honeyhive_error_type``) to ``metadata.error_type``;
  repeated recordings of the same type and message are dropped, different ones kept in
  ``metadata.events``. ``<name>_error`` sibling spans are ordinary events.

Nothing silently lost
- Every attribute not represented in the event is kept verbatim under ``metadata.attributes``
  (flat, original keys). Dropped: keys whose value is represented (routing duplicates included,
  e.g. ``traceloop.association.properties.session_id``), the project keys (the API key decides the
  project, as on the REST routes), ``honeyhive.session_auto_create`` (the store always creates
  sessions) and underscore-normalized duplicates (``gen_ai_request_model``) whose dotted twin has
  the same value. A routing key whose value was not used (say an invalid UUID) is kept.
- ``metadata.resource`` = resource attributes, ``metadata.scope`` = ``{name, version}``,
  ``metadata.otel`` = ``{trace_id, span_id, parent_span_id, kind, status}``, ``metadata.events`` =
  span events not mapped elsewhere (``{name, time (ms), attributes}``). If the span's own metadata
  already uses one of these names, ours gets a ``_`` prefix.

Bounds and hygiene
- Values are made JSON-safe: non-finite floats become ``"NaN"``/``"Infinity"``/``"-Infinity"``
  (as the tracer sends them), ints outside 64 bits become strings, bytes become base64, other
  objects ``str()``, lone surrogates are replaced; nesting deeper than 32 levels becomes a JSON string.
  JSON is parsed only where a convention says so, without NaN, and only when it nests ≤ 32 levels.
- A span is rejected when its trace id (32 hex, not all zero) or span id (16 hex, not all zero) is
  invalid, its start time is unusable, or anything unexpected happens while mapping it.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha1 as _sha1
from operator import itemgetter
from typing import Any

import orjson

from tracehive.model.event import Event
from tracehive.model.ids import is_uuid
from tracehive.model.span import DecodedSpan
from tracehive.model.wire import MAX_NAME_LENGTH

__all__ = ["MappedSpans", "spans_to_events"]

MAX_DEPTH = 32
_SPARSE_SLACK = 8
_INDEX_DIGITS = 9
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_NS_MAX = 2**63 - 1
_HEX_RE = re.compile("[0-9a-f]+")
_isfinite = math.isfinite

SPAN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "tracehive:otlp:span")
SESSION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "tracehive:otlp:session")

_EVENT_TYPES = ("model", "tool", "chain")

_FAMILIES = {
    "honeyhive_inputs": "inputs",
    "honeyhive_outputs": "outputs",
    "honeyhive_config": "config",
    "honeyhive_metadata": "metadata",
    "honeyhive_metrics": "metrics",
    "honeyhive_feedback": "feedback",
    "honeyhive_user_properties": "user_properties",
}
_LEGACY_TEMPLATE = "honeyhive_prompt_template"

_SESSION_KEYS = (
    "honeyhive.session_id",
    "traceloop.association.properties.session_id",
    "honeyhive_session_id",
)
_SESSION_FALLBACK_KEYS = ("gen_ai.conversation.id", "session.id")
_SOURCE_KEYS = ("honeyhive.source", "honeyhive_source", "traceloop.association.properties.source")
_TYPE_KEYS = ("honeyhive_event_type", "honeyhive_event_type_raw", "honeyhive.event_type")
_NAME_KEYS = ("honeyhive_event_name", "honeyhive.event_name", "traceloop.entity.name")
_EVENT_ID_KEYS = ("honeyhive_event_id", "honeyhive.event_id")
_PARENT_KEYS = ("honeyhive.parent_id", "traceloop.association.properties.parent_id")
_SESSION_NAME_KEYS = ("honeyhive.session_name", "honeyhive_session_name")
_PROJECT_KEYS = ("honeyhive.project", "traceloop.association.properties.project", "honeyhive_project")

_GENAI_OPERATION_TYPES = {
    "chat": "model",
    "text_completion": "model",
    "generate_content": "model",
    "embeddings": "model",
    "invoke_agent": "chain",
    "create_agent": "chain",
    "invoke_workflow": "chain",
    "execute_tool": "tool",
    "retrieval": "tool",
}
_OPENINFERENCE_KIND_TYPES = {
    "LLM": "model",
    "CHAIN": "chain",
    "AGENT": "chain",
    "TOOL": "tool",
    "RETRIEVER": "tool",
    "EMBEDDING": "tool",
    "RERANKER": "tool",
    "GUARDRAIL": "tool",
}
_TRACELOOP_KIND_TYPES = {"workflow": "chain", "agent": "chain", "task": "chain", "tool": "tool"}
# The tracer's own heuristics (honeyhive/tracer/utils/event_type.py, 1.7.0).
_MODEL_NAME_HINTS = (
    "llm", "model", "gpt", "claude", "llama", "gemini", "mistral", "palm", "chat", "completion",
    "generate", "inference", "openai", "anthropic", "bedrock", "google", "generativeai",
    "ai_", "ml_", "nlp_",
)  # fmt: skip
_MODEL_ATTRIBUTE_HINTS = (
    "llm.request.model", "llm.response.model", "llm.model.name", "gen_ai.request.model",
    "gen_ai.response.model", "openai.model", "anthropic.model", "bedrock.model_id", "google.model",
    "model_name", "model_id", "model_type", "ai_model",
)  # fmt: skip

_MESSAGE_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}

_MISSING: Any = object()


@dataclass
class MappedSpans:
    events: list[Event]
    rejected: list[str]  # one human-readable reason per span that could not be mapped


def spans_to_events(spans: list[DecodedSpan], *, default_source: str | None = None) -> MappedSpans:
    """Map a batch of decoded spans to events, in input order. Never raises."""
    rejected: list[str] = []
    try:
        items = list(spans)
    except Exception as exc:  # noqa: BLE001 - not even a sequence
        return MappedSpans([], [f"the span batch is not a list ({type(exc).__name__})"])
    fallback_source = default_source if isinstance(default_source, str) and default_source.strip() else None
    if fallback_source is not None:
        fallback_source = _clean_str(fallback_source)

    drafts: list[_Draft] = []
    resources: dict[int, tuple[Any, dict[str, Any]]] = {}  # decoders share one dict per resource
    for position, span in enumerate(items):
        try:
            drafts.append(_draft(span, fallback_source, resources))
        except _Rejected as exc:
            rejected.append(f"{_label(span, position)}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a hostile span must not take the batch down
            rejected.append(
                f"{_label(span, position)}: could not be mapped ({type(exc).__name__}: {_short(exc)})"
            )

    events: list[Event] = []
    for draft, event in _link(drafts, rejected):
        if event is not None:
            events.append(event)
    return MappedSpans(events, rejected)


# Per-span draft ---------------------------------------------------------------------------------


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


def _service_name(resource: Mapping[str, Any] | None) -> str | None:
    """The resource's ``service.name``, unless it is the SDKs' placeholder for an unset one
    (``unknown_service``, ``unknown_service:python``...), which names nothing."""
    name = resource.get("service.name") if resource else None
    if not isinstance(name, str) or not name.strip() or name.startswith("unknown_service"):
        return None
    return name


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


def _link(drafts: list[_Draft], rejected: list[str]) -> Iterable[tuple[_Draft, Event | None]]:
    """Batch-level rules: event ids (explicit ids that clash with a session id are ignored),
    parents through the batch's span index, session name hints, then the metadata leftovers."""
    session_ids = {d.session_id for d in drafts}
    index: dict[tuple[str, str], str] = {}
    for d in drafts:
        derived = _span_event_id(d.trace_id, d.span_id)
        event_id = derived
        if d.explicit_event_id is not None:
            explicit, keys = d.explicit_event_id
            if explicit not in session_ids:
                event_id = explicit
                d.consumed.update(keys)
                d.event.aliases = (derived,)
        d.event.event_id = event_id
        index.setdefault((d.trace_id, d.span_id), event_id)

    root_names: dict[str, str] = {}
    for d in drafts:
        if d.parent_span_id is None:
            root_names.setdefault(d.trace_id, d.event.event_name)

    hints: dict[str, str] = {}
    for d in drafts:
        if d.session_hint is not None:
            hints.setdefault(d.session_id, d.session_hint)
    for d in drafts:
        if d.session_id in hints:
            continue
        if d.session_fallback_name is not None:
            hints[d.session_id] = d.session_fallback_name
        elif d.session_from_trace and d.trace_id in root_names:
            hints[d.session_id] = root_names[d.trace_id]

    for d in drafts:
        try:
            event = d.event
            if d.parent_span_id is not None:
                parent = index.get((d.trace_id, d.parent_span_id)) or _span_event_id(
                    d.trace_id, d.parent_span_id
                )
            elif d.explicit_parent is not None and d.explicit_parent[0] != event.event_id:
                parent, keys = d.explicit_parent
                d.consumed.update(keys)
            else:
                parent = event.session_id
            if parent == event.event_id:
                parent = event.session_id
            event.parent_id = parent
            event.session_name_hint = hints.get(d.session_id)
            _finish_metadata(d)
            yield d, event
        except Exception as exc:  # noqa: BLE001
            rejected.append(
                f"{_label(d.span, None)}: could not be mapped ({type(exc).__name__}: {_short(exc)})"
            )
            yield d, None


def _finish_metadata(d: _Draft) -> None:
    metadata = d.event.metadata
    attrs, consumed = d.attrs, d.consumed
    twins: dict[str, list[Any]] | None = None  # built on first need: most spans have no candidate
    leftover: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in consumed:
            continue
        if "." not in key and "_" in key:  # only such a key can be a dotted key with "." → "_"
            if twins is None:
                twins = {}
                for other, other_value in attrs.items():
                    if "." in other:
                        twins.setdefault(other.replace(".", "_"), []).append(other_value)
            if key in twins and any(value == twin for twin in twins[key]):
                continue  # underscore-normalized duplicate of a dotted attribute (contract 8.4)
        leftover[key] = value
    if leftover:
        _put_reserved(metadata, "attributes", leftover)
    for name in ("resource", "scope", "events"):
        if name in d.meta_sections:
            _put_reserved(metadata, name, d.meta_sections[name])
    _put_reserved(metadata, "otel", d.otel)


# Identity ---------------------------------------------------------------------------------------


_SPAN_NAMESPACE_BYTES = SPAN_NAMESPACE.bytes


def _span_event_id(trace_id: str, span_id: str) -> str:
    """``str(uuid.uuid5(SPAN_NAMESPACE, trace_id + span_id))``, without the intermediate UUID."""
    digest = bytearray(_sha1(_SPAN_NAMESPACE_BYTES + (trace_id + span_id).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _session(attrs: dict[str, Any], consumed: set[str], trace_id: str) -> tuple[str, bool, str | None]:
    """(session id, derived from the trace?, free-form value the id was derived from)."""
    keys = _SESSION_KEYS + _SESSION_FALLBACK_KEYS
    for key in _SESSION_KEYS:
        value = attrs.get(key)
        if is_uuid(value):
            session_id = value.lower()
            _consume_equal(attrs, consumed, keys, session_id)
            return session_id, False, None
    for key in keys:
        value = attrs.get(key)
        if key in _SESSION_FALLBACK_KEYS and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not _nonempty_str(value):
            continue
        if is_uuid(value):
            session_id = value.lower()
            _consume_equal(attrs, consumed, keys, session_id)
            return session_id, False, None
        # A free-form id: derive a UUID from it and leave the attribute in metadata.attributes,
        # since the stored id does not show it.
        return str(uuid.uuid5(SESSION_NAMESPACE, value)), False, value
    return str(uuid.UUID(hex=trace_id)), True, None


def _consume_equal(attrs: dict[str, Any], consumed: set[str], keys: Iterable[str], value: str) -> None:
    for key in keys:
        candidate = attrs.get(key)
        if isinstance(candidate, str) and (candidate == value or candidate.lower() == value):
            consumed.add(key)


def _explicit_uuid(attrs: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, list[str]] | None:
    for key in keys:
        value = attrs.get(key)
        if is_uuid(value):
            chosen = value.lower()
            same = [k for k in keys if isinstance(attrs.get(k), str) and attrs[k].lower() == chosen]
            return chosen, same
    return None


def _hex_id(value: Any, length: int) -> str | None:
    if not isinstance(value, str) or len(value) != length:
        return None
    lowered = value.lower()
    if _HEX_RE.fullmatch(lowered) is None or not lowered.strip("0"):  # not hex, or all zero
        return None
    return lowered


def _is_zero_hex(value: str) -> bool:
    return bool(value) and all(c == "0" for c in value)


def _nanos(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value)
    if not isinstance(value, int) or value <= 0 or value > _NS_MAX:
        return None
    return int(value)


# Type, name, source -----------------------------------------------------------------------------


def _event_type(attrs: dict[str, Any], consumed: set[str], span_name: str) -> str:
    found: list[tuple[str, str]] = []
    for key in _TYPE_KEYS:
        value = attrs.get(key)
        if isinstance(value, str):
            normalized = value.strip().lower()
            if normalized == "session":
                found.append((key, "tool"))
            elif normalized in _EVENT_TYPES:
                found.append((key, normalized))
    if found:
        chosen = next((t for _, t in found if t != "tool"), "tool")
        for key, normalized in found:
            if normalized == chosen and attrs[key].strip().lower() == chosen:
                consumed.add(key)
        return chosen
    return _resolve_type(attrs, span_name)


def _resolve_type(attrs: dict[str, Any], span_name: str) -> str:
    """Contract 8.5 for spans without a HoneyHive type (third-party exporters)."""
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation.strip().lower() in _GENAI_OPERATION_TYPES:
        return _GENAI_OPERATION_TYPES[operation.strip().lower()]
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.strip():
        return _OPENINFERENCE_KIND_TYPES.get(kind.strip().upper(), "tool")
    kind = attrs.get("traceloop.span.kind")
    if isinstance(kind, str) and kind.strip().lower() in _TRACELOOP_KIND_TYPES:
        return _TRACELOOP_KIND_TYPES[kind.strip().lower()]
    lowered = span_name.lower()
    if any(hint in lowered for hint in _MODEL_NAME_HINTS):
        return "model"
    if any(key in attrs for key in _MODEL_ATTRIBUTE_HINTS):
        return "model"
    return "tool"


def _capped(name: str) -> str:
    """A name within the REST routes' length limit. A span cannot be refused for a long name (OTLP
    has no per-span error), so it is cut, with an ellipsis showing that it was."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    return name[: MAX_NAME_LENGTH - 1] + "…"


def _first_str(attrs: dict[str, Any], keys: tuple[str, ...], consumed: set[str]) -> str | None:
    chosen = None
    for key in keys:
        value = attrs.get(key)
        if _nonempty_str(value):
            if chosen is None:
                chosen = value
            if value == chosen:
                consumed.add(key)
    return chosen


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


# HoneyHive payload families ---------------------------------------------------------------------


_FAMILY_HEADS = frozenset((*_FAMILIES, _LEGACY_TEMPLATE))
# What _families does with an attribute key: _PLAIN_KEY (nothing), _CONVENTION_KEY (one of the
# _CONVENTION_PREFIXES), or (family, path segments after it, or None for the bare key). Memoized per
# key string (senders repeat the same keys span after span); the memo is bounded.
_PLAIN_KEY: Any = object()
_CONVENTION_KEY: Any = object()
_KEY_KINDS: dict[str, Any] = {}
_KEY_KINDS_MAX = 16_384


def _key_kind(key: str) -> Any:
    head, dot, rest = key.partition(".")
    if head in _FAMILY_HEADS:
        kind = (head, tuple(rest.split(".")) if dot else None)
    elif key.startswith(_CONVENTION_PREFIXES):
        kind = _CONVENTION_KEY
    else:
        kind = _PLAIN_KEY
    if len(key) <= 256:
        if len(_KEY_KINDS) >= _KEY_KINDS_MAX:
            _KEY_KINDS.clear()
        _KEY_KINDS[key] = kind
    return kind


def _families(
    attrs: dict[str, Any], consumed: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[str, Sequence[str], Any]]] | None]:
    """The HoneyHive payload families (consuming their keys), and for ``_map_conventions`` the
    attributes under each of the (disjoint) ``_CONVENTION_PREFIXES``, in attribute order, as
    (key, segments after the prefix, value), by prefix without its dot; None when the span has no
    attribute that ``_map_conventions`` reads. The work that depends only on the attribute
    keys (which keys go where, the shape of the rebuilt objects) is a ``_FamilyPlan`` memoized per
    key tuple, since senders repeat the same keys span after span; only the values are placed per span."""
    global _family_plans_weight
    keys = tuple(attrs)
    plan = _FAMILY_PLANS.get(keys)
    if plan is None:
        plan = _family_plan(keys)
        weight = sum(map(len, keys)) + _PLAN_WEIGHT_PER_KEY * len(keys)
        if weight <= _FAMILY_PLANS_BUDGET // 8:  # a huge key set is compiled every time instead
            if _family_plans_weight + weight > _FAMILY_PLANS_BUDGET:
                _FAMILY_PLANS.clear()
                _family_plans_weight = 0
            _FAMILY_PLANS[keys] = plan
            _family_plans_weight += weight
    consumed.update(plan.consumed)
    values = tuple(attrs.values())
    out: dict[str, dict[str, Any]] = {}
    for field_name, build, root_index in plan.fields:
        children = build(values)
        out[field_name] = children if root_index is None else _with_root(children, values[root_index])
    if plan.template is not None:
        build, root_index = plan.template
        children = build(values)
        template = children if root_index is None else _with_root(children, values[root_index])
        if template:
            if "prompt_template" in out["config"]:
                out["config"][_free_key(out["config"], "prompt_template")] = template
            else:
                out["config"]["prompt_template"] = template
    if not plan.conventions:
        return out, None
    prefixed = {
        prefix: [(key, segments, values[i]) for key, segments, i in members]
        for prefix, members in plan.prefixed.items()
    }
    return out, prefixed


@dataclass(frozen=True, slots=True)
class _FamilyPlan:
    consumed: tuple[str, ...]  # the family keys
    fields: tuple[tuple[str, Callable[[tuple[Any, ...]], dict[str, Any]], int | None], ...]
    template: tuple[Callable[[tuple[Any, ...]], dict[str, Any]], int | None] | None
    prefixed: dict[str, list[tuple[str, tuple[str, ...], int]]]  # (key, segments, value position)
    conventions: bool  # any key that _map_conventions reads (else it has nothing to do)


# The memo of plans is bounded by weight (key characters plus an allowance per key for the plan's
# own objects), not count: a client must not fill memory with distinct key sets. When it is full it
# starts over; a miss costs about what mapping without plans costs.
_FAMILY_PLANS: dict[tuple[str, ...], _FamilyPlan] = {}
_FAMILY_PLANS_BUDGET = 2_000_000
_PLAN_WEIGHT_PER_KEY = 100
_family_plans_weight = 0


class _Slot:
    """Stands for the value at ``index`` of the attribute values while a plan is compiled."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _family_plan(keys: tuple[str, ...]) -> _FamilyPlan:
    groups: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
    roots: dict[str, int] = {}
    consumed: list[str] = []
    candidates: list[tuple[str, int]] = []
    for index, key in enumerate(keys):
        kind = _KEY_KINDS.get(key)
        if kind is None:
            kind = _key_kind(key)
        if kind is _PLAIN_KEY:
            continue
        if kind is _CONVENTION_KEY:
            candidates.append((key, index))
            continue
        head, segments = kind
        if segments is None:
            roots[head] = index
        else:
            groups.setdefault(head, []).append((segments, _Slot(index)))
        consumed.append(key)
    fields = tuple(
        (field_name, _field_builder(groups.get(family, ())), roots.get(family))
        for family, field_name in _FAMILIES.items()
    )
    template = None
    if _LEGACY_TEMPLATE in groups or _LEGACY_TEMPLATE in roots:
        template = (_field_builder(groups.get(_LEGACY_TEMPLATE, ())), roots.get(_LEGACY_TEMPLATE))
    prefixed: dict[str, list[tuple[str, tuple[str, ...], int]]] = {}
    for key, index in candidates:
        for dotted in _CONVENTION_PREFIXES:
            if key.startswith(dotted):
                segments = tuple(key[len(dotted) :].split("."))
                prefixed.setdefault(dotted[:-1], []).append((key, segments, index))
                break
    conventions = bool(prefixed) or not _CONVENTION_KEYS.isdisjoint(keys)
    return _FamilyPlan(tuple(consumed), fields, template, prefixed, conventions)


def _field_builder(
    entries: list[tuple[tuple[str, ...], Any]] | tuple[()],
) -> Callable[[tuple[Any, ...]], Any]:
    """A function of the attribute values that makes what ``_rebuild(entries, allow_list=False)``
    (wrapped as ``{"_value": ...}`` when not an object) makes of the real values."""
    children = _rebuild(entries, allow_list=False) if entries else {}
    if not isinstance(children, dict):
        children = {"_value": children}
    return _builder(children)


def _none(values: tuple[Any, ...]) -> None:
    return None


def _builder(shape: Any) -> Callable[[tuple[Any, ...]], Any]:
    """Compile a ``_rebuild`` result over ``_Slot``s into a function that makes a fresh copy of it
    with the slots filled from the values."""
    if type(shape) is _Slot:
        return itemgetter(shape.index)
    if shape is None:
        return _none  # a hole in a list
    items = list(shape.values()) if type(shape) is dict else shape
    if all(type(item) is _Slot for item in items):
        getter = itemgetter(*[item.index for item in items]) if items else None
        if type(shape) is dict:
            names = tuple(shape)
            if len(names) == 0:
                return lambda values: {}
            if len(names) == 1:
                name = names[0]
                return lambda values: {name: getter(values)}
            return lambda values: dict(zip(names, getter(values)))
        if len(items) == 1:
            return lambda values: [getter(values)]
        return lambda values: list(getter(values))
    builders = [_builder(item) for item in items]
    if type(shape) is dict:
        pairs = tuple(zip(shape, builders))
        return lambda values: {name: build(values) for name, build in pairs}
    return lambda values: [build(values) for build in builders]


def _with_root(children: dict[str, Any], root: Any) -> dict[str, Any]:
    """A field from its rebuilt dotted entries and the bare key's value (see the module docstring)."""
    obj = root if isinstance(root, dict) else None
    if obj is None and isinstance(root, str):
        ok, parsed = _parse_json(root)
        if ok and isinstance(parsed, dict):
            obj = parsed
    if obj is None:
        children[_free_key(children, "_value")] = root
        return children
    merged = {**obj, **children}
    clashes = {k: v for k, v in obj.items() if k in children}
    if clashes:
        merged[_free_key(merged, "_value")] = clashes
    return merged


# A tree node of _rebuild is a two-item list, [leaf value or _MISSING, {segment: node} or None]
# (cheaper than an object per path segment).


def _rebuild(entries: Iterable[tuple[Sequence[str], Any]], *, allow_list: bool = True) -> Any:
    """Nested objects from (path segments, value) pairs; see the module docstring for the rules."""
    root: list[Any] = [_MISSING, None]
    for segments, value in entries:
        if len(segments) > MAX_DEPTH:
            segments = [*segments[: MAX_DEPTH - 1], ".".join(segments[MAX_DEPTH - 1 :])]
        node = root
        for segment in segments:
            children = node[1]
            if children is None:
                children = node[1] = {}
                nxt = children[segment] = [_MISSING, None]
            else:
                nxt = children.get(segment)
                if nxt is None:
                    nxt = children[segment] = [_MISSING, None]
            node = nxt
        node[0] = value
    result = _materialize(root, allow_list)
    return {} if result is _MISSING else result


def _materialize(node: list[Any], allow_list: bool) -> Any:
    children = node[1]
    if not children:
        return node[0]
    out = {
        key: child[0] if child[1] is None else _materialize(child, True) for key, child in children.items()
    }
    if node[0] is not _MISSING:
        out[_free_key(out, "_value")] = node[0]
        return out
    return _as_list(out) if allow_list else out


def _as_list(obj: dict[str, Any]) -> Any:
    indexes = []
    for key in obj:
        # a canonical index: 1-9 ASCII digits, no leading zero ("".isdigit() is False)
        if not (
            key.isdigit() and key.isascii() and len(key) <= _INDEX_DIGITS and (key == "0" or key[0] != "0")
        ):
            return obj
        indexes.append(int(key))
    highest = max(indexes)
    if highest >= 2 * len(indexes) + _SPARSE_SLACK:
        return obj
    items: list[Any] = [None] * (highest + 1)
    for index, value in zip(indexes, obj.values()):
        items[index] = value
    return items


def _free_key(obj: Mapping[str, Any], name: str) -> str:
    while name in obj:
        name = "_" + name
    return name


def _put_reserved(metadata: dict[str, Any], name: str, value: Any) -> None:
    metadata[_free_key(metadata, name)] = value


# Third-party conventions ------------------------------------------------------------------------


class _Filler:
    """Fill a key only if it is free; the source attributes count as represented when the key ends
    up holding exactly this value."""

    def __init__(self, consumed: set[str]) -> None:
        self.consumed = consumed

    def __call__(self, target: dict[str, Any], key: str, value: Any, sources: Iterable[str] = ()) -> bool:
        if key not in target:
            target[key] = value
        elif target[key] != value:
            return False
        self.consumed.update(sources)
        return True

    def spread(self, target: dict[str, Any], obj: dict[str, Any], sources: Iterable[str]) -> bool:
        ok = True
        for key, value in obj.items():
            ok = self(target, key, value) and ok
        if ok:
            self.consumed.update(sources)
        return ok


# Every attribute _map_conventions reads besides those under _CONVENTION_PREFIXES; keep in sync.
_CONVENTION_KEYS = frozenset((
    "gen_ai.input.messages", "gen_ai.output.messages", "input.value", "input.mime_type", "output.value",
    "output.mime_type", "traceloop.entity.input", "traceloop.entity.output", "llm.model_name",
    "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.invocation_parameters",
    "gen_ai.response.model", "llm.usage.total_tokens", "user.id",
))  # fmt: skip
_GENAI_USAGE_NAMES = {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"}
_TOKEN_COUNT_NAMES = {"prompt": "prompt_tokens", "completion": "completion_tokens", "total": "total_tokens"}
_CONVENTION_PREFIXES = (
    "llm.input_messages.", "gen_ai.prompt.", "llm.output_messages.", "gen_ai.completion.",
    "gen_ai.request.", "gen_ai.usage.", "llm.token_count.",
)  # fmt: skip


def _fill_prefix(
    fill: _Filler,
    target: dict[str, Any],
    members: list[tuple[str, Sequence[str], Any]] | None,
    rename: Mapping[str, str] | None = None,
) -> None:
    """``prefix.<name>[.<rest>]`` → ``target[rename(name)]``, one rebuilt subtree per name;
    ``members`` are the prefix's entries from ``_families``."""
    if not members:
        return
    grouped: dict[str, list[tuple[str, Sequence[str], Any]]] = {}
    for key, segments, value in members:
        grouped.setdefault(segments[0], []).append((key, segments[1:], value))
    for name, group in grouped.items():
        if len(group) == 1 and not group[0][1]:
            value = group[0][2]  # what _rebuild makes of one entry with no segments left
        else:
            value = _rebuild([(rest, v) for _, rest, v in group])
        fill(target, rename.get(name, name) if rename else name, value, [k for k, _, _ in group])


def _map_conventions(
    attrs: dict[str, Any],
    fill: _Filler,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    config: dict[str, Any],
    metadata: dict[str, Any],
    user_properties: dict[str, Any],
    prefixed: dict[str, list[tuple[str, Sequence[str], Any]]],
) -> None:
    """Fill what the HoneyHive keys left free from third-party conventions. Reads only the keys under
    ``_CONVENTION_PREFIXES`` (given as ``prefixed``) and those in ``_CONVENTION_KEYS`` (the caller
    skips spans with neither)."""
    # Messages first: they outrank the raw input/output blobs. Each attribute lands in one place:
    # where the messages were mapped, the raw blob (OpenInference's input.value holds the whole
    # request: the same messages, the model...) is not spread beside them and stays, as sent, in
    # metadata.attributes.
    had_history = "chat_history" in inputs
    for prefix in ("llm.input_messages", "gen_ai.prompt"):
        members = prefixed.get(prefix)
        if members:
            history = _message_list(_rebuild([(segments, v) for _, segments, v in members]))
            fill(inputs, "chat_history", history, [k for k, _, _ in members])
    messages = attrs.get("gen_ai.input.messages")
    parsed = _json_value(messages)
    if isinstance(parsed, list):
        fill(inputs, "chat_history", [_semconv_message(m) for m in parsed], ["gen_ai.input.messages"])
    input_messages = not had_history and "chat_history" in inputs

    outputs_before = len(outputs)
    for prefix in ("llm.output_messages", "gen_ai.completion"):
        members = prefixed.get(prefix)
        if members:
            items = _message_list(_rebuild([(segments, v) for _, segments, v in members]))
            _fill_outputs(fill, outputs, items, [k for k, _, _ in members])
    parsed = _json_value(attrs.get("gen_ai.output.messages"))
    if isinstance(parsed, list) and parsed:
        _fill_outputs(fill, outputs, [_semconv_message(m) for m in parsed], ["gen_ai.output.messages"])
    output_messages = len(outputs) > outputs_before

    # Raw input/output blobs, where no messages say the same.
    if not input_messages:
        _fill_blob(fill, inputs, "input", attrs, "input.value", "input.mime_type")
        _fill_blob(fill, inputs, "input", attrs, "traceloop.entity.input", None)
    if not output_messages:
        _fill_blob(fill, outputs, "output", attrs, "output.value", "output.mime_type")
        _fill_blob(fill, outputs, "output", attrs, "traceloop.entity.output", None)

    # Config. config.model is the model asked for (gen_ai.request.model, or the model among
    # OpenInference's invocation parameters); the model that answered (gen_ai.response.model,
    # OpenInference's llm.model_name, often a dated variant) goes to metadata.response_model,
    # and is config.model too only when the request's model is unknown.
    _fill_prefix(fill, config, prefixed.get("gen_ai.request"))
    for key in ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"):
        if _nonempty_str(attrs.get(key)):
            fill(config, "provider", attrs[key], [key])
    params = _json_value(attrs.get("llm.invocation_parameters"))
    if isinstance(params, dict):
        fill.spread(config, params, ["llm.invocation_parameters"])
    for key in ("gen_ai.response.model", "llm.model_name"):
        answered = attrs.get(key)
        if not _nonempty_str(answered):
            continue
        if "model" not in config:
            fill(config, "model", answered)
        fill(metadata, "response_model", answered, [key])

    # Usage.
    _fill_prefix(fill, metadata, prefixed.get("gen_ai.usage"), _GENAI_USAGE_NAMES)
    _fill_prefix(fill, metadata, prefixed.get("llm.token_count"), _TOKEN_COUNT_NAMES)
    if "llm.usage.total_tokens" in attrs:
        fill(metadata, "total_tokens", attrs["llm.usage.total_tokens"], ["llm.usage.total_tokens"])

    user_id = attrs.get("user.id")
    if _nonempty_str(user_id):
        fill(user_properties, "user_id", user_id, ["user.id"])


def _fill_blob(
    fill: _Filler,
    target: dict[str, Any],
    key: str,
    attrs: dict[str, Any],
    value_key: str,
    mime_key: str | None,
) -> None:
    if value_key not in attrs:
        return
    raw = attrs[value_key]
    sources = [value_key]
    parse = True
    if mime_key is not None:
        mime = attrs.get(mime_key)
        parse = isinstance(mime, str) and "json" in mime.lower()
        if mime_key in attrs:
            sources.append(mime_key)
    value = raw
    if parse and isinstance(raw, str):
        ok, parsed = _parse_json(raw)
        if ok:
            value = parsed
    if isinstance(value, dict):
        fill.spread(target, value, sources)
    else:
        fill(target, key, value, sources)


def _message_list(rebuilt: Any) -> Any:
    """OpenInference wraps each item as ``{"message": {...}}``; unwrap it."""
    items = rebuilt if isinstance(rebuilt, list) else None
    if items is None:
        return rebuilt
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("message"), dict):
            inner = dict(item["message"])
            for key, value in item.items():
                if key != "message":
                    inner.setdefault(key, value)
            item = inner
        out.append(item)
    return out


def _semconv_message(message: Any) -> Any:
    """GenAI semconv ``{role, parts: [{type: "text", content}]}`` → ``{role, content}`` when every
    part is text; other messages are kept as they are."""
    if not isinstance(message, dict):
        return message
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        return message
    texts = []
    for part in parts:
        if not (
            isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str)
        ):
            return message
        texts.append(part["content"])
    out = {k: v for k, v in message.items() if k != "parts"}
    out.setdefault("content", "\n".join(texts))
    return out


def _fill_outputs(fill: _Filler, outputs: dict[str, Any], items: Any, sources: list[str]) -> None:
    if not isinstance(items, list):
        fill(outputs, "choices", items, sources)
        return
    ok = True
    first = items[0] if items else None
    if isinstance(first, dict):
        for key, value in first.items():
            ok = fill(outputs, key, value) and ok
    if len(items) > 1 or not isinstance(first, dict):
        ok = fill(outputs, "choices", items) and ok
    if ok:
        fill.consumed.update(sources)


def _derive_total_tokens(metadata: dict[str, Any]) -> None:
    if "total_tokens" in metadata:
        return
    prompt, completion = metadata.get("prompt_tokens"), metadata.get("completion_tokens")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (prompt, completion)):
        metadata["total_tokens"] = prompt + completion


# Span events and errors -------------------------------------------------------------------------


_NO_EVENTS: tuple[()] = ()


def _span_events(span: Any) -> list[tuple[str, float | None, dict[str, Any]]]:
    raw = getattr(span, "events", ()) or _NO_EVENTS
    if raw is _NO_EVENTS:
        return []
    if not isinstance(raw, (list, tuple)):
        return [("(malformed events)", None, {"value": _clean(raw)})]
    out = []
    for item in raw:
        name = getattr(item, "name", None)
        name = _clean_str(name) if isinstance(name, str) else ""
        time_ns = _nanos(getattr(item, "time_unix_nano", None))
        attrs = getattr(item, "attributes", None)
        attrs = _clean_attrs(attrs) if isinstance(attrs, Mapping) else {}
        out.append((name, None if time_ns is None else time_ns / 1_000_000, attrs))
    return out


def _event_record(name: str, time_ms: float | None, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "time": time_ms, "attributes": attrs}


def _map_message_events(
    events: list[tuple[str, float | None, dict[str, Any]]],
    fill: _Filler,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
) -> list[tuple[str, float | None, dict[str, Any]]]:
    """GenAI span events (``gen_ai.<role>.message``, ``gen_ai.choice``, and the older
    ``gen_ai.content.prompt|completion``) → chat history / outputs. Returns the events left over."""
    history: list[Any] = []
    history_events = []
    choices: list[Any] = []
    choice_events = []
    rest = []
    for ev in events:
        name, _, attrs = ev
        if name in _MESSAGE_EVENT_ROLES:
            message = _event_message(attrs)
            message.setdefault("role", _MESSAGE_EVENT_ROLES[name])
            history.append(message)
            history_events.append(ev)
        elif name == "gen_ai.choice":
            message = _event_message({k: v for k, v in attrs.items() if k not in ("finish_reason", "index")})
            message.setdefault("role", "assistant")
            for key in ("finish_reason", "index"):
                if key in attrs:
                    message.setdefault(key, attrs[key])
            choices.append(message)
            choice_events.append(ev)
        elif name == "gen_ai.content.prompt" and isinstance(_json_value(attrs.get("gen_ai.prompt")), list):
            history.extend(_json_value(attrs.get("gen_ai.prompt")))
            history_events.append(ev)
        elif name == "gen_ai.content.completion" and isinstance(
            _json_value(attrs.get("gen_ai.completion")), list
        ):
            choices.extend(_json_value(attrs.get("gen_ai.completion")))
            choice_events.append(ev)
        else:
            rest.append(ev)
    if history and not fill(inputs, "chat_history", history):
        rest.extend(history_events)
    if choices:
        probe = _Filler(set())
        trial = dict(outputs)
        _fill_outputs(probe, trial, choices, ["ok"])
        if "ok" in probe.consumed:
            outputs.update(trial)
        else:
            rest.extend(choice_events)
    return rest


def _event_message(attrs: dict[str, Any]) -> dict[str, Any]:
    """An event's attributes as a message: ``message`` may be a JSON string or flattened keys;
    ``gen_ai.*`` attributes (system/provider) are not part of the message."""
    plain = {k: v for k, v in attrs.items() if not k.startswith("gen_ai.")}
    embedded = _json_value(plain.get("message"))
    message: dict[str, Any] = {}
    if isinstance(embedded, dict):
        message.update(embedded)
        plain.pop("message")
    rebuilt = _rebuild([(k.split("."), v) for k, v in plain.items()], allow_list=False)
    if isinstance(rebuilt.get("message"), dict):
        for key, value in rebuilt.pop("message").items():
            message.setdefault(key, value)
    for key, value in rebuilt.items():
        message.setdefault(key, value)
    if isinstance(message.get("content"), str):
        ok, parsed = _parse_json(message["content"])
        if ok and isinstance(parsed, (list, dict)):
            message["content"] = parsed
    return message


def _errors(
    span: Any,
    attrs: dict[str, Any],
    fill: _Filler,
    metadata: dict[str, Any],
    events: list[tuple[str, float | None, dict[str, Any]]],
) -> tuple[str | None, list[dict[str, Any]]]:
    exceptions = [ev for ev in events if ev[0] == "exception"]
    leftover = [_event_record(*ev) for ev in events if ev[0] != "exception"]
    first: dict[str, Any] | None = None
    if exceptions:
        first = {k.removeprefix("exception."): v for k, v in exceptions[0][2].items()}
        _put_reserved(metadata, "exception", first)
        seen = {(_short(first.get("type")), _short(first.get("message"), 10_000))}
        for ev in exceptions[1:]:
            key = (_short(ev[2].get("exception.type")), _short(ev[2].get("exception.message"), 10_000))
            if key not in seen:
                seen.add(key)
                leftover.append(_event_record(*ev))

    error_type = attrs.get("honeyhive_error_type")
    if _nonempty_str(error_type):
        fill(metadata, "error_type", error_type, ["honeyhive_error_type"])
    elif first is not None and _nonempty_str(first.get("type")):
        fill(metadata, "error_type", first["type"])

    explicit = attrs.get("honeyhive_error")
    if explicit is not None and explicit != "":
        text = _as_text(explicit)
        if _nonempty_str(error_type) and not text.startswith(error_type):
            text = f"{error_type}: {text}"
        fill.consumed.add("honeyhive_error")
        return text, leftover
    status_code = getattr(span, "status_code", "")
    message = getattr(span, "status_message", "")
    if status_code == "STATUS_CODE_ERROR" and isinstance(message, str) and message.strip():
        return _clean_str(message), leftover
    if first is not None:
        kind, text = first.get("type"), first.get("message")
        parts = [_as_text(p) for p in (kind, text) if p not in (None, "")]
        if parts:
            return ": ".join(parts), leftover
    if status_code == "STATUS_CODE_ERROR":
        return "span status ERROR", leftover
    return None, leftover


# Values -----------------------------------------------------------------------------------------


def _clean(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of an attribute value (see "Bounds and hygiene")."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _clean_str(value)
    if value is None or kind is bool:
        return value
    if kind is float and math.isfinite(value):
        return value
    if kind is int and _INT_MIN <= value <= _INT_MAX:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, int):
        return int(value) if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= MAX_DEPTH:
            return _too_deep(value)
        if isinstance(value, Mapping):
            return {_clean_key(k): _clean(v, depth + 1) for k, v in value.items()}
        return [_clean(v, depth + 1) for v in value]
    return _clean_str(str(value))


def _clean_attrs(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """``{_clean_key(k): _clean(v)}``, with the common case (ASCII ``str`` keys and values) inline."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if type(k) is not str or not k.isascii():
            k = _clean_key(k)
        kind = type(v)
        if kind is str:
            if not v.isascii():
                v = _clean(v)
        elif kind is int:
            if not _INT_MIN <= v <= _INT_MAX:
                v = _clean(v)
        elif kind is not bool and v is not None and not (kind is float and _isfinite(v)):
            v = _clean(v)
        out[k] = v
    return out


def _too_deep(value: Any) -> str:
    try:
        return _clean_str(json.dumps(value, default=str))
    except (ValueError, TypeError, RecursionError):
        return f"<value nested deeper than {MAX_DEPTH} levels>"


def _clean_key(key: Any) -> str:
    return _clean_str(key if isinstance(key, str) else str(key))


def _clean_str(text: str) -> str:
    if text.isascii():
        return str(text)
    try:
        text.encode("utf-8")
        return str(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_HUGE = 2.0**63


class _Unsure(Exception):
    """orjson's reading of a document may differ from the stdlib's: let the stdlib decide."""


def _clean_parsed(value: Any, depth: int = 0) -> Any:
    """``_clean`` of what orjson parsed (only dict, list, str, int, finite float, bool, None), in
    one pass that also raises ``_Unsure`` past MAX_DEPTH (refused either way) and on a float of
    2**63 or more (perhaps an integer past 64 bits, which the stdlib keeps exact)."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _clean_str(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _Unsure
        return {(k if k.isascii() else _clean_str(k)): _clean_parsed(v, depth + 1) for k, v in value.items()}
    if kind is list:
        if depth >= MAX_DEPTH:
            raise _Unsure
        return [_clean_parsed(v, depth + 1) for v in value]
    if kind is float:
        if -_HUGE < value < _HUGE:
            return value
        raise _Unsure
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    return value  # True, False, None


def _parse_json(text: str) -> tuple[bool, Any]:
    """(True, JSON-safe value) when ``text`` is strict JSON nesting at most MAX_DEPTH levels."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["-0123456789tfn':
        return False, None
    # orjson first: about 4x faster on the prompt/completion blobs LLM spans carry. The stdlib
    # decides what orjson refuses (lone surrogates, nesting past 1024 levels) and whatever
    # _clean_parsed is unsure of: the result is the same either way.
    try:
        return True, _clean_parsed(orjson.loads(stripped))
    except (orjson.JSONDecodeError, _Unsure):
        pass
    try:
        value = json.loads(stripped, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None
    if _depth_exceeds(value, MAX_DEPTH):
        return False, None
    return True, _clean(value)


def _json_value(value: Any) -> Any:
    """A convention attribute that is JSON text (or already structured): the parsed value, else None."""
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, str):
        ok, parsed = _parse_json(value)
        if ok:
            return parsed
    return None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


# Reporting --------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__}>"
    text = _clean_str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(span: Any, position: int | None) -> str:
    where = f"span #{position}" if position is not None else "span"
    try:
        name = getattr(span, "name", None)
        trace_id = getattr(span, "trace_id", None)
        span_id = getattr(span, "span_id", None)
    except Exception:  # noqa: BLE001
        return where
    details = []
    if isinstance(name, str):
        details.append(f"name {_short(name, 60)}")
    if isinstance(trace_id, str):
        details.append(f"trace {_short(trace_id, 40)}")
    if isinstance(span_id, str):
        details.append(f"span {_short(span_id, 24)}")
    return f"{where} ({', '.join(details)})" if details else where
