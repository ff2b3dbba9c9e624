"""Configuration routes (``/v1/configurations*``, experiments-wire section 8) through the real
app, on each backend."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.helpers import Api, assert_error

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PARAMETERS = {"call_type": "chat", "model": "gpt-4o-mini", "hyperparameters": {"temperature": 0},
              "template": [{"role": "system", "content": "Answer {{question}}"}]}


def ok(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def create(api: Api, name: str = "qa-prompt", **extra: Any) -> str:
    body = {"name": name, "provider": "openai", "parameters": PARAMETERS, **extra}
    reply = ok(api.post("/v1/configurations", json=body))
    assert reply["acknowledged"] is True
    return str(reply["insertedId"])


def configurations(api: Api, **params: Any) -> list[dict[str, Any]]:
    return ok(api.get("/v1/configurations", params=params or None))["configurations"]  # type: ignore[no-any-return]


def test_create_and_list_with_defaults(api: Api) -> None:
    config_id = create(api, env=["dev"], tags=["t1"])
    assert uuid.UUID(config_id).version == 4
    [item] = configurations(api)
    assert item == {"id": config_id, "name": "qa-prompt", "type": "LLM", "provider": "openai", "parameters": PARAMETERS,
                    "env": ["dev"], "tags": ["t1"], "user_properties": None, "created_at": item["created_at"],
                    "updated_at": item["updated_at"]}
    assert ISO.match(item["created_at"])
    bare = create(api, "bare", type="pipeline", user_properties={"owner": "me"})
    second = configurations(api)[1]
    assert second["id"] == bare and (second["env"], second["tags"]) == ([], [])
    assert (second["type"], second["user_properties"]) == ("pipeline", {"owner": "me"})


def test_parameters_keep_the_providers_own_keys_and_a_string_template(api: Api) -> None:
    params = {"call_type": "completion", "model": "m", "template": "Say {{x}}", "stop": ["\n"],
              "responseFormat": {"type": "json_object"}, "selectedFunctions": [{"id": "f", "name": "fn"}, None],
              "functionCallParams": "auto", "forceFunction": {"name": "fn"}}
    create(api, "completion", parameters=params)
    assert configurations(api)[0]["parameters"] == params


def test_list_filters_by_name_env_and_tags(api: Api) -> None:
    a = create(api, "a", env=["dev", "prod"], tags=["x", "y"])
    b = create(api, "b", env=["dev"], tags=["y"])
    def ids(**params: Any) -> list[str]:
        return [c["id"] for c in configurations(api, **params)]

    assert ids(name="b") == [b]
    assert ids(env="prod") == [a] and ids(env="dev") == [a, b]
    assert ids(tags="y") == [a, b] and ids(tags="x,y") == [a] and ids(tags="z") == []
    assert ids(name="a", env="staging") == []


def test_update_sets_the_name_and_replaces_the_fields_sent(api: Api) -> None:
    config_id = create(api, env=["dev"], tags=["t1"])
    before = configurations(api)[0]
    reply = ok(api.put(f"/v1/configurations/{config_id}", json={"name": "qa-prompt", "env": ["dev", "prod"]}))
    assert reply == {"acknowledged": True, "modifiedCount": 1, "upsertedId": None, "upsertedCount": 0, "matchedCount": 1}
    after = configurations(api)[0]
    assert after["env"] == ["dev", "prod"] and after["tags"] == ["t1"] and after["parameters"] == PARAMETERS
    assert after["created_at"] == before["created_at"]
    new_params = {"call_type": "chat", "model": "gpt-x"}
    ok(api.put(f"/v1/configurations/{config_id}", json={"name": "renamed", "parameters": new_params,
                                                         "provider": "anthropic", "user_properties": {"u": 1}}))
    after = configurations(api)[0]
    assert (after["name"], after["parameters"], after["provider"]) == ("renamed", new_params, "anthropic")
    assert after["user_properties"] == {"u": 1}
    same = ok(api.put(f"/v1/configurations/{config_id}", json={"name": "renamed"}))
    assert same["modifiedCount"] == 0 and same["matchedCount"] == 1


def test_delete(api: Api) -> None:
    config_id = create(api)
    kept = create(api, "kept")
    assert ok(api.delete(f"/v1/configurations/{config_id}")) == {"acknowledged": True, "deletedCount": 1}
    assert [c["id"] for c in configurations(api)] == [kept]
    assert_error(api.delete(f"/v1/configurations/{config_id}"), 404, config_id)


# Bad input -------------------------------------------------------------------------------------


def test_unknown_and_foreign_ids_are_404(api: Api, api_b: Api) -> None:
    config_id = create(api, tags=["A-only"])
    before = configurations(api)
    unknown = str(uuid.uuid4())
    for target in (unknown, "nope"):
        assert_error(api.put(f"/v1/configurations/{target}", json={"name": "x"}), 404, f"configuration {target}")
        assert_error(api.delete(f"/v1/configurations/{target}"), 404, f"configuration {target}")
    assert configurations(api_b) == [] and configurations(api_b, name="qa-prompt") == []
    assert_error(api_b.put(f"/v1/configurations/{config_id}", json={"name": "B's"}), 404, config_id)
    assert_error(api_b.delete(f"/v1/configurations/{config_id}"), 404, config_id)
    assert configurations(api) == before


@pytest.mark.parametrize(("method", "body", "field"), [
    ("POST", {"provider": "openai", "parameters": PARAMETERS}, "name"),
    ("POST", {"name": "c", "parameters": PARAMETERS}, "provider"),
    ("POST", {"name": "c", "provider": "openai"}, "parameters"),
    ("POST", {"name": "c", "provider": "openai", "parameters": {"model": "m"}}, "parameters.call_type"),
    ("POST", {"name": "c", "provider": "openai", "parameters": {"call_type": "chat"}}, "parameters.model"),
    ("POST", {"name": "c", "provider": "openai", "parameters": "gpt"}, "parameters"),
    ("POST", {"name": 3, "provider": "openai", "parameters": PARAMETERS}, "name"),
    ("POST", {"name": "", "provider": "openai", "parameters": PARAMETERS}, "name"),
    ("POST", {"name": "c", "provider": "openai", "parameters": PARAMETERS, "env": "dev"}, "env"),
    ("POST", {"name": "c", "provider": "openai", "parameters": PARAMETERS, "tags": [1]}, "tags[0]"),
    ("POST", {"name": "c", "provider": "openai", "parameters": {**PARAMETERS, "template": [{"role": "u"}]}},
     "parameters.template"),
    ("POST", {"name": "c", "provider": "openai", "parameters": {**PARAMETERS, "hyperparameters": [1]}},
     "parameters.hyperparameters"),
    ("PUT", {"env": ["prod"]}, "name"),
    ("PUT", {"name": "c", "parameters": {"model": "m"}}, "parameters.call_type"),
    ("PUT", {"name": "c", "user_properties": "me"}, "user_properties"),
])
def test_wrong_types_and_missing_fields_are_400_naming_the_field(api: Api, method: str, body: Any, field: str) -> None:
    config_id = create(api)
    before = configurations(api)
    path = "/v1/configurations" if method == "POST" else f"/v1/configurations/{config_id}"
    reply = assert_error(api.request(method, path, json=body), 400, field)
    assert reply["errors"][0]["field"].startswith(field), reply
    assert configurations(api) == before


def test_non_json_bodies_are_400(api: Api) -> None:
    config_id = create(api)
    assert assert_error(api.post("/v1/configurations", content=b"name=x"), 400)["errorCode"] == "MALFORMED_JSON"
    assert_error(api.put(f"/v1/configurations/{config_id}", content=b"[1,"), 400)
    assert_error(api.post("/v1/configurations", json=["x"]), 400, "body")


def test_ingestion_keys_get_403_on_every_configuration_route(api: Api, ingest: Api) -> None:
    config_id = create(api)
    before = configurations(api)
    for method, path, body in (("GET", "/v1/configurations", None),
                               ("POST", "/v1/configurations", {"name": "i", "provider": "p", "parameters": PARAMETERS}),
                               ("PUT", f"/v1/configurations/{config_id}", {"name": "i"}),
                               ("DELETE", f"/v1/configurations/{config_id}", None)):
        assert assert_error(ingest.request(method, path, json=body), 403, "ingestion key")["errorCode"] == "FORBIDDEN"
    assert configurations(api) == before
