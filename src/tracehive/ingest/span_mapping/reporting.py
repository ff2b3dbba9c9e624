"""How a span that could not be mapped is described in ``MappedSpans.rejected``: bounded, clean
reprs and a label naming the span."""

from __future__ import annotations

from typing import Any

from tracehive.ingest.span_mapping.hygiene import _clean_str


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__}>"
    text = _clean_str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(span: Any, position: int | None) -> str:
    where = f"span #{position}" if position is not None else "span"
    try:
        name = getattr(span, "name", None)
        trace_id = getattr(span, "trace_id", None)
        span_id = getattr(span, "span_id", None)
    except Exception:  # noqa: BLE001
        return where
    details = []
    if isinstance(name, str):
        details.append(f"name {_short(name, 60)}")
    if isinstance(trace_id, str):
        details.append(f"trace {_short(trace_id, 40)}")
    if isinstance(span_id, str):
        details.append(f"span {_short(span_id, 24)}")
    return f"{where} ({', '.join(details)})" if details else where
