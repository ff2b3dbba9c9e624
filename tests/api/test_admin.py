"""The admin routes (issue 17): projects' retention and redaction rules over HTTP, with the admin
token only; the rules set there apply to the next writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error
from tracehive.app import create_app
from tracehive.settings import Settings

TOKEN = "admin-" + "x" * 24
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(data_dir: Path, store_url: str, events_store_url: str) -> Settings:
    # Key lookups are not cached: rules set through the route apply to the very next request.
    return Settings(data_dir=data_dir, store=store_url, events_store=events_store_url, admin_token=TOKEN,
                    key_cache_seconds=0)


def test_the_admin_token_reads_and_sets_every_project(client: TestClient, api: Api) -> None:
    listed = client.get("/v1/admin/projects", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    assert {p["name"]: (p["retention_days"], p["redact"]) for p in listed.json()["projects"]} == {
        "project-a": (0, []), "project-b": (0, [])}
    r = client.put("/v1/admin/projects/project-a", headers=ADMIN, json={"retention_days": 30, "redact": ["EMAIL", "ip"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "project-a", "project_id": r.json()["project_id"], "retention_days": 30,
                        "redact": ["email", "ip"]}
    # The next write of project A is redacted; B's are not.
    eid = api.post("/v1/events", json={"event_type": "tool", "inputs": {"q": "mail ada@example.com from 10.0.0.7"}}).json()["event_id"]
    assert api.get(f"/v1/events/{eid}").json()["event"]["inputs"] == {"q": "mail [REDACTED:email] from [REDACTED:ip]"}
    r = client.put("/v1/admin/projects/project-a", headers=ADMIN, json={"redact": []})
    assert r.status_code == 200 and r.json()["redact"] == [] and r.json()["retention_days"] == 30
    eid = api.post("/v1/events", json={"event_type": "tool", "inputs": {"q": "ada@example.com"}}).json()["event_id"]
    assert api.get(f"/v1/events/{eid}").json()["event"]["inputs"] == {"q": "ada@example.com"}


def test_only_the_admin_token_opens_them(client: TestClient, keys: dict[str, str]) -> None:
    assert_error(client.get("/v1/admin/projects"), 401, "Authorization")
    # Anything else is an API key, answered as on every route: 401 unknown, 403 an ingestion key.
    assert_error(client.get("/v1/admin/projects", headers={"Authorization": f"Bearer {TOKEN}x"}), 401, "API key")
    assert_error(Api(client, keys["ingest_a"]).get("/v1/admin/projects"), 403, "ingestion key")
    for key in (keys["a"], keys["b"]):  # a project key must not lift its own project's rules
        assert_error(Api(client, key).put("/v1/admin/projects/project-a", json={"redact": []}), 403, "admin token")
        assert_error(Api(client, key).get("/v1/admin/projects"), 403, "admin token")


def test_closed_without_a_token(data_dir: Path, store_url: str, events_store_url: str, keys: dict[str, str]) -> None:
    settings = Settings(data_dir=data_dir, store=store_url, events_store=events_store_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert_error(client.get("/v1/admin/projects", headers=ADMIN), 401, "API key")
        assert_error(Api(client, keys["a"]).get("/v1/admin/projects"), 403, "TRACEHIVE_ADMIN_TOKEN")


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"retention_days": -1}, 400, "retention_days"),
    ({"retention_days": 1.5}, 400, "retention_days"),
    ({"retention_days": True}, 400, "retention_days"),
    ({"retention_days": 10**9}, 400, "retention_days"),
    ({"redact": "email"}, 400, "redact"),
    ({"redact": [1]}, 400, "redact"),
    ({"redact": ["email"] * 21}, 400, "redact"),
    ({"redact": ["bogus"]}, 400, "bogus"),
    ({"redact": ["regex:(a+)+$"]}, 400, "redact"),
    ({"redact": ["regex:x*"]}, 400, "empty"),
    ({"retention": 3}, 400, "retention"),
    ({}, 400, "nothing to change"),
    ([], 400, "JSON object"),
])
def test_bad_bodies_are_400_and_change_nothing(client: TestClient, keys: dict[str, str], body: object, status: int,
                                               says: str) -> None:
    assert_error(client.put("/v1/admin/projects/project-a", headers=ADMIN, json=body), status, says)
    listed = client.get("/v1/admin/projects", headers=ADMIN).json()["projects"]
    assert [(p["retention_days"], p["redact"]) for p in listed] == [(0, []), (0, [])]


def test_an_unknown_project_is_404(client: TestClient, keys: dict[str, str]) -> None:
    assert_error(client.put("/v1/admin/projects/absent", headers=ADMIN, json={"retention_days": 1}), 404, "absent")
