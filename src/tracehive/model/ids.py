"""Identifier rules (contract 5.2): ids are UUID strings, stored lower-case."""

from __future__ import annotations

import re
import uuid

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: object) -> bool:
    """True for a canonical hyphenated UUID string, in any letter case."""
    return isinstance(value, str) and _UUID_RE.match(value) is not None


def normalize_id(value: str) -> str:
    """Lower-case a UUID so that ids compare equal whatever case the client sent."""
    return value.lower()
