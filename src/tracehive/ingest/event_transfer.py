"""Events sent from a decode worker to the server as one JSON document (issue #15).

A decode worker's events used to come back pickled: a pickle of nested dicts costs the worker
about 9 us a span to write and the server about 10-16 us to read, and the server's share is
taken from the core its event loop and writer thread share. The same events as one orjson
document cost about a third of that on each side (``bench/mapping.py --transfer``).

The round trip is exact for what the decoders produce: every value in an event is JSON already
(span attributes pass ``span_mapping.hygiene._clean``, which also turns non-finite floats into
text; REST bodies are JSON), and the one tuple field, ``aliases``, is restored. Anything orjson
will not write as it is (an int past 64 bits, a non-``str`` key, a lone surrogate) makes ``pack``
hand back the events themselves, which then travel pickled as before.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

import orjson

from tracehive.model.event import Event

_FIELDS = tuple(f.name for f in fields(Event))
_ALIASES = _FIELDS.index("aliases")
_row = attrgetter(*_FIELDS)

Packed = bytes | list[Event]
"""``pack``'s result: a JSON document of event rows, or the events themselves."""


def pack(events: list[Event]) -> Packed:
    """``events`` as a JSON array of rows (each the event's fields in declaration order)."""
    try:
        return orjson.dumps([_row(e) for e in events])
    except (orjson.JSONEncodeError, TypeError):
        return events


def unpack(packed: Packed) -> list[Event]:
    """The events ``pack`` was given."""
    if not isinstance(packed, bytes):
        return packed
    events = []
    for row in orjson.loads(packed):
        row[_ALIASES] = tuple(row[_ALIASES])
        events.append(Event(*row))
    return events
