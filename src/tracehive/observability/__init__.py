"""Metrics (Prometheus text format), structured JSON logs and the request middleware."""
