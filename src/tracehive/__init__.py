"""tracehive: a self-hosted trace backend for LLM applications.

It speaks the HoneyHive data-plane API (sessions and events) so that existing clients work
unchanged once ``HH_API_URL`` points at it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
