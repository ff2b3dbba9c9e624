"""Hypothesis strategies shared by the fuzz suites: JSON of every shape (with the hostile corners
a JSON parser can hand us: huge integers, non-finite floats, lone surrogates, odd keys) and the
OTLP vocabulary, so that generated documents reach deep into the decoders instead of stopping at
the first unknown key."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Integers around the 64-bit edges and far beyond, as orjson/json/ast hand them over.
EDGE_INTS = st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1,
                             2**64, 10**30, -(10**30), 10**400])
INTS = st.integers() | EDGE_INTS
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1.7976931348623157e308, 5e-324, -0.0])
# Strings that are numbers, dates, SQL or JSON text: the places where parsers second-guess strings.
TRICKY_STRINGS = st.sampled_from([
    "", " ", "0", "-0", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "nan", "1" + "0" * 320, "9" * 401,
    "0x10", "1_000", "१२३", "²", "1" * 5000, " 7 ", "2024-05-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
    "2024-02-30", "true", "false", "null", "{}", "[]", '{"a":1}', "x' OR '1'='1", "'; DROP TABLE events; --",
    "\x00", "\ud800", "\udfff", "a\u0000b", "%", "_", "$.a", '"', "\\", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR",
])
TEXT = st.text(max_size=30) | TRICKY_STRINGS
# Strings that look like numbers to one parser and not to another (str.isdigit vs int()).
NUMERIC_TRAPS = st.sampled_from(["²", "1" * 5000, "१२३", "1e400", "NaN", "-1", " 7 ", "0.5", "1e3", ""])


def json_values(keys: st.SearchStrategy[str] = TEXT, max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Any JSON-like value (as a parser could produce it), nested a few levels."""
    scalars = st.none() | st.booleans() | INTS | FLOATS | TEXT
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=max_leaves,
    )


# OTLP/JSON -------------------------------------------------------------------------------------

OTLP_KEYS = st.sampled_from([
    "resourceSpans", "resource_spans", "scopeSpans", "scope_spans", "spans", "resource", "scope", "attributes",
    "traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id", "name", "kind", "version",
    "startTimeUnixNano", "endTimeUnixNano", "start_time_unix_nano", "timeUnixNano", "events", "status", "code",
    "message", "key", "value", "values", "stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
    "arrayValue", "kvlistValue", "string_value", "int_value", "kvlist_value", "array_value",
]) | TEXT

HEX_IDS_16 = st.binary(min_size=16, max_size=16).map(bytes.hex)
HEX_IDS_8 = st.binary(min_size=8, max_size=8).map(bytes.hex)
ATTRIBUTE_KEYS = st.sampled_from([
    "honeyhive_inputs.a", "honeyhive_inputs.a.0", "honeyhive_inputs.a.1.b", "honeyhive_outputs", "honeyhive_config.model",
    "honeyhive_metadata.x.y", "honeyhive_event_type", "honeyhive_event_name", "honeyhive_event_id", "honeyhive.session_id",
    "honeyhive_session_id", "honeyhive.parent_id", "honeyhive_duration_ms", "honeyhive_error", "honeyhive_metrics.",
    "honeyhive_feedback..a", "honeyhive_user_id", "honeyhive_prompt_template.template", "input.value", "output.value",
    "input.mime_type", "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.content", "llm.token_count.prompt", "gen_ai.prompt.0.content", "gen_ai.prompt.0.role",
    "gen_ai.completion.0.content", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.usage.input_tokens",
    "gen_ai.operation.name", "openinference.span.kind", "traceloop.span.kind", "traceloop.entity.input",
    "traceloop.entity.output", "gen_ai.conversation.id", "session.id", "exception.type", "exception.message",
]) | TEXT


def _maybe(good: st.SearchStrategy[Any], junk_one_in: int) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, one time in ``junk_one_in`` anything at all (0: never)."""
    if not junk_one_in:
        return good
    junk = json_values(OTLP_KEYS, max_leaves=4)
    return st.sampled_from(range(junk_one_in)).flatmap(lambda n: junk if n == junk_one_in - 1 else good)


def any_value_json(junk: int, depth: int = 3) -> st.SearchStrategy[Any]:
    """An OTLP/JSON AnyValue; every value key may hold a value of the wrong type or range."""
    leaves = st.one_of(
        st.fixed_dictionaries({"stringValue": TEXT}),
        st.fixed_dictionaries({"intValue": st.integers(-(2**63), 2**63 - 1)}),
        st.fixed_dictionaries({"intValue": st.integers(-(2**63), 2**63 - 1).map(str)}),
        st.fixed_dictionaries({"doubleValue": st.floats(allow_nan=False) | st.sampled_from(["NaN", "Infinity"])}),
        st.fixed_dictionaries({"boolValue": st.booleans()}),
        st.fixed_dictionaries({"bytesValue": st.binary(max_size=10).map(lambda b: __import__("base64").b64encode(b).decode())}),
        st.just({}),
    )
    if junk:
        leaves = leaves | st.one_of(
            st.fixed_dictionaries({"intValue": INTS | TEXT | FLOATS}),
            st.fixed_dictionaries({"doubleValue": FLOATS | TEXT | INTS}),
            st.fixed_dictionaries({"boolValue": TEXT}),
            st.fixed_dictionaries({"bytesValue": TEXT}),
        )
    if depth == 0:
        return _maybe(leaves, junk)
    inner = any_value_json(junk, depth - 1)
    return _maybe(st.one_of(
        leaves,
        st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.lists(inner, max_size=4)})}),
        st.fixed_dictionaries({"kvlistValue": st.fixed_dictionaries(
            {"values": st.lists(st.fixed_dictionaries({"key": ATTRIBUTE_KEYS, "value": inner}), max_size=4)})}),
    ), junk)


def key_values_json(junk: int) -> st.SearchStrategy[Any]:
    pair = st.fixed_dictionaries({"key": ATTRIBUTE_KEYS, "value": any_value_json(junk)})
    return _maybe(st.lists(pair, max_size=8), junk)


def span_json(junk: int) -> st.SearchStrategy[dict[str, Any]]:
    nanos = st.integers(1, 2**63).map(str) | st.integers(0, 2**64 - 1)
    junk_text = NUMERIC_TRAPS if junk else st.nothing()
    maybe = lambda good: _maybe(good, junk)
    return st.fixed_dictionaries(
        {"traceId": maybe(HEX_IDS_16), "spanId": maybe(HEX_IDS_8), "startTimeUnixNano": maybe(nanos | junk_text)},
        optional={
            "parentSpanId": maybe(HEX_IDS_8 | st.just("") | st.none()),
            "name": maybe(TEXT),
            "kind": maybe(st.integers(-2, 7) | st.sampled_from(["SPAN_KIND_CLIENT", "server", "4"]) | junk_text),
            "endTimeUnixNano": maybe(nanos | junk_text),
            "attributes": key_values_json(junk),
            "events": maybe(st.lists(st.fixed_dictionaries({}, optional={
                "name": maybe(TEXT), "timeUnixNano": maybe(nanos), "attributes": key_values_json(junk)}), max_size=3)),
            "status": maybe(st.fixed_dictionaries({}, optional={
                "code": maybe(st.integers(-1, 3) | st.sampled_from(["STATUS_CODE_ERROR", "ok"]) | junk_text),
                "message": maybe(TEXT)})),
        },
    )


def otlp_json_documents(junk_one_in: int) -> st.SearchStrategy[Any]:
    """OTLP/JSON export requests; with ``junk_one_in`` > 0, any field may be replaced by junk."""
    maybe = lambda good: _maybe(good, junk_one_in)
    scope_spans = st.fixed_dictionaries(
        {"spans": maybe(st.lists(span_json(junk_one_in), min_size=1, max_size=4))},
        optional={"scope": maybe(st.fixed_dictionaries({}, optional={"name": maybe(TEXT), "version": maybe(TEXT)}))},
    )
    resource_spans = st.fixed_dictionaries(
        {"scopeSpans": maybe(st.lists(scope_spans, min_size=1, max_size=3))},
        optional={"resource": maybe(st.fixed_dictionaries({}, optional={"attributes": key_values_json(junk_one_in)}))},
    )
    return maybe(st.fixed_dictionaries({"resourceSpans": maybe(st.lists(resource_spans, min_size=1, max_size=3))}))
