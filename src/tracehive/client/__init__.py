"""The tracehive Python client: ``Client`` and ``AsyncClient`` with ``sessions``, ``events`` and the
experiments' ``datasets``, ``datapoints`` and ``runs``."""

from __future__ import annotations

from tracehive.client._async import AsyncClient
from tracehive.client._sync import Client
from tracehive.client.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    NetworkError,
    NotFoundError,
    ValidationError,
)

__all__ = [
    "Client",
    "AsyncClient",
    "ApiError",
    "AuthenticationError",
    "ConfigurationError",
    "NetworkError",
    "NotFoundError",
    "ValidationError",
]
