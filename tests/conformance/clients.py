"""Environment hygiene for the real clients: nothing they do may leave 127.0.0.1."""

from __future__ import annotations

import os

# Environment variables the real clients read (HoneyHive SDK, logger, OTel SDK) or that could
# route their traffic elsewhere; stripped from every client environment.
CLIENT_ENV_PREFIXES = ("HH_", "HONEYHIVE_", "OTEL_")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def client_env(server_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a client subprocess: no inherited HH_/OTEL_ settings, no proxies, the
    SDK's git/telemetry collection off, and every default URL pointing at the local server."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(CLIENT_ENV_PREFIXES) and k not in PROXY_VARS and not k.startswith("TRACEHIVE_")
    }
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "HH_TELEMETRY": "false",
            "HONEYHIVE_TELEMETRY": "false",
            # Safety net: a code path that ignores server_url= still only reaches this server.
            "HH_API_URL": server_url,
            "HH_OTLP_ENABLED": "true",
        }
    )
    env.update(extra or {})
    return env
