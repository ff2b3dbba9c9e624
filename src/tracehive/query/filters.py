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
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

import orjson

from tracehive.model import ids
from tracehive.model.errors import ValidationFailed
from tracehive.model.times import now_ms as _now_ms

# Fields ----------------------------------------------------------------------------------------

TEXT_FIELDS = ("event_id", "session_id", "parent_id", "event_type", "event_name", "source", "error")
NUMBER_FIELDS = ("start_time", "end_time", "duration")
JSON_FIELDS = ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties", "children_ids")
FILTER_FIELDS = TEXT_FIELDS + NUMBER_FIELDS + JSON_FIELDS
# Read responses also carry the scope ids (contract 2.1); they can be projected, not filtered.
PROJECTION_FIELDS = FILTER_FIELDS + ("org_id", "workspace_id", "project_id", "tenant")
ID_FIELDS = ("event_id", "session_id", "parent_id")

MAX_FIELD_LENGTH = 512
MAX_PATH_SEGMENTS = 32
MAX_INDEX_DIGITS = 9
MAX_FILTERS = 100
MAX_PROJECTIONS = 200
DEFAULT_LIMIT = 1000
EXPORT_MAX_LIMIT = 7500
MAX_PAGE = 1_000_000_000
# Integers beyond this do not fit a 64-bit database integer; they are compared as floats.
_MAX_EXACT_INT = (1 << 63) - 1

_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+")
_INDEX = re.compile(r"[0-9]+")
# A quoted path segment, ``metadata."service.name"``: any key without a double quote, a backslash
# or a control character (dots, spaces and digits-only keys included). Segments are bound
# parameters or quoted by every backend's compiler, never written into SQL as they are.
_QUOTED_FORBIDDEN = re.compile(r'["\\\x00-\x1f\x7f]')


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A top-level ``column`` and, for JSON columns, a path inside it (``int`` = array index)."""

    column: str
    path: tuple[str | int, ...] = ()

    @property
    def kind(self) -> str:
        """``text``, ``number``, ``json`` or ``scope`` (the latter for projections only)."""
        if self.column in TEXT_FIELDS:
            return "text"
        if self.column in NUMBER_FIELDS:
            return "number"
        if self.column in JSON_FIELDS:
            return "json"
        return "scope"

    def __str__(self) -> str:
        """The field as the filter language writes it (``parse_field`` reads it back)."""
        parts = [self.column]
        for p in self.path:
            parts.append(str(p) if isinstance(p, int) else (format_segment(p) or p))
        return ".".join(parts)


class Operator(str, Enum):
    EXISTS = "exists"
    NOT_EXISTS = "not exists"
    IS = "is"
    IS_NOT = "is not"
    CONTAINS = "contains"
    NOT_CONTAINS = "not contains"
    GREATER_THAN = "greater than"
    LESS_THAN = "less than"
    AFTER = "after"
    BEFORE = "before"


class ValueType(str, Enum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


# Which operators apply to which type, after ``after``/``before`` became greater/less than.
# The contract's table (spec-2026-02), plus ``is not`` for booleans.
OPERATORS_BY_TYPE: dict[ValueType, frozenset[Operator]] = {
    ValueType.STRING: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT,
                                 Operator.CONTAINS, Operator.NOT_CONTAINS}),
    ValueType.NUMBER: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT,
                                 Operator.GREATER_THAN, Operator.LESS_THAN}),
    ValueType.BOOLEAN: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT}),
    ValueType.DATETIME: frozenset({Operator.EXISTS, Operator.NOT_EXISTS, Operator.IS, Operator.IS_NOT,
                                   Operator.GREATER_THAN, Operator.LESS_THAN}),
}  # fmt: skip

_VALUELESS = (Operator.EXISTS, Operator.NOT_EXISTS)
_ORDERING = (Operator.GREATER_THAN, Operator.LESS_THAN)
_TYPE_ALIASES = {"id": ValueType.STRING}

Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter. ``value`` is already coerced: ``str`` for string, ``int``/``float`` for number
    and datetime (Unix ms), ``bool`` for boolean, ``None`` for exists/not exists."""

    field: FieldRef
    operator: Operator
    type: ValueType
    value: Value = None


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive bounds on ``start_time`` in Unix ms; ``None`` = unbounded."""

    start: int | float | None = None
    end: int | float | None = None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What to read: conditions ANDed, a start_time range, a 1-based page of ``limit`` events
    sorted by ``start_time`` descending (unless ``ignore_order``), and the fields to return
    (``None`` = every field; projections are applied by the caller, backends may ignore them)."""

    conditions: tuple[Condition, ...] = ()
    date_range: DateRange | None = None
    limit: int = DEFAULT_LIMIT
    page: int = 1
    projections: tuple[FieldRef, ...] | None = None
    ignore_order: bool = False

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


# Errors ----------------------------------------------------------------------------------------


def _show(value: Any, limit: int = 80) -> str:
    """A value for an error message: repr'd, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", details=[{"field": where, "message": message}])


# Fields and paths ------------------------------------------------------------------------------


def _split_path(text: str, where: str) -> list[tuple[str, bool]]:
    """``a.b."c.d".0`` -> ``[(a, False), (b, False), (c.d, True), (0, False)]``: dots split, except
    inside double quotes, which hold one key as it is."""
    parts: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise _fail(where, f"unclosed quote in {_show(text)}")
            parts.append((text[i + 1 : close], True))
            i = close + 1
            if i < n and text[i] != ".":
                raise _fail(where, f"a quoted key must be followed by '.' or end the path in {_show(text)}")
        else:
            dot = text.find(".", i)
            end = n if dot < 0 else dot
            parts.append((text[i:end], False))
            i = end
        if i >= n:
            return parts
        i += 1  # the dot
        if i >= n:
            parts.append(("", False))  # a trailing dot: an empty segment
            return parts


def format_segment(key: str) -> str | None:
    """A key as a path segment the parser reads back as that key: bare when it can be
    (``[A-Za-z0-9_-]+``, not all digits), else quoted; None if no segment can hold it."""
    if _SEGMENT.fullmatch(key) and not _INDEX.fullmatch(key):
        return key
    if key and not _QUOTED_FORBIDDEN.search(key):
        return f'"{key}"'
    return None


def parse_field(text: Any, where: str, *, allowed: Sequence[str] = FILTER_FIELDS) -> FieldRef:
    """``column`` or ``column.seg.seg``; bare segments are ``[A-Za-z0-9_-]+`` (all digits index an
    array), a quoted segment (``metadata."service.name"``, ``outputs."0"``) is one key as written."""
    if not isinstance(text, str):
        raise _fail(where, "must be a string")
    if not text:
        raise _fail(where, "must not be empty")
    if len(text) > MAX_FIELD_LENGTH:
        raise _fail(where, f"is longer than {MAX_FIELD_LENGTH} characters")
    (head, head_quoted), *rest = _split_path(text, where)
    if head_quoted:
        raise _fail(where, f"the column {_show(head)} is not quoted; only keys inside JSON fields are")
    if head not in allowed:
        raise _fail(
            where,
            f"unknown field {_show(head)}; expected one of {', '.join(allowed)} "
            f"(or a dot path into {', '.join(JSON_FIELDS)})",
        )
    if rest and head not in JSON_FIELDS:
        raise _fail(where, f"{head} is not a JSON field, so {_show(text)} cannot have a path")
    if len(rest) > MAX_PATH_SEGMENTS:
        raise _fail(where, f"path has more than {MAX_PATH_SEGMENTS} segments")
    path: list[str | int] = []
    for segment, quoted in rest:
        if not segment:
            raise _fail(where, f"empty path segment in {_show(text)}")
        if quoted:
            if _QUOTED_FORBIDDEN.search(segment):
                raise _fail(where, f"quoted key {_show(segment)} may not hold a double quote, a backslash "
                                   "or a control character")
            path.append(segment)
            continue
        if not _SEGMENT.fullmatch(segment):
            raise _fail(where, f"path segment {_show(segment)} may only contain letters, digits, '_' and '-' "
                               f'(quote a key that holds others: metadata."service.name")')
        if _INDEX.fullmatch(segment):
            if len(segment) > MAX_INDEX_DIGITS:
                raise _fail(where, f"array index {segment} is too large")
            path.append(int(segment))
        else:
            path.append(segment)
    return FieldRef(head, tuple(path))


# Values ----------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _finite(value: int | float) -> int | float | None:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if abs(value) <= _MAX_EXACT_INT:
        return value
    try:
        return float(value)
    except OverflowError:  # an integer past the float range (10**309) is no finite number either
        return None


def parse_number(value: Any) -> int | float | None:
    """A number, or a string holding one (the SDK sends ``"0.01"``); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _finite(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 400 or not _NUMBER.fullmatch(text):
            return None
        if re.fullmatch(r"[+-]?\d+", text):
            return _finite(int(text))
        return _finite(float(text))
    return None


def only_a_string_equals(value: Any) -> bool:
    """True when a JSON value whose text form is ``value`` can only be a string equal to it (no
    number, no true/false, no JSON text): a compiler may then compare it as a plain string, in a
    shape an index on the path serves."""
    return (
        isinstance(value, str)
        and parse_number(value) is None
        and value not in ("true", "false")
        and not value.startswith(("{", "["))
    )


def parse_datetime(value: Any) -> int | float | None:
    """Unix ms from a number (ms), a numeric string (ms) or an ISO 8601 string (no zone = UTC)."""
    number = parse_number(value)
    if number is not None:
        return number
    if not isinstance(value, str):
        return None
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = timezone.utc
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz_minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
        if tz_minutes >= 24 * 60:
            return None
        tz = timezone(sign * timedelta(minutes=tz_minutes))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                          tzinfo=tz)  # fmt: skip
    except ValueError:
        return None
    delta = moment - _EPOCH
    ms = (delta.days * 86_400 + delta.seconds) * 1000
    if fraction:
        micros = int(fraction[:6].ljust(6, "0"))
        if micros % 1000:
            return ms + micros / 1000
        return ms + micros // 1000
    return ms


def parse_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(value.strip().lower())
    return None


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


# Date ranges -----------------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d{1,9})([mhdw])")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_ABSOLUTE_SHAPES = (("$gte", "$lte"), ("start_time", "end_time"))


def parse_relative(raw: Any, where: str, now: int) -> DateRange:
    if not isinstance(raw, str) or not _RELATIVE.fullmatch(raw.strip()):
        raise _fail(where, f"{_show(raw)} is not a relative range; expected <integer><m|h|d|w>, e.g. '7d'")
    match = _RELATIVE.fullmatch(raw.strip())
    assert match is not None
    return DateRange(now - int(match.group(1)) * _UNIT_MS[match.group(2)], None)


def parse_date_range(raw: Any, where: str = "dateRange", *, now: int | None = None) -> DateRange | None:
    """``{$gte, $lte}`` (ISO or epoch ms, either bound optional), ``{start_time, end_time}``,
    ``{relative: "7d"}``, or a string: a JSON document of one of these, or one datetime = since."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                decoded = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise _fail(where, "is not valid JSON") from None
            return parse_date_range(decoded, where, now=now)
        start = parse_datetime(text)
        if start is None:
            raise _fail(where, f"{_show(raw)} is not a datetime (ISO 8601 or Unix milliseconds)")
        return DateRange(start, None)
    if not isinstance(raw, dict):
        raise _fail(where, "must be an object: {$gte, $lte} or {relative}")
    if not raw:
        return None
    keys = set(raw)
    if "relative" in keys:
        if keys != {"relative"}:
            raise _fail(where, "relative cannot be combined with other bounds")
        return parse_relative(raw["relative"], f"{where}.relative", now if now is not None else _now_ms())
    for low, high in _ABSOLUTE_SHAPES:
        if keys <= {low, high}:
            bounds = []
            for key in (low, high):
                value = raw.get(key)
                if value is None:
                    bounds.append(None)
                    continue
                moment = parse_datetime(value)
                if moment is None:
                    raise _fail(f"{where}.{key}", f"{_show(value)} is not a datetime (ISO 8601 or Unix milliseconds)")
                bounds.append(moment)
            start, end = bounds
            if start is not None and end is not None and start > end:
                raise _fail(where, f"{low} is after {high}")
            return DateRange(start, end) if (start is not None or end is not None) else None
    shapes = "{$gte, $lte}, {start_time, end_time} or {relative}"
    unknown = sorted(keys - {"$gte", "$lte", "start_time", "end_time"})
    if not unknown:
        raise _fail(where, f"mixes the bounds of two shapes; use one of {shapes}")
    raise _fail(where, f"unexpected key {_show(unknown[0])}; use {shapes}")


# Paging and flags ------------------------------------------------------------------------------


def parse_positive_int(
    raw: Any, where: str, *, default: int, maximum: int | None = None, clamp: bool = False
) -> int:
    if raw is None:
        return default
    number: Any = raw
    if isinstance(raw, str) and re.fullmatch(r"\s*\d{1,18}\s*", raw):
        number = int(raw)
    elif isinstance(raw, float) and raw.is_integer():
        number = int(raw)
    if isinstance(number, bool) or not isinstance(number, int):
        raise _fail(where, "must be a positive integer")
    if number < 1:
        raise _fail(where, "must be at least 1")
    if maximum is not None and number > maximum:
        if clamp:
            return maximum
        raise _fail(where, f"must be at most {maximum}")
    return number


def parse_flag(raw: Any, where: str) -> bool:
    if raw is None:
        return False
    flag = parse_boolean(raw)
    if flag is None:
        raise _fail(where, "must be a boolean")
    return flag


def parse_projections(raw: Any, where: str = "projections") -> tuple[FieldRef, ...] | None:
    """Fields to return; ``event_id`` is always among them. Empty or missing = every field.
    A path covered by a shorter one (``metadata.cost`` under ``metadata``) is dropped."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _fail(where, "must be an array of field names")
    if not raw:
        return None
    if len(raw) > MAX_PROJECTIONS:
        raise _fail(where, f"at most {MAX_PROJECTIONS} projections are allowed, got {len(raw)}")
    refs = [FieldRef("event_id")]
    refs += [parse_field(item, f"{where}[{i}]", allowed=PROJECTION_FIELDS) for i, item in enumerate(raw)]
    kept: list[FieldRef] = []
    for ref in sorted(set(refs), key=lambda r: len(r.path)):
        full = (ref.column, *ref.path)
        if not any(full[: 1 + len(k.path)] == (k.column, *k.path) for k in kept):
            kept.append(ref)
    order = {ref: i for i, ref in enumerate(refs)}
    return tuple(sorted(kept, key=lambda r: order[r]))


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


# Projections -----------------------------------------------------------------------------------

_MISSING: Any = object()


class _Sparse(dict):  # type: ignore[type-arg]
    """A list under construction: index -> picked element."""


def _pick(source: Any, path: tuple[str | int, ...]) -> Any:
    if not path:
        return source
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        if not isinstance(source, list) or head >= len(source):
            return _MISSING
        inner = _pick(source[head], rest)
        return _MISSING if inner is _MISSING else _Sparse({head: inner})
    if not isinstance(source, dict) or head not in source:
        return _MISSING
    inner = _pick(source[head], rest)
    return _MISSING if inner is _MISSING else {head: inner}


def _merge(into: Any, more: Any) -> Any:
    same_shape = isinstance(into, _Sparse) == isinstance(more, _Sparse)
    if isinstance(into, dict) and isinstance(more, dict) and same_shape:
        for key, value in more.items():
            into[key] = _merge(into[key], value) if key in into else value
        return into
    return more


def _finish(value: Any) -> Any:
    if isinstance(value, _Sparse):
        return [_finish(value.get(i)) for i in range(max(value) + 1)]
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    return value


def project_event(event: dict[str, Any], projections: Sequence[FieldRef]) -> dict[str, Any]:
    """A sparse copy of ``event`` with only the projected fields, nested as in the event. An
    array element keeps its position (earlier elements that were not projected are null)."""
    out: dict[str, Any] = {}
    nested: set[str] = set()
    for ref in projections:
        if ref.column not in event:
            continue
        if not ref.path:
            out[ref.column] = event[ref.column]  # no other projection is under it (parse_projections)
            continue
        picked = _pick(event[ref.column], ref.path)
        if picked is _MISSING:
            continue
        nested.add(ref.column)
        out[ref.column] = _merge(out[ref.column], picked) if ref.column in out else picked
    for column in nested:
        out[column] = _finish(out[column])
    return out
