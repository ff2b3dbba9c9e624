"""Who is asking: the org/workspace/project an API key belongs to, and what it may do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class KeyKind(str, Enum):
    PROJECT = "project"
    INGESTION = "ingestion"


@dataclass(frozen=True, slots=True)
class Scope:
    org_id: str
    workspace_id: str
    project_id: str
    project_name: str
    key_kind: KeyKind = KeyKind.PROJECT
    key_id: str = ""
    # The project's redaction rules (ingest/redaction.py), applied to what this key writes.
    redact: tuple[str, ...] = ()

    @property
    def can_read(self) -> bool:
        return self.key_kind is KeyKind.PROJECT
