"""The key cache: only keys that resolved, by hash, bounded; junk is refused before any lookup."""

from __future__ import annotations

import secrets
import string

from starlette.testclient import TestClient

from tests.helpers import Api, assert_error
from tracehive.api.auth import KeyResolver
from tracehive.model.keys import MAX_KEY_LENGTH, hash_key, looks_like_key


def test_only_key_shaped_values_are_looked_up() -> None:
    alnum = string.ascii_letters + string.digits
    good = "hh_" + "".join(secrets.choice(alnum) for _ in range(24)) + "_" + "a" * 64
    assert looks_like_key(good)
    assert looks_like_key("hh_ingst_" + good[3:])
    for junk in ("", "x", good + "a", good + "\n", good[:-1], "hh_" + "a" * 200, "Bearer " + good, "A" * 2_000_000):
        assert not looks_like_key(junk), junk[:40]
    assert MAX_KEY_LENGTH == len("hh_ingst_" + good[3:])


def test_junk_and_unknown_keys_never_enter_the_cache(client: TestClient, keys: dict[str, str]) -> None:
    resolver: KeyResolver = client.app.state.keys  # type: ignore[attr-defined]
    for i in range(300):
        junk = f"junk-{i}-" + "x" * 20_000
        assert_error(Api(client, junk).get("/v1/whoami"), 401)
    unknown = "hh_" + "b" * 24 + "_" + "c" * 64  # key-shaped, not minted
    assert_error(Api(client, unknown).get("/v1/whoami"), 401)
    assert resolver.cached == 0
    assert Api(client, keys["a"]).get("/v1/whoami").status_code == 200
    assert Api(client, keys["b"]).get("/v1/whoami").status_code == 200
    assert resolver.cached == 2
    # Keyed by hash: the plaintext key is nowhere in the cache.
    cache = resolver._cache  # noqa: SLF001 - the test inspects what is kept in memory
    assert set(cache) == {hash_key(keys["a"]), hash_key(keys["b"])}
    assert keys["a"] not in repr(cache) and keys["b"] not in repr(cache)
