"""Decoding request bodies at the edge: size cap, media type, JSON, nesting depth, schema.

Every failure is an ``ApiError`` that names what is wrong (and where), never a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracehive.model.error_paths import error_message, format_location
from tracehive.model.errors import (
    MalformedBody,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from tracehive.settings import Settings

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class BodyBudget:
    """Request-body bytes held by the requests being handled now (``InflightBodyLimit``), in all
    and per key (keyed by a hash of the Authorization header, so no key is kept in memory)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.by_key: dict[bytes, int] = {}

    def hold(self, key: bytes, size: int) -> None:
        self.in_flight += size
        self.by_key[key] = self.by_key.get(key, 0) + size

    def release(self, key: bytes, size: int) -> None:
        if not size:
            return
        self.in_flight -= size
        left = self.by_key.get(key, 0) - size
        if left > 0:
            self.by_key[key] = left
        else:
            self.by_key.pop(key, None)


# The share of the budget one key may take with a new request while other keys hold bytes too.
KEY_SHARE = 0.5
# How far past the budget the requests already admitted may go before one is refused halfway.
CONTINUING_HEADROOM = 2


class InflightBodyLimit:
    """ASGI middleware: bounds on the request-body bytes held by the requests being handled, and
    on how slowly a body may arrive.

    A body, and everything parsed from it, stays in memory until its write has committed; the
    writer queue bounds jobs, not bytes, so without this many large batches at once could exhaust
    memory. Bytes are counted as they arrive (never from the declared ``Content-Length``, which a
    slow sender could use to reserve the budget without sending anything) and released when the
    response has been sent. A request whose first bytes do not fit is refused with 503 +
    Retry-After; so is one that would take a key past ``KEY_SHARE`` of the budget while other keys
    hold bytes, so one key cannot starve the others. A request already admitted may take the held
    bytes up to ``CONTINUING_HEADROOM`` times the budget before it is refused: requests refused
    halfway would waste their work and could starve each other (every admitted body waiting for
    room that only the others' completion frees), so memory is bounded by that multiple instead.
    When nothing else is in flight a request is always admitted, so any body within
    ``max_body_bytes`` gets through eventually. (Gzip bodies count their received size; their
    inflated size is capped per request by ``max_body_bytes``.)

    A body must also keep arriving: after ``grace`` seconds, at least ``min_rate`` bytes per second
    on average, else the request is answered 408 and its bytes released (slow uploads cannot hold
    the budget, a connection or a worker for long).
    """

    def __init__(self, app: ASGIApp, limit: int, budget: BodyBudget | None = None, *,
                 min_rate: int = 0, grace: float = 10.0) -> None:
        self.app = app
        self.limit = limit
        self.min_rate = min_rate
        self.grace = grace
        # Shared with whoever reports it (the app's metrics); touched only on the event loop.
        self.budget = budget or BodyBudget()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.limit <= 0 and self.min_rate <= 0):
            await self.app(scope, receive, send)
            return
        key = _key_of(scope)
        held = 0
        received = 0
        started: float | None = None
        body_done = False

        async def counted_receive() -> Message:
            nonlocal held, received, started, body_done
            if body_done:
                return await receive()  # e.g. waiting for a disconnect after the body
            loop = asyncio.get_running_loop()
            if started is None:
                started = loop.time()
            if self.min_rate > 0:
                deadline = started + self.grace + received / self.min_rate
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    raise RequestTimeout(
                        f"the request body arrived slower than {self.min_rate} bytes per second "
                        f"({received} bytes in {loop.time() - started:.0f} s)"
                    ) from None
            else:
                message = await receive()
            if message["type"] != "http.request":
                return message
            size = len(message.get("body", b""))
            received += size
            body_done = not message.get("more_body", False)
            if size and self.limit > 0:
                self._admit(key, size, held)
                held += size
            return message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.budget.release(key, held)

    def _admit(self, key: bytes, size: int, own: int) -> None:
        """Hold ``size`` more bytes for a request already holding ``own``; refuse if they do not
        fit (a new request: in the budget and in the key's share while other keys hold bytes; an
        admitted one: in the headroom), unless no other request holds any."""
        budget = self.budget
        others = budget.in_flight - own
        if others:
            cap = self.limit * (CONTINUING_HEADROOM if own else 1)
            if budget.in_flight + size > cap:
                raise Overloaded(
                    f"the server is busy with {others} bytes of other request bodies (limit {self.limit}); "
                    "retry shortly"
                )
            key_held = budget.by_key.get(key, 0)
            if not own and key_held < budget.in_flight and key_held + size > self.limit * KEY_SHARE:
                raise Overloaded(
                    f"this key already sends {key_held} bytes of request bodies, its share of the "
                    f"server's {self.limit}; retry shortly"
                )
        budget.hold(key, size)


def _key_of(scope: Scope) -> bytes:
    """Who a body's bytes count against: a digest of the Authorization header (b"" without one)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return hashlib.blake2b(value, digest_size=16).digest()
    return b""


# curl -d sends x-www-form-urlencoded by default; its body is still the JSON the user typed.
_JSON_COMPATIBLE = {"", "application/json", "text/plain", "application/x-www-form-urlencoded"}


# Compressed bodies are accepted on the OTLP routes only (``api.otlp``); here one would fail to
# parse as "not valid UTF-8 at offset 1", which does not say what is wrong.
_COMPRESSIONS = {"gzip", "x-gzip", "deflate", "br", "zstd", "compress", "x-compress"}


def check_media_type(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "")
    compressed = sorted({c.strip().lower() for c in encoding.split(",")} & _COMPRESSIONS)
    if compressed:
        raise UnsupportedMediaType(
            f"Content-Encoding {compressed[0]} is not supported on this route; send the JSON uncompressed"
        )
    ctype = request.headers.get("content-type")
    if ctype is None:
        return
    main = ctype.split(";", 1)[0].strip().lower()
    if main not in _JSON_COMPATIBLE and not main.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {main}")


async def read_json(request: Request, settings: Settings) -> Any:
    return parse_json(await read_json_bytes(request, settings), settings.max_json_depth)


async def read_json_bytes(request: Request, settings: Settings) -> bytes:
    """The body of a JSON request, its media type and size checked, not parsed yet."""
    check_media_type(request)
    return await read_body(request, settings.max_body_bytes)


def parse_json(body: bytes, max_depth: int) -> Any:
    if not body.strip():
        raise MalformedBody("request body is empty; a JSON document is required")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson stops at 1024 levels by itself
            raise ValidationFailed(f"JSON nesting exceeds the limit of {max_depth} levels") from None
        raise MalformedBody(_json_error(body, exc)) from None
    check_depth(data, max_depth)
    return data


def _json_error(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Where the document breaks: the offset of a bad UTF-8 byte (orjson always says char 0), or
    the text just before the parser stopped, which shows the field (e.g. ``"duration":NaN``)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"request body is not valid UTF-8: invalid byte 0x{body[bad.start]:02x} at offset {bad.start}"
    pos = exc.pos if isinstance(exc.pos, int) else 0
    return f"request body is not valid JSON: {exc}, near {text[max(0, pos - 40) : pos + 10]!r}"


def check_batch_size(data: Any, key: str, limit: int) -> None:
    """Refuse oversized batches before validating them (validation of a huge list is the cost
    the cap exists to avoid)."""
    if isinstance(data, dict):
        items = data.get(key)
        if isinstance(items, list) and len(items) > limit:
            raise PayloadTooLarge(f"{key}: batch of {len(items)} events exceeds the limit of {limit}")


def check_depth(data: Any, limit: int) -> None:
    """Reject documents nested deeper than ``limit`` containers. The walk stops at the limit, so a
    hostile 10,000-deep document costs no more than a legal one."""
    if isinstance(data, (dict, list)) and not _within(data, limit):
        raise ValidationFailed(f"JSON nesting exceeds the limit of {limit} levels at {_path_to_depth(data, limit)}")


def _within(node: Any, remaining: int) -> bool:
    if remaining == 0:
        return False
    for value in node.values() if type(node) is dict else node:
        kind = type(value)
        if (kind is dict or kind is list) and value and not _within(value, remaining - 1):
            return False
    return True


def _path_to_depth(data: Any, limit: int) -> str:
    """The location of the first too-deep container, for the error message."""
    path: list[str | int] = []

    def walk(node: Any, depth: int) -> bool:
        if depth > limit:
            return True
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, (dict, list)) and value:
                path.append(key)
                if walk(value, depth + 1):
                    return True
                path.pop()
        return False

    walk(data, 1)
    return format_location(path[: min(len(path), 8)]) + ("..." if len(path) > 8 else "")


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def validation_failed(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> ValidationFailed:
    details = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        details.append({"field": format_location(prefix + tuple(err["loc"])), "message": error_message(err)})
    first = details[0] if details else {"field": "body", "message": "invalid"}
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return ValidationFailed(f"{first['field']}: {first['message']}{more}", details=details)
