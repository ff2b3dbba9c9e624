"""The batch-level rules, once every span of the batch has a draft: event ids (explicit or
derived), parents through the batch's span index, session name hints, and the ``metadata`` leftovers
(unrepresented attributes, resource, scope, events, otel)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracehive.ingest.span_mapping.draft import _Draft
from tracehive.ingest.span_mapping.identity import _span_event_id
from tracehive.ingest.span_mapping.rebuild import _put_reserved
from tracehive.ingest.span_mapping.reporting import _label, _short
from tracehive.model.event import Event


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
