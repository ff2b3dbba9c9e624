"""Storage behind one narrow contract (``Store``); one package per backend."""

from tracehive.storage.base import ApiKeyRecord, Project, Store

__all__ = ["ApiKeyRecord", "Project", "Store"]
