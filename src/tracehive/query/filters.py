"""The filter/query language (contract section 6) parsed into a backend-neutral ``EventQuery``.

Nothing here knows about SQL: a backend compiles the query object (``storage/sqlite/compile.py``
for SQLite). Every mistake is a ``ValidationFailed`` that names where it is, e.g.
``filters[1].operator: 'bigger' is not an operator``.

Semantics every backend implements (``tests/storage/test_contract.py`` checks them):

* Filters are ANDed. A field is a top-level column (``FILTER_FIELDS``) or a dot path into a JSON
  column (``metadata.cost``, ``inputs.chat_history.0.content``); numeric segments index arrays.
* ``exists``: the field has a non-null value; ``not exists`` is its complement. Value ignored.
* ``string`` compares the value's text form: a JSON string as is, numbers as written
  (``1``, ``0.5``), ``true``/``false``, objects and arrays as their JSON text; ``is`` also matches
  a number equal to a numeric filter value (``"5"`` matches ``5`` and ``5.0``). ``contains`` is a
  case-sensitive substring match; on an array it matches when any element contains the value.
* ``number`` matches numeric values only (a JSON string ``"5"`` is not the number 5).
* ``boolean`` matches JSON ``true``/``false`` only.
* ``datetime`` compares Unix milliseconds: numbers are ms, strings are parsed as ISO 8601.
* The negations ``is not`` and ``not contains`` are exact complements of ``is`` and ``contains``:
  an event without the field matches them.
* ``after``/``before`` are ``greater than``/``less than`` (a ``Condition`` never carries them).

Leniency (the Python SDK's ``EventFilter`` defaults ``type`` to ``"string"`` and sends every value
as a string): ``type`` defaults to ``string`` on export (contract 9.11) and the legacy ``id`` is
``string``; values are coerced by type; operators may be written with underscores or any case
(``greater_than``, ``IS``); a ``string`` filter that can only mean a number or a datetime is
promoted: ``greater than``/``less than`` with a numeric value compare numbers, with an ISO value
datetimes; ``after``/``before`` compare datetimes; ``is``/``is not`` on the number columns
(``start_time``, ``end_time``, ``duration``) compare numbers (or datetimes for an ISO value).

This module parses filters (``parse_filter(s)``) and the export request that carries them; the
pieces it builds on have their own modules: the field catalogue and paths (``query.fields``), the
query objects (``query.event_query``), values (``query.values``), date ranges
(``query.date_range``) and projections (``query.projections``). Every public name of those that
this module used to define is still importable from here.
"""

from __future__ import annotations

import math
from typing import Any

from tracehive.model import ids
from tracehive.model.errors import ValidationFailed
from tracehive.query.date_range import parse_date_range, parse_relative
from tracehive.query.errors import _fail, _show
from tracehive.query.event_query import (
    DEFAULT_LIMIT,
    EXPORT_MAX_LIMIT,
    MAX_PAGE,
    OPERATORS_BY_TYPE,
    Condition,
    DateRange,
    EventQuery,
    Operator,
    Value,
    ValueType,
)
from tracehive.query.fields import (
    FILTER_FIELDS,
    ID_FIELDS,
    JSON_FIELDS,
    MAX_FIELD_LENGTH,
    MAX_INDEX_DIGITS,
    MAX_PATH_SEGMENTS,
    NUMBER_FIELDS,
    PROJECTION_FIELDS,
    TEXT_FIELDS,
    FieldRef,
    format_segment,
    parse_field,
)
from tracehive.query.projections import MAX_PROJECTIONS, parse_projections, project_event
from tracehive.query.values import (
    only_a_string_equals,
    parse_boolean,
    parse_datetime,
    parse_flag,
    parse_number,
    parse_positive_int,
)

__all__ = [
    "DEFAULT_LIMIT",
    "EXPORT_MAX_LIMIT",
    "FILTER_FIELDS",
    "ID_FIELDS",
    "JSON_FIELDS",
    "MAX_FIELD_LENGTH",
    "MAX_FILTERS",
    "MAX_INDEX_DIGITS",
    "MAX_PAGE",
    "MAX_PATH_SEGMENTS",
    "MAX_PROJECTIONS",
    "NUMBER_FIELDS",
    "OPERATORS_BY_TYPE",
    "PROJECTION_FIELDS",
    "RUN_ID_FIELD",
    "TEXT_FIELDS",
    "Condition",
    "DateRange",
    "EventQuery",
    "FieldRef",
    "Operator",
    "Value",
    "ValueType",
    "evaluation_condition",
    "format_segment",
    "only_a_string_equals",
    "parse_boolean",
    "parse_date_range",
    "parse_datetime",
    "parse_export_request",
    "parse_field",
    "parse_filter",
    "parse_filters",
    "parse_flag",
    "parse_number",
    "parse_positive_int",
    "parse_projections",
    "parse_relative",
    "project_event",
]

MAX_FILTERS = 100

_VALUELESS = (Operator.EXISTS, Operator.NOT_EXISTS)
_ORDERING = (Operator.GREATER_THAN, Operator.LESS_THAN)
_TYPE_ALIASES = {"id": ValueType.STRING}


def _text_form(value: Any) -> str | None:
    """The string a ``string`` filter compares: numbers as written, booleans as true/false."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


# Filters ---------------------------------------------------------------------------------------


def _operator(raw: Any, where: str) -> Operator:
    expected = ", ".join(op.value for op in Operator)
    if not isinstance(raw, str):
        raise _fail(where, f"must be a string, one of: {expected}")
    normal = " ".join(raw.lower().replace("_", " ").split())
    try:
        return Operator(normal)
    except ValueError:
        raise _fail(where, f"{_show(raw)} is not an operator; expected one of: {expected}") from None


def _value_type(raw: Any, where: str) -> ValueType:
    expected = ", ".join(t.value for t in ValueType)
    if not isinstance(raw, str):
        raise _fail(where, f"must be a string, one of: {expected}")
    normal = raw.strip().lower()
    if normal in _TYPE_ALIASES:
        return _TYPE_ALIASES[normal]
    try:
        return ValueType(normal)
    except ValueError:
        raise _fail(where, f"{_show(raw)} is not a type; expected one of: {expected}") from None


def _infer_type(value: Any, operator: Operator, ref: FieldRef) -> ValueType:
    """For bodies whose ``type`` is optional (search, contract 6.1): from the operator, then the
    JSON type of the value. String columns and ``contains`` always compare text (``event_name is
    5`` means the text "5", not a type error)."""
    if operator in (Operator.AFTER, Operator.BEFORE):
        return ValueType.DATETIME
    if ref.kind == "text" or operator in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        return ValueType.STRING
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, (int, float)):
        return ValueType.NUMBER
    return ValueType.STRING


def parse_filter(raw: Any, index: int, *, default_type: ValueType | None = ValueType.STRING) -> Condition:
    """One filter object. ``default_type`` None means: infer the type from the value."""
    where = f"filters[{index}]"
    if not isinstance(raw, dict):
        raise _fail(where, "must be a JSON object with field, operator, value and type")
    for key in ("field", "operator"):
        if raw.get(key) is None:
            raise _fail(f"{where}.{key}", "field required")
    ref = parse_field(raw["field"], f"{where}.field")
    operator = _operator(raw["operator"], f"{where}.operator")
    value = raw.get("value")
    raw_type = raw.get("type")
    if raw_type is not None:
        vtype = _value_type(raw_type, f"{where}.type")
    else:
        vtype = default_type if default_type is not None else _infer_type(value, operator, ref)

    if operator in _VALUELESS:
        return Condition(ref, operator, vtype, None)

    if "value" not in raw or value is None:
        raise _fail(
            f"{where}.value",
            f"required for operator '{operator.value}' (use 'exists' or 'not exists' to test for presence)",
        )
    if isinstance(value, (dict, list)):
        raise _fail(f"{where}.value", "must be a string, number or boolean")

    written = operator
    # after/before are greater/less than on datetimes (on numbers they compare the numbers).
    if operator in (Operator.AFTER, Operator.BEFORE):
        if vtype is ValueType.STRING:
            vtype = ValueType.DATETIME
        operator = Operator.GREATER_THAN if operator is Operator.AFTER else Operator.LESS_THAN
    vtype = _promote(ref, operator, vtype, value, where)

    if ref.kind == "text" and vtype is not ValueType.STRING:
        raise _fail(f"{where}.type", f"{ref.column} is a string field, so type '{vtype.value}' never matches it")
    if ref.kind == "number" and vtype is ValueType.BOOLEAN:
        raise _fail(f"{where}.type", f"{ref.column} is a number field, so type 'boolean' never matches it")
    if operator not in OPERATORS_BY_TYPE[vtype]:
        allowed = [op.value for op in Operator if op in OPERATORS_BY_TYPE[vtype]]
        if Operator.GREATER_THAN in OPERATORS_BY_TYPE[vtype]:
            allowed += [Operator.AFTER.value, Operator.BEFORE.value]
        raise _fail(
            f"{where}.operator",
            f"'{written.value}' does not apply to type '{vtype.value}'; use one of: {', '.join(allowed)}",
        )
    return Condition(ref, operator, vtype, _coerce(value, vtype, ref, f"{where}.value"))


def _promote(ref: FieldRef, operator: Operator, vtype: ValueType, value: Any, where: str) -> ValueType:
    """A ``string`` filter that can only mean a number or a datetime (see the module doc)."""
    if vtype is not ValueType.STRING:
        return vtype
    ordering = operator in _ORDERING
    if not ordering and not (ref.kind == "number" and operator in (Operator.IS, Operator.IS_NOT)):
        return vtype
    if parse_number(value) is not None:
        return ValueType.NUMBER
    if parse_datetime(value) is not None:
        return ValueType.DATETIME
    if ordering:
        raise _fail(f"{where}.value", f"'{operator.value}' compares numbers or datetimes; {_show(value)} is neither")
    raise _fail(f"{where}.value", f"{ref.column} is a number field; {_show(value)} is not a number")


def _require_unicode(text: str, where: str) -> None:
    """A lone surrogate (``"\\ud800"`` in a JSON string, or in a query parameter's JSON) decodes
    to a str that cannot be UTF-8 encoded: SQLite would fail to bind it, a 500."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _fail(where, f"is not valid Unicode (a lone surrogate at position {exc.start})") from None


def _coerce(value: Any, vtype: ValueType, ref: FieldRef, where: str) -> Value:
    if vtype is ValueType.STRING:
        text = _text_form(value)
        if text is None:
            raise _fail(where, "must be a string, number or boolean")
        _require_unicode(text, where)
        if (ref.column in ID_FIELDS and not ref.path) or ref.column == "children_ids":
            if ids.is_uuid(text):
                text = ids.normalize_id(text)  # ids are stored lower-case (contract 5.2)
        return text
    if vtype is ValueType.NUMBER:
        number = parse_number(value)
        if number is None:
            raise _fail(where, f"{_show(value)} is not a number")
        return number
    if vtype is ValueType.BOOLEAN:
        flag = parse_boolean(value)
        if flag is None:
            raise _fail(where, f"{_show(value)} is not a boolean (true or false)")
        return flag
    moment = parse_datetime(value)
    if moment is None:
        raise _fail(where, f"{_show(value)} is not a datetime (ISO 8601 or Unix milliseconds)")
    return moment


def parse_filters(raw: Any, *, default_type: ValueType | None = ValueType.STRING) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("filters", "must be an array of filter objects")
    if len(raw) > MAX_FILTERS:
        raise _fail("filters", f"at most {MAX_FILTERS} filters are allowed, got {len(raw)}")
    return tuple(parse_filter(item, i, default_type=default_type) for i, item in enumerate(raw))


# Requests --------------------------------------------------------------------------------------

RUN_ID_FIELD = FieldRef("metadata", ("run_id",))


def evaluation_condition(raw: Any, where: str = "evaluation_id") -> Condition | None:
    """Events of one experiment run: the tracer stamps ``metadata.run_id`` on every event."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _fail(where, "must be a string")
    _require_unicode(raw, where)
    return Condition(RUN_ID_FIELD, Operator.IS, ValueType.STRING, raw)


def parse_export_request(body: Any, *, now: int | None = None) -> EventQuery:
    """``POST /v1/events/export`` (contract 4.7): lenient, unknown keys (``project``) ignored,
    missing ``filters`` = none, ``limit`` defaults to 1000 and is clamped to 7500."""
    if not isinstance(body, dict):
        raise ValidationFailed("request body must be a JSON object")
    conditions = parse_filters(body.get("filters"), default_type=ValueType.STRING)
    run = evaluation_condition(body.get("evaluation_id"))
    if run is not None:
        conditions += (run,)
    return EventQuery(
        conditions=conditions,
        date_range=parse_date_range(body.get("dateRange"), now=now),
        limit=parse_positive_int(
            body.get("limit"), "limit", default=DEFAULT_LIMIT, maximum=EXPORT_MAX_LIMIT, clamp=True
        ),
        page=parse_positive_int(body.get("page"), "page", default=1, maximum=MAX_PAGE),
        projections=parse_projections(body.get("projections")),
        ignore_order=parse_flag(body.get("ignore_order"), "ignore_order"),
    )
