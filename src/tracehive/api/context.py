"""Access to the parts ``create_app`` wired onto the application, and path-parameter checks."""

from __future__ import annotations

from starlette.requests import Request

from tracehive.model import ids
from tracehive.model.errors import ValidationFailed
from tracehive.settings import Settings
from tracehive.storage.base import Store


def store_of(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def path_id(value: str, name: str) -> str:
    if not ids.is_uuid(value):
        raise ValidationFailed(f"{name}: must be a UUID string", details=[{"field": name, "message": "must be a UUID string"}])
    return ids.normalize_id(value)
