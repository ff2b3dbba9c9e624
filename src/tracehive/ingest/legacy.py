"""Normalisation of the legacy write routes (contract 3.5, 3.6, 4.11, 5.2, 5.5), on top of the
shared defaulting rules of ``normalize``.

Legacy bodies are lenient: an id that is not a UUID is replaced by a fresh UUIDv4 instead of
refused, an unknown ``event_type`` becomes ``tool``, and model events have their deprecated
aliases remapped. Within one request, the same invalid id always maps to the same fresh id, so a
batch that links its events with home-made ids ("span-1") keeps its parent/child links.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracehive.ingest.normalize import event_from_request, session_from_request
from tracehive.model import ids
from tracehive.model.event import Event
from tracehive.model.legacy_wire import MODEL_ALIASES_TO_INPUTS, LegacyEvent, LegacyModelEvent, LegacySession
from tracehive.model.wire import PostEventRequest, SessionProperties, StartSessionRequest

_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _key(raw: Any) -> str | None:
    """A map key for an invalid id, or None for values that cannot be told apart (objects)."""
    if isinstance(raw, str):
        return "s:" + raw
    if isinstance(raw, (bool, int, float)):
        return f"{type(raw).__name__}:{raw!r}"
    return None


@dataclass
class IdMap:
    """Fresh ids for the invalid ids of one request. Event ids and session ids are kept apart so
    that ``event_id: "x"`` and ``session_id: "x"`` do not collide into one id."""

    events: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def _fix(raw: Any, table: dict[str, str]) -> str | None:
        if raw is None:
            return None
        if ids.is_uuid(raw):
            return ids.normalize_id(raw)
        key = _key(raw)
        if key is None:
            return ids.new_id()
        if key not in table:
            table[key] = ids.new_id()
        return table[key]

    def event_id(self, raw: Any) -> str:
        return self._fix(raw, self.events) or ids.new_id()

    def session_id(self, raw: Any) -> str | None:
        return self._fix(raw, self.sessions)

    def reference(self, raw: Any) -> str | None:
        """A parent or child id: a UUID as sent, else the fresh id given to that invalid id in this
        request (as an event id, then as a session id), else None (a dangling home-made id would
        only make an orphan; without it the event hangs under its session)."""
        if raw is None:
            return None
        if ids.is_uuid(raw):
            return ids.normalize_id(raw)
        key = _key(raw)
        if key is None:
            return None
        return self.events.get(key) or self.sessions.get(key)


def _model_fields(event: LegacyModelEvent) -> dict[str, Any]:
    """The remapping of contract 4.11. Values already in ``inputs``/``outputs``/``config`` win
    over the deprecated top-level aliases. ``cost`` and the token counts of ``usage`` are also
    copied into ``metadata`` (unless set there), where session roll-ups look for them."""
    inputs = dict(event.inputs or {})
    if event.messages is not None:
        inputs.setdefault("messages", event.messages)
    for name in MODEL_ALIASES_TO_INPUTS:
        value = getattr(event, name)
        if value is not None:
            inputs.setdefault(name, value)
    # Contract 9.9: duration and error are copied into inputs *and* kept top-level.
    if event.duration is not None:
        inputs.setdefault("duration", event.duration)
    if event.error is not None:
        inputs.setdefault("error", event.error)

    outputs = dict(event.outputs) if event.outputs is not None else None
    if event.response is not None:
        outputs = outputs if outputs is not None else {}
        outputs.setdefault("response", event.response)

    config = dict(event.config or {})
    metadata = dict(event.metadata or {})
    model_name = event.model_name or event.model
    if model_name:
        if "model" not in config:
            config["model"] = model_name
        elif config["model"] != model_name:
            metadata.setdefault("model_name", model_name)
    if event.model_version:
        metadata.setdefault("model_version", event.model_version)
    if _is_number(event.cost):
        metadata.setdefault("cost", event.cost)
    if isinstance(event.usage, dict):
        for key in _TOKEN_KEYS:
            if _is_number(event.usage.get(key)):
                metadata.setdefault(key, event.usage[key])
    return {
        "event_type": "model",
        "event_name": event.event_name or model_name,
        "inputs": inputs,
        "outputs": outputs,
        "config": config,
        "metadata": metadata,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def legacy_events(
    parsed: Sequence[LegacyEvent], id_map: IdMap, *, session_id: str | None = None, now: int
) -> list[Event]:
    """Canonical events from validated legacy events, in order. ``session_id`` (the path's, or a
    single-session batch's) overrides each event's own."""
    event_ids = [id_map.event_id(p.event_id) for p in parsed]  # all first: parents may come later
    session_ids = [id_map.session_id(p.session_id) for p in parsed]
    out = []
    for p, eid, sid in zip(parsed, event_ids, session_ids):
        values: dict[str, Any] = {
            "event_type": p.event_type,
            "event_name": p.event_name,
            "inputs": p.inputs if p.inputs is not None else {},
            "outputs": p.outputs,
            "config": p.config,
            "metadata": p.metadata,
        }
        if isinstance(p, LegacyModelEvent):
            values.update(_model_fields(p))
        children = [c for c in (id_map.reference(c) for c in (p.children_ids or ())) if c is not None]
        parent = id_map.reference(p.parent_id)
        if parent == eid:  # its own parent (e.g. both ids the same home-made string): under the session
            parent = None
        request = PostEventRequest.model_construct(
            **values,
            event_id=eid,
            session_id=sid,
            parent_id=parent,
            children_ids=children,
            source=p.source,
            error=p.error,
            start_time=p.start_time,
            end_time=p.end_time,
            duration=p.duration,
            feedback=p.feedback,
            metrics=p.metrics,
            user_properties=p.user_properties,
        )
        out.append(event_from_request(request, session_id=session_id, now=now))
    return out


def legacy_session(body: LegacySession, *, now: int) -> Event:
    """The session of ``POST /session/start``: the defaults of ``POST /v1/sessions``, plus the
    spec-v0 extras (feedback, metrics, error) stored on the session event."""
    request = StartSessionRequest.model_construct(
        session_id=body.session_id,
        session_name=body.session_name,
        event_name=body.event_name,
        source=body.source,
        start_time=body.start_time,
        end_time=body.end_time,
        duration=body.duration,
        config=body.config,
        inputs=body.inputs,
        outputs=body.outputs,
        metadata=body.metadata,
        user_properties=body.user_properties,
        children_ids=[c for c in (body.children_ids or ()) if ids.is_uuid(c)],
    )
    session = session_from_request(request, now=now)
    session.feedback = body.feedback or {}
    session.metrics = body.metrics or {}
    session.error = body.error
    return session


def batch_session(properties: SessionProperties | None, session_id: str | None, *, now: int) -> Event:
    """The one session of a single-session batch, with ``session_id`` (already resolved)."""
    props = properties or SessionProperties()
    return session_from_request(props.model_copy(update={"session_id": session_id}), now=now)


def resolve_batch_session_id(properties: SessionProperties | None, events: Sequence[LegacyEvent], id_map: IdMap) -> str:
    """The session of a single-session batch: the one named in the session properties; else the
    one every event already names (so that ``is_single_session`` with events of an existing
    session keeps them there, as the Python client's ``create_batch`` expects); else a new one."""
    if properties is not None and properties.session_id is not None:
        return id_map.session_id(properties.session_id) or ids.new_id()
    named = {id_map.session_id(e.session_id) for e in events}
    if len(named) == 1:
        only = named.pop()
        if only is not None:
            return only
    return ids.new_id()
