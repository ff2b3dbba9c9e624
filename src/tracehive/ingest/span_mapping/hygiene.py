"""Value hygiene (package docstring, "Bounds and hygiene"): attribute values made JSON-safe
(``_clean``, with the common case inline in ``_clean_attrs``), and strict JSON parsing (orjson first,
the stdlib where they could differ) for the attributes a convention says hold JSON."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

MAX_DEPTH = 32
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_isfinite = math.isfinite


def _clean(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of an attribute value (see "Bounds and hygiene")."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _clean_str(value)
    if value is None or kind is bool:
        return value
    if kind is float and math.isfinite(value):
        return value
    if kind is int and _INT_MIN <= value <= _INT_MAX:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, int):
        return int(value) if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= MAX_DEPTH:
            return _too_deep(value)
        if isinstance(value, Mapping):
            return {_clean_key(k): _clean(v, depth + 1) for k, v in value.items()}
        return [_clean(v, depth + 1) for v in value]
    return _clean_str(str(value))


def _clean_attrs(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """``{_clean_key(k): _clean(v)}``, with the common case (ASCII ``str`` keys and values) inline."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if type(k) is not str or not k.isascii():
            k = _clean_key(k)
        kind = type(v)
        if kind is str:
            if not v.isascii():
                v = _clean(v)
        elif kind is int:
            if not _INT_MIN <= v <= _INT_MAX:
                v = _clean(v)
        elif kind is not bool and v is not None and not (kind is float and _isfinite(v)):
            v = _clean(v)
        out[k] = v
    return out


def _too_deep(value: Any) -> str:
    try:
        return _clean_str(json.dumps(value, default=str))
    except (ValueError, TypeError, RecursionError):
        return f"<value nested deeper than {MAX_DEPTH} levels>"


def _clean_key(key: Any) -> str:
    return _clean_str(key if isinstance(key, str) else str(key))


def _clean_str(text: str) -> str:
    if text.isascii():
        return str(text)
    try:
        text.encode("utf-8")
        return str(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_HUGE = 2.0**63


class _Unsure(Exception):
    """orjson's reading of a document may differ from the stdlib's: let the stdlib decide."""


def _clean_parsed(value: Any, depth: int = 0) -> Any:
    """``_clean`` of what orjson parsed (only dict, list, str, int, finite float, bool, None), in
    one pass that also raises ``_Unsure`` past MAX_DEPTH (refused either way) and on a float of
    2**63 or more (perhaps an integer past 64 bits, which the stdlib keeps exact)."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() else _clean_str(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _Unsure
        return {(k if k.isascii() else _clean_str(k)): _clean_parsed(v, depth + 1) for k, v in value.items()}
    if kind is list:
        if depth >= MAX_DEPTH:
            raise _Unsure
        return [_clean_parsed(v, depth + 1) for v in value]
    if kind is float:
        if -_HUGE < value < _HUGE:
            return value
        raise _Unsure
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    return value  # True, False, None


def _parse_json(text: str) -> tuple[bool, Any]:
    """(True, JSON-safe value) when ``text`` is strict JSON nesting at most MAX_DEPTH levels."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["-0123456789tfn':
        return False, None
    # orjson first: about 4x faster on the prompt/completion blobs LLM spans carry. The stdlib
    # decides what orjson refuses (lone surrogates, nesting past 1024 levels) and whatever
    # _clean_parsed is unsure of: the result is the same either way.
    try:
        return True, _clean_parsed(orjson.loads(stripped))
    except (orjson.JSONDecodeError, _Unsure):
        pass
    try:
        value = json.loads(stripped, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None
    if _depth_exceeds(value, MAX_DEPTH):
        return False, None
    return True, _clean(value)


def _json_value(value: Any) -> Any:
    """A convention attribute that is JSON text (or already structured): the parsed value, else None."""
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, str):
        ok, parsed = _parse_json(value)
        if ok:
            return parsed
    return None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
