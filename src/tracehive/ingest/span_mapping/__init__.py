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
  OpenLLMetry/Traceloop, GenAI semconv, see ``conventions._map_conventions``). Messages become
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

Modules (one topic each)
- ``draft``: one span → a draft of its event (everything but the batch-level parts); times.
- ``link``: the batch-level rules: event ids, parents, session name hints, ``metadata`` leftovers.
- ``identity``: the namespaces, derived event ids, sessions, and the checks of raw ids and times.
- ``type_and_name``: ``event_type`` (8.5), ``event_name``, ``source``.
- ``families``: the ``honeyhive_<field>.*`` payload families, planned once per key set (memoized).
- ``rebuild``: dotted paths → nested objects (lists, ``_value``), and free key names.
- ``conventions``: OpenInference, OpenLLMetry/Traceloop and GenAI semconv attributes.
- ``span_events``: span events: GenAI messages, exceptions, the ``error`` field.
- ``hygiene``: JSON-safe values, strict JSON parsing.
- ``reporting``: how a rejected span is described.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracehive.ingest.span_mapping.draft import _Draft, _draft, _Rejected
from tracehive.ingest.span_mapping.hygiene import _clean_str
from tracehive.ingest.span_mapping.identity import SESSION_NAMESPACE, SPAN_NAMESPACE
from tracehive.ingest.span_mapping.link import _link
from tracehive.ingest.span_mapping.reporting import _label, _short
from tracehive.model.event import Event
from tracehive.model.span import DecodedSpan

__all__ = ["SESSION_NAMESPACE", "SPAN_NAMESPACE", "MappedSpans", "spans_to_events"]


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
