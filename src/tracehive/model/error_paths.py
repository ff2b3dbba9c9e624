"""How a validation failure is spelled, by the server (``api/bodies.py``) and by the Python
client (``client/_base.py``) alike: the same body gives the same ``field: message`` on both sides.

A field path is written as in JavaScript: ``events[3].metadata.cost``, ``children_ids[1]``; an
empty path is ``body``. Messages are pydantic's, without its ``Value error, `` prefix, and with our
words for the cases the contract names (unknown field, not an object, required).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def format_location(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def error_message(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error (an item of ``ValidationError.errors()``)."""
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind == "missing":
        return "field required"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")
