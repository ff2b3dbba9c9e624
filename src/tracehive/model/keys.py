"""API keys: generation, shape and hashing. Only hashes are ever stored.

Shapes (contract 7.1): a project key is ``hh_`` + id + ``_`` + secret; an ingestion key is
``hh_ingst_`` + 24 alphanumerics + ``_`` + 64 characters of ``[A-Za-z0-9_-]``, exactly what the
HoneyHive SDK checks for ``HH_INGESTION_API_KEY``. The id part doubles as the public key id used
by ``tracehive keys list`` and ``revoke``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from tracehive.model.scope import KeyKind

_ALNUM = string.ascii_letters + string.digits
_SECRET_CHARS = _ALNUM + "_-"
KEY_ID_LENGTH = 24
SECRET_LENGTH = 64
INGESTION_KEY_RE = re.compile(r"^hh_ingst_[A-Za-z0-9]{24}_[A-Za-z0-9_-]{64}$")
PROJECT_KEY_RE = re.compile(r"^hh_[A-Za-z0-9]{24}_[A-Za-z0-9_-]{64}$")


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def generate_key(kind: KeyKind) -> tuple[str, str]:
    """Return (key_id, full key)."""
    key_id = _random(_ALNUM, KEY_ID_LENGTH)
    secret = _random(_SECRET_CHARS, SECRET_LENGTH)
    prefix = "hh_ingst_" if kind is KeyKind.INGESTION else "hh_"
    return key_id, f"{prefix}{key_id}_{secret}"


# The longest key (an ingestion key): anything longer is no key, whatever it holds.
MAX_KEY_LENGTH = len("hh_ingst_") + KEY_ID_LENGTH + 1 + SECRET_LENGTH


def looks_like_key(value: str) -> bool:
    """True when ``value`` has the shape of a key of either kind (checked before any lookup)."""
    return len(value) <= MAX_KEY_LENGTH and bool(PROJECT_KEY_RE.fullmatch(value) or INGESTION_KEY_RE.fullmatch(value))


def hash_key(key: str) -> str:
    """SHA-256 is enough for 64 random characters: no dictionary to attack, unlike passwords."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
