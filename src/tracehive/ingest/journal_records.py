"""One OTLP journal record on disk and reading records back: ``Record`` (an acknowledged request:
its scope, wire form, default source and body) framed as ``length | crc32 | payload`` (see
``ingest.journal`` for the layout), ``Position`` (a segment and an offset), and the readers that
stop at the first torn or corrupt record."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from tracehive.model.scope import KeyKind, Scope

HEADER = struct.Struct("<II")  # record length, crc32 of the payload
META_LENGTH = struct.Struct("<I")
# A record larger than this is corruption (bodies are capped by max_body_bytes well below it).
MAX_RECORD_BYTES = 1 << 30


class CorruptRecord(Exception):
    """A record that cannot be decoded although its CRC matched (a bug, or a foreign file)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One acknowledged OTLP request, as much of it as is needed to write it later."""

    scope: Scope
    protobuf: bool
    default_source: str | None
    body: bytes

    def frame(self) -> tuple[bytes, bytes]:
        """The framed record as (header + meta, body): written together with one ``writev``, so
        that the body (up to ``max_body_bytes``) is never copied."""
        s = self.scope
        meta = orjson.dumps({
            "org": s.org_id, "workspace": s.workspace_id, "project": s.project_id, "project_name": s.project_name,
            "key_kind": s.key_kind.value, "key_id": s.key_id, "protobuf": self.protobuf, "source": self.default_source,
        })
        prefix = META_LENGTH.pack(len(meta)) + meta
        crc = zlib.crc32(self.body, zlib.crc32(prefix))  # the CRC of prefix + body
        return HEADER.pack(len(prefix) + len(self.body), crc) + prefix, self.body

    def encode(self) -> bytes:
        """The framed record: header, then payload."""
        return b"".join(self.frame())

    @classmethod
    def decode(cls, payload: bytes) -> Record:
        try:
            (meta_length,) = META_LENGTH.unpack_from(payload)
            meta = orjson.loads(payload[META_LENGTH.size: META_LENGTH.size + meta_length])
            scope = Scope(meta["org"], meta["workspace"], meta["project"], meta["project_name"],
                          KeyKind(meta["key_kind"]), meta["key_id"])
            body = payload[META_LENGTH.size + meta_length:]
            return cls(scope, bool(meta["protobuf"]), meta["source"], body)
        except (struct.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord(f"undecodable journal record: {type(exc).__name__}") from None


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the journal: a segment number and a byte offset in it."""

    segment: int
    offset: int


def read_record(data: bytes | memoryview, offset: int) -> tuple[bytes, int] | None:
    """The payload of the record at ``offset`` and the offset after it; ``None`` when the bytes
    there are not a whole record with a matching CRC (a torn or corrupt tail)."""
    if offset + HEADER.size > len(data):
        return None
    length, crc = HEADER.unpack_from(data, offset)
    start = offset + HEADER.size
    end = start + length
    if length > MAX_RECORD_BYTES or end > len(data):
        return None
    payload = bytes(data[start:end])
    if zlib.crc32(payload) != crc:
        return None
    return payload, end


def valid_length(path: Path) -> int:
    """How many leading bytes of a segment file are whole, CRC-checked records."""
    data = path.read_bytes()
    offset = 0
    while (found := read_record(data, offset)) is not None:
        offset = found[1]
    return offset
