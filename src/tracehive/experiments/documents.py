"""What the experiment documents' routes share: finding a record by the id a client names, the size
bound of a stored document, and the query parameters of the SDK's list calls.

Ids are new UUIDv4s (``model.ids.new_id``), stored lower-case. An id that is not a UUID can name
no record, so it is a 404 like any other unknown id (the SDK's ``GET /v1/datapoints/nope`` expects
exactly that), and so is a record of another project: the store only looks inside the key's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from starlette.requests import Request

from tracehive.model.errors import NotFound, PayloadTooLarge, ValidationFailed
from tracehive.model.ids import is_uuid, normalize_id
from tracehive.model.scope import Scope
from tracehive.storage.base import Store
from tracehive.storage.records import MAX_RECORD_BYTES, Record, RecordKind

# How much of a client's id an error message repeats.
_SHOWN = 80


def record_key(value: str) -> str | None:
    """The stored form of an id a client sent, or None when no record can have it."""
    return normalize_id(value) if is_uuid(value) else None


def shown(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "..."


def not_found(what: str, value: str) -> NotFound:
    return NotFound(f"{what} {shown(value)} not found")


async def fetch(store: Store, scope: Scope, kind: RecordKind, value: str) -> Record:
    """The project's record of this kind with this id, or a 404 naming the id."""
    key = record_key(value)
    found = None if key is None else await store.get_record(scope, kind, key)
    if found is None:
        raise not_found(kind.value, value)
    return found


async def fetch_all(store: Store, scope: Scope, kind: RecordKind, values: Sequence[str]) -> list[str]:
    """The stored ids of ``values`` (duplicates dropped, order kept); a 404 naming the first id
    the project has no record of."""
    keys = unique(k for k in map(record_key, values) if k is not None)
    found = {r.id for r in await store.list_records(scope, kind, ids=keys, limit=len(keys) + 1)}
    for value in values:
        if record_key(value) not in found:
            raise not_found(kind.value, value)
    return keys


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def check_size(body: dict[str, Any], what: str) -> None:
    """A stored document is bounded (``MAX_RECORD_BYTES``) so that lists of them stay sane."""
    size = len(orjson.dumps(body))
    if size > MAX_RECORD_BYTES:
        raise PayloadTooLarge(f"{what} is {size} bytes as JSON; the limit is {MAX_RECORD_BYTES} bytes")


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def query_value(request: Request, name: str) -> str | None:
    """A single-valued query parameter (the last one when repeated), None when absent."""
    values = request.query_params.getlist(name)
    return values[-1] if values else None


def required_query(request: Request, name: str) -> str:
    value = query_value(request, name)
    if not value:
        raise field_error(name, "query parameter required")
    return value


def query_list(request: Request, name: str, limit: int) -> list[str] | None:
    """A list parameter as the SDK sends it (``name[]=a&name[]=b``), or repeated bare
    (``name=a&name=b``); None when absent."""
    params = request.query_params
    values = [*params.getlist(f"{name}[]"), *params.getlist(name)]
    if not values and f"{name}[]" not in params and name not in params:
        return None
    if len(values) > limit:
        raise field_error(name, f"at most {limit} values")
    return values


def query_parameter(name: str, description: str, *, array: bool = False) -> dict[str, Any]:
    """An OpenAPI query parameter (the routes read their query strings themselves, after the key
    is checked, so FastAPI does not see them)."""
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}} if array else {"type": "string"}
    return {"name": f"{name}[]" if array else name, "in": "query", "required": False,
            "description": description, "schema": schema}
