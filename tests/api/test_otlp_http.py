"""OTLP/HTTP ingest: the decoder (protobuf, standard OTLP/JSON, the HoneyHive tracer's dialect)
and the routes ``POST /opentelemetry/v1/traces`` and ``POST /v1/traces``."""

from __future__ import annotations

import base64
import copy
import gzip
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1 import trace_pb2
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error
from tests.otlp_data import (
    ROOT_SPAN,
    SESSION_ID,
    TRACE_ID,
    overloaded_store,
    protobuf_request,
    tracer_request,
    tracer_spans,
)
from tracehive.app import create_app
from tracehive.ingest.otlp_decode import DecodeLimits, decode_json, decode_json_document, decode_protobuf
from tracehive.model.errors import MalformedBody, PayloadTooLarge, ValidationFailed
from tracehive.model.span import DecodedSpan, SpanEvent
from tracehive.settings import Settings

PATHS = ("/opentelemetry/v1/traces", "/v1/traces")
PB = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def tracer_body() -> dict[str, Any]:
    return tracer_request()[1]


def one_span(**fields: Any) -> dict[str, Any]:
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "op",
            "kind": 1, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"}
    span.update(fields)
    return span


def document(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    rs: dict[str, Any] = {"scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}
    if resource is not None:
        rs["resource"] = resource
    return {"resourceSpans": [rs]}


def attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


# ------------------------------------------------------------------------------------------------
# Decoder: the recorded tracer request, exactly
# ------------------------------------------------------------------------------------------------


def test_decodes_the_recorded_tracer_request_exactly() -> None:
    result = decode_json(orjson.dumps(tracer_body()))
    assert result.rejected == [] and result.rejected_count == 0
    spans = result.spans
    assert [s.name for s in spans] == [
        "__main__.lookup", "broken_tool", "broken_tool_error", "manual-span", "call_llm", "pipeline"
    ]
    assert {s.trace_id for s in spans} == {TRACE_ID}
    assert [s.span_id for s in spans] == [
        "e348896f7140478b", "d6aef3f5ea6ab21b", "9ed81ce18c4d7ba4", "86924695811f2003", "2018fb8f363f618b", ROOT_SPAN
    ]
    assert [s.parent_span_id for s in spans] == [ROOT_SPAN] * 5 + [None]  # "parentSpanId": null on the root
    assert {s.kind for s in spans} == {"SPAN_KIND_INTERNAL"}
    assert {s.scope_name for s in spans} == {"honeyhive.139925667659856"} and {s.scope_version for s in spans} == {""}
    root = spans[-1]
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (1795856061335642148, 1795856061342807616)
    assert root.resource_attributes == {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.45.2",
        "service.instance.id": "8497bdae-bd2d-4f58-a7be-2c917b0264f5",
        "service.name": "unknown_service:python",
    }
    lookup = spans[0]
    assert lookup.attributes == {
        "honeyhive.session_id": SESSION_ID,
        "traceloop.association.properties.session_id": SESSION_ID,
        "honeyhive.project": "demo",
        "traceloop.association.properties.project": "demo",
        "honeyhive.source": "dev",
        "traceloop.association.properties.source": "dev",
        "honeyhive_event_type": "tool",
        "honeyhive_inputs.term": "what is otel?",
        "honeyhive_metadata.event_type": "tool",
        "honeyhive_outputs.hits": 3,  # intValue "3": a 64-bit int sent as a string, kept an int
        "honeyhive_user_properties.tier": "pro",
        "honeyhive_outputs.result.0": "doc-1",
        "honeyhive_outputs.result.1": "doc-2",
        "honeyhive_duration_ms": 0.3039836883544922,
    }
    assert type(lookup.attributes["honeyhive_outputs.hits"]) is int
    assert lookup.status_code == "STATUS_CODE_UNSET" and lookup.status_message == "" and lookup.events == ()
    broken = spans[1]
    assert broken.status_code == "STATUS_CODE_ERROR" and broken.status_message == "ValueError: tool exploded"
    assert [(e.name, e.time_unix_nano) for e in broken.events] == [
        ("exception", 1795856061338356634), ("exception", 1795856061338634999)
    ]
    first = broken.events[0].attributes
    assert first["exception.type"] == "ValueError" and first["exception.message"] == "tool exploded"
    assert first["exception.escaped"] == "False"
    assert first["exception.stacktrace"].endswith("ValueError: tool exploded\n")
    call_llm = spans[4].attributes
    assert call_llm["honeyhive_metrics.tokens"] == 7 and call_llm["honeyhive_feedback.rating"] == 4
    assert call_llm["honeyhive_config.temperature"] == 0.2 and type(call_llm["honeyhive_config.temperature"]) is float
    assert spans[2].attributes["honeyhive_error"] == "tool exploded"


def test_protobuf_round_trip_of_the_tracer_request() -> None:
    """The same spans built with the proto classes decode to exactly what the JSON gave."""
    spans = tracer_spans()
    request = protobuf_request(spans)
    result = decode_protobuf(request.SerializeToString())
    assert result.rejected == []
    assert result.spans == spans


# ------------------------------------------------------------------------------------------------
# Decoder: every value type, both encodings
# ------------------------------------------------------------------------------------------------

EXPECTED_ATTRS = {
    "s": "text",
    "i": -42,
    "big": 2**63 - 1,
    "d": 1.5,
    "b": True,
    "bytes": b"\x00\x01\xfe",
    "arr": ["a", 1, [2.5, False]],
    "kv": {"x": 1, "nested": {"y": "z"}},
    "empty": None,
}


def test_standard_otlp_json_every_value_type_and_number_forms() -> None:
    span = one_span(
        traceId="0AF7651916CD43DD8448EB211C80319C",  # hex is case-insensitive
        parentSpanId="00f067aa0ba902b7",
        kind=3,  # the OTLP rule: enums are integers
        startTimeUnixNano=1700000000000000000,  # numbers as well as strings
        attributes=[
            attr("s", {"stringValue": "text"}),
            attr("i", {"intValue": -42}),
            attr("big", {"intValue": str(2**63 - 1)}),
            attr("d", {"doubleValue": 1.5}),
            attr("b", {"boolValue": True}),
            attr("bytes", {"bytesValue": base64.b64encode(b"\x00\x01\xfe").decode()}),
            attr("arr", {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"},
                                                   {"arrayValue": {"values": [{"doubleValue": 2.5},
                                                                              {"boolValue": False}]}}]}}),
            attr("kv", {"kvlistValue": {"values": [attr("x", {"intValue": 1}),
                                                   attr("nested", {"kvlistValue": {"values": [
                                                       attr("y", {"stringValue": "z"})]}})]}}),
            attr("empty", {}),
        ],
        events=[{"timeUnixNano": 1700000000500000000, "name": "e", "attributes": [attr("k", {"intValue": "5"})]}],
        status={"code": 2, "message": "boom"},
        traceState="k=v", flags=1, droppedAttributesCount=0, links=[], someFutureField={"a": 1},  # ignored
    )
    doc = document(span, resource={"attributes": [attr("service.name", {"stringValue": "svc"})]})
    doc["resourceSpans"][0]["scopeSpans"][0]["scope"]["version"] = "1.2"
    spans = decode_json_document(doc).spans
    assert spans == [DecodedSpan(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        parent_span_id="00f067aa0ba902b7",
        name="op",
        kind="SPAN_KIND_CLIENT",
        start_time_unix_nano=1700000000000000000,
        end_time_unix_nano=1700000001000000000,
        attributes=EXPECTED_ATTRS,
        events=(SpanEvent("e", 1700000000500000000, {"k": 5}),),
        status_code="STATUS_CODE_ERROR",
        status_message="boom",
        resource_attributes={"service.name": "svc"},
        scope_name="test",
        scope_version="1.2",
    )]
    # The same span through protobuf.
    assert decode_protobuf(protobuf_request(spans).SerializeToString()).spans == spans


def test_json_accepts_snake_case_keys_base64_ids_and_enum_name_variants() -> None:
    span = {
        "trace_id": base64.b64encode(bytes.fromhex("0af7651916cd43dd8448eb211c80319c")).decode(),
        "span_id": base64.b64encode(bytes.fromhex("b7ad6b7169203331")).decode(),
        "parent_span_id": "",
        "name": "op",
        "kind": "SPAN_KIND_SERVER",
        "start_time_unix_nano": "1",
        "end_time_unix_nano": "2",
        "status": {"code": "STATUS_CODE_OK"},
    }
    (decoded,) = decode_json_document({"resource_spans": [{"scope_spans": [{"spans": [span]}]}]}).spans
    assert decoded.trace_id == "0af7651916cd43dd8448eb211c80319c" and decoded.span_id == "b7ad6b7169203331"
    assert decoded.parent_span_id is None and decoded.kind == "SPAN_KIND_SERVER" and decoded.status_code == "STATUS_CODE_OK"
    for kind, expected in (("internal", "SPAN_KIND_INTERNAL"), ("CLIENT", "SPAN_KIND_CLIENT"), (99, "SPAN_KIND_UNSPECIFIED"),
                           ("2", "SPAN_KIND_SERVER"), (None, "SPAN_KIND_UNSPECIFIED")):
        (s,) = decode_json_document(document(one_span(kind=kind))).spans
        assert s.kind == expected


def test_json_doubles_special_values_and_all_zero_parent_is_root() -> None:
    span = one_span(parentSpanId="0000000000000000", attributes=[
        attr("nan", {"doubleValue": "NaN"}), attr("inf", {"doubleValue": "Infinity"}),
        attr("ninf", {"doubleValue": "-Infinity"}), attr("str", {"doubleValue": "2.5"}), attr("int", {"doubleValue": 3}),
    ])
    (s,) = decode_json_document(document(span)).spans
    assert s.parent_span_id is None
    assert math.isnan(s.attributes["nan"]) and s.attributes["inf"] == math.inf and s.attributes["ninf"] == -math.inf
    assert s.attributes["str"] == 2.5 and s.attributes["int"] == 3.0 and type(s.attributes["int"]) is float


def test_empty_requests_decode_to_nothing() -> None:
    assert decode_protobuf(b"").spans == []
    assert decode_json(b"{}").spans == []
    assert decode_json(b'{"resourceSpans": []}').spans == []
    assert decode_json(b'{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}').spans == []


# ------------------------------------------------------------------------------------------------
# Decoder: garbage is refused with its location
# ------------------------------------------------------------------------------------------------

SPAN0 = "resourceSpans[0].scopeSpans[0].spans[0]"


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([], "body: must be a JSON object"),
        ({"resourceSpans": {}}, "resourceSpans: must be an array"),
        ({"resourceSpans": [1]}, "resourceSpans[0]: must be an object"),
        ({"resourceSpans": [{"scopeSpans": "x"}]}, "resourceSpans[0].scopeSpans: must be an array"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": 3}]}]}, "resourceSpans[0].scopeSpans[0].spans: must be an array"),
        (document("span"), f"{SPAN0}: must be an object"),
        (document(one_span(name=5)), f"{SPAN0}.name: must be a string"),
        (document(one_span(startTimeUnixNano="soon")), f"{SPAN0}.startTimeUnixNano: must be an unsigned 64-bit integer"),
        (document(one_span(endTimeUnixNano=-1)), f"{SPAN0}.endTimeUnixNano: -1 is out of the unsigned 64-bit range"),
        (document(one_span(kind="SPAN_KIND_BANANA")), f"{SPAN0}.kind: unknown value 'SPAN_KIND_BANANA'"),
        (document(one_span(status={"code": "WHATEVER"})), f"{SPAN0}.status.code: unknown value"),
        (document(one_span(status="ok")), f"{SPAN0}.status: must be an object"),
        (document(one_span(attributes={"a": 1})), f"{SPAN0}.attributes: must be an array"),
        (document(one_span(attributes=[{"value": {"stringValue": "x"}}])), f"{SPAN0}.attributes[0].key: is required"),
        (document(one_span(attributes=[attr("a", {"stringValue": "ok"}), attr("b", {"intValue": "abc"})])),
         f"{SPAN0}.attributes[1].value.intValue: must be a 64-bit integer, got 'abc'"),
        (document(one_span(attributes=[attr("a", {"intValue": str(2**63)})])), f"{SPAN0}.attributes[0].value.intValue: "),
        (document(one_span(attributes=[attr("a", {"boolValue": "true"})])), f"{SPAN0}.attributes[0].value.boolValue: must be true or false"),
        (document(one_span(attributes=[attr("a", {"doubleValue": "fast"})])), f"{SPAN0}.attributes[0].value.doubleValue: must be a number"),
        (document(one_span(attributes=[attr("a", {"bytesValue": "%%%"})])), f"{SPAN0}.attributes[0].value.bytesValue: must be base64"),
        (document(one_span(attributes=[attr("a", {"arrayValue": {"values": [{"intValue": "x"}]}})])),
         f"{SPAN0}.attributes[0].value.arrayValue.values[0].intValue"),
        (document(one_span(attributes=[attr("a", {"kvlistValue": {"values": [{"key": 1}]}})])),
         f"{SPAN0}.attributes[0].value.kvlistValue.values[0]"),
        (document(one_span(attributes=[attr("a", "plain")])), f"{SPAN0}.attributes[0].value: must be an AnyValue object"),
        (document(one_span(events=[{"timeUnixNano": "x"}])), f"{SPAN0}.events[0].timeUnixNano"),
        (document(one_span(events=[{"name": "e", "attributes": [attr("k", {"intValue": "1.5"})]}])),
         f"{SPAN0}.events[0].attributes[0].value.intValue"),
        (document(one_span(), resource={"attributes": [attr("k", {"intValue": []})]}),
         "resourceSpans[0].resource.attributes[0].value.intValue: must be a 64-bit integer"),
        ({"resourceSpans": [{"scopeSpans": [{"scope": {"name": 1}, "spans": []}]}]}, "resourceSpans[0].scopeSpans[0].scope.name"),
    ],
)
def test_json_garbage_is_refused_with_its_location(doc: Any, where: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_json_document(doc)
    assert where in info.value.message, info.value.message


def test_undecodable_json_is_malformed() -> None:
    for body in (b"", b"   ", b"{not json", b'{"resourceSpans": [', b"\xff\xfe"):
        with pytest.raises(MalformedBody):
            decode_json(body)


def test_undecodable_protobuf_is_malformed() -> None:
    good = protobuf_request(tracer_spans()).SerializeToString()
    for body in (good[: len(good) // 2], good[:-1], b"\xff" * 64, b"not a protobuf at all", b"\x0a\x05abc"):
        with pytest.raises(MalformedBody) as info:
            decode_protobuf(body)
        assert "ExportTraceServiceRequest" in info.value.message


# ------------------------------------------------------------------------------------------------
# Decoder: invalid spans are rejected one by one
# ------------------------------------------------------------------------------------------------


def test_invalid_spans_are_rejected_with_reasons_and_the_rest_kept() -> None:
    doc = document(
        one_span(name="good"),
        one_span(traceId="abc"),
        one_span(spanId=None),
        one_span(spanId="0000000000000000"),
        one_span(traceId="zz" * 16),
        one_span(parentSpanId="1234"),
        one_span(traceId=12),
        one_span(name="also good", spanId="1111111111111111"),
    )
    result = decode_json_document(doc)
    assert [s.name for s in result.spans] == ["good", "also good"]
    assert result.rejected_count == 6
    prefix = "resourceSpans[0].scopeSpans[0].spans"
    assert result.rejected == [
        f"{prefix}[1]: traceId must be 32 hex digits (16 bytes), got 'abc'",
        f"{prefix}[2]: spanId is missing",
        f"{prefix}[3]: spanId is all zeros (an invalid id)",
        f"{prefix}[4]: traceId must be 32 hex digits (16 bytes), got '{'zz' * 16}'",
        f"{prefix}[5]: parentSpanId must be 16 hex digits (8 bytes), got '1234'",
        f"{prefix}[6]: traceId must be a hex string, not a number",
    ]


def test_invalid_protobuf_spans_are_rejected_with_reasons() -> None:
    request = ExportTraceServiceRequest()
    ss = request.resource_spans.add().scope_spans.add()
    ok = dict(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok")
    ss.spans.extend([
        trace_pb2.Span(**ok),
        trace_pb2.Span(**{**ok, "trace_id": b"\x01" * 15}),
        trace_pb2.Span(**{**ok, "span_id": b""}),
        trace_pb2.Span(**{**ok, "trace_id": bytes(16)}),
        trace_pb2.Span(**{**ok, "parent_span_id": b"\x03" * 9}),
        trace_pb2.Span(**{**ok, "parent_span_id": bytes(8), "name": "zero parent is a root"}),
    ])
    result = decode_protobuf(request.SerializeToString())
    assert [(s.name, s.parent_span_id) for s in result.spans] == [("ok", None), ("zero parent is a root", None)]
    assert [r.split(": ", 1)[1] for r in result.rejected] == [
        "traceId must be 16 bytes, got 15",
        "spanId is missing",
        "traceId is all zeros (an invalid id)",
        "parentSpanId must be 8 bytes, got 9",
    ]
    assert result.rejected[0].startswith("resourceSpans[0].scopeSpans[0].spans[1]: ")


# ------------------------------------------------------------------------------------------------
# Decoder: bounds
# ------------------------------------------------------------------------------------------------

SMALL = DecodeLimits(max_spans=3, max_attributes=4, max_events=2, max_depth=3)


def nested_array(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(levels):
        value = {"arrayValue": {"values": [value]}}
    return value


def test_json_limits() -> None:
    with pytest.raises(PayloadTooLarge, match="request of 4 spans exceeds the limit of 3"):
        decode_json_document(document(*[one_span() for _ in range(4)]), SMALL)
    doc = document(
        one_span(name="ok", attributes=[attr(str(n), {"intValue": n}) for n in range(4)]),
        one_span(attributes=[attr(str(n), {"intValue": n}) for n in range(5)]),
        one_span(events=[{"name": "e"}] * 3),
    )
    result = decode_json_document(doc, SMALL)
    assert [s.name for s in result.spans] == ["ok"]
    assert "5 attributes exceed the limit of 4" in result.rejected[0]
    assert "3 span events exceed the limit of 2" in result.rejected[1]
    ok = decode_json_document(document(one_span(attributes=[attr("a", nested_array(3))])), SMALL)
    assert ok.spans[0].attributes["a"] == [[["leaf"]]]
    deep = decode_json_document(document(one_span(attributes=[attr("a", nested_array(4))])), SMALL)
    assert deep.spans == [] and "nested deeper than 3 levels" in deep.rejected[0]
    wide = decode_json_document(document(one_span(attributes=[attr("a", {"arrayValue": {"values": [{}] * 5}})])), SMALL)
    assert wide.spans == [] and "5 items exceeds the limit of 4" in wide.rejected[0]
    with pytest.raises(ValidationFailed, match=r"resourceSpans\[0\].resource.attributes: 5 attributes"):
        decode_json_document(document(one_span(), resource={"attributes": [attr(str(n), {}) for n in range(5)]}), SMALL)


def test_protobuf_limits() -> None:
    base = decode_json_document(document(one_span())).spans[0]
    many = protobuf_request([base] * 4).SerializeToString()
    with pytest.raises(PayloadTooLarge):
        decode_protobuf(many, SMALL)
    wide = DecodedSpan(**{**_fields(base), "attributes": {str(n): n for n in range(5)}})
    deep = DecodedSpan(**{**_fields(base), "attributes": {"a": [[[["leaf"]]]]}})
    result = decode_protobuf(protobuf_request([base, wide, deep]).SerializeToString(), SMALL)
    assert result.spans == [base]
    assert "5 attributes exceed the limit of 4" in result.rejected[0]
    assert "nested deeper than 3 levels" in result.rejected[1]


def test_a_hostile_nesting_depth_costs_nothing() -> None:
    deep = decode_json_document(document(one_span(attributes=[attr("a", nested_array(900))])))
    assert deep.spans == [] and "nested deeper" in deep.rejected[0]
    # Protobuf: the parser's own recursion limit refuses it before we see it.
    value = b"\x0a\x04leaf"  # AnyValue{string_value}
    for _ in range(200):
        value = b"\x2a" + _len(b"\x0a" + _len(value))  # AnyValue{array_value{values: [value]}}
    kv = b"\x0a\x01a\x12" + _len(value)
    span = b"\x0a\x10" + b"\x01" * 16 + b"\x12\x08" + b"\x02" * 8 + b"\x4a" + _len(kv)
    request = b"\x0a" + _len(b"\x12" + _len(b"\x12" + _len(span)))
    with pytest.raises(MalformedBody):
        decode_protobuf(request)


def _len(data: bytes) -> bytes:
    n, out = len(data), bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out) + data
        out.append(n & 0x7F | 0x80)
        n >>= 7


def _fields(span: DecodedSpan) -> dict[str, Any]:
    return {name: getattr(span, name) for name in DecodedSpan.__slots__}


# ------------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------------


def post(api: Api, path: str, content: bytes, headers: dict[str, str]) -> Any:
    return api.request("POST", path, content=content, headers=headers)


def tracer_headers(key: str) -> dict[str, str]:
    headers, _ = tracer_request()
    headers = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "authorization")}
    headers["Authorization"] = f"Bearer {key}"
    return headers


def session_tree(api: Api, session_id: str = SESSION_ID) -> list[dict[str, Any]]:
    """Every event stored for the session (the session event first), by walking GET /v1/events."""
    r = api.get(f"/v1/sessions/{session_id}")
    assert r.status_code == 200, r.text
    out = []

    def walk(node: dict[str, Any]) -> None:
        out.append(node)
        for child in node.get("children", []):
            walk(child)

    walk(r.json()["session"] if "session" in r.json() else r.json())
    return out


def test_the_tracer_request_as_recorded_is_stored(client: TestClient, keys: dict[str, str], api: Api) -> None:
    _, body = tracer_request()
    r = client.post("/opentelemetry/v1/traces", content=orjson.dumps(body), headers=tracer_headers(keys["a"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {}
    names = {e["event_name"]: e for e in session_tree(api)}
    assert {"__main__.lookup", "broken_tool", "broken_tool_error", "manual-span", "call_llm", "pipeline"} <= set(names)
    pipeline = names["pipeline"]
    assert pipeline["parent_id"] == SESSION_ID and pipeline["event_type"] == "chain"
    for child in ("__main__.lookup", "broken_tool", "broken_tool_error", "manual-span", "call_llm"):
        assert names[child]["parent_id"] == pipeline["event_id"], child
        assert names[child]["session_id"] == SESSION_ID
    assert names["call_llm"]["event_type"] == "model"
    assert names["__main__.lookup"]["inputs"] == {"term": "what is otel?"}
    assert names["broken_tool"]["error"]
    event = api.get(f"/v1/events/{names['call_llm']['event_id']}")
    assert event.status_code == 200 and event.json()["event"]["source"] == "dev"


def test_re_exported_spans_are_not_duplicated(client: TestClient, keys: dict[str, str], api: Api) -> None:
    body = orjson.dumps(tracer_body())
    for _ in range(2):
        assert client.post("/opentelemetry/v1/traces", content=body, headers=tracer_headers(keys["a"])).status_code == 200
    assert len(session_tree(api)) == 7  # the session and six spans, once each


@pytest.mark.parametrize("path", PATHS)
def test_protobuf_export_replies_in_protobuf(api: Api, path: str) -> None:
    request = protobuf_request(tracer_spans())
    r = post(api, path, request.SerializeToString(), PB)
    assert r.status_code == 200, r.content
    assert r.headers["content-type"] == "application/x-protobuf"
    assert r.content == b""  # an empty ExportTraceServiceResponse: full success
    assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
    assert len(session_tree(api)) == 7


@pytest.mark.parametrize("path", PATHS)
def test_json_export_on_both_paths(api: Api, path: str) -> None:
    r = post(api, path, orjson.dumps(tracer_body()), {"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json() == {} and r.headers["content-type"] == "application/json"
    assert len(session_tree(api)) == 7


def test_empty_requests_succeed(api: Api) -> None:
    r = post(api, "/v1/traces", b"", PB)
    assert r.status_code == 200 and r.content == b""
    assert post(api, "/v1/traces", b"{}", JSON).json() == {}


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # RFC 9110 deflate: the zlib format
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send it
        ("gzip", lambda b: gzip.compress(b[:100]) + gzip.compress(b[100:])),  # two gzip members
        ("GZIP, identity", gzip.compress),
    ],
)
def test_compressed_bodies(api: Api, encoding: str, compress: Any) -> None:
    raw = protobuf_request(tracer_spans()).SerializeToString()
    r = post(api, "/v1/traces", compress(raw), {**PB, "Content-Encoding": encoding})
    assert r.status_code == 200, r.content
    r = post(api, "/opentelemetry/v1/traces", compress(orjson.dumps(tracer_body())), {**JSON, "Content-Encoding": encoding})
    assert r.status_code == 200, r.text
    assert len(session_tree(api)) == 7


@pytest.fixture
def small_client(data_dir: Path, store_url: str, keys: dict[str, str]) -> Iterator[TestClient]:
    settings = Settings(data_dir=data_dir, store=store_url, max_body_bytes=64 * 1024, max_batch_events=5)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_a_gzip_bomb_is_a_413_without_inflating_it(small_client: TestClient, keys: dict[str, str]) -> None:
    api = Api(small_client, keys["a"])
    bomb = gzip.compress(b"\x00" * (8 * 1024 * 1024))  # 8 MiB of zeros in ~8 KB
    assert len(bomb) < 64 * 1024
    r = post(api, "/v1/traces", bomb, {**JSON, "Content-Encoding": "gzip"})
    assert_error(r, 413, "inflates to more than the limit of 65536 bytes")
    r = post(api, "/v1/traces", zlib.compress(b"\x00" * (8 * 1024 * 1024)), {**PB, "Content-Encoding": "deflate"})
    assert r.status_code == 413 and r.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(r.content)
    assert "inflates to more than" in status.message
    # Just under the cap inflates fine (and is then refused only as a document).
    r = post(api, "/v1/traces", gzip.compress(b" " * (60 * 1024) + b"{}"), {**JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text


def test_the_default_cap_stops_a_real_size_bomb(api: Api) -> None:
    bomb = gzip.compress(b"\x00" * (21 * 1024 * 1024))
    assert_error(post(api, "/v1/traces", bomb, {**JSON, "Content-Encoding": "gzip"}), 413, "20971520 bytes")
    r = post(api, "/v1/traces", bomb, {**PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and status_pb2.Status.FromString(r.content).code == 8  # RESOURCE_EXHAUSTED


def test_plain_bodies_over_the_cap_and_too_many_spans(small_client: TestClient, keys: dict[str, str]) -> None:
    api = Api(small_client, keys["a"])
    assert_error(post(api, "/v1/traces", b" " * (65 * 1024), JSON), 413, "exceeds the limit")
    six = orjson.dumps(document(*[one_span(spanId=f"{n + 1:016x}") for n in range(6)]))
    assert_error(post(api, "/v1/traces", six, JSON), 413, "request of 6 spans exceeds the limit of 5")


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic", "gzip", "not valid gzip data"),
        (gzip.compress(b"{}" * 1000, mtime=0)[:-12], "gzip", "truncated gzip stream"),
        (b"plain text", "gzip", "not valid gzip data"),
        (zlib.compress(b"{}") + b"tail", "deflate", "data after the end of the deflate stream"),
        (b"x", "deflate", "truncated deflate stream"),
    ],
)
def test_bad_compressed_bodies_are_400(api: Api, body: bytes, encoding: str, message: str) -> None:
    assert_error(post(api, "/v1/traces", body, {**JSON, "Content-Encoding": encoding}), 400, message)


def test_unsupported_encoding_and_media_types_are_415(api: Api) -> None:
    body = orjson.dumps(tracer_body())
    assert_error(post(api, "/v1/traces", body, {**JSON, "Content-Encoding": "br"}), 415, "Content-Encoding 'br'")
    assert_error(post(api, "/v1/traces", body, {**JSON, "Content-Encoding": "gzip, gzip"}), 415)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/grpc", "application/xml"):
        assert_error(post(api, "/v1/traces", body, {"Content-Type": ctype}), 415,
                     "application/x-protobuf or application/json")
    r = api.client.post("/v1/traces", content=body, headers={"Authorization": f"Bearer {api.key}"})
    assert_error(r, 415, "not none")


@pytest.mark.parametrize("path", PATHS)
def test_undecodable_bodies_are_400_in_the_request_encoding(api: Api, path: str) -> None:
    body = assert_error(post(api, path, b'{"resourceSpans": [', JSON), 400, "not valid JSON")
    assert body["errorCode"] == "MALFORMED_JSON"
    doc = document(one_span(attributes=[attr("n", {"intValue": "12x"})]))
    assert_error(post(api, path, orjson.dumps(doc), JSON), 400,
                 "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue")
    good = protobuf_request(tracer_spans()).SerializeToString()
    for truncated in (good[:-3], good[: len(good) // 3], b"\xff\xff\xff\xff"):
        r = post(api, path, truncated, PB)
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/x-protobuf"
        status = status_pb2.Status.FromString(r.content)  # google.rpc.Status, as OTLP/HTTP specifies
        assert status.code == 3 and "not a valid protobuf ExportTraceServiceRequest" in status.message
    assert session_tree_missing(api)


def session_tree_missing(api: Api) -> bool:
    return api.get(f"/v1/sessions/{SESSION_ID}").status_code == 404


def test_partial_success_in_json(api: Api) -> None:
    doc = tracer_body()
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceId"] = "abc"
    del spans[2]["spanId"]
    r = post(api, "/opentelemetry/v1/traces", orjson.dumps(doc), JSON)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert partial["errorMessage"].startswith("2 spans rejected: resourceSpans[0].scopeSpans[0].spans[0]: traceId")
    assert "spans[2]: spanId is missing" in partial["errorMessage"]
    stored = {e["event_name"] for e in session_tree(api)}
    assert {"broken_tool", "manual-span", "call_llm", "pipeline"} <= stored
    assert not {"__main__.lookup", "broken_tool_error"} & stored


def test_partial_success_in_protobuf(api: Api) -> None:
    spans = tracer_spans()
    request = protobuf_request(spans)
    request.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01\x02"
    r = post(api, "/v1/traces", request.SerializeToString(), PB)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    reply = ExportTraceServiceResponse.FromString(r.content)
    assert reply.partial_success.rejected_spans == 1
    assert "spans[1]: spanId must be 8 bytes, got 2" in reply.partial_success.error_message
    assert len(session_tree(api)) == 6


def test_every_span_rejected_is_still_a_200_partial_success(api: Api) -> None:
    r = post(api, "/v1/traces", orjson.dumps(document(one_span(traceId=""), one_span(spanId="x"))), JSON)
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == "2"


@pytest.mark.parametrize("path", PATHS)
def test_auth(client: TestClient, keys: dict[str, str], path: str) -> None:
    body = orjson.dumps(tracer_body())
    assert_error(client.post(path, content=body, headers=JSON), 401, "missing Authorization")
    assert_error(client.post(path, content=body, headers={**JSON, "Authorization": "Bearer nope"}), 401, "invalid")
    assert_error(client.post(path, content=body, headers={**JSON, "Authorization": "Basic abc"}), 401, "malformed")
    r = client.post(path, content=b"\x00", headers=PB)  # unauthenticated protobuf: a protobuf Status
    assert r.status_code == 401 and r.headers["content-type"] == "application/x-protobuf"
    assert status_pb2.Status.FromString(r.content).code == 16  # UNAUTHENTICATED
    # Ingestion keys are made for this: they write, and only the project key reads back.
    ingest = Api(client, keys["ingest_a"])
    r = post(ingest, path, body, JSON)
    assert r.status_code == 200, r.text
    assert len(session_tree(Api(client, keys["a"]))) == 7
    assert Api(client, keys["b"]).get(f"/v1/sessions/{SESSION_ID}").status_code == 404


def test_overload_is_503_with_retry_after(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    settings = Settings(data_dir=data_dir, store=store_url)
    app = create_app(settings, store=overloaded_store(settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, keys["a"])
        r = post(api, "/opentelemetry/v1/traces", orjson.dumps(tracer_body()), JSON)
        assert_error(r, 503, "writer queue is full")
        assert r.headers["retry-after"] == "2"
        r = post(api, "/v1/traces", protobuf_request(tracer_spans()).SerializeToString(), PB)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert status_pb2.Status.FromString(r.content).code == 14  # UNAVAILABLE


def test_x_source_is_the_default_source(api: Api) -> None:
    doc = tracer_body()
    for span in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["attributes"] = [a for a in span["attributes"]
                              if a["key"] not in ("honeyhive.source", "traceloop.association.properties.source")]
    r = post(api, "/opentelemetry/v1/traces", orjson.dumps(doc), {**JSON, "X-Source": "staging"})
    assert r.status_code == 200, r.text
    sources = {e["source"] for e in session_tree(api) if e["event_type"] != "session"}
    assert sources == {"staging"}


def test_a_stock_exporter_s_service_name_is_the_source(api: Api) -> None:
    """Issue 16, point 10: a plain OTel SDK names its service; nothing else names a source."""
    doc = document(one_span(name="svc-op"), resource={"attributes": [attr("service.name", {"stringValue": "billing"})]})
    r = post(api, "/v1/traces", orjson.dumps(doc), JSON)
    assert r.status_code == 200, r.text
    found = api.post("/v1/events/export", json={"filters": [
        {"field": "event_name", "operator": "is", "value": "svc-op"}]}).json()["events"]
    # The span's event, and the session made up from its trace (named after its root span).
    assert sorted((e["event_type"], e["source"]) for e in found) == [("session", "billing"), ("tool", "billing")]
    span_event = next(e for e in found if e["event_type"] == "tool")
    assert span_event["metadata"]["resource"]["service.name"] == "billing"


def test_spans_naming_no_source_take_their_session_s(api: Api) -> None:
    """Issue 16, point 10: a span with no source attribute, X-Source or service.name joins a
    session started with a source and takes that source; one naming a service keeps its own."""
    sid = api.post("/v1/sessions", json={"session_name": "s", "source": "checkout-app"}).json()["session_id"]
    in_session = [attr("honeyhive.session_id", {"stringValue": sid})]
    bare = one_span(name="bare-op", attributes=in_session)
    named = one_span(name="named-op", spanId="b7ad6b7169203332", attributes=in_session)
    for doc in (document(bare), document(named, resource={"attributes": [attr("service.name", {"stringValue": "pay"})]})):
        r = post(api, "/v1/traces", orjson.dumps(doc), JSON)
        assert r.status_code == 200, r.text
    sources = {e["event_name"]: e["source"] for e in session_tree(api, sid) if e["event_type"] != "session"}
    assert sources == {"bare-op": "checkout-app", "named-op": "pay"}


def test_otlp_routes_are_documented(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in PATHS:
        operation = doc["paths"][path]["post"]
        assert set(operation["requestBody"]["content"]) == {"application/x-protobuf", "application/json"}
        assert {"400", "401", "413", "415", "503"} <= set(operation["responses"])
        assert operation["security"] == [{"BearerAuth": []}]


def test_spans_are_not_mutated_by_decoding() -> None:
    body = tracer_body()
    before = copy.deepcopy(body)
    decode_json_document(body)
    assert body == before


def test_a_span_reusing_a_session_id_is_rejected_alone(api: Api) -> None:
    # Found by the hostile-input suite: one span whose event id is an existing session's id made
    # the store refuse the whole request (400), dropping the batch's valid spans with it.
    sid = api.post("/v1/sessions", json={"session_name": "owner"}).json()["session_id"]
    good_session = "6f0b5e2a-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
    clashing = one_span(spanId="00000000000000a1", attributes=[
        attr("honeyhive_event_id", {"stringValue": sid}), attr("honeyhive.session_id", {"stringValue": good_session})])
    fine = one_span(spanId="00000000000000a2", name="kept",
                    attributes=[attr("honeyhive.session_id", {"stringValue": good_session})])
    r = post(api, "/v1/traces", orjson.dumps(document(clashing, fine)), JSON)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert f"id {sid} is used both as a session id" in partial["errorMessage"]
    tree = api.get(f"/v1/sessions/{good_session}").json()
    assert [c["event_name"] for c in tree["children"]] == ["kept"]
    owner = api.get(f"/v1/sessions/{sid}").json()
    assert owner["event_type"] == "session" and owner["event_name"] == "owner" and owner["children"] == []
