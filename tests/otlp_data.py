"""OTLP test data shared by the HTTP and gRPC tests: the recorded tracer request (golden input,
from ``tests/fixtures``), and builders for protobuf requests from decoded spans."""

from __future__ import annotations

import json
from functools import lru_cache
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from tracehive.ingest.otlp_decode import decode_json_document
from tracehive.model.errors import Overloaded
from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tests.helpers import shared_fixture
from tracehive.model.span import DecodedSpan
from tracehive.settings import Settings
from tracehive.storage.base import Store
from tracehive.storage.postgres import PostgresStore
from tracehive.storage.sqlite import SQLiteStore

FIXTURE_NAME = "honeyhive-1.7.0-traffic.jsonl"
SESSION_ID = "b73069bf-dd9e-4cca-ad9a-257b89c8c7d8"
TRACE_ID = "5c3828228fe511ba772ad9cf0cc3d162"
ROOT_SPAN = "4f80cd5d23231b6d"


@lru_cache(maxsize=1)
def _otlp_record() -> str:
    for line in shared_fixture(FIXTURE_NAME).read_text().splitlines():
        record = json.loads(line)
        if record["path"] == "/opentelemetry/v1/traces":
            return line
    raise AssertionError("the fixture has no OTLP request")


def tracer_request() -> tuple[dict[str, str], dict[str, Any]]:
    """The recorded OTLP/JSON request of honeyhive 1.7.0: (headers, body), fresh copies."""
    record = json.loads(_otlp_record())
    return record["headers"], record["body"]


def tracer_spans() -> list[DecodedSpan]:
    """The recorded request's six spans, decoded."""
    return decode_json_document(tracer_request()[1]).spans


class _AlwaysFull:
    """Mixed into a real store: its event writes are always refused as overloaded."""

    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        raise Overloaded("the writer queue is full; retry shortly", retry_after=2)


class OverloadedStore(_AlwaysFull, SQLiteStore):
    """A real SQLite store whose writer is always full."""


class OverloadedPostgresStore(_AlwaysFull, PostgresStore):
    """A real PostgreSQL store whose writes are always refused as overloaded."""


def overloaded_store(settings: Settings) -> Store:
    """The settings' real store (SQLite in the data dir, or PostgreSQL), always full."""
    if settings.store:
        return OverloadedPostgresStore(settings.store)
    return OverloadedStore(settings.database_path)


def any_value(value: Any) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v)) for k, v in value.items())
        return out
    raise TypeError(type(value))


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span_message(span: DecodedSpan) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=bytes.fromhex(span.trace_id),
        span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id) if span.parent_span_id else b"",
        name=span.name,
        kind=trace_pb2.Span.SpanKind.Value(span.kind),
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        attributes=key_values(span.attributes),
        events=[
            trace_pb2.Span.Event(time_unix_nano=e.time_unix_nano, name=e.name, attributes=key_values(e.attributes))
            for e in span.events
        ],
        status=trace_pb2.Status(code=trace_pb2.Status.StatusCode.Value(span.status_code), message=span.status_message),
    )


def protobuf_request(spans: list[DecodedSpan]) -> ExportTraceServiceRequest:
    """One resourceSpans per distinct resource, one scopeSpans per scope, spans in order."""
    request = ExportTraceServiceRequest()
    resources: dict[str, Any] = {}
    scopes: dict[tuple[str, str, str], Any] = {}
    for span in spans:
        rkey = json.dumps(span.resource_attributes, sort_keys=True, default=repr)
        rs = resources.get(rkey)
        if rs is None:
            rs = resources[rkey] = request.resource_spans.add()
            rs.resource.attributes.extend(key_values(span.resource_attributes))
        skey = (rkey, span.scope_name, span.scope_version)
        ss = scopes.get(skey)
        if ss is None:
            ss = scopes[skey] = rs.scope_spans.add()
            ss.scope.name = span.scope_name
            ss.scope.version = span.scope_version
        ss.spans.append(span_message(span))
    return request
