"""The decoder's verdict on an OTLP protobuf export request, without decoding it.

Journal mode acks a request once it is journaled; before that it needs only what
``decode_protobuf`` would say: whether the body is refused as a whole (the same exception, message
and details), which spans it rejects (the same reasons, in the same order, under the same cap) and
how many it keeps. ``validate_protobuf`` answers exactly that, several times faster, because it
builds no attribute values:

* the body is parsed with the same ``ExportTraceServiceRequest`` class; the span-count check is
  the decoder's own;
* per span, ids and counts are compared with cheap tests whose outcome is the decoder's; a span
  that fails one goes through the decoder's own ``span_from_pb``, which produces the reason;
* attribute values can only make a span fail when they are arrayValue/kvlistValue (depth and
  length limits). Whether any exists is found without visiting each attribute from Python: the
  body is parsed a second time with a *skeleton* schema that knows only the path to attribute
  values and, in ``AnyValue``, only those two members; the C library then drops everything else
  (``DiscardUnknownFields``) and what remains serializes to a few bytes per attribute in which a
  nested value has a fixed signature (see ``_SIGNATURES``). Usually there is none; otherwise the
  same bytes, span by span, say which values are nested, and only those go through the decoder's
  ``any_value_from_pb`` (a resource holding one goes through its ``attributes_from_pb``).

Whenever the validator would need to *raise* (an unparsable body, an invalid resource), it lets
the decoder itself run and raise, so the exception is the decoder's by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tracehive.ingest.otlp_decode_common import DecodedRequest, DecodeLimits, SpanInvalid, check_span_count
from tracehive.ingest.otlp_decode_protobuf import (
    any_value_from_pb,
    attributes_from_pb,
    decode_protobuf,
    span_from_pb,
    span_location,
)


@dataclass(frozen=True, slots=True)
class Validated:
    kept: int  # spans decode_protobuf would return
    rejected: list[str]  # its rejection reasons (same order, same cap)
    rejected_count: int  # its exact count of rejected spans


def validate_protobuf(data: bytes, limits: DecodeLimits | None = None) -> Validated:
    """What ``decode_protobuf(data, limits)`` would conclude; raises exactly what it raises."""
    limits = limits or DecodeLimits()
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError):  # the decoder's catch: it raises MalformedBody
        return _decoder_verdict(data, limits)
    resource_spans = request.resource_spans
    check_span_count(sum(len(ss.spans) for rs in resource_spans for ss in rs.scope_spans), limits)
    nested = _where_nested(data, request)
    out = DecodedRequest()  # for its reject(): the decoder's cap on kept reasons
    kept = 0
    max_attributes, max_events = limits.max_attributes, limits.max_events
    for i, rs in enumerate(resource_spans):
        attributes = rs.resource.attributes
        if len(attributes) > max_attributes or (nested is not None and nested.resources[i]):
            try:
                attributes_from_pb(attributes, limits)
            except SpanInvalid:  # fatal in the decoder: let it raise its ValidationFailed
                return _decoder_verdict(data, limits)
        for j, ss in enumerate(rs.scope_spans):
            skeletons = None if nested is None else nested.spans[i][j]  # None: no nested value at all
            for k, span in enumerate(ss.spans):
                trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
                events = span.events
                # The decoder's id and count checks, as booleans. An all-zero or empty parent is a
                # root; a non-zero one fails only on its length.
                if (len(trace_id) == 16 and trace_id != _ZERO_16 and len(span_id) == 8 and span_id != _ZERO_8
                        and (len(parent) == 8 or not any(parent))
                        and len(span.attributes) <= max_attributes
                        and (not events or (len(events) <= max_events
                                            and all(len(ev.attributes) <= max_attributes for ev in events)))):
                    if skeletons is None:  # no arrayValue/kvlistValue: nothing left that can fail
                        kept += 1
                        continue
                    problem = _nested_value_problem(span, skeletons[k], limits)
                else:
                    problem = _span_problem(span, limits)
                if problem is None:
                    kept += 1
                else:
                    out.reject(span_location(i, j, k), problem)
    return Validated(kept, out.rejected, out.rejected_count)


_ZERO_16, _ZERO_8 = bytes(16), bytes(8)


def _decoder_verdict(data: bytes, limits: DecodeLimits) -> Validated:
    """The decoder's own answer, for bodies it refuses (its exception is the one to raise)."""
    decoded = decode_protobuf(data, limits)
    return Validated(len(decoded.spans), decoded.rejected, decoded.rejected_count)


def _span_problem(span: Any, limits: DecodeLimits) -> str | None:
    """The decoder's own verdict on one span (for spans failing an id or count check, where it
    names the first failure, and wherever the skeleton cannot help)."""
    try:
        span_from_pb(span, {}, "", "", limits)
    except SpanInvalid as exc:
        return str(exc)
    return None


def _nested_value_problem(span: Any, skeleton: Any, limits: DecodeLimits) -> str | None:
    """A span whose ids and counts pass, in a part of the request that holds an arrayValue or
    kvlistValue: only such values can fail now. They go through the decoder's ``any_value_from_pb`` in the
    decoder's order (span events' attributes first, then the span's); the span's skeleton tells
    which values they are."""
    if skeleton is _UNKNOWN:
        return _span_problem(span, limits)
    encoded = skeleton.SerializeToString()
    if not any(signature in encoded for signature in _SIGNATURES):
        return None
    try:
        events = span.events
        if events:
            if len(skeleton.events) != len(events):
                return _span_problem(span, limits)
            for ev, skeleton_event in zip(events, skeleton.events):
                _check_marked(ev.attributes, skeleton_event.SerializeToString(), _EVENT_ENTRY, limits)
            skeleton.ClearField("events")  # what remains serializes to the span's attributes alone
            encoded = skeleton.SerializeToString()
        _check_marked(span.attributes, encoded, _SPAN_ENTRY, limits)
    except SpanInvalid as exc:
        return str(exc)
    return None


def _check_marked(kvs: Any, encoded: bytes, entry_tag: int, limits: DecodeLimits) -> None:
    """Run ``any_value_from_pb`` on the values of ``kvs`` that the skeleton (``encoded``) marks as nested, in
    order (on a value that turns out to be a scalar it returns quietly, as in the decoder)."""
    indexes = _marked_indexes(encoded, entry_tag, len(kvs))
    for n in range(len(kvs)) if indexes is None else indexes:
        any_value_from_pb(kvs[n].value, 0, limits)


# ------------------------------------------------------------------------------------------------
# Finding nested attribute values with the skeleton schema
# ------------------------------------------------------------------------------------------------


def _number(message: Any, name: str) -> int:
    return int(message.DESCRIPTOR.fields_by_name[name].number)


_ANY_MEMBERS = ("array_value", "kvlist_value")


def _skeleton_class() -> Any:
    """``ExportTraceServiceRequest`` reduced to the fields on the way to attribute values (numbers
    taken from the real descriptors, so wire data lands in the same places). ``AnyValue`` keeps
    only arrayValue and kvlistValue, in a oneof, both of an empty message type."""
    file = descriptor_pb2.FileDescriptorProto(name="tracehive_otlp_skeleton.proto",
                                              package="tracehive_otlp_skeleton", syntax="proto3")
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL

    def message(name: str, fields: list[tuple[str, int, str, int]], oneof: str | None = None) -> None:
        proto = file.message_type.add(name=name)
        if oneof:
            proto.oneof_decl.add(name=oneof)
        for field_name, number, type_name, label in fields:
            field = proto.field.add(name=field_name, number=number, label=label,
                                    type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                                    type_name=f".tracehive_otlp_skeleton.{type_name}")
            if oneof:
                field.oneof_index = 0

    span, event = trace_pb2.Span, trace_pb2.Span.Event
    message("Request", [("resource_spans", _number(ExportTraceServiceRequest, "resource_spans"), "ResourceSpans",
                         repeated)])
    message("ResourceSpans", [("resource", _number(trace_pb2.ResourceSpans, "resource"), "Resource", optional),
                              ("scope_spans", _number(trace_pb2.ResourceSpans, "scope_spans"), "ScopeSpans",
                               repeated)])
    message("Resource", [("attributes", _number(resource_pb2.Resource, "attributes"), "KeyValue", repeated)])
    message("ScopeSpans", [("spans", _number(trace_pb2.ScopeSpans, "spans"), "Span", repeated)])
    message("Span", [("attributes", _number(span, "attributes"), "KeyValue", repeated),
                     ("events", _number(span, "events"), "Event", repeated)])
    message("Event", [("attributes", _number(event, "attributes"), "KeyValue", repeated)])
    message("KeyValue", [("value", _number(common_pb2.KeyValue, "value"), "AnyValue", optional)])
    message("AnyValue", [(name, _number(common_pb2.AnyValue, name), "Opaque", optional) for name in _ANY_MEMBERS],
            oneof="value")
    message("Opaque", [])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tracehive_otlp_skeleton.Request"))


_Skeleton = _skeleton_class()


def _tag(number: int) -> int:
    return number << 3 | 2  # a length-delimited field; every skeleton field number is below 16


# After DiscardUnknownFields the skeleton holds only messages, so its serialization is tags (one
# byte each: the numbers are below 16) and length varints. An AnyValue holding arrayValue is then
# exactly <tag 5> 00, inside its KeyValue as <tag 2> 02 <tag 5> 00 (kvlistValue alike). Conversely
# these four bytes occur only there: a byte 0x12 followed by 0x02 cannot end a length (what follows
# a length is a tag, and 0x02 is no skeleton tag), so it is the tag of a field 2 of length 2 whose
# content starts with <tag 5>; of the field-2 children (ScopeSpans, Span, AnyValue) only AnyValue
# has a field 5 (or 6). The same holds for the serialization of any sub-message of the skeleton.
_SIGNATURES = tuple(
    bytes([_tag(_number(common_pb2.KeyValue, "value")), 2, _tag(_number(common_pb2.AnyValue, name)), 0])
    for name in _ANY_MEMBERS
)


def _has_nested(part: Any) -> bool:
    encoded = part.SerializeToString()
    return any(signature in encoded for signature in _SIGNATURES)


# In the skeleton of one span (its events cleared) or of one span event, the only field is the list
# of KeyValues, and each entry is one of four byte strings: <entry tag> then 00 (no value), 02 12 00
# (a value that is neither arrayValue nor kvlistValue), or 04 and a signature. No byte after the
# first of an entry equals an entry tag, so replacing these strings, left to right, replaces whole
# entries: one letter per KeyValue, N where the value is nested.
_SPAN_ENTRY = _tag(_number(trace_pb2.Span, "attributes"))
_EVENT_ENTRY = _tag(_number(trace_pb2.Span.Event, "attributes"))
_ENTRY_FORMS = {
    tag: [(bytes([tag, 4]) + signature, b"N") for signature in _SIGNATURES]
    + [(bytes([tag, 2, _tag(_number(common_pb2.KeyValue, "value")), 0]), b"S"), (bytes([tag, 0]), b"S")]
    for tag in (_SPAN_ENTRY, _EVENT_ENTRY)
}


def _marked_indexes(encoded: bytes, entry_tag: int, count: int) -> list[int] | None:
    """Indexes of the KeyValues the skeleton holds with a nested value, or None if the encoding is
    not the expected one (then every value is checked)."""
    letters = encoded
    for form, letter in _ENTRY_FORMS[entry_tag]:
        letters = letters.replace(form, letter)
    if len(letters) != count or letters.translate(None, b"NS"):
        return None
    indexes = []
    n = letters.find(b"N")
    while n >= 0:
        indexes.append(n)
        n = letters.find(b"N", n + 1)
    return indexes


_UNKNOWN = object()  # in place of a span's skeleton when there is none to trust


@dataclass(frozen=True, slots=True)
class _Nested:
    """Where arrayValue/kvlistValue attribute values may be."""

    resources: list[bool]  # by resourceSpans index
    # by resourceSpans and scopeSpans index: the skeletons of these spans, or a list of _UNKNOWN
    # (check each span the decoder's way)
    spans: list[list[Any]]


def _where_nested(data: bytes, request: Any) -> _Nested | None:
    """``None`` when no attribute value of the request (resource, span or span event) is an
    arrayValue or kvlistValue; otherwise where they may be.

    Sound by construction: the skeleton's wire paths are the real ones, and an ``AnyValue`` whose
    decoded member is arrayValue/kvlistValue had that field on the wire, which the skeleton keeps
    (its oneof cannot be overridden by members it does not know: that can only over-report, and an
    over-reported value is merely checked)."""
    skeleton = _Skeleton()
    try:
        skeleton.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError):  # not expected once the real parse succeeded
        return _everywhere(request)
    skeleton.DiscardUnknownFields()
    if not _has_nested(skeleton):
        return None
    if not _same_shape(skeleton, request):
        return _everywhere(request)
    return _Nested(
        resources=[_has_nested(rs.resource) for rs in skeleton.resource_spans],
        spans=[[ss.spans for ss in rs.scope_spans] for rs in skeleton.resource_spans],
    )


def _same_shape(skeleton: Any, request: Any) -> bool:
    """The skeleton has the real request's resourceSpans, scopeSpans and spans (it must: the same
    repeated fields are parsed from the same bytes; checked because skeleton parts are looked up by
    index; span events and attributes are counted where they are used)."""
    if len(skeleton.resource_spans) != len(request.resource_spans):
        return False
    for s_rs, rs in zip(skeleton.resource_spans, request.resource_spans):
        if len(s_rs.scope_spans) != len(rs.scope_spans):
            return False
        for s_ss, ss in zip(s_rs.scope_spans, rs.scope_spans):
            if len(s_ss.spans) != len(ss.spans):
                return False
    return True


def _everywhere(request: Any) -> _Nested:
    return _Nested(
        resources=[True] * len(request.resource_spans),
        spans=[[[_UNKNOWN] * len(ss.spans) for ss in rs.scope_spans] for rs in request.resource_spans],
    )
