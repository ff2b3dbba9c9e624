"""``tracehive export`` and ``tracehive import`` as real subprocesses: the round trip (export,
import into an empty data dir, export again: the same bytes), filters, ``--since``, CSV, bad
import lines, and the progress bar (only when stderr is a terminal)."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.process.server import CLI_TIMEOUT, TracehiveServer, clean_env, run_cli
from tracehive.transfer import csv_cell

DAY = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def populate(server: TracehiveServer, key: str) -> dict[str, Any]:
    """Through the real API: an explicit session with nested events, updates, an implicit session, unicode, floats, an old session (30 days ago)."""
    now = now_ms()
    sid, old_sid = str(uuid.uuid4()), str(uuid.uuid4())
    chain, model, tool = (str(uuid.uuid4()) for _ in range(3))
    with server.client(key) as c:
        def ok(reply: Any) -> Any:
            assert reply.status_code == 200, reply.text
            return reply.json()

        ok(c.post("/v1/sessions", json={"session_id": sid, "session_name": "sessión ☃", "start_time": now - 5_000,
                                        "metadata": {"nested": {"list": [1, 2.5, None, {"x": "ü"}]}}}))
        ok(c.post(f"/v1/sessions/{sid}/events/batch", json={"events": [
            {"event_id": chain, "event_type": "chain", "event_name": "pipeline", "start_time": now - 4_000,
             "duration": 1234.5678, "inputs": {"q": "héllo 🐝 \"quoted\"\nnewline"}},
            {"event_id": model, "parent_id": chain, "event_type": "model", "event_name": "generate",
             "start_time": now - 3_000, "duration": 0.1, "config": {"model": "gpt-4o", "temperature": 0.7},
             "inputs": {"chat_history": [{"role": "user", "content": "2+2?"}]}, "outputs": {"content": "4"},
             "metadata": {"cost": 0.00012, "total_tokens": 17, "ratio": 1e-9, "big": 12345678901234567}},
            {"event_id": tool, "parent_id": chain, "event_type": "tool", "event_name": "search",
             "start_time": now - 2_000, "duration": 10, "error": "timeout", "inputs": {}, "metadata": {"cost": 0.5}},
        ]}))  # fmt: skip
        ok(c.put(f"/v1/events/{tool}", json={"feedback": {"rating": 4}}))
        ok(c.put(f"/v1/events/{model}", json={"metrics": {"score": 0.875}, "outputs": {"content": "four"}}))
        ok(c.put(f"/v1/events/{sid}", json={"outputs": {"final": "4"}, "user_properties": {"user_id": "ü-1"}}))
        ok(c.post("/v1/events/batch", json={"events": [  # an implicit session
            {"event_type": "tool", "event_name": "lonely", "start_time": now - 1_000, "inputs": {}}]}))
        ok(c.post("/v1/sessions", json={"session_id": old_sid, "session_name": "old", "start_time": now - 30 * DAY}))
        ok(c.post(f"/v1/sessions/{old_sid}/events/batch", json={"events": [
            {"event_type": "model", "event_name": "old-generate", "start_time": now - 30 * DAY + 1, "inputs": {},
             "metadata": {"cost": 0.2}}]}))  # fmt: skip
    return {"sid": sid, "old_sid": old_sid, "ids": {"chain": chain, "model": model, "tool": tool}}


@pytest.fixture
def populated(server: TracehiveServer, key: str) -> dict[str, Any]:
    return populate(server, key)


def export(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("export", "--data-dir", str(data_dir), *args, check=check)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_round_trip_is_byte_identical(server: TracehiveServer, populated: dict[str, Any], tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    # The server is running: the CLI reads the same data dir (WAL lets both work).
    result = export(server.data_dir, "-o", str(first))
    assert result.stdout == "" and "Exported 8 events" in result.stderr
    rows = lines(first)
    assert len(rows) == 8  # 2 explicit sessions, their 4 events, lonely and its implicit session
    assert {r["event_type"] for r in rows} == {"session", "chain", "model", "tool"}
    assert not any(k in r for r in rows for k in ("org_id", "workspace_id", "project_id", "tenant"))
    by_id = {r["event_id"]: r for r in rows}
    model = by_id[populated["ids"]["model"]]
    assert model["metrics"] == {"score": 0.875} and model["outputs"] == {"content": "four"}
    assert model["metadata"]["big"] == 12345678901234567 and model["duration"] == 0.1
    assert by_id[populated["ids"]["tool"]]["feedback"] == {"rating": 4}
    assert by_id[populated["sid"]]["event_name"] == "sessión ☃"
    # stdout gives the same bytes as -o
    assert subprocess_bytes(["export", "--data-dir", str(server.data_dir)]) == first.read_bytes()

    target = tmp_path / "empty"
    imported = run_cli("import", str(first), "--data-dir", str(target))
    assert "Imported 8 events into project 'default'" in imported.stdout
    export(target, "-o", str(second))
    assert second.read_bytes() == first.read_bytes()

    # Importing into another project of the same data dir, and re-importing, also round-trips.
    run_cli("import", str(first), "--project", "copy", "--data-dir", str(target))
    run_cli("import", str(first), "--project", "copy", "--data-dir", str(target))
    third = tmp_path / "third.jsonl"
    export(target, "--project", "copy", "-o", str(third))
    assert third.read_bytes() == first.read_bytes()


def subprocess_bytes(args: list[str]) -> bytes:
    result = subprocess.run([sys.executable, "-m", "tracehive", *args], capture_output=True, env=clean_env(),
                            timeout=CLI_TIMEOUT, check=True)  # fmt: skip
    return result.stdout


def test_filters_and_since(server: TracehiveServer, populated: dict[str, Any], tmp_path: Path) -> None:
    d = server.data_dir

    def names(*args: str) -> list[str]:
        return [json.loads(line)["event_name"] for line in export(d, *args).stdout.splitlines()]

    assert names("--filter", "event_type", "is", "model") == ["generate", "old-generate"]
    assert names("--filter", "metadata.cost", "greater", "than", "0.1") == ["search", "old-generate"]
    assert names("--filter", "metadata.cost", "greater than", "0.1", "--filter", "event_type", "is", "tool") == [
        "search"]
    assert names("--filter", "metadata.cost", "less_than", "0.3", "--since", "7d") == ["generate"]
    assert names("--filter", "error", "exists") == ["search"]
    assert names("--filter", "config.model", "is", "gpt-4o") == ["generate"]
    assert "old" not in names("--since", "7d") and "old-generate" not in names("--since", "7d")
    assert len(names("--since", "7d")) == 6 and len(names("--since", "31d")) == 8
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86_400))
    assert len(names("--since", iso)) == 6
    assert names("--project", "default", "--filter", "event_name", "is", "nothing") == []

    bad = export(d, "--filter", "metadata.cost", "bigger", "1", check=False)
    assert bad.returncode == 2 and "filters[0].operator" in bad.stderr and bad.stdout == ""
    bad = export(d, "--since", "yesterday", check=False)
    assert bad.returncode == 2 and "dateRange" in bad.stderr
    bad = export(d, "--project", "nope", check=False)
    assert bad.returncode == 1 and "no project named 'nope'" in bad.stderr and "default" in bad.stderr
    bad = export(tmp_path / "missing", check=False)
    assert bad.returncode == 1 and "no database" in bad.stderr and not (tmp_path / "missing").exists()


def test_csv(server: TracehiveServer, populated: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    export(server.data_dir, "--format", "csv", "-o", str(out))
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    jsonl = {r["event_id"]: r for r in (json.loads(x) for x in export(server.data_dir).stdout.splitlines())}
    assert len(rows) == len(jsonl) == 8
    assert list(rows[0]) == list(next(iter(jsonl.values())))  # the same columns, in the same order
    for row in rows:
        source = jsonl[row["event_id"]]
        for column in ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties",
                       "children_ids"):
            assert json.loads(row[column]) == source[column]
        for column in ("start_time", "end_time", "duration"):
            assert json.loads(row[column]) == source[column]
        assert row["parent_id"] == (source["parent_id"] or "") and row["error"] == (source["error"] or "")
    chain = next(r for r in rows if r["event_name"] == "pipeline")
    assert json.loads(chain["inputs"])["q"] == "héllo 🐝 \"quoted\"\nnewline"


def test_bad_import_lines_are_reported_and_good_ones_imported(tmp_path: Path) -> None:
    sid = str(uuid.uuid4())
    good = {"event_id": sid, "session_id": sid, "parent_id": None, "children_ids": [], "event_type": "session",
            "event_name": "s", "source": "x", "config": {}, "inputs": {}, "outputs": None, "error": None,
            "start_time": 1, "end_time": 2, "duration": 1, "metadata": {}, "feedback": {}, "metrics": {},
            "user_properties": {}}  # fmt: skip
    child = {**good, "event_id": str(uuid.uuid4()), "parent_id": sid, "event_type": "tool", "event_name": "c"}
    text = "\n".join([
        json.dumps(good),
        "{not json",
        json.dumps({**child, "start_time": "soon"}),
        "",
        json.dumps(child),
        json.dumps({**child, "event_id": str(uuid.uuid4()), "surprise": 1}),
        json.dumps([1, 2]),
    ]) + "\n"  # fmt: skip
    source = tmp_path / "in.jsonl"
    source.write_text(text)
    target = tmp_path / "data"
    result = run_cli("import", str(source), "--data-dir", str(target), check=False)
    assert result.returncode == 1
    assert "Imported 2 events" in result.stdout
    announced, *errors = result.stderr.splitlines()
    assert announced == f"tracehive import: creating a new database in {target}"
    assert errors[0].startswith(f"{source}:2: not valid JSON")
    assert errors[1] == f"{source}:3: start_time must be a number (Unix ms)"
    assert errors[2] == f"{source}:6: unknown field 'surprise'"
    assert errors[3] == f"{source}:7: not a JSON object"
    assert "Skipped 4 bad lines" in errors[4]
    assert sorted(json.loads(x)["event_name"] for x in export(target).stdout.splitlines()) == ["c", "s"]

    # A small batch size: the good lines around a bad one still land, each batch atomically.
    again = run_cli("import", str(source), "--project", "p2", "--batch-size", "1", "--data-dir", str(target),
                    check=False)  # fmt: skip
    assert again.returncode == 1 and "Imported 2 events into project 'p2'" in again.stdout
    missing = run_cli("import", str(tmp_path / "nope.jsonl"), "--data-dir", str(target), check=False)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def run_with_pty_stderr(args: list[str]) -> tuple[int, bytes, bytes]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); return (rc, stdout, tty bytes)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tracehive", *args], stdout=subprocess.PIPE, stderr=slave,
                            env=clean_env())  # fmt: skip
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        tty += chunk
    out = proc.stdout.read() if proc.stdout else b""
    rc = proc.wait(timeout=CLI_TIMEOUT)
    os.close(master)
    return rc, out, tty


def test_progress_bar_only_on_a_terminal(server: TracehiveServer, populated: dict[str, Any], tmp_path: Path) -> None:
    piped = export(server.data_dir)
    # Not a terminal: no progress line at all, only which data dir was read.
    assert piped.stderr == f"tracehive export: using {server.data_dir.absolute()}\n"
    rc, out, tty = run_with_pty_stderr(["export", "--data-dir", str(server.data_dir)])
    assert rc == 0 and len(out.splitlines()) == 8
    assert b"\rexported 8 events" in tty and b"/s" in tty and b"{" not in tty  # data never goes to stderr

    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(out)
    piped_import = run_cli("import", str(dump), "--data-dir", str(tmp_path / "other"))
    assert "\r" not in piped_import.stderr
    rc, out, tty = run_with_pty_stderr(["import", str(dump), "--data-dir", str(tmp_path / "other2")])
    assert rc == 0 and b"\rimported 8 events" in tty and b"Imported 8 events" in out


def test_import_honours_the_size_cap_and_fails_cleanly(tmp_path: Path) -> None:
    # `tracehive import` opens the same store as `serve`, size cap included; a full store is a
    # one-line error and a non-zero exit, not a traceback, and what was committed is kept.
    lines = [json.dumps({"event_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "event_type": "tool",
                         "event_name": "x", "source": "s", "start_time": 1_700_000_000_000 + i,
                         "end_time": 1_700_000_000_001 + i, "duration": 1, "inputs": {"blob": "y" * 300}})
             for i in range(3000)]
    dump = tmp_path / "big.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    data_dir = tmp_path / "capped"
    result = run_cli("import", str(dump), "--data-dir", str(data_dir), "--batch-size", "100",
                     env={"TRACEHIVE_MAX_DB_BYTES": "1000000"}, check=False)
    assert result.returncode == 1, result.stderr
    assert "tracehive import: the store could not write" in result.stderr and "Traceback" not in result.stderr
    assert (data_dir / "tracehive.db").stat().st_size <= 1_000_000
    exported = run_cli("export", "--data-dir", str(data_dir), env={"TRACEHIVE_MAX_DB_BYTES": "1000000"})
    assert 0 < len(exported.stdout.splitlines()) < 3000


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(server: TracehiveServer, key: str,
                                                          tmp_path: Path) -> None:
    """Text that starts like a formula gets a leading quote; numbers, even negative, do not."""
    formulas = ['=HYPERLINK("http://evil.example","click")', "@SUM(A1)", "+1+1", "-1+cmd|' /C calc'!A0",
                "\t=1", "\r=1"]
    sid = str(uuid.uuid4())
    with server.client(key) as c:
        reply = c.post(f"/v1/sessions/{sid}/events/batch", json={"events": [
            {"event_type": "tool", "event_name": text, "error": text, "source": "safe -1", "inputs": {},
             "start_time": now_ms(), "duration": 5}
            for text in formulas]})  # fmt: skip
        assert reply.status_code == 200, reply.text
    out = tmp_path / "events.csv"
    export(server.data_dir, "--format", "csv", "-o", str(out))
    with out.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["event_type"] == "tool"]
    assert sorted(r["event_name"] for r in rows) == sorted("'" + text for text in formulas)
    for row in rows:
        assert row["error"] == row["event_name"] and row["source"] == "safe -1"
        assert row["duration"] == "5"
    # A number stays a number (times and durations are written by the same function).
    assert [csv_cell(t) for t in ("-5", "-1.5e3", "+5", "-")] == ["-5", "-1.5e3", "'+5", "'-"]
