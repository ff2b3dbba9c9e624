"""The real ``honeyhive==1.7.0`` client's dataset, datapoint, configuration and metric wrappers
(experiments-wire section 8) against a real ``tracehive serve``: every public wrapper, its
aliases and some async twins, checked both on what the SDK returns to user code and on what
tracehive stored (read back through tracehive's own API).

The server is shared by the directory, so every test names its records uniquely and looks only
at its own.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import Any

import httpx
import pytest

from tests.process.server import TracehiveServer

pytest.importorskip("honeyhive")
from honeyhive import HoneyHive
from honeyhive._generated.api_config import HTTPException
from honeyhive.models import (
    AddDatapointsToDatasetRequest,
    ConfigurationItem,
    CreateConfigurationRequest,
    CreateDatapointRequest,
    CreateDatasetRequest,
    CreateMetricRequest,
    CreateMetricVersionRequest,
    DatapointMapping,
    MetricItem,
    MetricVersionContentRequest,
    UpdateConfigurationRequest,
    UpdateDatapointRequest,
    UpdateDatasetRequest,
    UpdateMetricRequest,
)


def make_client(server: TracehiveServer, key: str) -> HoneyHive:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return HoneyHive(api_key=key, base_url=server.url, timeout=10.0)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def read(api: httpx.Client, path: str, **params: Any) -> Any:
    reply = api.get(path, params=params or None)
    assert reply.status_code == 200, f"GET {path} -> {reply.status_code} {reply.text}"
    return reply.json()


def stored_dataset(api: httpx.Client, dataset_id: str) -> dict[str, Any] | None:
    found = read(api, "/v1/datasets", dataset_id=dataset_id)["datasets"]
    return found[0] if found else None


def stored_datapoint(api: httpx.Client, datapoint_id: str) -> dict[str, Any]:
    return read(api, f"/v1/datapoints/{datapoint_id}")["datapoint"][0]  # type: ignore[no-any-return]


ROWS = [{"question": "what is 2+2", "answer": "WHAT IS 2+2", "lang": "en"},
        {"question": "capital of france", "answer": "paris", "lang": "en"}]
MAPPING = DatapointMapping(inputs=["question", "lang"], ground_truth=["answer"])


# Datasets and datapoints -----------------------------------------------------------------------


def test_dataset_and_datapoint_wrappers(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    client = make_client(server, key)
    name = unique("qa-set")

    created = client.datasets.create(CreateDatasetRequest(name=name, description="demo"))
    assert created.inserted is True
    dataset_id = created.result.insertedId
    added = client.datasets.add_datapoints(dataset_id, AddDatapointsToDatasetRequest(data=ROWS, mapping=MAPPING))
    assert added.inserted is True and len(added.datapoint_ids) == 2
    a, b = added.datapoint_ids
    made = client.datapoints.create(CreateDatapointRequest(
        inputs={"question": "hello"}, ground_truth={"answer": "HELLO"}, metadata={"origin": "driver"},
        linked_datasets=[dataset_id]))
    assert made.inserted is True
    [c] = made.result.insertedIds

    # What the SDK returns for each read (and its aliases).
    everything = client.datasets.list()
    mine = [d for d in everything.datasets if d.id == dataset_id]
    assert len(mine) == 1 and mine[0].name == name and mine[0].datapoints == [a, b, c]
    for response in (client.datasets.list(name=name), client.datasets.list(dataset_id=dataset_id),
                     client.datasets.get_dataset(dataset_id), client.datasets.list_datasets(dataset_id=dataset_id)):
        assert [(d.id, d.datapoints, d.description) for d in response.datasets] == [(dataset_id, [a, b, c], "demo")]
    assert client.datasets.list(dataset_id=str(uuid.uuid4())).datasets == []

    assert [d.id for d in client.datapoints.list(datapoint_ids=[a, b]).datapoints] == [a, b]
    assert [d.id for d in client.datapoints.list(datapoint_ids=[b]).datapoints] == [b]  # one id: still bracketed
    by_name = client.datapoints.list_datapoints(dataset_name=name).datapoints
    assert [(d.id, d.inputs, d.ground_truth) for d in by_name] == [
        (a, {"question": "what is 2+2", "lang": "en"}, {"answer": "WHAT IS 2+2"}),
        (b, {"question": "capital of france", "lang": "en"}, {"answer": "paris"}),
        (c, {"question": "hello"}, {"answer": "HELLO"}),
    ]
    one = client.datapoints.get(c).datapoint
    assert len(one) == 1 and one[0].metadata == {"origin": "driver"} and one[0].linked_event is None
    assert one[0].history == [] and one[0].linked_datasets == [dataset_id]
    assert client.datapoints.get_datapoint(a).datapoint[0].id == a

    # Writes: the SDK's answers, then what tracehive stored.
    updated = client.datapoints.update(a, UpdateDatapointRequest(ground_truth={"answer": "4"}, metadata={"fixed": True}))
    assert updated.updated is True and updated.result.modifiedCount == 1
    assert stored_datapoint(api, a)["ground_truth"] == {"answer": "4"}
    assert stored_datapoint(api, a)["metadata"] == {"fixed": True}
    renamed = client.datasets.update(UpdateDatasetRequest(dataset_id=dataset_id, name=name + "-v2", description="renamed"))
    assert renamed.result.name == name + "-v2" and renamed.result.datapoints == [a, b, c]
    assert stored_dataset(api, dataset_id)["description"] == "renamed"  # type: ignore[index]
    removed = client.datasets.remove_datapoint(dataset_id, c)
    assert removed.dereferenced is True and removed.message
    assert stored_dataset(api, dataset_id)["datapoints"] == [a, b]  # type: ignore[index]
    assert stored_datapoint(api, c)["linked_datasets"] == []
    assert client.datapoints.delete(c).deleted is True
    assert api.get(f"/v1/datapoints/{c}").status_code == 404

    # An unknown datapoint: the SDK raises its HTTPException with our 404 (what evaluate() skips).
    with pytest.raises(HTTPException) as failure:
        client.datapoints.get("nope")
    assert failure.value.status_code == 404 and failure.value.error_code == "NOT_FOUND"
    assert "datapoint nope not found" in str(failure.value.server_message)

    deleted = client.datasets.delete(dataset_id)
    assert deleted.result.id == dataset_id
    assert stored_dataset(api, dataset_id) is None
    assert stored_datapoint(api, a)["linked_datasets"] == []  # unlinked, not deleted
    client.datapoints.delete_datapoint(a)
    client.datapoints.delete_datapoint(b)


def test_what_evaluate_reads_of_a_dataset_id(server: TracehiveServer, key: str) -> None:
    """``evaluate(dataset_id=)`` reads ``datasets.list(dataset_id=)`` and then each datapoint with
    ``datapoints.get_datapoint`` (experiments-wire section 3.2-3.3): the same calls, checked the way
    evaluate() uses their answers."""
    client = make_client(server, key)
    dataset_id = client.datasets.create(CreateDatasetRequest(name=unique("dsid"))).result.insertedId
    ids = client.datasets.add_datapoints(dataset_id, AddDatapointsToDatasetRequest(data=ROWS, mapping=MAPPING)).datapoint_ids
    client.datapoints.create(CreateDatapointRequest(inputs={"question": "hello"}, linked_datasets=[dataset_id]))

    listed = client.datasets.list(dataset_id=dataset_id).datasets
    assert listed and len(listed[0].datapoints) == 3
    loaded = []
    for dp_id in listed[0].datapoints:
        [dp] = client.datapoints.get_datapoint(dp_id).datapoint
        loaded.append({"inputs": dp.inputs or {}, "ground_truth": dp.ground_truth, "id": dp.id})
    assert loaded[:2] == [
        {"inputs": {"question": "what is 2+2", "lang": "en"}, "ground_truth": {"answer": "WHAT IS 2+2"}, "id": ids[0]},
        {"inputs": {"question": "capital of france", "lang": "en"}, "ground_truth": {"answer": "paris"}, "id": ids[1]},
    ]
    assert loaded[2]["inputs"] == {"question": "hello"} and loaded[2]["ground_truth"] is None
    client.datasets.delete(dataset_id)


def test_more_ids_than_one_query_batch(server: TracehiveServer, key: str) -> None:
    """``datapoints.list`` splits more than 100 ids into several bracketed queries and merges them."""
    client = make_client(server, key)
    dataset_id = client.datasets.create(CreateDatasetRequest(name=unique("big"))).result.insertedId
    rows = [{"n": i} for i in range(150)]
    ids = client.datasets.add_datapoints(
        dataset_id, AddDatapointsToDatasetRequest(data=rows, mapping=DatapointMapping(inputs=["n"]))).datapoint_ids
    got = client.datapoints.list(datapoint_ids=ids).datapoints
    assert [d.id for d in got] == ids and [d.inputs["n"] for d in got] == list(range(150))
    client.datasets.delete(dataset_id)


def test_async_twins(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    client = make_client(server, key)
    name = unique("async")

    async def run() -> tuple[str, list[str]]:
        dataset_id = (await client.datasets.create_async(CreateDatasetRequest(name=name))).result.insertedId
        added = await client.datasets.add_datapoints_async(
            dataset_id, AddDatapointsToDatasetRequest(data=ROWS[:1], mapping=MAPPING))
        listed = await client.datasets.list_async(name=name)
        assert [d.id for d in listed.datasets] == [dataset_id]
        got = await client.datapoints.get_async(added.datapoint_ids[0])
        assert got.datapoint[0].inputs == {"question": "what is 2+2", "lang": "en"}
        await client.datapoints.update_async(added.datapoint_ids[0], UpdateDatapointRequest(metadata={"async": True}))
        return dataset_id, added.datapoint_ids

    dataset_id, ids = asyncio.run(run())
    assert stored_datapoint(api, ids[0])["metadata"] == {"async": True}
    asyncio.run(client.datasets.delete_async(dataset_id))
    assert stored_dataset(api, dataset_id) is None


# Configurations --------------------------------------------------------------------------------


def test_configuration_wrappers(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    client = make_client(server, key)
    name = unique("qa-prompt")
    parameters = {"call_type": "chat", "model": "gpt-4o-mini", "hyperparameters": {"temperature": 0},
                  "template": [{"role": "system", "content": "Answer {{question}}"}]}
    created = client.configurations.create(CreateConfigurationRequest(
        name=name, provider="openai", parameters=parameters, env=["dev"], tags=["t1"]))
    assert created.acknowledged is True
    config_id = created.insertedId

    listed = client.configurations.list()  # the wrapper unwraps the list
    assert all(isinstance(c, ConfigurationItem) for c in listed)
    [mine] = [c for c in listed if c.id == config_id]
    assert (mine.name, mine.type, mine.provider, mine.env, mine.tags) == (name, "LLM", "openai", ["dev"], ["t1"])
    assert mine.parameters.model == "gpt-4o-mini" and mine.parameters.template[0].content == "Answer {{question}}"
    assert mine.parameters.hyperparameters == {"temperature": 0}
    assert config_id in [c.id for c in client.configurations.get_configuration(config_id)]  # lists them all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert config_id in [c.id for c in client.configurations.list_configurations(project="ignored")]

    updated = client.configurations.update(config_id, UpdateConfigurationRequest(name=name, env=["dev", "prod"]))
    assert (updated.acknowledged, updated.modifiedCount, updated.upsertedId, updated.matchedCount) == (True, 1, None, 1)
    [stored] = read(api, "/v1/configurations", name=name)["configurations"]
    assert stored["env"] == ["dev", "prod"] and stored["parameters"] == parameters

    deleted = client.configurations.delete(config_id)
    assert deleted.acknowledged is True and deleted.deletedCount == 1
    assert read(api, "/v1/configurations", name=name)["configurations"] == []


# Metric definitions ----------------------------------------------------------------------------


def test_metric_and_metric_version_wrappers(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    client = make_client(server, key)
    name = unique("conciseness")
    created = client.metrics.create(CreateMetricRequest(
        name=name, type="PYTHON", criteria="def f(e): return 1", return_type="float", needs_ground_truth=False))
    assert created.inserted is True
    metric_id = created.metric_id

    listed = client.metrics.list()
    assert all(isinstance(m, MetricItem) for m in listed)
    [mine] = [m for m in listed if m.id == metric_id]
    assert (mine.name, mine.type, mine.return_type, mine.sampling_percentage) == (name, "PYTHON", "float", 100)
    assert mine.filters.filterArray == [] and mine.description is None
    assert metric_id in [m.id for m in client.metrics.list(type="PYTHON")]
    assert metric_id not in [m.id for m in client.metrics.list(type="LLM")]
    assert [m.id for m in client.metrics.get_metric(metric_id)] == [metric_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert metric_id in [m.id for m in client.metrics.list_metrics(project="ignored")]

    assert client.metrics.update(UpdateMetricRequest(id=metric_id, description="short answers")).updated is True
    assert read(api, "/v1/metrics", id=metric_id)["metrics"][0]["description"] == "short answers"

    assert client.metric_versions.list(metric_id).data == []
    content = MetricVersionContentRequest(name=name, type="PYTHON", criteria="def f(e): return 2")
    made = client.metric_versions.create(metric_id, CreateMetricVersionRequest(message="score 2", content=content))
    assert made.success is True and made.data.name == "v1" and made.data.deployed is False
    deployed = client.metric_versions.deploy(metric_id, "v1")
    assert deployed.data.deployed is True and deployed.data.content.criteria == "def f(e): return 2"
    assert [v.name for v in client.metric_versions.list(metric_id).data] == ["v1"]
    assert read(api, "/v1/metrics", id=metric_id)["metrics"][0]["criteria"] == "def f(e): return 2"

    assert client.metrics.delete(metric_id).deleted is True
    assert read(api, "/v1/metrics", id=metric_id)["metrics"] == []


# Keys ------------------------------------------------------------------------------------------


def test_an_ingestion_key_is_refused(server: TracehiveServer, ingestion_key: str, api: httpx.Client) -> None:
    client = make_client(server, ingestion_key)
    name = unique("refused")
    for call in (lambda: client.datasets.list(), lambda: client.datasets.create(CreateDatasetRequest(name=name)),
                 lambda: client.datapoints.create(CreateDatapointRequest(inputs={"q": 1})),
                 lambda: client.configurations.list(), lambda: client.metrics.list()):
        with pytest.raises(HTTPException) as failure:
            call()
        assert failure.value.status_code == 403 and failure.value.error_code == "FORBIDDEN"
    assert read(api, "/v1/datasets", name=name)["datasets"] == []
