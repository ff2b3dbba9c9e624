"""The write rules of the contract (``storage/base.py``) that are the same whatever the backend,
as pure functions: what a session start does to a stored session, the time span a batch gives
the sessions it names, and how a role clash is reported. Each backend applies them inside its own
transaction (and its own locks); here they only compute."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracehive.model.errors import BadRequest, IdRoleClash
from tracehive.model.event import Event, deep_merge


def merge_session_start(existing: Event, implicit: bool, new: Event) -> Event:
    """A session start (contract 5.7) applied to the stored session ``existing``: metadata and
    user properties merged; a session made up from its events (``implicit``) takes the start's
    name and payload. Mutates and returns ``existing``."""
    if existing.event_type != "session":
        raise BadRequest(f"id {new.event_id} already belongs to an event of type {existing.event_type}")
    existing.metadata = deep_merge(existing.metadata, new.metadata)
    existing.user_properties = deep_merge(existing.user_properties, new.user_properties)
    if implicit:
        # The session was made up from its events; the real start carries its name and payload.
        existing.event_name, existing.source = new.event_name, new.source
        # An update kept for the session before it existed (enrich_session) may already have set
        # config or outputs on the implicit session: the start does not erase them.
        existing.config = {**existing.config, **new.config}
        existing.inputs = new.inputs
        if new.outputs is not None:
            existing.outputs = new.outputs
        existing.error = new.error
        if new.children_ids:
            existing.children_ids = new.children_ids
        existing.start_time = min(existing.start_time, new.start_time)
        existing.end_time = max(existing.end_time, new.end_time)
        existing.duration = existing.end_time - existing.start_time
    return existing


def session_spans(events: Sequence[Event]) -> dict[str, list[Any]]:
    """Per session named by a non-session event, in first-seen order: [earliest start, latest
    end, the first event naming it] (its name hint and source name a session made up for it)."""
    spans: dict[str, list[Any]] = {}
    for event in events:
        if event.event_type == "session":
            continue
        span = spans.get(event.session_id)
        if span is None:
            spans[event.session_id] = [event.start_time, event.end_time, event]
        else:
            if event.start_time < span[0]:
                span[0] = event.start_time
            if event.end_time > span[1]:
                span[1] = event.end_time
    return spans


def sources_to_look_up(events: Sequence[Event]) -> list[str]:
    """The sessions whose stored source :func:`inherit_sources` needs: those of events sent
    without a source, less the sessions the batch itself starts."""
    started = {e.session_id for e in events if e.event_type == "session"}
    return sorted({e.session_id for e in events
                   if e.inherit_source and e.event_type != "session" and e.session_id not in started})


def inherit_sources(events: Sequence[Event], stored: Mapping[str, str]) -> None:
    """Events sent without a source take their session's (issue 16: an OTLP trace or an SDK
    event keeps the service its session names): the session started in the same batch, else the
    stored one (``stored``: session id -> source, as read by the backend in its write
    transaction). A session that does not exist yet gives nothing: the event keeps "unknown" and
    the session made up for it takes that. Mutates the events."""
    started = {e.session_id: e.source for e in events if e.event_type == "session"}
    for event in events:
        if event.inherit_source and event.event_type != "session":
            source = started.get(event.session_id) or stored.get(event.session_id)
            if source:
                event.source = source


def implicit_session(session_id: str, start: Any, end: Any, first: Event) -> Event:
    """The session made up for events that name an unknown one."""
    return Event(
        event_id=session_id, session_id=session_id, parent_id=None, event_type="session",
        event_name=first.session_name_hint or "unknown", source=first.source, start_time=start,
        end_time=end, duration=end - start, error=None, config={}, inputs={}, outputs=None,
        metadata={}, feedback={}, metrics={}, user_properties={}, children_ids=[],
    )  # fmt: skip


def role_clash(event_ids: set[str], session_ids: Iterable[str], stored: Iterable[tuple[str, str]]) -> IdRoleClash:
    """The error for a write whose events reuse a session's id, or name another event's id as
    their session; ``stored`` is (event_id, event_type) of the stored rows with those ids."""
    sessions = set(session_ids)
    clash = event_ids & sessions
    clash |= {
        eid for eid, etype in stored
        if (eid in event_ids and etype == "session") or (eid in sessions and etype != "session")
    }  # fmt: skip
    what = min(clash) if clash else "(unknown)"
    return IdRoleClash(f"id {what} is used both as a session id and as the id of a non-session event", frozenset(clash))
