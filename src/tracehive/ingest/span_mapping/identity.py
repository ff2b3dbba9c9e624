"""Identity: the namespaces, derived event ids, the session a span belongs to, explicit UUIDs
(event id, parent), and the checks of a span's raw ids and timestamps."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from hashlib import sha1 as _sha1
from typing import Any

from tracehive.ingest.span_mapping.hygiene import _nonempty_str
from tracehive.model.ids import is_uuid

_NS_MAX = 2**63 - 1
_HEX_RE = re.compile("[0-9a-f]+")

SPAN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "tracehive:otlp:span")
SESSION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "tracehive:otlp:session")

_SESSION_KEYS = (
    "honeyhive.session_id",
    "traceloop.association.properties.session_id",
    "honeyhive_session_id",
)
_SESSION_FALLBACK_KEYS = ("gen_ai.conversation.id", "session.id")
_EVENT_ID_KEYS = ("honeyhive_event_id", "honeyhive.event_id")
_PARENT_KEYS = ("honeyhive.parent_id", "traceloop.association.properties.parent_id")
_SESSION_NAME_KEYS = ("honeyhive.session_name", "honeyhive_session_name")


_SPAN_NAMESPACE_BYTES = SPAN_NAMESPACE.bytes


def _span_event_id(trace_id: str, span_id: str) -> str:
    """``str(uuid.uuid5(SPAN_NAMESPACE, trace_id + span_id))``, without the intermediate UUID."""
    digest = bytearray(_sha1(_SPAN_NAMESPACE_BYTES + (trace_id + span_id).encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _session(attrs: dict[str, Any], consumed: set[str], trace_id: str) -> tuple[str, bool, str | None]:
    """(session id, derived from the trace?, free-form value the id was derived from)."""
    keys = _SESSION_KEYS + _SESSION_FALLBACK_KEYS
    for key in _SESSION_KEYS:
        value = attrs.get(key)
        if is_uuid(value):
            session_id = value.lower()
            _consume_equal(attrs, consumed, keys, session_id)
            return session_id, False, None
    for key in keys:
        value = attrs.get(key)
        if key in _SESSION_FALLBACK_KEYS and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not _nonempty_str(value):
            continue
        if is_uuid(value):
            session_id = value.lower()
            _consume_equal(attrs, consumed, keys, session_id)
            return session_id, False, None
        # A free-form id: derive a UUID from it and leave the attribute in metadata.attributes,
        # since the stored id does not show it.
        return str(uuid.uuid5(SESSION_NAMESPACE, value)), False, value
    return str(uuid.UUID(hex=trace_id)), True, None


def _consume_equal(attrs: dict[str, Any], consumed: set[str], keys: Iterable[str], value: str) -> None:
    for key in keys:
        candidate = attrs.get(key)
        if isinstance(candidate, str) and (candidate == value or candidate.lower() == value):
            consumed.add(key)


def _explicit_uuid(attrs: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, list[str]] | None:
    for key in keys:
        value = attrs.get(key)
        if is_uuid(value):
            chosen = value.lower()
            same = [k for k in keys if isinstance(attrs.get(k), str) and attrs[k].lower() == chosen]
            return chosen, same
    return None


def _hex_id(value: Any, length: int) -> str | None:
    if not isinstance(value, str) or len(value) != length:
        return None
    lowered = value.lower()
    if _HEX_RE.fullmatch(lowered) is None or not lowered.strip("0"):  # not hex, or all zero
        return None
    return lowered


def _is_zero_hex(value: str) -> bool:
    return bool(value) and all(c == "0" for c in value)


def _nanos(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value)
    if not isinstance(value, int) or value <= 0 or value > _NS_MAX:
        return None
    return int(value)
