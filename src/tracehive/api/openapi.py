"""``/openapi.json`` with request bodies; ``/docs`` (``api.docs``) renders it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from tracehive.api import docs
from tracehive.api.documented import BODY_ATTRIBUTE

REF_TEMPLATE = "#/components/schemas/{model}"


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (newer FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    bodies = [
        (route, getattr(route.endpoint, BODY_ATTRIBUTE))
        for route in _api_routes(app.routes)
        if route.include_in_schema and hasattr(route.endpoint, BODY_ATTRIBUTE)
    ]
    models = list({model for _, model in bodies})
    refs, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF_TEMPLATE)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(defs.get("$defs", {}))
    components["securitySchemes"] = {"BearerAuth": {"type": "http", "scheme": "bearer"}}
    for route, model in bodies:
        for method in route.methods:
            operation = schema["paths"][route.path_format][method.lower()]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(model, "validation")]}},
            }
    for path, operations in schema["paths"].items():
        if path != "/healthz":
            for operation in operations.values():
                operation["security"] = [{"BearerAuth": []}]
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    docs.install(app)
