"""What every backend's reads share about parent links (contract: ``children_ids`` are complete)."""

from __future__ import annotations

from tracehive.model.event import Event


def complete_children(stored: list[str], found: list[str]) -> list[str]:
    """Ids the client sent (in its order) followed by stored children it did not mention."""
    seen = set(stored)
    return stored + [c for c in found if c not in seen]


def complete_session(events: list[Event]) -> list[Event]:
    """A whole session's events (in place, and returned) with each one's ``children_ids``
    completed from the parent links among them: a session read needs no query per event."""
    children: dict[str, list[str]] = {}
    for event in events:
        if event.parent_id and event.parent_id != event.event_id:
            children.setdefault(event.parent_id, []).append(event.event_id)
    for event in events:
        found = children.get(event.event_id)
        if found:
            event.children_ids = complete_children(event.children_ids, found)
    return events
