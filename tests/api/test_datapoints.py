"""Datapoint routes (``/v1/datapoints*``, experiments-wire sections 3.3 and 8) through the real
app, on each backend."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.helpers import Api, assert_error
from tracehive.api import datapoints as datapoint_routes

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# The keys the SDK's Datapoint model requires, the nullable ones included.
REQUIRED = {"id", "inputs", "history", "ground_truth", "metadata", "linked_event", "created_at"}


def ok(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def create(api: Api, **body: Any) -> str:
    reply = ok(api.post("/v1/datapoints", json=body))
    assert reply["inserted"] is True and len(reply["result"]["insertedIds"]) == 1
    return str(reply["result"]["insertedIds"][0])


def get(api: Api, datapoint_id: str) -> dict[str, Any]:
    reply = ok(api.get(f"/v1/datapoints/{datapoint_id}"))
    assert set(reply) == {"datapoint"} and len(reply["datapoint"]) == 1
    return reply["datapoint"][0]  # type: ignore[no-any-return]


def listed(api: Api, **params: Any) -> list[str]:
    return [d["id"] for d in ok(api.get("/v1/datapoints", params=params or None))["datapoints"]]


def new_dataset(api: Api, name: str) -> str:
    return str(ok(api.post("/v1/datasets", json={"name": name}))["result"]["insertedId"])


def dataset_points(api: Api, dataset_id: str) -> list[str]:
    return ok(api.get("/v1/datasets", params={"dataset_id": dataset_id}))["datasets"][0]["datapoints"]  # type: ignore[no-any-return]


def test_get_answers_a_one_element_list_with_every_required_key(api: Api) -> None:
    dp = create(api, inputs={"question": "hello"})
    got = get(api, dp)
    assert REQUIRED <= set(got)
    assert got == {"id": dp, "inputs": {"question": "hello"}, "history": [], "ground_truth": None, "metadata": {},
                   "linked_event": None, "linked_datasets": [], "created_at": got["created_at"],
                   "updated_at": got["updated_at"]}
    assert ISO.match(got["created_at"]) and uuid.UUID(dp).version == 4
    assert get(api, dp.upper())["id"] == dp


def test_create_with_every_field(api: Api) -> None:
    ds = new_dataset(api, "qa")
    history = [{"role": "user", "content": "hi"}]
    dp = create(api, inputs={"q": "hello"}, history=history, ground_truth={"answer": "HELLO"},
                metadata={"origin": "driver"}, linked_event="evt-1", linked_datasets=[ds], extra_key="ignored")
    got = get(api, dp)
    assert (got["inputs"], got["history"], got["ground_truth"]) == ({"q": "hello"}, history, {"answer": "HELLO"})
    assert (got["metadata"], got["linked_event"], got["linked_datasets"]) == ({"origin": "driver"}, "evt-1", [ds])
    assert "extra_key" not in got
    assert dataset_points(api, ds) == [dp]  # joined the dataset it names


def test_list_all_by_ids_and_by_dataset_name(api: Api) -> None:
    ds = new_dataset(api, "qa-set")
    a = create(api, inputs={"n": 1}, linked_datasets=[ds])
    b = create(api, inputs={"n": 2})
    c = create(api, inputs={"n": 3}, linked_datasets=[ds])
    assert listed(api) == [a, b, c]
    # The SDK's bracketed lists, one id or many; order as asked, unknown ids left out.
    assert listed(api, **{"datapoint_ids[]": [c, str(uuid.uuid4()), a, "nope"]}) == [c, a]
    assert listed(api, **{"datapoint_ids[]": [b]}) == [b]
    assert listed(api, datapoint_ids=[b, a]) == [b, a]  # repeated bare keys too
    assert listed(api, dataset_name="qa-set") == [a, c]
    assert listed(api, dataset_name="qa-set", **{"datapoint_ids[]": [c, b]}) == [c]
    assert listed(api, dataset_name="none") == []
    assert listed(api, **{"datapoint_ids[]": []}) == [a, b, c]  # an empty value list is no filter


def test_update_replaces_the_fields_sent(api: Api) -> None:
    dp = create(api, inputs={"q": "2+2"}, ground_truth={"answer": "WHAT IS 2+2"}, metadata={"a": 1})
    before = get(api, dp)
    reply = ok(api.put(f"/v1/datapoints/{dp}", json={"ground_truth": {"answer": "4"}, "metadata": {"fixed": True}}))
    assert reply == {"updated": True, "result": {"modifiedCount": 1}}
    after = get(api, dp)
    assert after["ground_truth"] == {"answer": "4"} and after["metadata"] == {"fixed": True}
    assert after["inputs"] == before["inputs"] and after["created_at"] == before["created_at"]
    same = ok(api.put(f"/v1/datapoints/{dp}", json={"metadata": {"fixed": True}, "ground_truth": None}))
    assert same == {"updated": True, "result": {"modifiedCount": 0}}
    assert get(api, dp)["ground_truth"] == {"answer": "4"}  # null keeps


def test_update_linked_datasets_moves_the_datapoint(api: Api) -> None:
    one, two, three = new_dataset(api, "one"), new_dataset(api, "two"), new_dataset(api, "three")
    dp = create(api, inputs={"q": 1}, linked_datasets=[one, two])
    other = create(api, inputs={"q": 2}, linked_datasets=[two])
    assert dataset_points(api, two) == [dp, other]
    ok(api.put(f"/v1/datapoints/{dp}", json={"linked_datasets": [two, three]}))
    assert get(api, dp)["linked_datasets"] == [two, three]
    assert dataset_points(api, one) == []
    assert dataset_points(api, two) == [dp, other]  # stays where it was
    assert dataset_points(api, three) == [dp]
    ok(api.put(f"/v1/datapoints/{dp}", json={"linked_datasets": []}))
    assert (dataset_points(api, two), dataset_points(api, three)) == ([other], [])


def test_delete_takes_the_datapoint_out_of_its_datasets(api: Api) -> None:
    one, two = new_dataset(api, "one"), new_dataset(api, "two")
    dp = create(api, inputs={"q": 1}, linked_datasets=[one, two])
    kept = create(api, inputs={"q": 2}, linked_datasets=[one])
    assert ok(api.delete(f"/v1/datapoints/{dp}")) == {"deleted": True}
    assert_error(api.get(f"/v1/datapoints/{dp}"), 404, dp)
    assert (dataset_points(api, one), dataset_points(api, two)) == ([kept], [])
    assert_error(api.delete(f"/v1/datapoints/{dp}"), 404, dp)


# Bad input -------------------------------------------------------------------------------------


def test_unknown_ids_are_404_naming_them(api: Api) -> None:
    dp = create(api, inputs={"q": 1})
    unknown = str(uuid.uuid4())
    for method, path, body in (("GET", f"/v1/datapoints/{unknown}", None),
                               ("PUT", f"/v1/datapoints/{unknown}", {"inputs": {}}),
                               ("DELETE", f"/v1/datapoints/{unknown}", None)):
        body_ = assert_error(api.request(method, path, json=body), 404, f"datapoint {unknown}")
        assert body_["errorCode"] == "NOT_FOUND"
    assert_error(api.get("/v1/datapoints/nope"), 404, "datapoint nope")  # the SDK's own probe
    assert_error(api.get("/v1/datapoints/" + "x" * 500), 404, "...")  # long ids are cut in the message
    assert_error(api.post("/v1/datapoints", json={"inputs": {}, "linked_datasets": [unknown]}), 404, f"dataset {unknown}")
    assert_error(api.put(f"/v1/datapoints/{dp}", json={"metadata": {"x": 1}, "linked_datasets": [unknown]}), 404, unknown)
    assert listed(api) == [dp]  # nothing created
    assert get(api, dp)["metadata"] == {}  # nothing changed


def test_another_projects_datapoints_are_not_found(api: Api, api_b: Api) -> None:
    ds = new_dataset(api, "a-set")
    dp = create(api, inputs={"secret": "A"}, linked_datasets=[ds])
    before = get(api, dp)
    assert_error(api_b.get(f"/v1/datapoints/{dp}"), 404)
    assert listed(api_b) == [] and listed(api_b, **{"datapoint_ids[]": [dp]}) == []
    assert listed(api_b, dataset_name="a-set") == []
    assert_error(api_b.put(f"/v1/datapoints/{dp}", json={"inputs": {"secret": "B"}}), 404)
    assert_error(api_b.delete(f"/v1/datapoints/{dp}"), 404)
    assert_error(api_b.post("/v1/datapoints", json={"inputs": {}, "linked_datasets": [ds]}), 404, ds)
    assert get(api, dp) == before and dataset_points(api, ds) == [dp]


@pytest.mark.parametrize(("method", "body", "field"), [
    ("POST", {}, "inputs"),
    ("POST", {"ground_truth": {"a": 1}}, "inputs"),
    ("POST", {"inputs": "hello"}, "inputs"),
    ("POST", {"inputs": None}, "inputs"),
    ("POST", {"inputs": {}, "history": {"role": "user"}}, "history"),
    ("POST", {"inputs": {}, "history": ["hi"]}, "history[0]"),
    ("POST", {"inputs": {}, "ground_truth": "4"}, "ground_truth"),
    ("POST", {"inputs": {}, "metadata": [1]}, "metadata"),
    ("POST", {"inputs": {}, "linked_event": 7}, "linked_event"),
    ("POST", {"inputs": {}, "linked_datasets": "ds"}, "linked_datasets"),
    ("POST", {"inputs": {}, "linked_datasets": [1]}, "linked_datasets[0]"),
    ("POST", [{"inputs": {}}], "body"),
    ("PUT", {"inputs": []}, "inputs"),
    ("PUT", {"ground_truth": 4}, "ground_truth"),
    ("PUT", {"linked_datasets": {"a": 1}}, "linked_datasets"),
])
def test_wrong_types_and_missing_inputs_are_400_naming_the_field(api: Api, method: str, body: Any, field: str) -> None:
    dp = create(api, inputs={"q": 1})
    path = "/v1/datapoints" if method == "POST" else f"/v1/datapoints/{dp}"
    reply = assert_error(api.request(method, path, json=body), 400, field)
    assert reply["errors"][0]["field"] == field and reply["errorCode"] == "VALIDATION_ERROR"
    assert listed(api) == [dp] and get(api, dp)["inputs"] == {"q": 1}


def test_non_json_bodies_are_400(api: Api) -> None:
    dp = create(api, inputs={"q": 1})
    for method, path in (("POST", "/v1/datapoints"), ("PUT", f"/v1/datapoints/{dp}")):
        assert assert_error(api.request(method, path, content=b'{"inputs": '), 400)["errorCode"] == "MALFORMED_JSON"
        assert_error(api.request(method, path, content=b"  "), 400, "empty")


def test_too_many_ids_in_a_query_is_400(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datapoint_routes, "MAX_DATASET_DATAPOINTS", 5)  # (10,000 ids overflow httpx's URL limit)
    assert listed(api, **{"datapoint_ids[]": [str(uuid.uuid4()) for _ in range(5)]}) == []
    reply = api.get("/v1/datapoints", params={"datapoint_ids[]": [str(uuid.uuid4()) for _ in range(6)]})
    assert assert_error(reply, 400, "datapoint_ids", "at most 5")["errors"][0]["field"] == "datapoint_ids"


def test_a_datapoint_over_the_record_limit_is_413(api: Api) -> None:
    assert_error(api.post("/v1/datapoints", json={"inputs": {"q": "x" * (5 * 1024 * 1024)}}), 413, "datapoint")
    dp = create(api, inputs={"q": 1})
    assert_error(api.put(f"/v1/datapoints/{dp}", json={"metadata": {"q": "x" * (5 * 1024 * 1024)}}), 413)
    assert listed(api) == [dp] and get(api, dp)["metadata"] == {}


def test_ingestion_keys_get_403_on_every_datapoint_route(api: Api, ingest: Api) -> None:
    dp = create(api, inputs={"q": 1})
    for method, path, body in (("GET", "/v1/datapoints", None), ("GET", f"/v1/datapoints/{dp}", None),
                               ("POST", "/v1/datapoints", {"inputs": {"q": 2}}),
                               ("PUT", f"/v1/datapoints/{dp}", {"inputs": {"q": 3}}),
                               ("DELETE", f"/v1/datapoints/{dp}", None)):
        reply = assert_error(ingest.request(method, path, json=body), 403, "ingestion key")
        assert reply["errorCode"] == "FORBIDDEN"
    assert listed(api) == [dp] and get(api, dp)["inputs"] == {"q": 1}
