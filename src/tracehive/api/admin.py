"""Admin routes: every project's retention and redaction rules, over HTTP, for an operator with no
shell on the server's machine (issue 17; ``tracehive projects update`` does the same from the CLI).

Who may call them: the bearer of ``admin_token`` (``TRACEHIVE_ADMIN_TOKEN``), and nobody without
it. A project key never may: it would lift its own project's redaction or retention. No token
configured means the routes are closed (403).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import require_operator_token
from tracehive.api.bodies import read_json
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors
from tracehive.api.responses import JSONResponse
from tracehive.ingest.redaction import MAX_RULES, RedactionRuleError, parse_rules
from tracehive.model.errors import BadRequest, NotFound, ValidationFailed
from tracehive.model.wire import ResponseBody
from tracehive.storage.base import Project

router = APIRouter(tags=["admin"])

MAX_RETENTION_DAYS = 36_500


class ProjectSettings(ResponseBody):
    name: str
    project_id: str
    retention_days: int = Field(description="Days an event is kept, by its start_time; 0 = forever.")
    redact: list[str] = Field(description="Redaction rules applied at ingest, as stored (normalised).")


class ProjectSettingsList(ResponseBody):
    projects: list[ProjectSettings]


async def _admin(request: Request) -> None:
    await require_operator_token(
        request, settings_of(request).admin_token,
        closed="the admin routes are closed: start the server with TRACEHIVE_ADMIN_TOKEN set and send that token",
        not_a_key="the admin routes take the admin token (TRACEHIVE_ADMIN_TOKEN), not a project key")


def _shown(project: Project) -> dict[str, Any]:
    return {"name": project.name, "project_id": project.project_id, "retention_days": project.retention_days,
            "redact": list(project.redact)}


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def _parse(body: Any) -> tuple[int | None, list[str] | None]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(body) - {"retention_days", "redact"})
    if unknown:
        raise _field_error(unknown[0], "unknown field (retention_days and redact are)")
    if not body:
        raise BadRequest("nothing to change: send retention_days, redact or both")
    days = body.get("retention_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not 0 <= days <= MAX_RETENTION_DAYS):
        raise _field_error("retention_days", f"must be a whole number of days from 0 (forever) to {MAX_RETENTION_DAYS}")
    rules = body.get("redact")
    if rules is not None and (not isinstance(rules, list) or len(rules) > MAX_RULES
                              or not all(isinstance(r, str) for r in rules)):
        raise _field_error("redact", f"must be a list of at most {MAX_RULES} rule strings ([] clears them)")
    return days, rules


@router.get("/v1/admin/projects", response_model=ProjectSettingsList, responses=errors(401, 403),
            summary="Every project's retention and redaction rules (admin token)")
async def list_project_settings(request: Request) -> Response:
    await _admin(request)
    projects = await store_of(request).list_projects()
    return JSONResponse({"projects": [_shown(p) for p in projects]})


@router.put("/v1/admin/projects/{name}", response_model=ProjectSettings, responses=errors(400, 401, 403, 404, 413, 415),
            summary="Set a project's retention and redaction rules (admin token)")
async def update_project_settings(request: Request, name: str) -> Response:
    """Body: ``{"retention_days": N, "redact": ["email", "regex:..."]}``, either or both; the rules
    replace the project's (``[]`` clears them) and are checked first, as ``tracehive projects
    update`` checks them (a rule that is invalid or too costly is 400, nothing changed)."""
    await _admin(request)
    days, rules = _parse(await read_json(request, settings_of(request)))
    if rules:
        try:
            # The check measures a regex's cost in a child process: off the event loop.
            rules = list((await asyncio.to_thread(parse_rules, rules)).specs)
        except RedactionRuleError as exc:
            raise _field_error("redact", str(exc)) from None
    project = await store_of(request).update_project(name, retention_days=days, redact=rules)
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return JSONResponse(_shown(project))
