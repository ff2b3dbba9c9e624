"""Retention and deleting a project, on real processes (issue 17, points 1 and 4): events dated
days back through the API, ``tracehive prune`` and the server's own pruner, a project deleted
while another keeps writing, and the refusals of bad input."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.process.server import TracehiveServer, run_cli

DAY = 86_400_000


def _now() -> int:
    return int(time.time() * 1000)


def _session(client: httpx.Client, name: str, ages_in_days: list[float]) -> tuple[str, list[str]]:
    """A session with one event per age (days back from now), the session starting with the first."""
    now, sid = _now(), str(uuid.uuid4())
    starts = [int(now - age * DAY) for age in ages_in_days]
    r = client.post("/v1/sessions", json={"session_id": sid, "session_name": name, "start_time": min(starts)})
    assert r.status_code == 200, r.text
    events = [{"event_type": "tool", "event_name": f"{name}-{i}", "inputs": {}, "start_time": start,
               "duration": 5} for i, start in enumerate(starts)]
    r = client.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
    assert r.status_code == 200, r.text
    tree = client.get(f"/v1/sessions/{sid}").json()
    return sid, [c["event_id"] for c in tree["children"]]


def _status(client: httpx.Client, path: str) -> int:
    return client.get(path).status_code


def test_prune_removes_what_is_past_the_retention(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TracehiveServer(data, cwd=tmp_path) as server, server.client(server.bootstrap_key) as client:
        old_sid, old_ids = _session(client, "old", [10, 9])
        mixed_sid, mixed_ids = _session(client, "mixed", [12, 2, 1])
        new_sid, new_ids = _session(client, "new", [0.5])
        nothing = run_cli("prune", "--data-dir", str(data)).stdout
        assert "keeps events forever" in nothing
        assert "events kept 7 days" in run_cli("projects", "update", "default", "--retention-days", "7",
                                                "--data-dir", str(data)).stdout
        out = run_cli("prune", "--project", "default", "--data-dir", str(data)).stdout
        assert "removed 3 events and 1 sessions" in out and "1 sessions now start" in out, out

        assert _status(client, f"/v1/sessions/{old_sid}") == 404
        assert all(_status(client, f"/v1/events/{e}") == 404 for e in [*old_ids, mixed_ids[0]])
        mixed = client.get(f"/v1/sessions/{mixed_sid}").json()
        kept = sorted(mixed["children"], key=lambda c: c["start_time"])
        assert [c["event_id"] for c in kept] == mixed_ids[1:]
        assert mixed["start_time"] == kept[0]["start_time"] and mixed["metadata"]["num_events"] == 2
        assert [c["event_id"] for c in client.get(f"/v1/sessions/{new_sid}").json()["children"]] == new_ids
        again = run_cli("prune", "--data-dir", str(data)).stdout
        assert "removed 0 events and 0 sessions" in again


def test_the_server_prunes_in_the_background_while_writes_go_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"TRACEHIVE_RETENTION_INTERVAL_SECONDS": "1"}
    with TracehiveServer(data, env=env, cwd=tmp_path) as server, server.client(server.bootstrap_key) as client:
        run_cli("projects", "update", "default", "--retention-days", "3", "--data-dir", str(data))
        old_sid, _ = _session(client, "old", [5, 4])
        statuses: list[int] = []
        deadline = time.monotonic() + 30
        while _status(client, f"/v1/sessions/{old_sid}") != 404 and time.monotonic() < deadline:
            r = client.post("/v1/events", json={"event_type": "tool", "inputs": {}})
            statuses.append(r.status_code)
            time.sleep(0.05)
        assert _status(client, f"/v1/sessions/{old_sid}") == 404, "the pruner never ran"
        assert statuses and set(statuses) == {200}
        recent = client.post("/v1/events/export", json={"limit": 1000}).json()["count"]
        assert recent >= len(statuses)


def test_a_project_is_deleted_while_another_keeps_working(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TracehiveServer(data, cwd=tmp_path) as server:
        key_a = run_cli("keys", "create", "--project", "alpha", "--data-dir", str(data)).stdout.split()[-1]
        key_b = run_cli("keys", "create", "--project", "beta", "--data-dir", str(data)).stdout.split()[-1]
        with server.client(key_a) as a:
            a_sid, _ = _session(a, "a", [0, 0, 0])
            r = a.post("/v1/datasets", json={"name": "golden"})
            assert r.status_code == 200, r.text
        written: list[str] = []
        failures: list[Any] = []
        stop = threading.Event()

        def write_b() -> None:
            with server.client(key_b) as b:
                while not stop.is_set():
                    r = b.post("/v1/events", json={"event_type": "tool", "inputs": {"n": len(written)}})
                    if r.status_code == 200:
                        written.append(r.json()["event_id"])
                    else:
                        failures.append((r.status_code, r.text))

        writer = threading.Thread(target=write_b)
        writer.start()
        try:
            time.sleep(0.5)
            out = run_cli("projects", "delete", "alpha", "--yes", "--data-dir", str(data)).stdout
            time.sleep(0.5)
        finally:
            stop.set()
            writer.join(30)
        assert "Deleted project alpha: 4 events, 1 keys, 1 records." in out, out
        assert failures == [] and len(written) > 5
        with server.client(key_a) as a:
            deadline = time.monotonic() + 10  # a running server trusts a resolved key this long
            while a.get(f"/v1/sessions/{a_sid}").status_code != 401 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert a.get(f"/v1/sessions/{a_sid}").status_code == 401
        with server.client(key_b) as b:
            assert all(b.get(f"/v1/events/{e}").status_code == 200 for e in written)
        projects = run_cli("projects", "list", "--data-dir", str(data)).stdout
        assert "beta" in projects and "alpha" not in projects


def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("keys", "create", "--project", "p", "--data-dir", str(data))
    cases = [
        (["projects", "update", "absent", "--retention-days", "3"], "no project named 'absent'"),
        (["projects", "update", "p", "--retention-days", "-2"], "cannot be negative"),
        (["projects", "update", "p", "--retention-days", "soon"], "not a whole number"),
        (["projects", "update", "p"], "nothing to change"),
        (["projects", "update", "p", "--redact", "email", "--no-redact"], "cannot be given together"),
        (["projects", "delete", "absent", "--yes"], "no project named 'absent'"),
        (["projects", "delete", "p"], "pass --yes"),
        (["prune", "--project", "absent"], "no project named 'absent'"),
        (["prune", "--data-dir", str(tmp_path / "elsewhere")], "no database in"),
    ]
    for args, says in cases:
        full = args if "--data-dir" in args else [*args, "--data-dir", str(data)]
        result = run_cli(*full, check=False)
        assert result.returncode != 0, (args, result.stdout)
        assert says in result.stderr.strip().splitlines()[-1], (args, result.stderr)
        assert "Traceback" not in result.stderr
    # Nothing changed: p still keeps its events forever and exists.
    assert "p: keeps events forever" in run_cli("prune", "--project", "p", "--data-dir", str(data)).stdout
    assert not (tmp_path / "elsewhere").exists()
