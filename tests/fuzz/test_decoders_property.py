"""Property tests of the OTLP ingest path: the JSON and protobuf decoders
(``ingest/otlp_decode.py``), the span-to-event mapping and its attribute un-flattener
(``ingest/span_mapping/``).

The property everywhere: for *any* input, the only exception that escapes is an ``ApiError``
(which the routes answer as a 4xx); every span that decodes maps to events the store can serialize
(``rows.event_params``, exactly what the writer binds), and a span with valid ids and a usable start
time is never dropped by the mapping. Inputs: arbitrary bytes, arbitrary JSON structures, OTLP-shaped
documents whose every field may be junk, and mutations of the recorded HoneyHive tracer request
(``tests/otlp_data.py``) in both wire forms.

Bounded (``max_examples``) and derandomized so that CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import (
    ATTRIBUTE_KEYS,
    HEX_IDS_8,
    HEX_IDS_16,
    OTLP_KEYS,
    TEXT,
    json_values,
    otlp_json_documents,
)
from tests.otlp_data import protobuf_request, tracer_request, tracer_spans
from tracehive.ingest.otlp_ingest import Prepared, prepare
from tracehive.ingest.otlp_decode import DecodeLimits, decode_json_document
from tracehive.ingest.span_mapping import spans_to_events
from tracehive.ingest.span_mapping.rebuild import _rebuild
from tracehive.model.errors import ApiError
from tracehive.model.span import DecodedSpan, SpanEvent
from tracehive.storage.sqlite.rows import event_params

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = DecodeLimits()


def storable(prepared: Prepared) -> None:
    """What the writer does with each event: bind it as a row (orjson for the JSON columns)."""
    for event in prepared.events:
        event_params(event, "project", "org", "workspace", 0)
        assert isinstance(event.start_time, (int, float)) and math.isfinite(event.start_time)
        assert isinstance(event.end_time, (int, float)) and math.isfinite(event.end_time)
        assert isinstance(event.duration, (int, float)) and math.isfinite(event.duration)


def ingest(body: bytes, *, protobuf: bool) -> Prepared | ApiError:
    """The route's decode-and-map step (``ingest.otlp_ingest.prepare``); an ApiError is an allowed answer."""
    try:
        prepared = prepare(body, protobuf=protobuf, limits=LIMITS, default_source=None)
    except ApiError as exc:
        assert 400 <= exc.status_code < 500, exc
        return exc
    storable(prepared)
    return prepared


def ingest_document(document: Any) -> None:
    """An already parsed document (values orjson would never produce: NaN, 2**70, lone surrogates)."""
    try:
        decoded = decode_json_document(document, LIMITS)
    except ApiError as exc:
        assert 400 <= exc.status_code < 500, exc
        return
    mapped = spans_to_events(decoded.spans)
    storable(Prepared(mapped.events, len(mapped.rejected), ""))
    assert not [r for r in mapped.rejected if "could not be mapped" in r], mapped.rejected


# JSON --------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
def test_json_decoder_arbitrary_bytes(body: bytes) -> None:
    ingest(body, protobuf=False)


@FUZZ
@given(json_values(OTLP_KEYS))
def test_json_decoder_arbitrary_json(document: Any) -> None:
    ingest(json.dumps(document).encode(), protobuf=False)  # NaN/Infinity literals included
    ingest_document(document)


@FUZZ
@given(otlp_json_documents(junk_one_in=12))
def test_json_decoder_otlp_shaped_documents_with_junk(document: Any) -> None:
    ingest(json.dumps(document).encode(), protobuf=False)
    ingest_document(document)


@settings(FUZZ, max_examples=100)
@given(otlp_json_documents(junk_one_in=0))
def test_json_decoder_well_formed_documents_keep_every_valid_span(document: Any) -> None:
    """Well-formed documents (any values of the right types) are never refused as a whole, and
    each span is either stored or rejected by the decoder with a reason."""
    decoded = decode_json_document(document, LIMITS)
    spans = [s for rs in document["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(decoded.spans) + decoded.rejected_count == len(spans)
    mapped = spans_to_events(decoded.spans)
    storable(Prepared(mapped.events, 0, ""))
    # The decoder already refused bad ids; the mapping only refuses start times of 0 or past 2**63 ns.
    assert all("unusable start time" in reason for reason in mapped.rejected), mapped.rejected
    unusable = [s for s in decoded.spans if not 0 < s.start_time_unix_nano <= 2**63 - 1]
    assert len(mapped.rejected) == len(unusable)
    ingest(orjson.dumps(document) if _utf8(document) else json.dumps(document).encode(), protobuf=False)


def _utf8(document: Any) -> bool:
    try:
        orjson.dumps(document)
        return True
    except TypeError:
        return False


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


TRACER_BODY = tracer_request()[1]
TRACER_PATHS = _paths(TRACER_BODY)[1:]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(TRACER_PATHS), json_values(OTLP_KEYS, max_leaves=6)), min_size=1, max_size=4))
def test_json_decoder_mutated_tracer_request(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    """The recorded request with a few subtrees replaced by anything."""
    document = copy.deepcopy(TRACER_BODY)
    for path, replacement in mutations:
        node = document
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = replacement
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this place
    ingest(json.dumps(document).encode(), protobuf=False)
    ingest_document(document)


# Protobuf ----------------------------------------------------------------------------------------

TRACER_PROTOBUF = protobuf_request(tracer_spans()).SerializeToString()


@FUZZ
@given(st.binary(max_size=400))
def test_protobuf_decoder_arbitrary_bytes(body: bytes) -> None:
    ingest(body, protobuf=True)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0, len(TRACER_PROTOBUF) - 1),
              st.binary(min_size=1, max_size=8)),
    min_size=1, max_size=6,
)


@FUZZ
@given(MUTATIONS)
def test_protobuf_decoder_mutated_tracer_request(mutations: list[tuple[str, int, bytes]]) -> None:
    """The recorded request re-encoded as protobuf, then bytes flipped, inserted, removed, cut."""
    body = bytearray(TRACER_PROTOBUF)
    for op, position, data in mutations:
        if not body:
            break
        position %= len(body)
        if op == "flip":
            body[position] ^= data[0] or 0xFF
        elif op == "insert":
            body[position:position] = data
        elif op == "delete":
            del body[position : position + len(data)]
        else:
            del body[position:]
    ingest(bytes(body), protobuf=True)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


PB_TEXT = TEXT.filter(_encodable)
PB_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=True) | PB_TEXT
              | st.binary(max_size=20))
PB_VALUES = st.recursive(PB_SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(ATTRIBUTE_KEYS.filter(_encodable), inner, max_size=4), max_leaves=20)
PB_ATTRIBUTES = st.dictionaries(ATTRIBUTE_KEYS.filter(_encodable), PB_VALUES, max_size=10)
ID_HEX = st.binary(max_size=20).map(bytes.hex)  # any length, zeros included


@st.composite
def protobuf_spans(draw: st.DrawFn) -> DecodedSpan:
    return DecodedSpan(
        trace_id=draw(HEX_IDS_16 | ID_HEX),
        span_id=draw(HEX_IDS_8 | ID_HEX),
        parent_span_id=draw(st.none() | HEX_IDS_8 | ID_HEX),
        name=draw(PB_TEXT),
        kind=draw(st.sampled_from(["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"])),
        start_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
        end_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
        attributes=draw(PB_ATTRIBUTES),
        events=tuple(draw(st.lists(st.builds(SpanEvent, PB_TEXT, st.integers(0, 2**64 - 1), PB_ATTRIBUTES),
                                   max_size=3))),
        status_code=draw(st.sampled_from(["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"])),
        status_message=draw(PB_TEXT),
        resource_attributes=draw(PB_ATTRIBUTES),
        scope_name=draw(PB_TEXT),
        scope_version=draw(PB_TEXT),
    )


@settings(FUZZ, max_examples=60)  # each example builds and encodes protobuf messages: the slow one
@given(st.lists(protobuf_spans(), min_size=1, max_size=4))
def test_protobuf_decoder_generated_requests(spans: list[DecodedSpan]) -> None:
    """Well-formed protobuf with anything in every field (bad id lengths, zero ids, huge times)."""
    result = ingest(protobuf_request(spans).SerializeToString(), protobuf=True)
    assert isinstance(result, Prepared)  # valid protobuf is never refused as a whole
    usable = [s for s in spans if len(s.trace_id) == 32 and s.trace_id.strip("0") and len(s.span_id) == 16
              and s.span_id.strip("0") and 0 < s.start_time_unix_nano <= 2**63 - 1
              # the decoder refuses a parent id of the wrong length (an all-zero one means a root)
              and (not s.parent_span_id or not s.parent_span_id.strip("0") or len(s.parent_span_id) == 16)]
    assert len(result.events) >= len(usable)


# The un-flattener --------------------------------------------------------------------------------

SEGMENT = st.sampled_from(["0", "1", "2", "7", "10", "01", "a", "b", "_value", "", "999999999", "1e3", "-1"]) | TEXT
DOTTED_KEY = st.lists(SEGMENT, min_size=1, max_size=40).map(".".join)


@FUZZ
# Keys reach the un-flattener already cleaned (lone surrogates replaced by ``_clean_attrs``).
@given(st.lists(DOTTED_KEY.filter(_encodable), max_size=30, unique=True), st.booleans())
def test_unflattener_keeps_every_value_and_never_raises(keys: list[str], allow_list: bool) -> None:
    """Every flattened value comes back exactly once, whatever the keys (clashes, sparse or
    non-canonical indexes, empty segments, paths deeper than the cap)."""
    entries = [(key.split("."), f"value-{i}") for i, key in enumerate(keys)]
    rebuilt = _rebuild(entries, allow_list=allow_list)
    orjson.dumps(rebuilt)
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif node is not None:
            found.append(node)

    walk(rebuilt)
    assert sorted(found) == sorted(value for _, value in entries)


@FUZZ
@given(st.dictionaries(DOTTED_KEY.map(lambda k: "honeyhive_" + k) | ATTRIBUTE_KEYS, json_values(max_leaves=8),
                       max_size=12))
def test_mapping_of_any_attributes_keeps_the_span(attributes: dict[str, Any]) -> None:
    """A span with valid ids and start time maps to one event whatever its attributes hold
    (values a decoder never produces included: NaN, 2**70, lone surrogates, odd key types)."""
    span = DecodedSpan(trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", parent_span_id=None,
                       name="op", kind="SPAN_KIND_INTERNAL", start_time_unix_nano=1_700_000_000_000_000_000,
                       end_time_unix_nano=1_700_000_000_500_000_000, attributes=attributes,
                       events=(SpanEvent("exception", 1_700_000_000_100_000_000, attributes),),
                       resource_attributes=attributes)
    mapped = spans_to_events([span])
    assert mapped.rejected == [] and len(mapped.events) == 1
    storable(Prepared(mapped.events, 0, ""))
