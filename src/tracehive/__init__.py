"""tracehive: a self-hosted trace backend for LLM applications.

It speaks the HoneyHive data-plane API (sessions and events) so that existing clients work
unchanged once ``HH_API_URL`` points at it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy, so that ``import tracehive`` (the server) does not import httpx and the client.
    if name in ("Client", "AsyncClient"):
        from tracehive import client

        return getattr(client, name)
    raise AttributeError(f"module 'tracehive' has no attribute {name!r}")
