"""The defaulting rules of contract sections 3.1, 4.1 and 5: one place, shared by every route.

Every REST write route (``/v1/events``, batches, ``/v1/sessions/{id}/events/batch`` and the legacy
routes through ``ingest.legacy``) builds its events with ``event_from_request``, which also prices
a model event that carries token counts and no cost (``tracehive.pricing``); OTLP events are
priced where they are written (``ingest.otlp_ingest.write_prepared``)."""

from __future__ import annotations

from typing import Any

from tracehive.model import ids
from tracehive.model.event import Event
from tracehive.model.times import derive_times, now_ms, numeric_or_none
from tracehive.model.wire import PostEventRequest, SessionProperties, StartSessionRequest
from tracehive.pricing import active_table, price_event


def session_from_request(req: StartSessionRequest | SessionProperties, *, now: int | None = None) -> Event:
    """A session event: id replaced when missing or not a UUID, name falls back to session_name
    then "unknown", source "unknown", non-numeric times become now."""
    raw_id = req.session_id
    session_id = ids.normalize_id(raw_id) if ids.is_uuid(raw_id) else ids.new_id()
    now = now_ms() if now is None else now
    start, end, dur = _times(req.start_time, getattr(req, "end_time", None), getattr(req, "duration", None), now)
    event_name = getattr(req, "event_name", None) or req.session_name or "unknown"
    return Event(
        event_id=session_id,
        session_id=session_id,
        parent_id=None,
        event_type="session",
        event_name=event_name,
        source=req.source or "unknown",
        start_time=start,
        end_time=end,
        duration=dur,
        config=req.config or {},
        inputs=req.inputs or {},
        outputs=getattr(req, "outputs", None),
        metadata=req.metadata or {},
        user_properties=req.user_properties or {},
        children_ids=[ids.normalize_id(c) for c in (getattr(req, "children_ids", None) or [])],
    )


def event_from_request(req: PostEventRequest, *, session_id: str | None = None, now: int | None = None) -> Event:
    """A non-session or session event from a strict v1 body. ``session_id`` (from the path or a
    single-session batch) overrides the body's."""
    sid = session_id or req.session_id
    if req.event_type == "session":
        # A session event is its own session: event_id == session_id, no parent.
        sid = sid or req.event_id or ids.new_id()
        event_id = sid
        parent_id = None
    else:
        sid = sid or ids.new_id()
        event_id = req.event_id or ids.new_id()
        parent_id = req.parent_id or sid
    start, end, duration = _times(req.start_time, req.end_time, req.duration, now_ms() if now is None else now)
    event = Event(
        event_id=event_id,
        session_id=sid,
        parent_id=parent_id,
        event_type=req.event_type,
        event_name=req.event_name or "unknown",
        source=req.source or "unknown",
        inherit_source=not req.source and req.event_type != "session",
        start_time=start,
        end_time=end,
        duration=duration,
        error=req.error,
        config=req.config or {},
        inputs=req.inputs,
        outputs=req.outputs,
        metadata=req.metadata or {},
        feedback=req.feedback or {},
        metrics=req.metrics or {},
        user_properties=req.user_properties or {},
        children_ids=list(req.children_ids or ()),
    )
    if event.event_type == "model":
        price_event(event, active_table())
    return event


def _times(start: Any, end: Any, duration: Any, now: int) -> tuple[Any, Any, Any]:
    """A time that was sent but is not a number is *now* (the getInt64-style reader of the
    contract); a time that was not sent is derived from the others (contract 5.4). The routes
    where every field has a fallback (``POST /v1/sessions``, the legacy routes) never store a
    negative duration: a negative one counts as not sent, and so does an end before the start
    (the strict event routes refuse both: ``PostEventRequest``)."""
    if start is not None and numeric_or_none(start) is None:
        start = now
    if end is not None and numeric_or_none(end) is None:
        end = now
    d = numeric_or_none(duration)
    if d is not None and d < 0:
        duration = None
    s, e = numeric_or_none(start), numeric_or_none(end)
    if s is not None and e is not None and e < s:
        end = None
    return derive_times(start, end, duration, now=now)
