"""The OTLP protobuf validator (``ingest/otlp_validate.py``): for every body and limits it must say
exactly what ``decode_protobuf`` says: the same exception (class, message, details), or the same
rejected count, the same reasons in the same order, and as many kept spans.

Requests are written at the wire level here (not only through the generated classes) so that the
corners the validator's shortcut must survive are reached: an attribute value given several times
(the parser merges the occurrences; the last oneof member wins), arrayValue/kvlistValue with
unknown fields inside, fields of a known number with the wrong wire type.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.otlp_data import protobuf_request, tracer_spans
from tracehive.ingest.otlp_decode import MAX_REASONS_KEPT, DecodeLimits, decode_protobuf
from tracehive.ingest.otlp_validate import (
    _EVENT_ENTRY,
    _SIGNATURES,
    _SPAN_ENTRY,
    _UNKNOWN,
    Validated,
    _has_nested,
    _marked_indexes,
    _nested_value_problem,
    _Skeleton,
    _where_nested,
    validate_protobuf,
)
from tracehive.model.errors import MalformedBody, PayloadTooLarge, ValidationFailed

DIFF = settings(max_examples=500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TRACE, SPAN, PARENT = b"\x01" * 16, b"\x02" * 8, b"\x03" * 8
PREFIX = "resourceSpans[0].scopeSpans[0].spans"


def outcome(fn: Any, data: bytes, limits: DecodeLimits | None) -> tuple[Any, ...]:
    try:
        result = fn(data, limits)
    except Exception as exc:  # noqa: BLE001 - any exception at all must be the same one
        return ("raised", type(exc), str(exc), getattr(exc, "details", None))
    if isinstance(result, Validated):
        return ("ok", result.kept, result.rejected, result.rejected_count)
    return ("ok", len(result.spans), result.rejected, result.rejected_count)


def assert_same(data: bytes, limits: DecodeLimits | None = None) -> tuple[Any, ...]:
    expected = outcome(decode_protobuf, data, limits)
    assert outcome(validate_protobuf, data, limits) == expected
    return expected


# ------------------------------------------------------------------------------------------------
# Wire-level builders
# ------------------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def array(*items: bytes, junk: bytes = b"") -> bytes:
    """An AnyValue holding an arrayValue of the given AnyValue encodings (plus unknown fields)."""
    return field(5, b"".join(field(1, item) for item in items) + junk)


def kvlist(*entries: tuple[str, bytes], junk: bytes = b"") -> bytes:
    return field(6, b"".join(field(1, field(1, k.encode()) + field(2, v)) for k, v in entries) + junk)


def text(s: str) -> bytes:
    return AnyValue(string_value=s).SerializeToString()


def nested(levels: int) -> bytes:
    value = text("leaf")
    for _ in range(levels):
        value = array(value)
    return value


def kv(key: str, *value_pieces: bytes) -> bytes:
    """A KeyValue; several pieces are several occurrences of its value field (merged on parse)."""
    return field(1, key.encode()) + b"".join(field(2, piece) for piece in value_pieces)


def span(trace_id: bytes = TRACE, span_id: bytes = SPAN, parent: bytes = b"", attributes: tuple[bytes, ...] = (),
         events: tuple[tuple[bytes, ...], ...] = (), name: str = "op") -> bytes:
    head = trace_pb2.Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
                          start_time_unix_nano=1, end_time_unix_nano=2).SerializeToString()
    return (head + b"".join(field(9, a) for a in attributes)
            + b"".join(field(11, field(2, b"ev") + b"".join(field(3, a) for a in ev)) for ev in events))


def request(*resource_spans: tuple[tuple[bytes, ...], tuple[tuple[bytes, ...], ...]]) -> bytes:
    """resource_spans: (resource attributes, scope spans (each a tuple of span encodings))."""
    return b"".join(
        field(1, field(1, b"".join(field(1, a) for a in resource)) + b"".join(
            field(2, field(1, field(1, b"scope")) + b"".join(field(2, s) for s in spans)) for spans in scopes))
        for resource, scopes in resource_spans
    )


def one(*spans: bytes, resource: tuple[bytes, ...] = ()) -> bytes:
    return request((resource, (spans,)))


# ------------------------------------------------------------------------------------------------
# Named cases: each reason the decoder gives, and the whole-body refusals
# ------------------------------------------------------------------------------------------------

SMALL = DecodeLimits(max_spans=5, max_attributes=2, max_events=1, max_depth=2)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (span(trace_id=b""), "traceId is missing"),
        (span(trace_id=b"\x01" * 15), "traceId must be 16 bytes, got 15"),
        (span(trace_id=bytes(16)), "traceId is all zeros (an invalid id)"),
        (span(span_id=b""), "spanId is missing"),
        (span(span_id=b"\x02" * 9), "spanId must be 8 bytes, got 9"),
        (span(span_id=bytes(8)), "spanId is all zeros (an invalid id)"),
        (span(parent=b"\x03" * 7), "parentSpanId must be 8 bytes, got 7"),
        (span(attributes=(kv("a", text("x")),) * 3), "3 attributes exceed the limit of 2"),
        (span(events=((),) * 2), "2 span events exceed the limit of 1"),
        (span(events=((kv("a", text("x")),) * 3,)), "3 attributes exceed the limit of 2"),
        (span(attributes=(kv("a", nested(3)),)), "an attribute value is nested deeper than 2 levels"),
        (span(events=((kv("a", nested(3)),),)), "an attribute value is nested deeper than 2 levels"),
        (span(attributes=(kv("a", array(text("1"), text("2"), text("3"))),)),
         "an arrayValue of 3 items exceeds the limit of 2"),
        (span(attributes=(kv("a", kvlist(("1", text("1")), ("2", b""), ("3", b""))),)),
         "a kvlistValue of 3 entries exceeds the limit of 2"),
        (span(attributes=(kv("a", array(array(text("1"), text("2"), text("3")))),)),
         "an arrayValue of 3 items exceeds the limit of 2"),
    ],
)
def test_each_rejection_reason(bad: bytes, reason: str) -> None:
    body = one(span(name="good"), bad, span(span_id=b"\x09" * 8))
    assert assert_same(body, SMALL) == ("ok", 2, [f"{PREFIX}[1]: {reason}"], 1)


def test_roots_and_nested_values_within_the_limits_are_kept() -> None:
    spans = (
        span(parent=bytes(8)), span(parent=PARENT), span(parent=b""),
        span(attributes=(kv("a", nested(2)), kv("c", kvlist(("k", nested(1)))))),
        span(events=((kv("e", nested(2)), kv("f", b"")),), attributes=(kv("g"),)),
    )
    assert assert_same(one(*spans, resource=(kv("b", array()),)), SMALL) == ("ok", 5, [], 0)


def test_the_first_failure_in_the_decoders_order_is_the_reason() -> None:
    too_deep, too_long = kv("deep", nested(3)), kv("long", array(text("1"), text("2"), text("3")))
    cases = [
        # ids before counts, counts before values
        (span(trace_id=b"\x01", attributes=(too_deep,) * 3), "traceId must be 16 bytes, got 1"),
        (span(attributes=(too_deep,) * 3, events=((),) * 2), "3 attributes exceed the limit of 2"),
        (span(attributes=(too_deep,), events=((),) * 2), "2 span events exceed the limit of 1"),
        # span events' attributes are decoded before the span's own
        (span(attributes=(too_long,), events=((too_deep,),)), "an attribute value is nested deeper than 2 levels"),
        (span(attributes=(too_deep,), events=((too_long,),)), "an arrayValue of 3 items exceeds the limit of 2"),
        # within one list, in order; depth is checked before length at each level
        (span(attributes=(too_long, too_deep)), "an arrayValue of 3 items exceeds the limit of 2"),
        (span(attributes=(kv("x", array(nested(2), text("1"), text("2"))),)),
         "an arrayValue of 3 items exceeds the limit of 2"),
        (span(attributes=(kv("x", array(nested(2), text("1"))),)), "an attribute value is nested deeper than 2 levels"),
    ]
    for bad, reason in cases:
        assert assert_same(one(bad), SMALL) == ("ok", 0, [f"{PREFIX}[0]: {reason}"], 1), reason


def test_the_last_of_several_value_occurrences_decides() -> None:
    """The parser merges repeated occurrences of a KeyValue's value; in the oneof the last member
    wins. An arrayValue overridden by a string is no nested value; the reverse is."""
    overridden = kv("a", nested(3), text("now a string"))
    assert assert_same(one(span(attributes=(overridden,))), SMALL) == ("ok", 1, [], 0)
    overriding = kv("a", text("first"), nested(3))
    assert assert_same(one(span(attributes=(overriding,))), SMALL)[2] == [
        f"{PREFIX}[0]: an attribute value is nested deeper than 2 levels"]
    in_one_value = kv("a", text("first") + array(text("1"), text("2"), text("3")))
    assert assert_same(one(span(attributes=(in_one_value,))), SMALL)[3] == 1
    merged_arrays = kv("a", array(text("1"), text("2")), array(text("3")))  # one arrayValue of 3
    assert assert_same(one(span(attributes=(merged_arrays,))), SMALL)[3] == 1


def test_unknown_fields_and_wrong_wire_types_change_nothing() -> None:
    junk = (b"\x0d\x01\x02\x03\x04", b"\x7a\x00", b"\x78\x01", b"\x0b\x0c", field(1, b""))
    for extra in junk:
        for value in (array(text("1"), text("2"), text("3"), junk=extra), array(junk=extra),
                      kvlist(("k", text("v")), junk=extra)):
            for limits in (SMALL, DecodeLimits(max_depth=0), DecodeLimits()):
                assert_same(one(span(attributes=(kv("a", value),))), limits)
    # field 5 (arrayValue) and 6 (kvlistValue) as varints: unknown fields, not nested values
    assert assert_same(one(span(attributes=(kv("a", b"\x28\x01"), kv("b", b"\x30\x01")))),
                       DecodeLimits(max_depth=0)) == ("ok", 1, [], 0)


def test_resource_attributes_are_fatal() -> None:
    for resource, message in [
        ((kv("a", text("x")),) * 3, "resourceSpans[1].resource.attributes: 3 attributes exceed the limit of 2"),
        ((kv("a", nested(3)),), "resourceSpans[1].resource.attributes: an attribute value is nested deeper than 2 levels"),
        ((kv("a", kvlist(("1", b""), ("2", b""), ("3", b""))),),
         "resourceSpans[1].resource.attributes: a kvlistValue of 3 entries exceeds the limit of 2"),
    ]:
        body = request(((), ((span(trace_id=b""),),)), (resource, ((span(),),)))
        expected = assert_same(body, SMALL)
        assert expected[:3] == ("raised", ValidationFailed, message)
    fine = request(((kv("a", nested(2)),), ((span(),),)))
    assert assert_same(fine, SMALL) == ("ok", 1, [], 0)


def test_too_many_spans_and_undecodable_bodies() -> None:
    body = request(((), ((span(),) * 3, (span(),) * 3)))
    assert assert_same(body, SMALL)[:2] == ("raised", PayloadTooLarge)
    good = one(span(), span())
    for bad in (good[:-1], good[: len(good) // 2], b"\xff" * 64, b"\x0a\x05abc", one(span() + field(5, b"\xc3\x28"))):
        expected = assert_same(bad)
        assert expected[:2] == ("raised", MalformedBody), bad
    assert assert_same(b"") == ("ok", 0, [], 0)


def test_reasons_are_capped_as_the_decoder_caps_them() -> None:
    n = MAX_REASONS_KEPT + 5
    body = one(*([span(trace_id=b"")] * n + [span()]))
    kept, reasons, count = assert_same(body, DecodeLimits(max_spans=n + 1))[1:]
    assert (kept, len(reasons), count) == (1, MAX_REASONS_KEPT, n)


def test_the_recorded_tracer_request() -> None:
    """The recorded honeyhive tracer request (OTLP/JSON in tests/fixtures; there is no protobuf
    recording), re-encoded as protobuf as the decoder's own tests do."""
    body = protobuf_request(tracer_spans()).SerializeToString()
    assert assert_same(body) == ("ok", 6, [], 0)
    for limits in (SMALL, DecodeLimits(max_attributes=10, max_events=0), DecodeLimits(max_depth=0)):
        assert_same(body, limits)


# ------------------------------------------------------------------------------------------------
# The shortcut for nested values
# ------------------------------------------------------------------------------------------------


def test_nested_values_are_located_where_they_are() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def where(body: bytes) -> Any:
        parsed = ExportTraceServiceRequest()
        parsed.ParseFromString(body)
        return _where_nested(body, parsed)

    flat = request(((kv("r", text("x")),), ((span(attributes=(kv("a", text("1")), kv("b"))),), (span(),))))
    assert where(flat) is None
    body = request(
        ((kv("r", text("x")),), ((span(), span(events=((kv("e", array()),),))), (span(attributes=(kv("a", kvlist()),)),))),
        ((kv("r", array()),), ((span(),),)),
    )
    found = where(body)
    assert found.resources == [False, True]
    assert [[[_has_nested(s) for s in skeletons] for skeletons in rs] for rs in found.spans] == [
        [[False, True], [True]], [[False]]]


def test_nested_values_are_marked_one_by_one() -> None:
    """Within a span the skeleton's encoding gives one letter per attribute; an arrayValue
    overridden on the wire by a string is still marked (harmless: the decoder's check of it passes)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    attributes = (kv("s", text("x")), kv("none"), kv("a", array()), kv("k", kvlist()), kv("i", b"\x18\x07"),
                  kv("o", array(), text("y")), kv("z", text("q"), kvlist()))
    body = one(span(attributes=attributes, events=((kv("e", array()),),)))
    skeleton = _Skeleton.FromString(body)
    skeleton.DiscardUnknownFields()
    skeleton_span = skeleton.resource_spans[0].scope_spans[0].spans[0]
    skeleton_event = skeleton_span.events[0]
    assert _marked_indexes(skeleton_event.SerializeToString(), _EVENT_ENTRY, 1) == [0]
    skeleton_span.ClearField("events")
    encoded = skeleton_span.SerializeToString()
    assert _marked_indexes(encoded, _SPAN_ENTRY, 7) == [2, 3, 5, 6]
    assert _marked_indexes(encoded, _SPAN_ENTRY, 6) is None  # not one letter per attribute
    assert _marked_indexes(encoded + b"\x5a\x00", _SPAN_ENTRY, 7) is None  # an entry of another kind

    # Where the skeleton cannot be trusted the decoder's own check of the span runs.
    parsed = ExportTraceServiceRequest.FromString(one(span(attributes=(kv("deep", nested(3)),))))
    real_span = parsed.resource_spans[0].scope_spans[0].spans[0]
    assert _nested_value_problem(real_span, _UNKNOWN, SMALL) == "an attribute value is nested deeper than 2 levels"


def test_the_signature_argument_holds_for_the_skeleton() -> None:
    """``_SIGNATURES`` are sound only if every skeleton field is a message field numbered below 16,
    no tag is the byte 0x02, and of the messages reached through a field 2 only AnyValue has the
    arrayValue/kvlistValue numbers. A change of the OTLP protos that broke this fails here."""
    seen: dict[str, Any] = {}
    stack = [_Skeleton.DESCRIPTOR]
    while stack:
        descriptor = stack.pop()
        if descriptor.full_name not in seen:
            seen[descriptor.full_name] = descriptor
            stack.extend(f.message_type for f in descriptor.fields)
    tags = {f.number << 3 | 2 for d in seen.values() for f in d.fields}
    assert all(f.message_type is not None and f.number < 16 for d in seen.values() for f in d.fields)
    assert 0x02 not in tags
    field_2_children = {f.message_type.full_name for d in seen.values() for f in d.fields if f.number == 2}
    signature_numbers = {s[2] >> 3 for s in _SIGNATURES}
    holders = {name for name in field_2_children if signature_numbers & {f.number for f in seen[name].fields}}
    assert holders == {"tracehive_otlp_skeleton.AnyValue"}


# ------------------------------------------------------------------------------------------------
# Differential: generated requests, arbitrary and mutated bytes
# ------------------------------------------------------------------------------------------------

IDS = st.one_of(
    st.just(b""),
    st.integers(1, 17).map(bytes),  # all zeros, any length
    st.binary(min_size=0, max_size=17),
    st.sampled_from([TRACE, SPAN, PARENT]),
)
SCALARS = st.one_of(
    st.just(b""),  # an empty AnyValue
    st.text(max_size=4).map(text),
    st.just(text("")),  # a set but empty string_value
    st.booleans().map(lambda b: AnyValue(bool_value=b).SerializeToString()),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n).SerializeToString()),
    st.floats().map(lambda x: AnyValue(double_value=x).SerializeToString()),
    st.binary(max_size=3).map(lambda b: AnyValue(bytes_value=b).SerializeToString()),
    st.sampled_from([b"\x28\x01", b"\x30\x05"]),  # arrayValue/kvlistValue numbers with a varint
)
JUNK = st.sampled_from([b"", b"", b"", b"\x0d\x01\x02\x03\x04", b"\x7a\x00", b"\x78\x01", b"\x0b\x0c"])
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda items, junk: array(*items, junk=junk), st.lists(inner, max_size=6), JUNK),
        st.builds(lambda entries, junk: kvlist(*entries, junk=junk),
                  st.lists(st.tuples(st.sampled_from(["k", "", "é"]), inner), max_size=6), JUNK),
    ),
    max_leaves=5,
)
# Mostly one occurrence of the value; sometimes none, sometimes several (merged by the parser).
KEY_VALUES = st.builds(lambda key, pieces: kv(key, *pieces), st.sampled_from(["a", "b", ""]),
                       VALUES.map(lambda v: [v]) | st.lists(VALUES, max_size=3))
ATTRIBUTES = st.lists(KEY_VALUES, max_size=4).map(tuple)


def mostly(good: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A usable id seven times in eight, else anything from IDS: so that spans get past their ids
    often enough to meet the attribute, event and nesting checks."""
    return st.integers(0, 7).flatmap(lambda n: IDS if n == 0 else good)


SPANS = st.builds(
    span,
    trace_id=mostly(st.binary(min_size=16, max_size=16)), span_id=mostly(st.binary(min_size=8, max_size=8)),
    parent=mostly(st.sampled_from([b"", bytes(8), PARENT])),
    attributes=ATTRIBUTES,
    events=st.lists(ATTRIBUTES, max_size=2).map(tuple),
)
REQUESTS = st.lists(
    # resource attributes only now and then: an invalid one refuses the whole request
    st.tuples(st.integers(0, 3).flatmap(lambda n: st.lists(KEY_VALUES, max_size=2).map(tuple) if n == 0
                                        else st.just(())),
              st.lists(st.lists(SPANS, max_size=4).map(tuple), max_size=2).map(tuple)),
    min_size=0, max_size=2,
).map(lambda rs: request(*rs))
SMALL_LIMITS = st.builds(DecodeLimits, max_spans=st.integers(0, 10) | st.just(10_000),
                        max_attributes=st.integers(0, 5), max_events=st.integers(0, 3), max_depth=st.integers(0, 4))
LIMITS = st.integers(0, 4).flatmap(lambda n: st.none() if n == 0 else SMALL_LIMITS)  # None: the defaults


@DIFF
@given(REQUESTS, LIMITS)
def test_generated_requests(body: bytes, limits: DecodeLimits | None) -> None:
    result = assert_same(body, limits)
    # What was reached (see --hypothesis-show-statistics): every reason should show up.
    for reason in [f"{result[1].__name__}: {result[2]}"] if result[0] == "raised" else result[2]:
        event(re.sub(r"\d+", "N", reason.split("]: ")[-1]))


@settings(DIFF, max_examples=300)
@given(st.binary(max_size=300), LIMITS)
def test_arbitrary_bytes(body: bytes, limits: DecodeLimits | None) -> None:
    assert_same(body, limits)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0, 10**6),
              st.binary(min_size=1, max_size=4)),
    min_size=1, max_size=4,
)


@settings(DIFF, max_examples=150)
@given(REQUESTS.filter(bool), MUTATIONS, LIMITS)
def test_mutated_requests(body: bytes, mutations: list[tuple[str, int, bytes]], limits: DecodeLimits | None) -> None:
    """Valid requests with bits flipped, bytes inserted or removed, the tail cut."""
    data = bytearray(body)
    for op, position, chunk in mutations:
        if not data:
            break
        position %= len(data)
        if op == "flip":
            data[position] ^= 1 << (chunk[0] % 8)
        elif op == "insert":
            data[position:position] = chunk
        elif op == "delete":
            del data[position : position + len(chunk)]
        else:
            del data[position:]
    assert_same(bytes(data), limits)


def test_a_key_value_encoder_sanity_check() -> None:
    """The wire builders above write what the generated classes read."""
    parsed = KeyValue.FromString(kv("k", array(text("a"), kvlist(("x", text("y"))))))
    assert parsed.key == "k" and parsed.value.array_value.values[0].string_value == "a"
    assert parsed.value.array_value.values[1].kvlist_value.values[0].value.string_value == "y"
