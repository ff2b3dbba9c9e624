"""What every backend's reads share about parent links (contract: ``children_ids`` are complete)."""

from __future__ import annotations


def complete_children(stored: list[str], found: list[str]) -> list[str]:
    """Ids the client sent (in its order) followed by stored children it did not mention."""
    seen = set(stored)
    return stored + [c for c in found if c not in seen]
