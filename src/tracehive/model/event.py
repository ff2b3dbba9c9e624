"""The one canonical event record. A session is an event with ``event_type == "session"``
whose ``event_id`` equals its ``session_id`` (contract 2.1)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("model", "tool", "chain", "session")
JSON_OBJECT_FIELDS = ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties")
MERGED_ON_UPDATE = ("metadata", "feedback", "metrics", "config", "user_properties")


@dataclass(slots=True)
class Event:
    event_id: str
    session_id: str
    event_type: str
    event_name: str
    source: str
    start_time: float | int
    end_time: float | int
    duration: float | int
    parent_id: str | None = None
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    feedback: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    user_properties: dict[str, Any] = field(default_factory=dict)
    children_ids: list[str] = field(default_factory=list)
    org_id: str = ""
    workspace_id: str = ""
    project_id: str = ""
    # Name for a session that ingestion must create because this event names an unknown one.
    # Not stored on the event itself.
    session_name_hint: str | None = None
    # Other ids this event answers to as a parent (the span-derived id when a span carried an
    # explicit event id): children whose parent_id is one of them are linked here (storage/base.py).
    # Not stored on the event itself and never read back.
    aliases: tuple[str, ...] = ()
    # Sent without a source ("unknown" above is only the fallback): at write, the event takes its
    # session's source (storage/rules.inherit_sources). Not stored and never read back.
    inherit_source: bool = False

    @property
    def is_session(self) -> bool:
        return self.event_type == "session"

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of a stored event (read responses are passthrough; ``tenant`` = org)."""
        return {
            "event_id": self.event_id,
            "session_id": self.session_id,
            "parent_id": self.parent_id,
            "children_ids": self.children_ids,
            "event_type": self.event_type,
            "event_name": self.event_name,
            "source": self.source,
            "config": self.config,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error": self.error,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "metadata": self.metadata,
            "feedback": self.feedback,
            "metrics": self.metrics,
            "user_properties": self.user_properties,
            "org_id": self.org_id,
            "workspace_id": self.workspace_id,
            "project_id": self.project_id,
            "tenant": self.org_id,
        }

    def to_read_dict(self) -> dict[str, Any]:
        """``to_dict`` as the JSON read routes answer it (:func:`for_readers`)."""
        return for_readers(self.to_dict())


def for_readers(event: dict[str, Any]) -> dict[str, Any]:
    """An event's wire dict (whole or projected) in the shape every client's response schema
    accepts, changed in place: a JSON object field that holds null (``outputs`` never sent) is
    ``{}``, and ``end_time`` is whole milliseconds, rounded up (so never before a fractional
    ``start_time``).

    The HoneyHive TypeScript SDK validates reads with zod and rejects ``"outputs": null`` and a
    fractional ``end_time`` (``start_time + duration`` of a float duration); the Python SDK's
    models take ``Optional[dict]`` and ``Optional[float]``, so this shape suits both. Only the read
    answers change: the stored event, and the NDJSON export made from it, keep what was sent.
    """
    for name in JSON_OBJECT_FIELDS:
        if name in event and event[name] is None:
            event[name] = {}
    end = event.get("end_time")
    if isinstance(end, float) and math.isfinite(end):
        event["end_time"] = math.ceil(end)
    return event


@dataclass(slots=True)
class EventUpdate:
    """A partial update (contract 4.3): dicts merged key-wise, outputs replaced, times set,
    children_ids set only when non-empty."""

    metadata: dict[str, Any] | None = None
    feedback: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    user_properties: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    duration: float | int | None = None
    end_time: float | int | None = None
    children_ids: list[str] | None = None

    def apply(self, event: Event) -> None:
        for name in MERGED_ON_UPDATE:
            patch = getattr(self, name)
            if patch:
                merged = dict(getattr(event, name) or {})
                merged.update(patch)
                setattr(event, name, merged)
        if self.outputs is not None:
            event.outputs = self.outputs
        if self.duration is not None:
            event.duration = self.duration
        if self.end_time is not None:
            event.end_time = self.end_time
        if self.children_ids:
            event.children_ids = list(self.children_ids)

    def then(self, later: EventUpdate) -> EventUpdate:
        """Compose two updates, as if ``self`` were applied first and then ``later``."""
        out = EventUpdate()
        for name in MERGED_ON_UPDATE:
            a, b = getattr(self, name), getattr(later, name)
            if a or b:
                setattr(out, name, {**(a or {}), **(b or {})})
        out.outputs = later.outputs if later.outputs is not None else self.outputs
        out.duration = later.duration if later.duration is not None else self.duration
        out.end_time = later.end_time if later.end_time is not None else self.end_time
        out.children_ids = later.children_ids if later.children_ids else self.children_ids
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventUpdate:
        return cls(**{k: v for k, v in data.items() if k in cls.__slots__})  # type: ignore[attr-defined]


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge where ``patch`` wins (contract 5.7, session metadata merge)."""
    out = dict(base)
    for key, value in patch.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out
