"""The Python client (issue 5) against a real ``tracehive serve`` process."""

from __future__ import annotations

import http.server
import inspect
import threading
import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

import tracehive
from tests.process.server import TracehiveServer, free_port
from tracehive.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConfigurationError,
    NetworkError,
    NotFoundError,
    ValidationError,
)

# Configuration ---------------------------------------------------------------------------------


def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACEHIVE_API_KEY", "HH_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="TRACEHIVE_API_KEY"):
        Client()
    with pytest.raises(ConfigurationError):
        AsyncClient()


def test_env_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACEHIVE_API_KEY", "TRACEHIVE_URL", "HH_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HH_API_KEY", "hh-key")
    c = Client()
    assert (c.api_key, c.base_url) == ("hh-key", "http://127.0.0.1:8520")
    monkeypatch.setenv("TRACEHIVE_API_KEY", "th-key")
    monkeypatch.setenv("HH_API_URL", "http://hh:1/")
    assert (Client().api_key, Client().base_url) == ("th-key", "http://hh:1")
    monkeypatch.setenv("TRACEHIVE_URL", "http://th:2")
    assert Client().base_url == "http://th:2"
    assert Client(api_key="x", base_url="http://arg:3").base_url == "http://arg:3"


def test_public_surface() -> None:
    assert set(tracehive.__all__) == {"Client", "AsyncClient", "__version__"}
    assert tracehive.Client is Client and tracehive.AsyncClient is AsyncClient
    for cls in (Client, AsyncClient):
        c = cls(api_key="k", base_url="http://127.0.0.1:1")
        public = lambda ns: {n for n in dir(ns) if not n.startswith("_")}  # noqa: E731
        assert public(c.sessions) == {"create", "create_event_batch", "get", "delete"}
        assert public(c.events) == {"create", "create_batch", "get", "update", "delete", "search", "iter"}
    # The async surface is the sync one, method for method and parameter for parameter.
    for ns in ("sessions", "events"):
        sync_ns = getattr(Client(api_key="k"), ns)
        async_ns = getattr(AsyncClient(api_key="k"), ns)
        for name in {n for n in dir(sync_ns) if not n.startswith("_")}:
            sync_m, async_m = getattr(sync_ns, name), getattr(async_ns, name)
            assert list(inspect.signature(sync_m).parameters) == list(inspect.signature(async_m).parameters)
            assert sync_m.__doc__ and sync_m.__doc__ == async_m.__doc__
            expect = inspect.isasyncgenfunction if name == "iter" else inspect.iscoroutinefunction
            assert expect(async_m), f"AsyncClient.{ns}.{name} is not async"


# Sync client -----------------------------------------------------------------------------------


def test_session_lifecycle(client: Client) -> None:
    session = client.sessions.create(session_name="s1", source="test", metadata={"k": 1})
    sid = session.session_id
    assert session.event_id == sid and session.event_type == "session"
    batch = client.sessions.create_event_batch(
        sid, [{"event_type": "model", "inputs": {"q": 1}, "event_name": "llm"}, {"event_type": "tool", "inputs": {}}]
    )
    assert len(batch.event_ids) == 2
    tree = client.sessions.get(sid)
    assert tree.event_id == sid
    assert {c.event_id for c in tree.children} == set(batch.event_ids)
    assert client.sessions.delete(sid).deleted == sid
    with pytest.raises(NotFoundError) as info:
        client.sessions.get(sid)
    assert info.value.status == 404 and info.value.error_code == "NOT_FOUND"


def test_event_crud_and_search(client: Client) -> None:
    created = client.events.create(event_type="tool", inputs={"x": 1}, event_name="crud", metadata={"tag": "crud"})
    eid = created.event_id
    event = client.events.get(eid)
    assert event.event_name == "crud" and event.inputs == {"x": 1}
    assert client.events.update(eid, outputs={"y": 2}, metadata={"more": True}).success
    event = client.events.get(eid)
    assert event.outputs == {"y": 2} and event.metadata and event.metadata["more"] is True
    found = client.events.search(filters=[{"field": "event_id", "operator": "is", "value": eid}], limit=5)
    assert found.count == 1 and found.events[0].event_id == eid and found.events[0].metadata == {"tag": "crud", "more": True}
    assert client.events.delete(eid).deleted == eid
    with pytest.raises(NotFoundError):
        client.events.get(eid)


def test_create_batch_single_session_and_iter(client: Client) -> None:
    events = [{"event_type": "chain", "inputs": {"i": i}, "metadata": {"group": "iterme"}} for i in range(7)]
    result = client.events.create_batch(events, single_session=True, session_properties={"session_name": "b"})
    assert result.session_id and len(result.event_ids) == 7
    filters = [{"field": "metadata.group", "operator": "is", "value": "iterme"}]
    ids = [e.event_id for e in client.events.iter(filters=filters, page_size=3)]
    assert sorted(ids) == sorted(result.event_ids)
    assert client.sessions.get(result.session_id).event_id == result.session_id


def test_client_side_validation_names_the_field(client: Client) -> None:
    with pytest.raises(ValidationError) as info:
        client.events.create(event_type="bogus", inputs={})
    assert info.value.field == "event_type" and info.value.status == 0
    with pytest.raises(ValidationError) as info:
        client.events.create(event_type="model")
    assert info.value.field == "inputs"
    with pytest.raises(ValidationError) as info:
        client.sessions.create_event_batch("00000000-0000-4000-8000-000000000001", [{"event_type": "model", "inputs": {}, "bogus": 1}])
    assert info.value.field == "events[0].bogus"
    with pytest.raises(ValidationError) as info:
        client.events.search(limit=0)
    assert info.value.field == "limit"


@pytest.mark.parametrize("event", [
    {"event_type": "model", "inputs": {}, "bogus": 1},
    {"event_type": "model", "inputs": {}, "duration": -5},
    {"event_type": "model", "inputs": {}, "children_ids": ["00000000-0000-4000-8000-000000000001", "nope"]},
    {"event_type": "model"},
])
def test_client_and_server_spell_a_validation_failure_alike(client: Client, server: TracehiveServer, key: str,
                                                           event: dict[str, object]) -> None:
    """The client refuses before sending with the server's own words (issue 16, point 12)."""
    sid = "00000000-0000-4000-8000-000000000002"
    with pytest.raises(ValidationError) as info:
        client.sessions.create_event_batch(sid, [{"event_type": "tool", "inputs": {}}, event])
    with server.client(key) as raw:
        reply = raw.post(f"/v1/sessions/{sid}/events/batch", json={"events": [{"event_type": "tool", "inputs": {}},
                                                                              event]})
    assert reply.status_code == 400
    assert info.value.message == reply.json()["message"]
    assert info.value.field == reply.json()["message"].split(":")[0]


def test_server_errors_map_to_classes(server: TracehiveServer, client: Client) -> None:
    with Client(api_key="hh_wrong", base_url=server.url, max_retries=0) as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.events.get("00000000-0000-4000-8000-000000000000")
    assert info.value.status == 401 and info.value.error_code == "UNAUTHORIZED"
    with pytest.raises(ApiError) as api:
        client.events.get("not-a-uuid")
    assert api.value.status == 400


def test_network_error_after_retries() -> None:
    with Client(api_key="k", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, timeout=2) as c:
        with pytest.raises(NetworkError):
            c.events.get("00000000-0000-4000-8000-000000000000")


# Retries through a real HTTP front that answers 503 first ------------------------------------


class FlakyFront:
    """A real HTTP server that answers the first ``failures`` requests with ``status`` (503) and
    ``Retry-After`` (0)
    and forwards the rest to the tracehive server. With ``forward_then_fail`` the failing answers
    are sent after forwarding, like a response lost after the write committed."""

    def __init__(
        self, target: str, failures: int, forward_then_fail: bool = False, status: int = 503, retry_after: str = "0"
    ) -> None:
        self.target, self.failures, self.forward_then_fail = target, failures, forward_then_fail
        self.status, self.retry_after = status, retry_after
        self.hits = 0
        self.times: list[float] = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                front.hits += 1
                front.times.append(time.monotonic())
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fail = front.hits <= front.failures
                upstream = None
                if not fail or front.forward_then_fail:
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                    upstream = httpx.request(self.command, front.target + self.path, content=body, headers=headers)
                if fail:
                    self.send_response(front.status)
                    self.send_header("Retry-After", front.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                assert upstream is not None
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FlakyFront:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_retry_503_then_200(server: TracehiveServer, key: str) -> None:
    with FlakyFront(server.url, failures=2) as front, Client(api_key=key, base_url=front.url, max_retries=3) as c:
        session = c.sessions.create(session_name="retried")
        assert session.event_type == "session"
        assert front.hits == 3
    with FlakyFront(server.url, failures=5) as front, Client(api_key=key, base_url=front.url, max_retries=1) as c:
        with pytest.raises(ApiError) as info:
            c.events.get("00000000-0000-4000-8000-000000000000")
        assert info.value.status == 503 and front.hits == 2


def test_retried_batch_does_not_duplicate(server: TracehiveServer, key: str, client: Client) -> None:
    events = [{"event_type": "model", "inputs": {"n": i}, "metadata": {"group": "nodup"}} for i in range(3)]
    with FlakyFront(server.url, failures=1, forward_then_fail=True) as front, \
            Client(api_key=key, base_url=front.url, max_retries=2) as c:
        result = c.events.create_batch(events)
        assert front.hits == 2
    found = client.events.search(filters=[{"field": "metadata.group", "operator": "is", "value": "nodup"}])
    assert found.count == 3
    assert sorted(e.event_id for e in found.events) == sorted(result.event_ids)


# Async client ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client(server: TracehiveServer, key: str) -> None:
    async with AsyncClient(api_key=key, base_url=server.url, max_retries=0) as c:
        session = await c.sessions.create(session_name="async")
        sid = session.session_id
        batch = await c.sessions.create_event_batch(sid, [{"event_type": "model", "inputs": {"a": 1}}])
        assert len((await c.sessions.get(sid)).children) == 1
        created = await c.events.create(event_type="tool", inputs={}, session_id=sid, metadata={"group": "async"})
        assert (await c.events.get(created.event_id)).session_id == sid
        assert (await c.events.update(created.event_id, outputs={"o": 1})).success
        multi = await c.events.create_batch([{"event_type": "chain", "inputs": {}, "metadata": {"group": "async"}}] * 2)
        assert len(set(multi.event_ids)) == 2
        filters = [{"field": "metadata.group", "operator": "is", "value": "async"}]
        assert (await c.events.search(filters=filters)).count == 3
        seen = [e.event_id async for e in c.events.iter(filters=filters, page_size=2)]
        assert len(seen) == 3
        assert (await c.events.delete(created.event_id)).deleted == created.event_id
        with pytest.raises(NotFoundError):
            await c.events.get(created.event_id)
        assert (await c.sessions.delete(sid)).deleted == sid
        assert batch.event_ids
    with FlakyFront(server.url, failures=1) as front:
        async with AsyncClient(api_key=key, base_url=front.url, max_retries=2) as c:
            assert (await c.sessions.create()).event_type == "session"
            assert front.hits == 2


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
def test_retried_statuses(server: TracehiveServer, key: str, status: int) -> None:
    with FlakyFront(server.url, failures=1, status=status) as front, \
            Client(api_key=key, base_url=front.url, max_retries=1) as c:
        assert c.sessions.create(session_name=f"after-{status}").event_type == "session"
        assert front.hits == 2


def test_not_retried_statuses(server: TracehiveServer, key: str) -> None:
    # A 4xx other than 408/429 is the caller's mistake: sending it again cannot help.
    with FlakyFront(server.url, failures=1, status=409) as front, \
            Client(api_key=key, base_url=front.url, max_retries=3) as c:
        with pytest.raises(ApiError) as info:
            c.sessions.create()
        assert info.value.status == 409 and front.hits == 1


def test_retry_after_seconds_and_http_date_are_honoured(server: TracehiveServer, key: str) -> None:
    # Retry-After: 1 (seconds) must make the client wait about a second, not the jittered backoff.
    with FlakyFront(server.url, failures=1, status=429, retry_after="1") as front, \
            Client(api_key=key, base_url=front.url, max_retries=1) as c:
        c.sessions.create()
        waited = front.times[1] - front.times[0]
    assert 0.9 <= waited < 5
    # The HTTP-date form: two seconds from now (a date has one-second resolution, so at least ~1 s).
    date = formatdate(time.time() + 2, usegmt=True)
    with FlakyFront(server.url, failures=1, status=503, retry_after=date) as front, \
            Client(api_key=key, base_url=front.url, max_retries=1) as c:
        c.sessions.create()
        waited = front.times[1] - front.times[0]
    assert 0.9 <= waited < 5


@pytest.mark.anyio
async def test_async_errors_and_retried_batch(server: TracehiveServer, key: str) -> None:
    async with AsyncClient(api_key="hh_wrong", base_url=server.url, max_retries=0) as bad:
        with pytest.raises(AuthenticationError) as auth:
            await bad.events.get("00000000-0000-4000-8000-000000000000")
    assert auth.value.status == 401
    async with AsyncClient(api_key=key, base_url=server.url, max_retries=0) as c:
        with pytest.raises(NotFoundError):
            await c.sessions.get("00000000-0000-4000-8000-00000000abcd")
        with pytest.raises(ValidationError) as invalid:
            await c.events.create(event_type="model", inputs={}, duration="slow")
        assert invalid.value.field == "duration" and invalid.value.status == 0
        with pytest.raises(ApiError) as bad_id:
            await c.events.delete("not-a-uuid")
        assert bad_id.value.status == 400
    events = [{"event_type": "tool", "inputs": {"n": i}, "metadata": {"group": "async-nodup"}} for i in range(4)]
    with FlakyFront(server.url, failures=1, forward_then_fail=True) as front:
        async with AsyncClient(api_key=key, base_url=front.url, max_retries=2) as c:
            result = await c.events.create_batch(events, single_session=True)
            assert front.hits == 2
    async with AsyncClient(api_key=key, base_url=server.url, max_retries=0) as c:
        found = await c.events.search(filters=[{"field": "metadata.group", "operator": "is", "value": "async-nodup"}])
        assert sorted(e.event_id for e in found.events) == sorted(result.event_ids)
        tree = await c.sessions.get(result.session_id)
        assert len(tree.children) == 4


@pytest.mark.anyio
async def test_async_network_error_after_retries() -> None:
    async with AsyncClient(api_key="k", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, timeout=2) as c:
        with pytest.raises(NetworkError):
            await c.sessions.get("00000000-0000-4000-8000-000000000000")


def test_readme_example_runs(server: TracehiveServer, key: str, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The README's client example is run as written, against a real server."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### The Python client", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'api_key="hh_..."' in code
    monkeypatch.setenv("TRACEHIVE_URL", server.url)
    exec(compile(code.replace('"hh_..."', repr(key)), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "1 ['gpt-call']"
    assert any("'cost': 0.0001" in line for line in out[2:])
