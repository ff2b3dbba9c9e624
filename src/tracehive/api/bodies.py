"""Decoding request bodies at the edge: size cap, media type, JSON, nesting depth, schema.

Every failure is an ``ApiError`` that names what is wrong (and where), never a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracehive.model.errors import (
    MalformedBody,
    Overloaded,
    PayloadTooLarge,
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
    """Request-body bytes reserved by the requests being handled now (``InflightBodyLimit``)."""

    def __init__(self) -> None:
        self.in_flight = 0


class InflightBodyLimit:
    """ASGI middleware: a bound on the request-body bytes held by the requests being handled.

    A body, and everything parsed from it, stays in memory until its write has committed; the
    writer queue bounds jobs, not bytes, so without this many large batches at once could exhaust
    memory. A request's declared ``Content-Length`` is reserved when the route first reads the body
    (after authentication, before a byte is parsed) and refused with 503 + Retry-After if it does
    not fit; a body sent without a length is counted chunk by chunk as it arrives. The bytes are
    released when the response has been sent. When nothing else is in flight a request is always
    admitted, so any body within ``max_body_bytes`` gets through eventually. (Gzip bodies count
    their received size; their inflated size is capped per request by ``max_body_bytes``.)
    """

    def __init__(self, app: ASGIApp, limit: int, budget: BodyBudget | None = None) -> None:
        self.app = app
        self.limit = limit
        # Shared with whoever reports it (the app's metrics); touched only on the event loop.
        self.budget = budget or BodyBudget()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)  # None: absent (chunked) or not a number
        held = 0

        async def counted_receive() -> Message:
            nonlocal held
            if declared is not None:
                if not held and declared:
                    self._admit(declared, held)
                    held = declared
                return await receive()
            message = await receive()
            size = len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if size:
                self._admit(size, held)
                held += size
            return message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.budget.in_flight -= held

    def _admit(self, size: int, own: int) -> None:
        """Reserve ``size`` more bytes for a request already holding ``own``; refuse if they do not
        fit, unless no other request holds any."""
        others = self.budget.in_flight - own
        if others and self.budget.in_flight + size > self.limit:
            raise Overloaded(
                f"the server is busy with {others} bytes of other request bodies (limit {self.limit}); retry shortly"
            )
        self.budget.in_flight += size


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


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
    check_media_type(request)
    body = await read_body(request, settings.max_body_bytes)
    if not body.strip():
        raise MalformedBody("request body is empty; a JSON document is required")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson stops at 1024 levels by itself
            raise ValidationFailed(f"JSON nesting exceeds the limit of {settings.max_json_depth} levels") from None
        raise MalformedBody(_json_error(body, exc)) from None
    check_depth(data, settings.max_json_depth)
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


def format_location(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def validation_failed(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> ValidationFailed:
    details = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = format_location(prefix + tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] in ("model_type", "dict_type", "model_attributes_type"):
            message = "must be a JSON object"
        elif err["type"] == "missing":
            message = "field required"
        details.append({"field": where, "message": message})
    first = details[0] if details else {"field": "body", "message": "invalid"}
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return ValidationFailed(f"{first['field']}: {first['message']}{more}", details=details)
