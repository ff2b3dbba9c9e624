"""Bearer-key authentication and the read/write permission of each key kind.

Keys are looked up by their SHA-256 hash (the store compares hashes in constant time). Resolved
keys are cached briefly so that a hot ingest path does not query the key table per request; a
revocation made by another process takes effect within ``key_cache_seconds``.
"""

from __future__ import annotations

import time

from starlette.requests import Request

from tracehive.model.errors import Forbidden, Unauthorized
from tracehive.model.scope import Scope
from tracehive.storage.base import Store

_MAX_CACHED_KEYS = 10_000


class KeyResolver:
    def __init__(self, store: Store, ttl_seconds: float) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Scope | None]] = {}

    async def resolve(self, key: str) -> Scope | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        scope = await self._store.resolve_key(key)
        if len(self._cache) >= _MAX_CACHED_KEYS:
            self._cache.clear()  # bounded: random keys from an attacker cannot grow it forever
        self._cache[key] = (now + self._ttl, scope)
        return scope

    def forget(self) -> None:
        self._cache.clear()


def bearer_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <api key>'")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("malformed Authorization header; expected 'Bearer <api key>'")
    return key


async def authenticate(request: Request, *, write: bool) -> Scope:
    """The caller's scope. Ingestion keys may only write (contract 7.1)."""
    resolver: KeyResolver = request.app.state.keys
    scope = await resolver.resolve(bearer_key(request))
    if scope is None:
        raise Unauthorized("invalid or revoked API key")
    if not write and not scope.can_read:
        raise Forbidden("this ingestion key may only write; use a project key to read or delete")
    return scope
