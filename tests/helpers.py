"""Test helpers: real keys in a real data dir, and an authenticated client for the real app."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tracehive.model.scope import KeyKind
from tracehive.settings import Settings
from tracehive.storage.factory import store_from_settings


def make_key(where: Settings | Path, project: str, kind: KeyKind = KeyKind.PROJECT) -> str:
    """Mint a key the way ``tracehive keys create`` does, through the store contract, on the
    store the settings name (or SQLite in a data dir). Keys live in the control store, so an
    events store (``events_store``) is not opened for it."""
    settings = where if isinstance(where, Settings) else Settings(data_dir=where)
    settings = dataclasses.replace(settings, events_store="")

    async def run() -> str:
        store = store_from_settings(settings)
        await store.open()
        try:
            project_record, _ = await store.ensure_project(project)
            _, key = await store.create_key(project_record.project_id, kind)
            return key
        finally:
            await store.close()

    return asyncio.run(run())


class Api:
    """A TestClient bound to one API key."""

    def __init__(self, client: TestClient, key: str | None) -> None:
        self.client = client
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, json: Any = None, content: bytes | None = None,
                headers: dict[str, str] | None = None, params: Any = None) -> Any:
        kwargs: dict[str, Any] = {"headers": self.headers(headers), "params": params}
        if content is not None:
            kwargs["content"] = content
        elif json is not None:
            kwargs["json"] = json
        return self.client.request(method, path, **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def assert_error(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """The contract's error body (section 1.4), with ``fragments`` in the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["statusCode"] == status
    assert body["success"] is False
    assert isinstance(body["errorCode"], str) and body["errorCode"]
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_fixture(name: str = "honeyhive-1.7.0-traffic.jsonl") -> Path:
    """A recorded fixture, copied into ``tests/fixtures`` from the project's shared fixtures (the
    repository stands alone: a clone anywhere runs its tests)."""
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in {FIXTURES}")
    return path
