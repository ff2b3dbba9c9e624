"""The ``tracehive`` command line, run as real subprocesses against a real data dir and server."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.process.server import (
    INGESTION_KEY_RE,
    PROJECT_KEY_RE,
    ServerError,
    TracehiveServer,
    free_port,
    holds_listener,
    run_cli,
)
from tracehive import __version__

REVOKE_DEADLINE = 6.0  # the server trusts a resolved key for 2 s; allow for a slow machine


def create_key(data_dir: Path, project: str, kind: str | None = None) -> tuple[str, list[str]]:
    """Run ``keys create``; return (the key on the last line, all stdout lines)."""
    args = ["keys", "create", "--project", project, "--data-dir", str(data_dir)]
    if kind is not None:
        args += ["--kind", kind]
    result = run_cli(*args)
    assert result.stdout.endswith("\n"), repr(result.stdout)
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    key = lines[-1]
    assert key == key.strip() and " " not in key, repr(key)
    return key, lines


def key_id(key: str) -> str:
    """The public id part of a key (``hh_[ingst_]<id>_<secret>``)."""
    return key.removeprefix("hh_").removeprefix("ingst_")[:24]


def secret(key: str) -> str:
    return key[-64:]


def project_names(data_dir: Path) -> list[str]:
    lines = run_cli("projects", "list", "--data-dir", str(data_dir)).stdout.splitlines()
    assert lines[0].split() == ["PROJECT", "ID", "NAME", "CREATED"], lines
    return [line.split()[1] for line in lines[1:] if line.strip()]


def key_rows(data_dir: Path) -> dict[str, list[str]]:
    """``keys list`` rows by key id (the row split on whitespace)."""
    result = run_cli("keys", "list", "--data-dir", str(data_dir))
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["KEY", "ID", "KIND"], lines
    rows = {}
    for line in lines[1:]:
        if line.strip():
            parts = line.split()
            rows[parts[0]] = parts
    return rows


def can_read_and_write(server: TracehiveServer, key: str) -> None:
    with server.client(key) as c:
        created = c.post("/v1/sessions", json={"session_name": "cli-check"})
        assert created.status_code == 200, created.text
        sid = created.json()["session_id"]
        events = [{"event_type": "tool", "inputs": {"x": 1}}]
        batch = c.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
        assert batch.status_code == 200, batch.text
        tree = c.get(f"/v1/sessions/{sid}")
        assert tree.status_code == 200, tree.text
        assert tree.json()["metadata"]["num_events"] == 1


# keys create -----------------------------------------------------------------------------------


def test_keys_create_prints_key_last_and_creates_project(data_dir: Path) -> None:
    key, lines = create_key(data_dir, "alpha")
    assert PROJECT_KEY_RE.match(key), key
    assert any("alpha" in line for line in lines[:-1])  # says which project it created
    assert project_names(data_dir) == ["alpha"]

    # A second key for the same project reuses it; a key for a new project creates that one.
    key2, lines2 = create_key(data_dir, "alpha", "project")
    assert PROJECT_KEY_RE.match(key2) and key2 != key
    assert not any(line.startswith("Created project '") for line in lines2), lines2
    key3, _ = create_key(data_dir, "beta")
    assert key3 not in (key, key2)
    assert project_names(data_dir) == ["alpha", "beta"]


def test_ingestion_key_shape_and_permissions(data_dir: Path) -> None:
    ingest, _ = create_key(data_dir, "ingest-only", "ingestion")
    assert INGESTION_KEY_RE.match(ingest), ingest
    reader, _ = create_key(data_dir, "ingest-only")
    with TracehiveServer(data_dir) as server:
        assert server.bootstrap_key is None  # a project already existed: no bootstrap
        with server.client(ingest) as c:
            created = c.post("/v1/sessions", json={"session_name": "from-ingest"})
            assert created.status_code == 200, created.text
            sid = created.json()["session_id"]
            assert c.get(f"/v1/sessions/{sid}").status_code == 403  # ingestion keys only write
        with server.client(reader) as c:  # a project key of the same project sees the write
            tree = c.get(f"/v1/sessions/{sid}")
            assert tree.status_code == 200, tree.text
            assert tree.json()["event_name"] == "from-ingest"


def test_key_created_while_server_runs_works_immediately(server: TracehiveServer, data_dir: Path) -> None:
    key, _ = create_key(data_dir, "live")
    can_read_and_write(server, key)
    # It is scoped to its own project: the bootstrap key of `default` cannot see its session.
    with server.client(key) as c:
        sid = c.post("/v1/sessions", json={}).json()["session_id"]
    with server.client(server.bootstrap_key) as c:
        assert c.get(f"/v1/sessions/{sid}").status_code == 404


def test_keys_create_rejects_unknown_kind(data_dir: Path) -> None:
    result = run_cli(
        "keys", "create", "--project", "x", "--kind", "admin", "--data-dir", str(data_dir), check=False
    )
    assert result.returncode != 0
    assert "admin" in result.stderr


@pytest.mark.parametrize("name", ["", "   ", "\t", "a\nb", "x" * 201])
def test_keys_create_refuses_a_blank_or_unprintable_project_name(data_dir: Path, name: str) -> None:
    result = run_cli("keys", "create", "--project", name, "--data-dir", str(data_dir), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--project: a project name" in result.stderr
    assert not (data_dir / "tracehive.db").exists()


def test_project_names_are_kept_as_given_around_inner_spaces(data_dir: Path) -> None:
    created = run_cli("keys", "create", "--project", "  my app  ", "--data-dir", str(data_dir)).stdout
    assert "Created project 'my app' (" in created
    again = run_cli("keys", "create", "--project", "my app", "--data-dir", str(data_dir)).stdout
    assert "Created project 'my app'" not in again and "for project 'my app'" in again  # the same project


# keys list / revoke ----------------------------------------------------------------------------


def test_keys_list_shows_id_and_kind_never_the_secret(data_dir: Path) -> None:
    project_key, _ = create_key(data_dir, "listed")
    ingest_key, _ = create_key(data_dir, "listed", "ingestion")
    result = run_cli("keys", "list", "--data-dir", str(data_dir))
    rows = key_rows(data_dir)
    assert set(rows) == {key_id(project_key), key_id(ingest_key)}
    assert rows[key_id(project_key)][1:3] == ["project", "listed"]
    assert rows[key_id(ingest_key)][1:3] == ["ingestion", "listed"]
    assert rows[key_id(project_key)][-1] == "active"
    for key in (project_key, ingest_key):
        assert secret(key) not in result.stdout
        assert secret(key)[:16] not in result.stdout
        assert key not in result.stdout


def test_keys_revoke_stops_the_key_on_a_running_server(server: TracehiveServer, data_dir: Path) -> None:
    doomed, _ = create_key(data_dir, "revocable")
    kept, _ = create_key(data_dir, "revocable")
    can_read_and_write(server, doomed)  # now resolved and cached by the server

    result = run_cli("keys", "revoke", key_id(doomed), "--data-dir", str(data_dir))
    assert key_id(doomed) in result.stdout
    revoked_at = time.monotonic()

    status = None
    with server.client(doomed) as c:
        while time.monotonic() - revoked_at < REVOKE_DEADLINE:
            status = c.get("/v1/sessions/" + str(uuid.uuid4())).status_code
            if status == 401:
                break
            assert status == 404  # still accepted (cached) until the cache expires
            time.sleep(0.2)
    assert status == 401, f"revoked key still accepted {REVOKE_DEADLINE} s after revoke"
    with server.client(doomed) as c:  # writes are refused too
        assert c.post("/v1/sessions", json={}).status_code == 401

    can_read_and_write(server, kept)  # the other key of the project is unaffected
    rows = key_rows(data_dir)
    assert "revoked" in rows[key_id(doomed)]
    assert rows[key_id(kept)][-1] == "active"

    # Revoking it again, or an id that never existed, fails with a non-zero exit.
    again = run_cli("keys", "revoke", key_id(doomed), "--data-dir", str(data_dir), check=False)
    assert again.returncode != 0
    unknown = run_cli("keys", "revoke", "NoSuchKeyId0000000000000", "--data-dir", str(data_dir), check=False)
    assert unknown.returncode != 0
    assert "NoSuchKeyId0000000000000" in unknown.stderr


def test_revoke_unknown_key_on_empty_data_dir_exits_non_zero(data_dir: Path) -> None:
    result = run_cli("keys", "revoke", "nope", "--data-dir", str(data_dir), check=False)
    assert result.returncode != 0
    assert result.stdout == ""


# projects --------------------------------------------------------------------------------------


def test_projects_list(data_dir: Path) -> None:
    create_key(data_dir, "zeta")
    assert project_names(data_dir) == ["zeta"]
    for name in ("zeta", "alpha", "mid"):
        create_key(data_dir, name)
    create_key(data_dir, "alpha", "ingestion")
    names = project_names(data_dir)
    assert sorted(names) == ["alpha", "mid", "zeta"]  # each once
    listing = run_cli("projects", "list", "--data-dir", str(data_dir)).stdout.splitlines()
    ids = [line.split()[0] for line in listing[1:]]
    assert len(ids) == 3 and all(uuid.UUID(i) for i in ids)


@pytest.mark.parametrize("command", [["keys", "list"], ["projects", "list"], ["keys", "revoke", "k"], ["export"]])
def test_reading_commands_refuse_a_data_dir_with_no_database(tmp_path: Path, command: list[str]) -> None:
    """A mistyped --data-dir names the path it looked at and makes nothing there."""
    mistyped = tmp_path / "tracehive-dat"
    result = run_cli(*command, "--data-dir", str(mistyped), check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"tracehive {' '.join(command[:2]) if command[0] != 'export' else 'export'}: "
                                    f"no database in {mistyped} ")
    assert not mistyped.exists()


def test_every_store_command_says_which_data_dir_it_uses_as_an_absolute_path(tmp_path: Path) -> None:
    created = run_cli("keys", "create", "--project", "p", "--data-dir", "rel-data", cwd=tmp_path)
    assert created.stderr == f"tracehive keys create: creating a new database in {tmp_path / 'rel-data'}\n"
    assert PROJECT_KEY_RE.match(created.stdout.splitlines()[-1])  # the key is still the last line
    for command in (["keys", "list"], ["projects", "list"], ["migrate"]):
        result = run_cli(*command, "--data-dir", "rel-data", cwd=tmp_path)
        assert result.stderr.splitlines()[0] == f"tracehive {' '.join(command)}: using {tmp_path / 'rel-data'}"


def test_a_data_dir_that_is_a_file_is_one_line_for_every_command(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for command in (["keys", "create", "--project", "p"], ["keys", "list"], ["import", "-"], ["migrate"]):
        result = run_cli(*command, "--data-dir", str(not_a_dir), check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().endswith(f"the data dir {not_a_dir} is a file, not a directory")
    below = not_a_dir / "data"
    result = run_cli("keys", "create", "--project", "p", "--data-dir", str(below), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 2
    assert "Not a directory" in result.stderr  # the OS's reason, on the line after "creating a new database"


# serve -----------------------------------------------------------------------------------------


def test_serve_bootstraps_default_project_once(data_dir: Path) -> None:
    server = TracehiveServer(data_dir)
    with server:
        assert len(server.printed_keys) == 1, server.stdout
        key = server.bootstrap_key
        assert key is not None and PROJECT_KEY_RE.match(key)
        assert server.stdout_lines.count(key) == 1  # alone on its line
        can_read_and_write(server, key)
    assert project_names(data_dir) == ["default"]
    assert list(key_rows(data_dir)) == [key_id(key)]

    with server:  # second start on the same data dir: no new key, the old one still works
        assert server.printed_keys == [], server.stdout
        assert server.bootstrap_key is None
        can_read_and_write(server, key)
    assert project_names(data_dir) == ["default"]
    assert list(key_rows(data_dir)) == [key_id(key)]


def test_serve_honours_env_vars(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-env"
    port = free_port("127.0.0.2")
    env = {"TRACEHIVE_PORT": str(port), "TRACEHIVE_HOST": "127.0.0.2", "TRACEHIVE_DATA_DIR": str(data_dir)}
    with TracehiveServer(port=port, host="127.0.0.2", env=env, flags=False, cwd=tmp_path) as server:
        assert f"http://127.0.0.2:{port}" in server.stdout
        assert server.bootstrap_key is not None
        can_read_and_write(server, server.bootstrap_key)
        with pytest.raises(httpx.ConnectError):  # bound to 127.0.0.2 only
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert (data_dir / "tracehive.db").is_file()
    assert not (tmp_path / "tracehive-data").exists()


def test_serve_flags_override_env_vars(tmp_path: Path) -> None:
    env_dir, flag_dir = tmp_path / "env-dir", tmp_path / "flag-dir"
    env_port = free_port("127.0.0.2")
    env = {"TRACEHIVE_PORT": str(env_port), "TRACEHIVE_HOST": "127.0.0.2", "TRACEHIVE_DATA_DIR": str(env_dir)}
    with TracehiveServer(flag_dir, host="127.0.0.1", env=env, cwd=tmp_path) as server:
        assert server.port != env_port
        assert f"http://127.0.0.1:{server.port}" in server.stdout
        assert server.bootstrap_key is not None
        can_read_and_write(server, server.bootstrap_key)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.2:{env_port}/healthz", timeout=5)
    assert (flag_dir / "tracehive.db").is_file()
    assert not env_dir.exists()


def test_version() -> None:
    result = run_cli("--version")
    assert result.stdout.strip() == f"tracehive {__version__}"
    assert __version__.count(".") >= 1


def test_no_command_is_a_usage_error() -> None:
    result = run_cli(check=False)
    assert result.returncode == 2
    assert "usage: tracehive" in result.stderr


def test_a_second_server_on_a_taken_port_fails_to_start_rather_than_pass_for_the_first(tmp_path: Path) -> None:
    """The test harness's own guard: a /healthz answer from the server already on the port must
    not count as the new server being up (CI once ran two nodes of a test on one port)."""
    port = free_port()
    with TracehiveServer(tmp_path / "first", port=port) as first:
        second = TracehiveServer(tmp_path / "second", port=port)
        with pytest.raises(ServerError, match="address already in use|another process answers"):
            second.start()
        assert not second.running
        assert first.running and holds_listener(first.pid, port)
