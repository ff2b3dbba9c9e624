"""REST event batches decoded off the event loop (issue #15).

Parsing, validating and normalising a 100-event REST batch is ~25 us of Python per event
(``bench/store_writes.py --stages``). On the event loop it holds the GIL that the writer thread
needs between its SQLite steps, so the one serial stage of a write waited for the parsing of the
next requests. Bodies past ``INLINE_BODY_BYTES`` are decoded in the decode pool's worker
processes, as OTLP exports are; the events come back as one JSON document (``event_transfer``) and
are written exactly as before.

A body the worker cannot decode is decoded again on the loop, which raises the error the client
gets: one code path makes every 4xx, so its body is the same whether a worker saw it first or not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from tracehive.api.bodies import check_batch_size, parse_json, validate
from tracehive.ingest.decode_pool import DecodePool
from tracehive.ingest.event_transfer import pack, unpack
from tracehive.ingest.normalize import event_from_request, session_from_request
from tracehive.ingest.otlp_ingest import INLINE_BODY_BYTES
from tracehive.model.event import Event
from tracehive.model.wire import PostEventBatchRequest, SessionEventBatchRequest, SessionProperties

T = TypeVar("T")


def session_batch(body: bytes, session_id: str, now: int, max_depth: int, max_events: int) -> list[Event]:
    """The events of a ``POST /v1/sessions/{id}/events/batch`` body (raises the route's 4xx)."""
    data: Any = parse_json(body, max_depth)
    check_batch_size(data, "events", max_events)
    batch = validate(SessionEventBatchRequest, data)
    return [event_from_request(e, session_id=session_id, now=now) for e in batch.events]


def event_batch(body: bytes, now: int, max_depth: int, max_events: int) -> tuple[Event | None, list[Event]]:
    """The session made for it (``single_session``) and the events of a ``POST /v1/events/batch``
    body (raises the route's 4xx)."""
    data: Any = parse_json(body, max_depth)
    check_batch_size(data, "events", max_events)
    batch = validate(PostEventBatchRequest, data)
    session = None
    if batch.single_session:
        session = session_from_request(batch.session_properties or SessionProperties(), now=now)
    sid = None if session is None else session.session_id
    return session, [event_from_request(e, session_id=sid, now=now) for e in batch.events]


async def decoded(pool: DecodePool, decode: Callable[..., T], body: bytes, *args: Any) -> T:
    """``decode(body, *args)``: in a worker for a large body (when the pool has workers), else
    (and for any body a worker could not decode) on the loop. ``decode`` is a module-level
    function of plain arguments, so that it pickles."""
    if len(body) > INLINE_BODY_BYTES and pool.processes > 0:
        packed = await pool.run(functools.partial(_decoded_or_none, decode, body, *args))
        if packed is not None:
            return cast(T, _unpacked(packed))
    return decode(body, *args)


def _decoded_or_none(decode: Callable[..., Any], body: bytes, *args: Any) -> Any:
    """In the worker: the result, packed (``_packed``), or None for a body that raises. The error
    itself is not sent back: an exception that failed to unpickle in the server would break the
    whole pool."""
    try:
        return _packed(decode(body, *args))
    except Exception:  # noqa: BLE001 - any failure: the server decodes it again and answers
        return None


def _packed(result: list[Event] | tuple[Event | None, list[Event]]) -> Any:
    """A decoder's result with its events packed for the trip back (``event_transfer``)."""
    if isinstance(result, tuple):
        session, events = result
        return None if session is None else pack([session]), pack(events)
    return pack(result)


def _unpacked(packed: Any) -> list[Event] | tuple[Event | None, list[Event]]:
    """The inverse of ``_packed``."""
    if isinstance(packed, tuple):
        session, events = packed
        return None if session is None else unpack(session)[0], unpack(events)
    return unpack(packed)
