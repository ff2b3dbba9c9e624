"""Ingest: turning validated requests into canonical events (defaults, ids, times, sessions)."""
