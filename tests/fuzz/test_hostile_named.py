"""Named hostile inputs (issue 7) on the routes and in the places the existing suites do not reach.

Already covered elsewhere, not repeated here:
* ``tests/api/test_bad_input.py``: on the five v1 write routes, truncated / malformed / empty JSON,
  NaN, Infinity, 1e400, invalid UTF-8, lone surrogates, huge numbers in time fields, 100..100,000
  deep nesting, body and batch caps, and a long list of hostile bodies that must not give a 500;
* ``tests/api/test_otlp_http.py``: a single-member gzip bomb (413, small and default caps),
  truncated gzip/deflate, truncated protobuf, 200-deep protobuf and 900-deep JSON attribute nesting
  in the decoder, the span/attribute/depth limits;
* ``tests/api/test_export.py``: SQL-looking field paths and values on ``POST /v1/events/export``;
* ``tests/api/test_auth_isolation.py``: the same event/session ids in two projects through the v1
  routes; ``tests/api/test_legacy.py``: ``PUT /events`` and legacy writes across projects.

Here: the same kinds of input on the legacy routes, the read routes (export, search, session
search, GET /v1/events, chart, schema) and OTLP, plus 1 MB strings in every field of an event,
invalid UTF-8 inside protobuf strings, multi-member and nested gzip, and id collisions across
projects through OTLP and the legacy routes. Every refusal is a 4xx with the contract's error
body (protobuf requests: a ``google.rpc.Status``), and nothing is stored by a refused request.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, make_key
from tests.otlp_data import protobuf_request, tracer_request, tracer_spans
from tracehive.app import create_app
from tracehive.model.span import SpanEvent
from tracehive.settings import Settings

JSON = {"Content-Type": "application/json"}
PB = {"Content-Type": "application/x-protobuf"}
OTLP_PATHS = ("/v1/traces", "/opentelemetry/v1/traces")
MB = 1 << 20


@dataclass
class World:
    a: Api
    b: Api
    db: Path

    def rows(self) -> tuple[int, int, int]:
        """Events, pending updates and keys in the database: what a refused request must not change."""
        conn = sqlite3.connect(self.db)
        try:
            return tuple(int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[return-value]
                         for table in ("events", "pending_updates", "api_keys"))
        finally:
            conn.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    key_a, key_b = make_key(data_dir, "hostile-a"), make_key(data_dir, "hostile-b")
    settings = Settings(data_dir=data_dir)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        a = Api(client, key_a)
        seeded = a.post("/v1/events", json={"event_type": "tool", "inputs": {"seed": True}, "metadata": {"x": "seed"}})
        assert seeded.status_code == 200, seeded.text
        yield World(a, Api(client, key_b), settings.database_path)


def pb_refused(response: Any, status: int, *fragments: str) -> None:
    """A protobuf request's error: the same HTTP status, a google.rpc.Status body."""
    assert response.status_code == status, response.content[:300]
    assert response.headers["content-type"] == "application/x-protobuf"
    message = status_pb2.Status.FromString(response.content).message
    for fragment in fragments:
        assert fragment in message, message


# JSON routes outside tests/api/test_bad_input.py: (method, path, a valid body for the route).
SID = str(uuid.uuid4())
JSON_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/session/start", {"session": {"session_name": "s"}}),
    ("POST", "/events", {"event_type": "tool", "inputs": {}}),
    ("PUT", "/events", {"event_id": str(uuid.uuid4()), "metadata": {"m": 1}}),
    ("POST", "/events/batch", {"events": [{"event_type": "tool", "inputs": {}}]}),
    ("POST", "/events/model", {"model": "gpt", "messages": []}),
    ("POST", "/events/model/batch", {"model_events": [{"model": "gpt"}]}),
    ("POST", f"/session/{SID}/traces", {"logs": [{"event_type": "tool", "inputs": {}}]}),
    ("POST", "/v1/events/export", {"filters": []}),
    ("POST", "/events/export", {"filters": []}),
    ("POST", "/v1/events/search", {"filters": []}),
    ("POST", "/v1/sessions/search", {"filters": []}),
]
ROUTE_IDS = [f"{m} {p.replace(SID, '{id}')}" for m, p, _ in JSON_ROUTES]


def test_the_valid_twins_are_accepted(world: World) -> None:
    """The routes' valid bodies pass, so each refusal below is about the hostile part."""
    for method, path, body in JSON_ROUTES:
        response = world.a.request(method, path, content=json.dumps(body).encode(), headers=JSON)
        assert response.status_code == 200, (path, response.text)


# Nesting 10,000 deep -----------------------------------------------------------------------------


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(("method", "path", "valid"), JSON_ROUTES, ids=ROUTE_IDS)
def test_10000_deep_json_on_every_other_json_route(world: World, method: str, path: str, valid: dict[str, Any]) -> None:
    before = world.rows()
    key = next(iter(valid))
    for body in (deep_object(10_000), b"[" * 10_000 + b"]" * 10_000,
                 json.dumps(valid).encode()[:-1] + b', "zz": ' + deep_object(10_000) + b"}",
                 json.dumps({key: "@"}).encode().replace(b'"@"', deep_object(10_000))):
        body_json = assert_error(world.a.request(method, path, content=body, headers=JSON), 400)
        assert "nesting exceeds the limit" in body_json["message"] or "depth" in body_json["message"], body_json
    assert world.rows() == before


@pytest.mark.parametrize("path", OTLP_PATHS)
def test_10000_deep_json_on_otlp(world: World, path: str) -> None:
    before = world.rows()
    assert_error(world.a.request("POST", path, content=deep_object(10_000), headers=JSON), 400, "depth")
    # kvlistValue nesting 10,000 deep inside an otherwise valid request: the parser's own limit.
    value = b'{"kvlistValue":{"values":[{"key":"k","value":' * 10_000 + b'{"stringValue":"x"}' + b"}]}}" * 10_000
    assert_error(world.a.request("POST", path, content=otlp_json([attribute("deep", value)]), headers=JSON),
            400, "depth")
    # 40 levels parse, and the span is refused by the decoder's own limit (32) with a reason.
    value = b'{"kvlistValue":{"values":[{"key":"k","value":' * 40 + b'{"stringValue":"x"}' + b"}]}}" * 40
    response = world.a.request("POST", path, content=otlp_json([attribute("deep", value)]), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "nested deeper than 32 levels" in response.json()["partialSuccess"]["errorMessage"]
    assert world.rows() == before


def protobuf_any_nested(depth: int) -> bytes:
    """An ExportTraceServiceRequest whose one attribute is an arrayValue nested ``depth`` deep
    (hand-encoded: the generated classes would recurse as deep as the message)."""

    def length(data: bytes) -> bytes:
        n, out = len(data), bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out) + data

    value = b"\x0a\x04leaf"  # AnyValue{string_value}
    for _ in range(depth):
        value = b"\x2a" + length(b"\x0a" + length(value))  # AnyValue{array_value{values: [value]}}
    kv = b"\x0a\x01a\x12" + length(value)
    span = b"\x0a\x10" + b"\x01" * 16 + b"\x12\x08" + b"\x02" * 8 + b"\x39" + (1_700_000_000 * 10**9).to_bytes(8, "little")
    span += b"\x4a" + length(kv)
    return b"\x0a" + length(b"\x12" + length(b"\x12" + length(span)))


def test_10000_deep_protobuf(world: World) -> None:
    before = world.rows()
    for path in OTLP_PATHS:
        pb_refused(world.a.request("POST", path, content=protobuf_any_nested(10_000), headers=PB), 400,
                   "not a valid protobuf ExportTraceServiceRequest")
    assert world.rows() == before
    # The same shape 3 deep is a fine request (so the refusal is about the depth).
    response = world.a.request("POST", "/v1/traces", content=protobuf_any_nested(3), headers=PB)
    assert response.status_code == 200 and response.content == b"", response.content
    assert world.rows()[0] == before[0] + 2  # the span's event and its session


@pytest.mark.parametrize("path", ["/v1/events", "/events", "/v1/events/chart", "/v1/events/schema"])
def test_10000_deep_json_in_query_strings(world: World, path: str) -> None:
    """10,000 levels of brackets (what fits in a URL: httpx allows 64 KiB of query), in the JSON
    values the GET routes decode; what orjson refuses then goes to ast.literal_eval (the Python
    SDK's str() form), which must refuse it too."""
    deep = "[" * 10_000 + "]" * 10_000
    python_dicts = "[" + "{1:" * 3000 + "1" + "}" * 3000 + "]"
    for params in ({"filters": deep}, {"filters": python_dicts}, {"dateRange": '{"$gte":' + deep + "}"},
                   {"projections": deep}, {"filters": "[" + "(" * 10_000 + ")" * 10_000 + "]"}):
        response = world.a.get(path, params=params)
        if path.endswith(("/schema", "/chart")) and "projections" in params:
            assert response.status_code == 200, response.text  # these routes ignore projections
            continue
        assert_error(response, 400)


# Truncated bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "valid"), JSON_ROUTES, ids=ROUTE_IDS)
def test_truncated_json_on_every_other_json_route(world: World, method: str, path: str, valid: dict[str, Any]) -> None:
    before = world.rows()
    whole = json.dumps(valid).encode()
    for cut in range(1, len(whole)):
        assert_error(world.a.request(method, path, content=whole[:cut], headers=JSON), 400, "not valid JSON")
    assert world.rows() == before


def test_truncated_tracer_requests_store_nothing(world: World) -> None:
    """The recorded HoneyHive tracer request, cut at 40 places, as JSON, protobuf and gzip."""
    before = world.rows()
    as_json = json.dumps(tracer_request()[1]).encode()
    as_protobuf = protobuf_request(tracer_spans()).SerializeToString()
    for whole, headers in ((as_json, JSON), (as_protobuf, PB)):
        for cut in sorted({len(whole) * i // 40 for i in range(1, 40)}):
            response = world.a.request("POST", "/v1/traces", content=whole[:cut], headers=headers)
            assert response.status_code == 400, (cut, response.content[:200])
        compressed = gzip.compress(whole)
        for cut in sorted({len(compressed) * i // 40 for i in range(1, 40)}):
            response = world.a.request("POST", "/v1/traces", content=compressed[:cut],
                                       headers={**headers, "Content-Encoding": "gzip"})
            assert response.status_code == 400, (cut, response.content[:200])
    assert world.rows() == before


# Gzip bombs not covered by test_otlp_http --------------------------------------------------------


def test_multi_member_gzip_bomb_is_capped_across_members(world: World) -> None:
    """Eight 4 MiB members (32 MiB inflated, 32 KiB sent): the cap counts every member."""
    member = gzip.compress(b"\x00" * (4 << 20))
    assert len(member) * 8 < 64 * 1024
    for headers in (JSON, PB):
        response = world.a.request("POST", "/v1/traces", content=member * 8, headers={**headers, "Content-Encoding": "gzip"})
        assert response.status_code == 413
    # Two small members are one valid body (RFC 1952 allows several).
    body = json.dumps(tracer_request()[1]).encode()
    halves = gzip.compress(body[: len(body) // 2]) + gzip.compress(body[len(body) // 2 :])
    response = world.a.request("POST", "/v1/traces", content=halves, headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text


def test_gzip_inside_gzip_is_inflated_once(world: World) -> None:
    before = world.rows()
    inner_bomb = gzip.compress(gzip.compress(b"\x00" * (64 << 20)))
    assert_error(world.a.request("POST", "/v1/traces", content=inner_bomb, headers={**JSON, "Content-Encoding": "gzip"}),
            400, "not valid UTF-8", "gzip-compressed")
    pb_refused(world.a.request("POST", "/v1/traces", content=inner_bomb, headers={**PB, "Content-Encoding": "gzip"}), 400)
    assert_error(world.a.request("POST", "/v1/traces", content=inner_bomb,
                                   headers={**JSON, "Content-Encoding": "gzip, gzip"}), 415)
    assert world.rows() == before


# Huge numbers and NaN --------------------------------------------------------------------------


def attribute(key: str, raw_value: bytes) -> bytes:
    return b'{"key":' + json.dumps(key).encode() + b',"value":' + raw_value + b"}"


def otlp_json(attributes: list[bytes], **span: Any) -> bytes:
    fields = {"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "name": "op",
              "startTimeUnixNano": "1700000000000000000", **span}
    head = json.dumps(fields).encode()[:-1]
    return (b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + head + b',"attributes":[' + b",".join(attributes)
            + b"]}]}]}]}")


@pytest.mark.parametrize(("value", "fragment"), [
    (b'{"intValue":"9223372036854775808"}', "out of the signed 64-bit range"),
    (b'{"intValue":"-9223372036854775809"}', "out of the signed 64-bit range"),
    (b'{"intValue":18446744073709551616}', "intValue"),
    (b'{"intValue":"' + b"9" * 5000 + b'"}', "must be a 64-bit integer"),
    (b'{"intValue":1e400}', "not valid JSON"),
    (b'{"doubleValue":NaN}', "not valid JSON"),
    (b'{"doubleValue":-Infinity}', "not valid JSON"),
    (b'{"doubleValue":"1e400x"}', "must be a number"),
])
def test_otlp_numbers_out_of_range_are_400_naming_the_value(world: World, value: bytes, fragment: str) -> None:
    before = world.rows()
    response = world.a.request("POST", "/v1/traces", content=otlp_json([attribute("n", value)]), headers=JSON)
    body = assert_error(response, 400, fragment)
    if "not valid JSON" not in fragment:
        assert "attributes[0].value" in body["message"], body
    assert world.rows() == before


def test_otlp_special_doubles_and_64_bit_edges_are_kept(world: World) -> None:
    """The protobuf JSON mapping writes non-finite doubles as strings: kept as the tracer sends
    them ("NaN", "Infinity"); the 64-bit edges are kept exactly."""
    trace = uuid.uuid4().hex
    values = [attribute("honeyhive_metadata.nan", b'{"doubleValue":"NaN"}'),
              attribute("honeyhive_metadata.inf", b'{"doubleValue":"-Infinity"}'),
              attribute("honeyhive_metadata.max", b'{"intValue":"9223372036854775807"}'),
              attribute("honeyhive_metadata.min", b'{"intValue":-9223372036854775808}'),
              attribute("honeyhive_metadata.big_double", b'{"doubleValue":1.7976931348623157e308}')]
    response = world.a.request("POST", "/v1/traces", content=otlp_json(values, traceId=trace), headers=JSON)
    assert response.status_code == 200 and response.json() == {}, response.text
    found = world.a.post("/v1/events/export", json={"filters": [{"field": "metadata.otel.trace_id", "operator": "is",
                                                                 "value": trace}]}).json()["events"]
    assert len(found) == 1
    metadata = found[0]["metadata"]
    assert (metadata["nan"], metadata["inf"], metadata["max"], metadata["min"], metadata["big_double"]) == (
        "NaN", "-Infinity", 2**63 - 1, -(2**63), 1.7976931348623157e308)


@pytest.mark.parametrize(("method", "path", "valid"), JSON_ROUTES, ids=ROUTE_IDS)
def test_nan_infinity_and_1e400_on_every_other_json_route(world: World, method: str, path: str,
                                                          valid: dict[str, Any]) -> None:
    before = world.rows()
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"):
        body = json.dumps({**valid, "extra_number": "@"}).encode().replace(b'"@"', literal)
        assert_error(world.a.request(method, path, content=body, headers=JSON), 400, "not valid JSON")
    assert world.rows() == before


def test_huge_integers_in_metadata_are_kept_as_json_numbers(world: World) -> None:
    """Integers within 64 bits come back exactly; larger ones come back as the nearest double (as
    every JSON parser that maps numbers to doubles, JavaScript's included, reads them)."""
    metadata = {"u64": 2**64 - 1, "i64": -(2**63), "over": 2**70, "under": -(2**70), "digits": 10**30}
    response = world.a.post("/v1/events", json={"event_type": "tool", "inputs": {}, "metadata": metadata})
    assert response.status_code == 200, response.text
    stored = world.a.get(f"/v1/events/{response.json()['event_id']}").json()["event"]["metadata"]
    assert stored == {"u64": 2**64 - 1, "i64": -(2**63), "over": float(2**70), "under": -float(2**70),
                      "digits": 1e30}


def test_huge_numbers_in_filters_and_date_ranges_are_400(world: World) -> None:
    for flt, fragment in (({"field": "metadata.n", "operator": "greater than", "value": 10**400}, "not valid JSON"),
                          ({"field": "metadata.n", "operator": "less than", "value": "1" + "0" * 320}, "filters[0].value"),
                          ({"field": "duration", "operator": "is", "value": "-" + "9" * 400}, "filters[0].value"),
                          ({"field": "start_time", "operator": "after", "value": "1e309"}, "filters[0].value")):
        for path in ("/v1/events/export", "/v1/events/search", "/v1/sessions/search"):
            body = json.dumps({"filters": [flt]})
            assert_error(world.a.request("POST", path, content=body.encode(), headers=JSON), 400, fragment)
    for bound in ("1e309", "NaN", "-Infinity", "9" * 400):
        assert_error(world.a.post("/v1/events/export", json={"dateRange": {"$gte": bound}}), 400, "dateRange")
        assert_error(world.a.get("/v1/events/chart", params={"dateRange[$gte]": bound}), 400, "dateRange")


# Invalid UTF-8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "valid"), JSON_ROUTES, ids=ROUTE_IDS)
def test_invalid_utf8_on_every_other_json_route(world: World, method: str, path: str, valid: dict[str, Any]) -> None:
    before = world.rows()
    for bad in (b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"caf\xe9"):
        body = json.dumps({**valid, "zz": "@"}).encode().replace(b'"@"', b'"' + bad + b'"')
        assert_error(world.a.request(method, path, content=body, headers=JSON), 400, "not valid UTF-8", "offset")
    assert world.rows() == before


@pytest.mark.parametrize("field", ["span name", "attribute key", "attribute value", "resource value",
                                   "event name", "status message", "scope name"])
def test_invalid_utf8_in_protobuf_strings_is_400(world: World, field: str) -> None:
    """proto3 ``string`` fields must be UTF-8: a request with a bad byte in one is refused whole."""
    marker = "M" * 12
    span = tracer_spans()[0]
    changes = {
        "span name": {"name": marker},
        "attribute key": {"attributes": {marker: "v"}},
        "attribute value": {"attributes": {"k": marker}},
        "resource value": {"resource_attributes": {"r": marker}},
        "event name": {"events": (SpanEvent(name=marker, time_unix_nano=1_700_000_000_000_000_001),)},
        "status message": {"status_code": "STATUS_CODE_ERROR", "status_message": marker},
        "scope name": {"scope_name": marker},
    }[field]
    body = protobuf_request([dataclasses.replace(span, **changes)]).SerializeToString()
    assert body.count(marker.encode()) == 1
    before = world.rows()
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):  # stray, overlong, surrogate, > U+10FFFF
        broken = body.replace(marker.encode(), b"M" + bad + b"M" * (11 - len(bad)))
        for path in OTLP_PATHS:
            pb_refused(world.a.request("POST", path, content=broken, headers=PB), 400,
                       "not a valid protobuf ExportTraceServiceRequest")
    assert world.rows() == before
    response = world.a.request("POST", "/v1/traces", content=body, headers=PB)  # the intact twin
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", ["/v1/events", "/events", "/v1/events/chart", "/v1/events/schema"])
def test_invalid_utf8_in_query_strings_is_not_a_500(world: World, path: str) -> None:
    """Percent-escapes of bytes that are not UTF-8 decode to U+FFFD: at worst a 400, never a 500."""
    for query in ("filters%5B0%5D%5Bfield%5D=event_name&filters%5B0%5D%5Boperator%5D=is&filters%5B0%5D%5Bvalue%5D=%FF",
                  "%FF%FE=1", "filters=%5B%7B%22field%22%3A%22%C0%AF%22%7D%5D", "dateRange=%ED%A0%80", "metric=%FF"):
        response = world.a.get(f"{path}?{query}")
        assert response.status_code in (200, 400), (query, response.text)
        if response.status_code == 400:
            assert_error(response, 400)


# 1 MB strings in every field -----------------------------------------------------------------------

FREE_FIELDS = ("inputs", "outputs", "config", "metadata", "feedback", "metrics", "user_properties")


def megabyte_event() -> dict[str, Any]:
    """1 MB keys and values in every free-form field, a 1 MB error: about 15 MB, under the 20 MiB cap."""
    event: dict[str, Any] = {"event_type": "tool", "event_name": "mb", "error": "e" * MB}
    for n, name in enumerate(FREE_FIELDS):
        letter = chr(ord("a") + n)
        event[name] = {letter * MB: letter.upper() * MB, "nested": {"list": [letter * 1000] * 3}}
    return event


def test_1mb_strings_in_every_free_field_are_stored_whole(world: World) -> None:
    event = megabyte_event()
    for method, path in (("POST", "/v1/events"), ("POST", "/events")):
        response = world.a.request(method, path, content=json.dumps(event).encode(), headers=JSON)
        assert response.status_code == 200, response.text[:300]
        stored = world.a.get(f"/v1/events/{response.json()['event_id']}").json()["event"]
        for name in (*FREE_FIELDS, "error", "event_name"):
            assert stored[name] == event[name], name
    # A 1 MB update merges like any other.
    eid = response.json()["event_id"]
    response = world.a.put(f"/v1/events/{eid}", json={"metadata": {"z" * MB: "Z" * MB}})
    assert response.status_code == 200, response.text
    assert world.a.get(f"/v1/events/{eid}").json()["event"]["metadata"]["z" * MB] == "Z" * MB


@pytest.mark.parametrize(("method", "path", "field", "fragment"), [
    ("POST", "/v1/events", "event_type", "event_type"),
    ("POST", "/v1/events", "event_name", "at most 1024 characters"),
    ("POST", "/v1/events", "source", "at most 1024 characters"),
    ("POST", "/v1/events", "event_id", "event_id"),
    ("POST", "/v1/events", "session_id", "session_id"),
    ("POST", "/v1/events", "parent_id", "parent_id"),
    ("POST", "/v1/events", "children_ids", "children_ids"),
    ("POST", "/v1/sessions", "session_name", "at most 1024 characters"),
    ("POST", "/v1/sessions", "source", "at most 1024 characters"),
    ("POST", "/events", "event_name", "at most 1024 characters"),
    ("POST", "/events", "source", "at most 1024 characters"),
    ("POST", "/session/start", "session_name", "at most 1024 characters"),
])
def test_1mb_strings_in_bounded_fields_are_400_naming_them(world: World, method: str, path: str, field: str,
                                                           fragment: str) -> None:
    before = world.rows()
    value: Any = ["x" * MB] if field == "children_ids" else "x" * MB
    body = {"event_type": "tool", "inputs": {}, **megabyte_event(), field: value}
    if path in ("/v1/sessions", "/session/start"):
        body = {field: value, "metadata": {"m" * MB: "M" * MB}}
    response = world.a.request(method, path, content=json.dumps(body).encode(), headers=JSON)
    assert_error(response, 400, field, fragment)
    assert world.rows() == before


def test_1mb_strings_through_otlp(world: World) -> None:
    """Span name, attribute keys and values, resource, scope, status and span-event strings of 1 MB
    each: stored, the payload read back whole."""
    trace = uuid.uuid4().hex
    span = {"traceId": trace, "spanId": uuid.uuid4().hex[:16], "name": "n" * MB, "startTimeUnixNano": "1700000000000000000",
            "status": {"code": 2, "message": "E" * MB},
            "attributes": [{"key": "k" * MB, "value": {"stringValue": "V" * MB}},
                           {"key": "honeyhive_inputs.q", "value": {"stringValue": "Q" * MB}},
                           {"key": "honeyhive_metadata." + "m" * MB, "value": {"stringValue": "M" * MB}}],
            "events": [{"name": "w" * MB, "timeUnixNano": "1700000000000000001",
                        "attributes": [{"key": "y", "value": {"stringValue": "Y" * MB}}]}]}
    document = {"resourceSpans": [{"resource": {"attributes": [{"key": "r", "value": {"stringValue": "R" * MB}}]},
                                   "scopeSpans": [{"scope": {"name": "s" * MB, "version": "v"}, "spans": [span]}]}]}
    response = world.a.request("POST", "/v1/traces", content=json.dumps(document).encode(), headers=JSON)
    assert response.status_code == 200 and response.json() == {}, response.text[:300]
    found = world.a.post("/v1/events/export", json={"filters": [{"field": "metadata.otel.trace_id", "operator": "is",
                                                                 "value": trace}]}).json()["events"]
    assert len(found) == 1
    event = found[0]
    assert event["inputs"]["q"] == "Q" * MB
    assert event["metadata"]["m" * MB] == "M" * MB
    assert event["metadata"]["attributes"]["k" * MB] == "V" * MB
    assert event["metadata"]["resource"]["r"] == "R" * MB
    assert event["metadata"]["scope"]["name"] == "s" * MB
    assert "E" * MB in event["error"]
    # The name is cut to the REST routes' 1024-character limit rather than refusing the span.
    assert event["event_name"] == "n" * 1023 + "…"


# SQL-looking field paths and values ----------------------------------------------------------------

SQL_PATH = "metadata.x'); DROP TABLE events;--"
SQL_VALUE = "x'); DROP TABLE events;--"


def sql_filter(field: str = SQL_PATH, value: str = "x", operator: str = "is") -> dict[str, str]:
    return {"field": field, "operator": operator, "value": value, "type": "string"}


def test_sql_looking_paths_on_every_read_route(world: World) -> None:
    before = world.rows()
    where = "filters[0].field"
    for path in ("/v1/events/export", "/events/export", "/v1/events/search", "/v1/sessions/search"):
        assert_error(world.a.post(path, json={"filters": [sql_filter()]}), 400, where, "may only contain")
    for path in ("/v1/events", "/events", "/v1/events/schema", "/v1/events/chart"):
        assert_error(world.a.get(path, params={"filters": json.dumps([sql_filter()])}), 400, where)
        assert_error(world.a.get(path, params={"filters[0][field]": SQL_PATH, "filters[0][operator]": "is",
                                                 "filters[0][value]": "x"}), 400, where)
    assert_error(world.a.get("/v1/events/chart", params={"metric": SQL_PATH}), 400, "metric")
    assert_error(world.a.get("/v1/events/chart", params={"groupBy": SQL_PATH}), 400, "groupBy")
    assert_error(world.a.post("/v1/events/export", json={"projections": [SQL_PATH]}), 400, "projections[0]")
    assert_error(world.a.get("/v1/events", params={"projections": SQL_PATH}), 400, "projections[0]")
    for column in ("event_name; DROP TABLE events", "e.project_id", "project_id", "rowid", "events"):
        assert_error(world.a.post("/v1/events/search", json={"filters": [sql_filter(column + ".a")]}), 400, where)
    assert world.rows() == before


def test_sql_looking_values_and_keys_are_data(world: World) -> None:
    """Stored as data (in values and in metadata keys) and found exactly, on every read route;
    the same text as a filter value matches nothing else."""
    tag = uuid.uuid4().hex
    body = {"event_type": "tool", "event_name": SQL_VALUE, "inputs": {SQL_VALUE: SQL_VALUE},
            "metadata": {"tag": tag, "label": SQL_VALUE, SQL_VALUE: 1}}
    eid = world.a.post("/v1/events", json=body).json()["event_id"]
    for flt in (sql_filter("event_name", SQL_VALUE), sql_filter("metadata.label", SQL_VALUE),
                sql_filter("metadata.label", "DROP TABLE", "contains")):
        for path in ("/v1/events/export", "/v1/events/search"):
            found = world.a.post(path, json={"filters": [flt, sql_filter("metadata.tag", tag)]}).json()["events"]
            assert [e["event_id"] for e in found] == [eid], (path, flt)
        got = world.a.get("/v1/events", params={"filters": json.dumps([flt, sql_filter("metadata.tag", tag)])}).json()
        assert [e["event_id"] for e in got["events"]] == [eid]
    sessions = world.a.post("/v1/sessions/search", json={"filters": [sql_filter("event_name", SQL_VALUE)]})
    assert sessions.status_code == 200, sessions.text
    stored = world.a.get(f"/v1/events/{eid}").json()["event"]
    assert stored["inputs"] == {SQL_VALUE: SQL_VALUE} and stored["metadata"][SQL_VALUE] == 1
    nothing = world.a.post("/v1/events/export", json={"filters": [sql_filter("event_name", "x' OR '1'='1")]})
    assert nothing.json()["events"] == []
    schema = world.a.get("/v1/events/schema")
    assert schema.status_code == 200, schema.text


# Ids that collide across projects -------------------------------------------------------------------


def test_same_otlp_trace_and_span_ids_in_two_projects(world: World) -> None:
    """Span-derived event ids (and the trace's session) are the same in both projects: each
    project gets its own event, B's re-export never touches A's, deleting B's leaves A's."""
    trace, span = uuid.uuid4().hex, uuid.uuid4().hex[:16]

    def export(api: Api, who: str) -> None:
        doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": span, "name": who, "startTimeUnixNano": "1700000000000000000",
            "attributes": [{"key": "honeyhive_inputs.who", "value": {"stringValue": who}}]}]}]}]}
        response = api.request("POST", "/v1/traces", content=json.dumps(doc).encode(), headers=JSON)
        assert response.status_code == 200, response.text

    export(world.a, "a")
    export(world.b, "b")
    export(world.b, "b-again")
    flt = {"filters": [{"field": "metadata.otel.span_id", "operator": "is", "value": span}]}
    (a_event,) = world.a.post("/v1/events/export", json=flt).json()["events"]
    (b_event,) = world.b.post("/v1/events/export", json=flt).json()["events"]
    assert a_event["event_id"] == b_event["event_id"] and a_event["session_id"] == b_event["session_id"]
    assert (a_event["inputs"], b_event["inputs"]) == ({"who": "a"}, {"who": "b-again"})
    assert a_event["project_id"] != b_event["project_id"]
    assert world.b.delete(f"/v1/sessions/{b_event['session_id']}").status_code == 200
    assert world.a.get(f"/v1/events/{a_event['event_id']}").json()["event"] == a_event
    assert world.a.get(f"/v1/sessions/{a_event['session_id']}").status_code == 200


def test_same_ids_through_the_legacy_routes_in_two_projects(world: World) -> None:
    sid, eid = str(uuid.uuid4()), str(uuid.uuid4())
    assert world.a.post("/session/start", json={"session": {"session_id": sid, "session_name": "a",
                                                            "metadata": {"who": "a"}}}).status_code == 200
    assert world.a.post("/events/batch", json={"events": [{"event_id": eid, "session_id": sid, "event_type": "tool",
                                                           "inputs": {"who": "a"}}]}).status_code == 200
    a_tree = world.a.get(f"/v1/sessions/{sid}").json()
    a_event = world.a.get(f"/v1/events/{eid}").json()["event"]
    # B names the same ids on every legacy write route.
    for method, path, body in [
        ("POST", "/session/start", {"session": {"session_id": sid, "session_name": "b", "metadata": {"who": "b"}}}),
        ("POST", "/events", {"event": {"event_id": eid, "session_id": sid, "event_type": "model", "inputs": {"who": "b"}}}),
        ("POST", "/events/batch", {"events": [{"event_id": eid, "session_id": sid, "event_type": "chain",
                                               "inputs": {"who": "b"}}], "is_single_session": True}),
        ("POST", f"/session/{sid}/traces", {"logs": [{"event_id": eid, "event_type": "tool", "inputs": {"who": "b"}}]}),
        ("PUT", "/events", {"event_id": eid, "metadata": {"by": "b"}, "outputs": {"by": "b"}}),
        ("POST", "/events/model", {"event_id": eid, "session_id": sid, "model": "m", "inputs": {"who": "b"}}),
    ]:
        response = world.b.request(method, path, content=json.dumps(body).encode(), headers=JSON)
        assert response.status_code == 200, (path, response.text)
    assert world.a.get(f"/v1/sessions/{sid}").json() == a_tree
    assert world.a.get(f"/v1/events/{eid}").json()["event"] == a_event
    b_event = world.b.get(f"/v1/events/{eid}").json()["event"]
    assert b_event["project_id"] != a_event["project_id"] and b_event["metadata"].get("by") == "b"
    # B's update for an event only A has waits in B (for B's own event) and never reaches A's.
    only_a = world.a.post("/events", json={"event_type": "tool", "inputs": {}}).json()["event_id"]
    assert world.b.put("/events", json={"event_id": only_a, "metadata": {"by": "b"}}).status_code == 200
    assert world.a.get(f"/v1/events/{only_a}").json()["event"]["metadata"] == {}
    assert world.b.delete(f"/v1/sessions/{sid}").status_code == 200
    assert world.a.get(f"/v1/sessions/{sid}").json() == a_tree
