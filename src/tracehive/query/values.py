"""Reading the values of filters and of request parameters: numbers (also written as strings, as
the SDK sends them), datetimes (Unix ms or ISO 8601), booleans, positive integers (page, limit)
and flags. The readers of a value return None for what they cannot read; those of a parameter
raise a ``ValidationFailed`` that names it."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from tracehive.query.errors import _fail

# Integers beyond this do not fit a 64-bit database integer; they are compared as floats.
_MAX_EXACT_INT = (1 << 63) - 1

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
