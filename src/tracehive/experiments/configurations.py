"""Prompt and model configurations as stored (a ``RecordKind.CONFIGURATION`` record, its name the
configuration's) and as answered (HoneyHive's ``ConfigurationItem``)."""

from __future__ import annotations

from typing import Any

from tracehive.experiments.configuration_models import CreateConfigurationRequest, UpdateConfigurationRequest
from tracehive.query.chart import iso_ms
from tracehive.storage.records import Record, RecordChange

DEFAULT_TYPE = "LLM"
# The fields an update replaces when sent (the name is the record's own).
REPLACED = ("type", "provider", "parameters", "env", "tags", "user_properties")


def _sent(request: CreateConfigurationRequest | UpdateConfigurationRequest, field: str) -> Any:
    value = getattr(request, field)
    # Parameters keep the provider's own keys, and only the keys that were sent.
    return value.model_dump(exclude_unset=True) if field == "parameters" and value is not None else value


def new_configuration(request: CreateConfigurationRequest) -> dict[str, Any]:
    return {
        "type": request.type or DEFAULT_TYPE,
        "provider": request.provider,
        "parameters": _sent(request, "parameters"),
        "env": request.env or [],
        "tags": request.tags or [],
        "user_properties": request.user_properties,
    }


def changed_configuration(record: Record, request: UpdateConfigurationRequest) -> RecordChange | None:
    body = dict(record.body)
    for field in REPLACED:
        if getattr(request, field) is not None:
            body[field] = _sent(request, field)
    if request.name == record.name and body == record.body:
        return None
    return RecordChange(request.name, body)


def matches(record: Record, env: str | None, tags: str | None) -> bool:
    """``env``: deployed to that environment; ``tags``: comma-separated, carries every one."""
    if env is not None and env not in (record.body.get("env") or []):
        return False
    if tags is not None:
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        if not wanted <= set(record.body.get("tags") or []):
            return False
    return True


def configuration_reply(record: Record) -> dict[str, Any]:
    body = record.body
    return {
        "id": record.id,
        "name": record.name or "",
        "type": body.get("type") or DEFAULT_TYPE,
        "provider": body.get("provider") or "",
        "parameters": body.get("parameters") or {},
        "env": list(body.get("env") or []),
        "tags": list(body.get("tags") or []),
        "user_properties": body.get("user_properties"),
        "created_at": iso_ms(record.created_at),
        "updated_at": iso_ms(record.updated_at),
    }
