"""Schemathesis over every operation of ``/openapi.json``, in process, against the real app on a
temporary SQLite store, with a valid project key.

Checks, on every generated request (valid and invalid ones): ``not_a_server_error`` (no 5xx) and
``response_schema_conformance`` (the status code is documented and the body matches its schema).
Nothing is excluded: every operation in the schema runs both checks.

The schema is loaded from the running app (``schemathesis.pytest.from_fixture``), and the requests
go through Starlette's ``TestClient``, the transport of the other API tests, rather than
``schemathesis.openapi.from_asgi``: Schemathesis' own ASGI client starts the app's lifespan itself
and keeps it until the process exits, while here the store opens and closes with this module.
Schemathesis generates the cases (its default phases: examples, coverage, fuzzing; the coverage
phase adds negative cases, missing auth included) and validates each response.
Bounded and deterministic: ``MAX_EXAMPLES`` per operation, derandomized.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.testclient import TestClient

from tests.helpers import Api, make_key
from tracehive.api.openapi import _api_routes as api_routes
from tracehive.app import create_app
from tracehive.settings import Settings

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance]


class Live:
    """The running app, a project key, and a stored session and event for path ids to hit."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key
        self.api = Api(client, key)
        self.session_id = str(uuid.uuid4())
        self.event_id = str(uuid.uuid4())
        self.restore()

    def restore(self) -> None:
        """(Re)create the stored session and event: a generated DELETE may have removed them."""
        if self.api.get(f"/v1/events/{self.event_id}").status_code == 200:
            return
        session = self.api.post("/v1/sessions", json={"session_id": self.session_id, "session_name": "schemathesis"})
        assert session.status_code == 200, session.text
        event = self.api.post("/v1/events", json={"event_id": self.event_id, "session_id": self.session_id,
                                                  "event_type": "model", "inputs": {"q": "hi"}, "outputs": {"a": "yo"},
                                                  "metadata": {"cost": 0.5}})
        assert event.status_code == 200, event.text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    key = make_key(data_dir, "schemathesis")
    with TestClient(create_app(Settings(data_dir=data_dir)), raise_server_exceptions=False) as client:
        yield Live(client, key)


@pytest.fixture(scope="module")
def api_schema(live: Live) -> Any:
    response = live.client.get("/openapi.json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


schema = schemathesis.pytest.from_fixture("api_schema")


def send(live: Live, case: Any) -> Any:
    """The case as an HTTP request through the TestClient, with the valid key. The schema types
    path ids as plain strings, so generated ids are almost never UUIDs and the handlers would only
    ever answer 400: a third of them become the stored session/event's id, a third a fresh UUID
    (a 404, or a create), chosen from the generated value so that runs stay deterministic."""
    for name in ("session_id", "event_id"):
        if name in (case.path_parameters or {}):
            pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
            if pick % 3 == 0:
                live.restore()
                case.path_parameters[name] = getattr(live, name)
            elif pick % 3 == 1:
                case.path_parameters[name] = str(uuid.UUID(int=pick, version=4))
    kwargs = case.as_transport_kwargs(base_url="http://testserver",
                                      headers={"Authorization": f"Bearer {live.key}"})
    request: dict[str, Any] = {"method": kwargs["method"], "url": kwargs["url"], "headers": kwargs.get("headers"),
                               "params": kwargs.get("params"), "cookies": kwargs.get("cookies") or None}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data if isinstance(data, (bytes, str)) else str(data)
    return live.client.request(**request)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_every_operation(case: Any, live: Live) -> None:
    response = send(live, case)
    case.validate_response(response, checks=CHECKS)


def test_the_schema_lists_every_route(live: Live, api_schema: Any) -> None:
    """The run above covers what /openapi.json lists: check that this is every API route (the
    aliases kept out of the schema on purpose, ``include_in_schema=False``, aside)."""
    listed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    routes = {(method, route.path_format) for route in api_routes(live.client.app.routes)
              if route.include_in_schema for method in route.methods if method != "HEAD"}
    assert routes and routes <= listed, routes - listed
