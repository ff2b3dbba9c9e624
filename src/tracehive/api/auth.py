"""Bearer-key authentication and the read/write permission of each key kind.

Keys are looked up by their SHA-256 hash (the store compares hashes in constant time). A value
that does not have a key's shape (``model.keys``) is refused before any lookup. Keys that resolved
are cached briefly, by hash (the plaintext is never kept), so that a hot ingest path does not
query the key table per request; the cache holds only valid keys, so its size is bounded by the
keys that exist (and by ``_MAX_CACHED_KEYS``), whatever an attacker sends. The cache is per node:
a revocation made on another node or by the CLI takes effect within ``key_cache_seconds``.

An optional per-key rate limit (``rate_limit_per_second``, off by default) is a token bucket per
key id, checked on every resolution (HTTP and OTLP/gRPC): it counts requests, not events.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from starlette.requests import Request

from tracehive.model.errors import Forbidden, Overloaded, Unauthorized
from tracehive.model.keys import hash_key, looks_like_key
from tracehive.model.scope import Scope
from tracehive.settings import Settings
from tracehive.storage.base import Store

_MAX_CACHED_KEYS = 10_000


class RateLimited(Overloaded):
    """A key sent more requests than its rate allows. An ``Overloaded`` (retryable, Retry-After;
    UNAVAILABLE with RetryInfo over gRPC), answered over HTTP as 429."""

    status_code = 429
    error_code = "RATE_LIMITED"


class RateLimiter:
    """A token bucket per key id: ``burst`` requests at once, refilled at ``per_second``.

    Runs on the event loop only (no await inside), so it needs no lock. Its size is bounded by the
    number of valid keys: only resolved keys reach it. The buckets are per node (in memory): with
    N nodes behind a load balancer a key may send up to N times the rate, which the README says."""

    def __init__(self, per_second: float, burst: int = 0) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.per_second = per_second
        self.burst = float(burst if burst > 0 else max(1, math.ceil(per_second)))
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when counted)

    def admit(self, key_id: str, now: float | None = None) -> None:
        """Take one token for ``key_id`` or raise ``RateLimited`` saying when one will be there."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.per_second)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.per_second)
            raise RateLimited(
                f"rate limit of {self.per_second:g} requests per second for this key exceeded; retry in {wait} s",
                retry_after=max(1, wait),
            )
        self._buckets[key_id] = (tokens - 1.0, now)


def rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.rate_limit_per_second <= 0:
        return None
    return RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)


class KeyResolver:
    def __init__(self, store: Store, ttl_seconds: float, limiter: RateLimiter | None = None) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._limiter = limiter
        # SHA-256 hex of a valid key -> (expiry, scope); insertion-ordered, the oldest evicted.
        self._cache: dict[str, tuple[float, Scope]] = {}

    async def resolve(self, key: str) -> Scope | None:
        """The key's scope, or None for an unknown, revoked or malformed key. Raises
        ``RateLimited`` when a valid key is over its rate."""
        if not looks_like_key(key):
            return None
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            scope: Scope | None = hit[1]
        else:
            self._cache.pop(digest, None)
            scope = await self._store.resolve_key(key)
            if scope is not None:
                if len(self._cache) >= _MAX_CACHED_KEYS:
                    del self._cache[next(iter(self._cache))]
                self._cache[digest] = (now + self._ttl, scope)
        if scope is not None and self._limiter is not None:
            self._limiter.admit(scope.key_id)
        return scope

    @property
    def cached(self) -> int:
        return len(self._cache)

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


def _token_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


async def require_operator_token(request: Request, token: str, *, closed: str, not_a_key: str) -> None:
    """Pass the bearer of ``token`` (a server-wide token such as the metrics or admin token,
    compared in constant time); anyone else is answered as on every route (401 for an unknown or
    revoked key, 403 for an ingestion key), and a valid project key gets 403 too: ``closed`` when
    no token is configured, ``not_a_key`` otherwise."""
    presented = bearer_key(request)  # 401 when missing or malformed, like every route
    if token and hmac.compare_digest(_token_digest(presented), _token_digest(token)):
        return
    await authenticate(request, write=False)
    raise Forbidden(not_a_key if token else closed)
