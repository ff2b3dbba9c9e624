"""The leaves of an OTLP/JSON document as senders write them: 64-bit integers as numbers or
strings, doubles with ``NaN``/``Infinity``, enums as integers or names, trace and span ids as hex
(or base64), bytes as base64; and ``_Malformed``, the error that names where in the document a
value is wrong (each caller on the way up prefixes its part of the path)."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from tracehive.ingest.otlp_decode_common import SpanInvalid

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
_HEX = frozenset("0123456789abcdefABCDEF")


class _Malformed(Exception):
    """Internal: the document is not an export request; ``path`` is relative to the raiser's
    caller, which prefixes its own part on the way up."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    def under(self, prefix: str) -> _Malformed:
        if not self.path:
            self.path = prefix
        elif self.path.startswith("["):
            self.path = prefix + self.path
        else:
            self.path = f"{prefix}.{self.path}"
        return self


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    if value is None and snake != camel:
        value = obj.get(snake)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _str(obj: dict[str, Any], camel: str, snake: str) -> str:
    value = _get(obj, camel, snake)
    if value is None:
        return ""
    if type(value) is not str:
        raise _Malformed(camel, f"must be a string, not {_kind(value)}")
    return value


def _uint64(value: Any, name: str) -> int:
    """A fixed64 field: a JSON number or a decimal string (protobuf JSON accepts both)."""
    if value is None:
        return 0
    kind = type(value)
    if kind is str:
        text = value.strip()
        if text.isdigit() and text.isascii():
            # Python refuses int() of more than 4300 digits (ValueError); no uint64 has over 20.
            digits = text.lstrip("0") or "0"
            if len(digits) > len(str(_UINT64_MAX)):
                raise _Malformed(name, f"{value[:40]!r}... is out of the unsigned 64-bit range")
            n = int(digits)
        else:
            try:
                as_float = float(text)
            except ValueError:
                raise _Malformed(name, f"must be an unsigned 64-bit integer, got {value[:40]!r}") from None
            if not as_float.is_integer():
                raise _Malformed(name, f"must be an unsigned 64-bit integer, got {value[:40]!r}")
            n = int(as_float)
    elif kind is int:
        n = value
    elif kind is float and value.is_integer():
        n = int(value)
    else:
        raise _Malformed(name, f"must be an unsigned 64-bit integer, not {_kind(value)}")
    if not 0 <= n <= _UINT64_MAX:
        raise _Malformed(name, f"{n} is out of the unsigned 64-bit range")
    return n


def _int64(value: Any, name: str) -> int:
    kind = type(value)
    if kind is int:
        n = value
    elif kind is str:
        text = value.strip()
        try:
            n = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise _Malformed(name, f"must be a 64-bit integer, got {value[:40]!r}") from None
            if not as_float.is_integer():
                raise _Malformed(name, f"must be a 64-bit integer, got {value[:40]!r}") from None
            n = int(as_float)
    elif kind is float and value.is_integer():
        n = int(value)
    else:
        raise _Malformed(name, f"must be a 64-bit integer, not {_kind(value)}")
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise _Malformed(name, f"{n} is out of the signed 64-bit range")
    return n


def _double(value: Any, name: str) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if kind is str:
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _Malformed(name, f"must be a number, got {_kind(value) if kind is not str else repr(value[:40])}")


def _enum(value: Any, by_number: dict[int, str], by_name: dict[str, str], prefix: str, default: str,
          name: str) -> str:
    """An enum given as an integer (the OTLP rule) or as a name (``SPAN_KIND_INTERNAL``; the
    tracer's dialect). Unknown integers are unspecified (open enums); unknown names are errors."""
    if value is None:
        return default
    kind = type(value)
    if kind is int:
        return by_number.get(value, default)
    if kind is str:
        text = value.strip().upper()
        found = by_name.get(text) or by_name.get(prefix + text)
        # isascii: str.isdigit() is also true of "²" and other digits int() refuses; an enum number
        # of more than 10 digits is unknown anyway (and int() refuses more than 4300 digits).
        if found is None and text.isascii() and text.isdigit():
            digits = text.lstrip("0") or "0"
            return by_number.get(int(digits), default) if len(digits) <= 10 else default
        if found is None:
            raise _Malformed(name, f"unknown value {value[:40]!r}; expected one of {', '.join(by_number.values())}")
        return found
    raise _Malformed(name, f"must be an enum name or number, not {_kind(value)}")


def _id_json(value: Any, size: int, name: str) -> str:
    """A trace/span id: hex (OTLP/JSON), any letter case. Base64 (the plain protobuf JSON
    mapping) is accepted too: its lengths (24/12 chars) never collide with hex (32/16)."""
    if value is None or value == "":
        raise SpanInvalid(f"{name} is missing")
    if type(value) is not str:
        raise SpanInvalid(f"{name} must be a hex string, not {_kind(value)}")
    if len(value) == 2 * size and _HEX.issuperset(value):
        hex_id = value.lower()
    else:
        raw = None
        if len(value) == 4 * ((size + 2) // 3):
            try:
                raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                raw = None
        if raw is None or len(raw) != size:
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise SpanInvalid(f"{name} must be {2 * size} hex digits ({size} bytes), got {shown!r}")
        hex_id = raw.hex()
    if hex_id.count("0") == len(hex_id):
        raise SpanInvalid(f"{name} is all zeros (an invalid id)")
    return hex_id


def _bytes(value: Any, name: str) -> bytes:
    if type(value) is not str:
        raise _Malformed(name, f"must be a base64 string, not {_kind(value)}")
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed(name, "must be base64") from None
