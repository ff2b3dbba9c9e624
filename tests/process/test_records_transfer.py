"""``tracehive export`` / ``tracehive import`` move a project whole (issue 13 point 7): besides its
events, its records (datasets, datapoints, runs, configurations, metric definitions) travel as
``{"record": {...}}`` lines, into a fresh SQLite data dir and into PostgreSQL, and read back the
same through the store and the API. Importing twice changes nothing; event-only files (every
export made before records) still import; an importer from before records refuses record lines
by name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.process.server import TracehiveServer, run_cli
from tests.process.test_export_import import populate
from tracehive import transfer
from tracehive.cli.export_import import _scope_of
from tracehive.settings import Settings
from tracehive.storage.factory import store_from_settings
from tracehive.storage.records import Record, RecordChange, RecordKind

PARAMETERS = {"call_type": "chat", "model": "gpt-4o-mini", "hyperparameters": {"temperature": 0},
              "template": [{"role": "system", "content": "Answer {{question}} ☃"}]}
METRIC = {"name": "conciseness", "type": "PYTHON", "criteria": "def f(e): return 1", "return_type": "float",
          "needs_ground_truth": False, "threshold": {"min": 0.5}}
# What the API answers that depends on where and when a record was stored, not on the record.
PLACE_AND_TIME = ("created_at", "updated_at", "scope_id")


def ok(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def populate_records(server: TracehiveServer, key: str, sessions: list[str]) -> dict[str, str]:
    """Through the real API: a dataset with three datapoints (two from rows, one created linked to
    it), a datapoint in no dataset, a run on the dataset over ``sessions`` (updated), a
    configuration and a metric definition with a version."""
    with server.client(key) as c:
        ds = ok(c.post("/v1/datasets", json={"name": "qa ☃", "description": "questions"}))["result"]["insertedId"]
        rows = [{"q": "2+2?", "a": "4", "lang": "en"}, {"q": "ça va?", "a": "oui", "lang": "fr"}]
        added = ok(c.post(f"/v1/datasets/{ds}/datapoints",
                          json={"data": rows, "mapping": {"inputs": ["q"], "ground_truth": ["a"]}}))
        linked = ok(c.post("/v1/datapoints", json={"inputs": {"q": "1+1?"}, "history": [{"role": "user", "content": "hi"}],
                                                   "linked_datasets": [ds]}))["result"]["insertedIds"][0]
        loose = ok(c.post("/v1/datapoints", json={"inputs": {"n": 1.5e-9}, "metadata": {"big": 12345678901234567}}))
        ok(c.put(f"/v1/datapoints/{linked}", json={"metadata": {"edited": True}}))
        run = ok(c.post("/v1/runs", json={"name": "baseline", "dataset_id": ds, "datapoint_ids": added["datapoint_ids"],
                                          "metadata": {"git": {"branch": "main"}},
                                          "configuration": {"function": "fn", "evaluators": ["exact"]}}))["run_id"]
        ok(c.put(f"/v1/runs/{run}", json={"status": "completed", "event_ids": sessions,
                                          "metadata": {"offline_dataset_id": "EXT-1"}}))
        config = ok(c.post("/v1/configurations", json={"name": "qa-prompt", "provider": "openai", "parameters": PARAMETERS,
                                                       "env": ["dev"], "tags": ["t1"]}))["insertedId"]
        metric = ok(c.post("/v1/metrics", json=METRIC))["metric_id"]
        ok(c.post(f"/v1/metrics/{metric}/versions",
                  json={"message": "v2", "content": {**METRIC, "criteria": "def f(e): return 2"}}))
    return {"dataset": ds, "datapoint": linked, "loose": loose["result"]["insertedIds"][0], "run": run,
            "configuration": config, "metric": metric}


def stored_records(settings: Settings, project: str = "default") -> dict[tuple[str, str], Record]:
    """Every record of the project, read through the store contract."""
    async def run() -> dict[tuple[str, str], Record]:
        store = store_from_settings(settings)
        await store.open()
        try:
            found = {p.name: p for p in await store.list_projects()}[project]
            scope = _scope_of(found)
            return {(r.kind.value, r.id): r for kind in RecordKind
                    for r in await store.list_records(scope, kind, limit=1 << 30)}
        finally:
            await store.close()

    return asyncio.run(run())


def tamper(settings: Settings, kind: RecordKind, record_id: str, name: str) -> None:
    """Rename one record in place through the store (what a later edit in the target would do)."""
    async def run() -> None:
        store = store_from_settings(settings)
        await store.open()
        try:
            scope = _scope_of({p.name: p for p in await store.list_projects()}["default"])
            changed = await store.update_record(scope, kind, record_id,
                                                lambda r: RecordChange(name, {**r.body, "tampered": True}))
            assert changed is not None
        finally:
            await store.close()

    asyncio.run(run())


def content(records: dict[tuple[str, str], Record]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {k: (r.kind, r.id, r.name, r.body) for k, r in records.items()}


def times(records: dict[tuple[str, str], Record]) -> dict[tuple[str, str], tuple[int, int]]:
    return {k: (r.created_at, r.updated_at) for k, r in records.items()}


def api_view(server: TracehiveServer, key: str, ids: dict[str, str]) -> dict[str, Any]:
    """Every record as the API answers it, without where and when it was stored."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in PLACE_AND_TIME}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    with server.client(key) as c:
        view = {
            "datasets": ok(c.get("/v1/datasets"))["datasets"],
            "datapoints": ok(c.get("/v1/datapoints"))["datapoints"],
            "datapoint": ok(c.get(f"/v1/datapoints/{ids['datapoint']}"))["datapoint"],
            "runs": ok(c.get("/v1/runs"))["evaluations"],
            "configurations": ok(c.get("/v1/configurations"))["configurations"],
            "metrics": ok(c.get("/v1/metrics"))["metrics"],
            "versions": ok(c.get(f"/v1/metrics/{ids['metric']}/versions")),
        }
    for name in ("datasets", "datapoints", "runs", "configurations", "metrics"):
        view[name] = sorted(view[name], key=lambda item: str(item["id"]))
    return strip(view)  # type: ignore[no-any-return]


def record_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith('{"record"')]


def project_key(data_dir: Path) -> str:
    return run_cli("keys", "create", "--project", "default", "--data-dir", str(data_dir)).stdout.strip().splitlines()[-1]


@pytest.fixture
def exported(server: TracehiveServer, key: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A project with events and one record of each kind, exported whole to ``export.jsonl``."""
    events = populate(server, key)
    ids = populate_records(server, key, [events["sid"], events["old_sid"]])
    path = tmp_path / "export.jsonl"
    result = run_cli("export", "--data-dir", str(server.data_dir), "-o", str(path))
    assert "Exported 8 events and 8 records" in result.stderr
    yield {"path": path, "ids": ids, "records": stored_records(Settings(data_dir=server.data_dir))}


def test_the_export_carries_every_record_before_the_events(exported: dict[str, Any]) -> None:
    lines = exported["path"].read_text(encoding="utf-8").splitlines()
    kinds = [json.loads(line)["record"]["kind"] for line in lines[:8]]
    assert kinds == ["dataset", "datapoint", "datapoint", "datapoint", "datapoint", "run", "configuration", "metric"]
    assert len(lines) == 8 + 8 and all("record" not in json.loads(line) for line in lines[8:])
    ids = exported["ids"]
    by_id = {r["record"]["id"]: r["record"] for r in record_lines(exported["path"])}
    assert set(by_id) == {ids["dataset"], ids["datapoint"], ids["loose"], ids["run"], ids["configuration"],
                          ids["metric"]} | set(by_id[ids["dataset"]]["body"]["datapoints"])
    source = exported["records"]
    for rec in by_id.values():  # each line is the stored record, field for field
        stored = source[(rec["kind"], rec["id"])]
        assert (rec["name"], rec["body"], rec["created_at"], rec["updated_at"]) == (
            stored.name, stored.body, stored.created_at, stored.updated_at)
    # An importer from before records (the events-only parser) refuses a record line by name.
    with pytest.raises(ValueError, match="unknown field 'record'"):
        transfer.parse_line(lines[0].encode())


def test_import_into_a_fresh_data_dir_reads_back_the_same(
    server: TracehiveServer, key: str, exported: dict[str, Any], tmp_path: Path
) -> None:
    target = tmp_path / "fresh"
    imported = run_cli("import", str(exported["path"]), "--data-dir", str(target))
    assert "Imported 8 events into project 'default'." in imported.stdout
    assert ("Imported 8 records (1 dataset, 4 datapoints, 1 run, 1 configuration, 1 metric) "
            "into project 'default'.") in imported.stdout
    settings = Settings(data_dir=target)
    assert content(stored_records(settings)) == content(exported["records"])

    # Through the API of a server on the new data dir: the same answers (but where and when).
    source = api_view(server, key, exported["ids"])
    assert [len(source[k]) for k in ("datasets", "datapoints", "runs", "configurations", "metrics")] == [1, 4, 1, 1, 1]
    assert source["runs"][0]["dataset_name"] == "qa ☃" and source["runs"][0]["metadata"]["offline_dataset_id"] == "EXT-1"
    with TracehiveServer(target) as copy:
        assert api_view(copy, project_key(target), exported["ids"]) == source

    # Importing again changes nothing: no duplicate, and not even an updated_at moves.
    before = stored_records(settings)
    again = run_cli("import", str(exported["path"]), "--data-dir", str(target))
    assert "Imported 8 records" in again.stdout
    after = stored_records(settings)
    assert content(after) == content(before) and times(after) == times(before)
    events = tmp_path / "events.jsonl"
    run_cli("export", "--data-dir", str(target), "--no-records", "-o", str(events))
    assert len(events.read_text().splitlines()) == 8

    # A record changed in the target is replaced by the file's on a new import.
    ds = exported["ids"]["dataset"]
    tamper(settings, RecordKind.DATASET, ds, "renamed")
    assert stored_records(settings)[("dataset", ds)].name == "renamed"
    run_cli("import", str(exported["path"]), "--data-dir", str(target))
    assert content(stored_records(settings)) == content(exported["records"])


def test_import_keeps_created_and_updated_times(exported: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    run_cli("import", str(exported["path"]), "--data-dir", str(target))
    assert times(stored_records(Settings(data_dir=target))) == times(exported["records"])
    again = tmp_path / "again.jsonl"
    run_cli("export", "--data-dir", str(target), "-o", str(again))
    assert again.read_bytes() == exported["path"].read_bytes()


def test_import_into_postgresql(exported: dict[str, Any], tmp_path: Path) -> None:
    with pg.fresh_database() as url:
        first = run_cli("import", str(exported["path"]), "--store", url)
        assert "Imported 8 events" in first.stdout and "Imported 8 records" in first.stdout
        settings = Settings(data_dir=tmp_path / "unused", store=url)
        assert content(stored_records(settings)) == content(exported["records"])
        before = stored_records(settings)
        run_cli("import", str(exported["path"]), "--store", url)
        assert content(stored_records(settings)) == content(before) and times(stored_records(settings)) == times(before)
        # PostgreSQL -> an export again: the same events, the same records (but their times).
        back = tmp_path / "back.jsonl"
        assert "Exported 8 events and 8 records" in run_cli("export", "--store", url, "-o", str(back)).stderr
        original = exported["path"].read_text(encoding="utf-8").splitlines()
        again = back.read_text(encoding="utf-8").splitlines()
        assert again[8:] == original[8:]

        def timeless(lines: list[str]) -> list[Any]:
            recs = [json.loads(line)["record"] for line in lines[:8]]
            return sorted(({k: v for k, v in r.items() if k not in ("created_at", "updated_at")} for r in recs),
                          key=lambda r: (r["kind"], r["id"]))

        assert timeless(again) == timeless(original)


def test_an_event_only_file_still_imports(exported: dict[str, Any], tmp_path: Path) -> None:
    """A file written before records existed: events only. It imports as it always did."""
    old = tmp_path / "old.jsonl"
    old.write_text("".join(line + "\n" for line in exported["path"].read_text(encoding="utf-8").splitlines()
                           if not line.startswith('{"record"')), encoding="utf-8")
    target = tmp_path / "old-target"
    result = run_cli("import", str(old), "--data-dir", str(target))
    assert result.stdout.strip() == "Imported 8 events into project 'default'."
    assert stored_records(Settings(data_dir=target)) == {}
    again = tmp_path / "old-again.jsonl"
    run_cli("export", "--data-dir", str(target), "-o", str(again))
    assert again.read_bytes() == old.read_bytes()  # an event-only project exports as before, byte for byte


def test_which_exports_carry_records(server: TracehiveServer, exported: dict[str, Any], tmp_path: Path) -> None:
    d = str(server.data_dir)
    # A narrowed export is about events: no records unless asked for.
    filtered = run_cli("export", "--data-dir", d, "--filter", "event_type", "is", "model").stdout.splitlines()
    assert filtered and not any(line.startswith('{"record"') for line in filtered)
    asked = run_cli("export", "--data-dir", d, "--since", "7d", "--records").stdout.splitlines()
    assert len([line for line in asked if line.startswith('{"record"')]) == 8
    assert not any(line.startswith('{"record"') for line in run_cli("export", "--data-dir", d, "--no-records").stdout.splitlines())
    csv_records = run_cli("export", "--data-dir", d, "--format", "csv", "--records", check=False)
    assert csv_records.returncode == 2 and "CSV export holds events only" in csv_records.stderr
    assert "record" not in run_cli("export", "--data-dir", d, "--format", "csv").stdout.splitlines()[0]


def test_bad_record_lines_are_reported_and_the_rest_imported(exported: dict[str, Any], tmp_path: Path) -> None:
    lines = exported["path"].read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    bad = [
        json.dumps({"record": {**first["record"], "kind": "spreadsheet"}}),
        json.dumps({"record": {**first["record"], "body": []}}),
        json.dumps({"record": {**first["record"], "created_at": "yesterday"}}),
        json.dumps({"record": {**first["record"], "colour": "red"}}),
        json.dumps({**first, "event_id": "x"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*lines, *bad]) + "\n", encoding="utf-8")
    result = run_cli("import", str(path), "--data-dir", str(tmp_path / "bad-target"), check=False)
    assert result.returncode == 1
    n = len(lines)
    assert f"bad.jsonl:{n + 1}: record.kind must be one of dataset, datapoint, run, configuration, metric" in result.stderr
    assert f"bad.jsonl:{n + 2}: record.body must be an object" in result.stderr
    assert f"bad.jsonl:{n + 3}: record.created_at must be a whole number of Unix ms" in result.stderr
    assert f"bad.jsonl:{n + 4}: record: unknown field 'colour'" in result.stderr
    assert f"bad.jsonl:{n + 5}: a record line has only the key 'record'; unknown field 'event_id'" in result.stderr
    assert "Imported 8 events" in result.stdout and "Imported 8 records" in result.stdout
