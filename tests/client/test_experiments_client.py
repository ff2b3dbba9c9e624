"""The Python client's experiment namespaces (``datasets``, ``datapoints``, ``runs``; issue 13
point 6), sync and async, against a real ``tracehive serve`` process."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest

from tests.client.test_client import FlakyFront
from tests.process.server import TracehiveServer
from tracehive.client import ApiError, AsyncClient, Client, NotFoundError, ValidationError

SURFACE = {
    "datasets": {"create", "list", "get", "update", "delete", "add_datapoints", "remove_datapoint"},
    "datapoints": {"create", "list", "get", "update", "delete"},
    "runs": {"create", "list", "get", "update", "delete", "result", "compare", "compare_events", "metrics"},
}


def test_surface_sync_and_async_alike() -> None:
    sync, asyn = Client(api_key="k"), AsyncClient(api_key="k")
    for ns, methods in SURFACE.items():
        sync_ns, async_ns = getattr(sync, ns), getattr(asyn, ns)
        assert {n for n in dir(sync_ns) if not n.startswith("_")} == methods
        assert {n for n in dir(async_ns) if not n.startswith("_")} == methods
        for name in methods:
            sync_m, async_m = getattr(sync_ns, name), getattr(async_ns, name)
            assert inspect.signature(sync_m).parameters.keys() == inspect.signature(async_m).parameters.keys()
            assert str(inspect.signature(sync_m)) == str(inspect.signature(async_m))
            assert sync_m.__doc__ and sync_m.__doc__ == async_m.__doc__
            assert inspect.iscoroutinefunction(async_m), f"AsyncClient.{ns}.{name} is not async"
    assert inspect.signature(sync.runs.result).parameters["aggregate_function"].default == "average"
    assert inspect.signature(sync.runs.compare).parameters["aggregate_function"].default == "average"


# Datasets and datapoints -----------------------------------------------------------------------


def test_datasets_and_datapoints(client: Client) -> None:
    created = client.datasets.create(name="qa-sync", description="questions")
    assert created.inserted
    ds = created.result.insertedId
    got = client.datasets.get(ds)
    assert (got.id, got.name, got.description, got.datapoints) == (ds, "qa-sync", "questions", [])

    rows = [{"q": "2+2?", "a": "4", "lang": "en"}, {"q": "3+3?", "a": "6", "lang": "fr"}]
    added = client.datasets.add_datapoints(ds, rows, {"inputs": ["q"], "ground_truth": ["a"]})
    assert added.inserted and len(added.datapoint_ids) == 2
    first, second = added.datapoint_ids
    point = client.datapoints.get(first)
    assert point.inputs == {"q": "2+2?"} and point.ground_truth == {"a": "4"} and point.metadata == {"lang": "en"}
    assert point.linked_datasets == [ds] and point.history == []

    made = client.datapoints.create(inputs={"q": "1+1?"}, ground_truth={"a": "2"}, linked_datasets=[ds])
    third = made.result.insertedIds[0]
    assert client.datasets.get(ds).datapoints == [first, second, third]
    assert [d.id for d in client.datapoints.list(datapoint_ids=[third, first])] == [third, first]
    assert client.datapoints.list(datapoint_ids=[]) == []  # an empty list is no datapoint, not all of them
    assert [d.id for d in client.datapoints.list(dataset_name="qa-sync")] == [first, second, third]
    assert {d.id for d in client.datapoints.list()} >= {first, second, third}

    assert client.datapoints.update(third, metadata={"edited": True}).result.modifiedCount == 1
    assert client.datapoints.get(third).metadata == {"edited": True}

    assert [d.id for d in client.datasets.list(name="qa-sync")] == [ds]
    assert [d.id for d in client.datasets.list(dataset_id=ds)] == [ds]
    assert ds in [d.id for d in client.datasets.list()]
    renamed = client.datasets.update(ds, name="qa-renamed")
    assert renamed.name == "qa-renamed" and renamed.datapoints == [first, second, third]

    removed = client.datasets.remove_datapoint(ds, second)
    assert removed.dereferenced
    assert client.datasets.get(ds).datapoints == [first, third]
    assert client.datapoints.get(second).linked_datasets == []
    assert client.datapoints.delete(first).deleted
    assert client.datasets.get(ds).datapoints == [third]
    with pytest.raises(NotFoundError) as gone:
        client.datapoints.get(first)
    assert gone.value.status == 404

    assert client.datasets.delete(ds).result.id == ds
    with pytest.raises(NotFoundError):
        client.datasets.get(ds)
    assert client.datasets.list(dataset_id=ds) == []
    assert client.datapoints.get(third).linked_datasets == []  # the datapoint stays, unlinked
    with pytest.raises(NotFoundError):
        client.datasets.delete(ds)


def test_client_side_validation_and_server_errors(client: Client) -> None:
    with pytest.raises(ValidationError) as info:
        client.datapoints.create(inputs="not an object")
    assert info.value.field == "inputs" and info.value.status == 0
    with pytest.raises(ValidationError) as info:
        client.datasets.create(name=7)
    assert info.value.field == "name" and info.value.status == 0
    with pytest.raises(ValidationError) as info:
        client.runs.create(status="done")
    assert info.value.field == "status"
    with pytest.raises(ValidationError) as info:
        client.runs.list(run_ids=[])
    assert info.value.field == "run_ids"
    with pytest.raises(NotFoundError):
        client.datasets.add_datapoints(str(uuid.uuid4()), [{"q": 1}], {"inputs": ["q"]})
    with pytest.raises(NotFoundError):
        client.runs.get(str(uuid.uuid4()))
    with pytest.raises(ValidationError) as bad:
        client.runs.result(str(uuid.uuid4()), aggregate_function="mode")
    assert bad.value.status == 400
    # An id cannot leave its path segment: "a/b" is one (unknown) id, not another route.
    with pytest.raises(ApiError) as odd:
        client.datapoints.get("a/b")
    assert odd.value.status in (400, 404)


# Runs ------------------------------------------------------------------------------------------


def seed_run_events(c: Client, run_id: str, scores: dict[str, float]) -> list[str]:
    """One session per datapoint, its chain event carrying the metrics, as ``evaluate()`` leaves them."""
    sessions = []
    for dp, score in scores.items():
        meta = {"run_id": run_id, "datapoint_id": dp}
        sid = c.sessions.create(session_name="exp", source="evaluation", metadata=meta).session_id
        c.sessions.create_event_batch(sid, [{"event_type": "chain", "event_name": "fn", "inputs": {"dp": dp},
                                             "metadata": meta, "metrics": {"accuracy": score, "exact": score > 0.6}}])
        sessions.append(sid)
    return sessions


def test_runs(client: Client) -> None:
    old_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    old = client.runs.create(run_id=old_id, name="baseline", metadata={"git": {"branch": "main"}})
    assert (old.run_id, old.name, old.status) == (old_id, "baseline", "pending")
    new = client.runs.create({"name": "candidate"}, run_id=new_id, configuration={"model": "x"})
    assert new.configuration == {"model": "x"}
    generated = client.runs.create(name="generated")
    assert uuid.UUID(generated.run_id)

    old_sessions = seed_run_events(client, old_id, {"dp-1": 0.5, "dp-2": 0.7})
    new_sessions = seed_run_events(client, new_id, {"dp-1": 0.9, "dp-2": 0.6})
    updated = client.runs.update(old_id, status="completed", event_ids=old_sessions, metadata={"offline": "EXT-1"})
    assert updated.status == "completed" and updated.event_ids == old_sessions
    assert updated.metadata == {"git": {"branch": "main"}, "offline": "EXT-1"}  # merged
    client.runs.update(new_id, status="completed", event_ids=new_sessions)
    assert client.runs.get(old_id).metadata["offline"] == "EXT-1"

    listed = client.runs.list(run_ids=[old_id, new_id], sort_by="name", sort_order="asc")
    assert [r.run_id for r in listed.evaluations] == [old_id, new_id] and listed.pagination.total == 2
    assert [r.run_id for r in client.runs.list(name="CANDI").evaluations] == [new_id]
    assert {r.run_id for r in client.runs.list(status="completed").evaluations} == {old_id, new_id}
    assert client.runs.list(limit=1, page=2).pagination.page == 2

    result = client.runs.result(old_id)
    assert result.status == "completed" and result.run_object.run_id == old_id
    accuracy = next(d for d in result.metrics["details"] if d["metric_name"] == "accuracy")
    assert accuracy["aggregate"] == pytest.approx(0.6)
    summed = client.runs.result(old_id, aggregate_function="sum")
    assert next(d for d in summed.metrics["details"] if d["metric_name"] == "accuracy")["aggregate"] == pytest.approx(1.2)
    assert {d["datapoint_id"] for d in result.datapoints} == {"dp-1", "dp-2"}
    # "exact" (a boolean) is false on dp-1 only: that datapoint fails.
    assert (result.passed, result.failed, result.success) == (["dp-2"], ["dp-1"], False)

    compared = client.runs.compare(new_id, old_id)
    assert set(compared.commonDatapoints) == {"dp-1", "dp-2"}
    assert (compared.new_run.run_id, compared.old_run.run_id) == (new_id, old_id)
    acc = next(m for m in compared.metrics if m["metric_name"] == "accuracy")
    assert acc["old_aggregate"] == pytest.approx(0.6) and acc["new_aggregate"] == pytest.approx(0.75)
    assert acc["improved_count"] == 1 and acc["degraded_count"] == 1

    events = client.runs.compare_events(new_id, old_id)
    assert events.totalEvents == 2
    assert {row["datapoint_id"] for row in events.events} == {"dp-1", "dp-2"}
    row = next(r for r in events.events if r["datapoint_id"] == "dp-1")
    assert row["event_1"]["metrics"]["accuracy"] == 0.9 and row["event_2"]["metrics"]["accuracy"] == 0.5
    assert len(client.runs.compare_events(new_id, old_id, event_name="fn", limit=1).events) == 1
    assert client.runs.compare_events(new_id, old_id, event_name="nothing").totalEvents == 0

    metrics = client.runs.metrics(new_id)
    assert metrics.totalEvents == 2
    assert sorted(e["metadata"]["datapoint_id"] for e in metrics.events) == ["dp-1", "dp-2"]

    assert client.runs.delete(generated.run_id).deleted
    with pytest.raises(NotFoundError):
        client.runs.get(generated.run_id)
    with pytest.raises(ApiError) as dup:  # the caller's own id twice is a conflict, not a silent read
        client.runs.create(run_id=old_id)
    assert dup.value.status == 409


def test_retried_run_create_does_not_duplicate(server: TracehiveServer, key: str, client: Client) -> None:
    """The first POST is stored but its answer lost (503): the retry meets a 409 for the id the
    client made, and the client answers with the stored run."""
    with FlakyFront(server.url, failures=1, forward_then_fail=True) as front, \
            Client(api_key=key, base_url=front.url, max_retries=2) as c:
        run = c.runs.create(name="retried-create")
        assert front.hits >= 2
    assert client.runs.get(run.run_id).name == "retried-create"
    assert len(client.runs.list(name="retried-create").evaluations) == 1


# Async -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_datasets_datapoints_and_runs(server: TracehiveServer, key: str, client: Client) -> None:
    run_id = str(uuid.uuid4())
    sessions = seed_run_events(client, run_id, {"dp-a": 1.0})
    async with AsyncClient(api_key=key, base_url=server.url, max_retries=0) as c:
        ds = (await c.datasets.create(name="async-ds")).result.insertedId
        added = await c.datasets.add_datapoints(ds, [{"x": 1, "y": 2}], {"inputs": ["x"], "ground_truth": ["y"]})
        dp = added.datapoint_ids[0]
        assert (await c.datasets.get(ds)).datapoints == [dp]
        assert [d.id for d in await c.datasets.list(name="async-ds")] == [ds]
        assert (await c.datasets.update(ds, description="d")).description == "d"
        extra = (await c.datapoints.create(inputs={"x": 3}, linked_datasets=[ds])).result.insertedIds[0]
        assert (await c.datapoints.get(dp)).inputs == {"x": 1}
        assert [d.id for d in await c.datapoints.list(datapoint_ids=[extra])] == [extra]
        assert (await c.datapoints.update(extra, inputs={"x": 4})).updated
        assert (await c.datasets.remove_datapoint(ds, extra)).dereferenced
        assert (await c.datapoints.delete(extra)).deleted

        run = await c.runs.create(run_id=run_id, name="async-run", dataset_id=ds)
        assert run.dataset_id == ds and run.dataset_name == "async-ds"
        assert (await c.runs.update(run_id, status="completed", event_ids=sessions)).status == "completed"
        assert (await c.runs.get(run_id)).event_ids == sessions
        assert [r.run_id for r in (await c.runs.list(dataset_id=ds)).evaluations] == [run_id]
        result = await c.runs.result(run_id, aggregate_function="max")
        assert next(d for d in result.metrics["details"] if d["metric_name"] == "accuracy")["aggregate"] == 1.0
        assert (await c.runs.compare(run_id, run_id)).commonDatapoints == ["dp-a"]
        assert (await c.runs.compare_events(run_id, run_id)).totalEvents == 1
        assert (await c.runs.metrics(run_id)).totalEvents == 1
        assert (await c.runs.delete(run_id)).deleted
        with pytest.raises(NotFoundError):
            await c.runs.get(run_id)
        assert (await c.datasets.delete(ds)).result.id == ds
        with pytest.raises(NotFoundError):
            await c.datasets.get(ds)
        with pytest.raises(ValidationError):
            await c.datapoints.create(inputs=[1])
    with FlakyFront(server.url, failures=1, forward_then_fail=True) as front:
        async with AsyncClient(api_key=key, base_url=front.url, max_retries=2) as c:
            made: Any = await c.runs.create(name="async-retried")
            assert front.hits >= 2
    assert len(client.runs.list(name="async-retried").evaluations) == 1
    assert client.runs.get(made.run_id).name == "async-retried"
