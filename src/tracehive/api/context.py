"""Access to the parts ``create_app`` wired onto the application, and path-parameter checks."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from tracehive.ingest.redact_writes import redact_events, redact_update
from tracehive.model import ids
from tracehive.model.errors import ValidationFailed
from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import Scope
from tracehive.settings import Settings
from tracehive.storage.base import Store


def store_of(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def redacted(request: Request, scope: Scope, events: Sequence[Event]) -> Sequence[Event]:
    """``events`` with the project's redaction rules applied (in place), counted in /metrics: what
    every write route hands the store (``ingest/redact_writes.py``)."""
    redact_events(scope, events, request.app.state.metrics.redacted)
    return events


def redacted_update(request: Request, scope: Scope, update: EventUpdate) -> EventUpdate:
    redact_update(scope, update, request.app.state.metrics.redacted)
    return update


def path_id(value: str, name: str) -> str:
    if not ids.is_uuid(value):
        raise ValidationFailed(f"{name}: must be a UUID string", details=[{"field": name, "message": "must be a UUID string"}])
    return ids.normalize_id(value)
