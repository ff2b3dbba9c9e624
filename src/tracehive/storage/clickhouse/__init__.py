"""Events at volume on ClickHouse (issue #14): embedded through chDB, or a server (next)."""

from tracehive.storage.clickhouse.combined import CombinedStore
from tracehive.storage.clickhouse.store import ClickHouseEventStore

__all__ = ["ClickHouseEventStore", "CombinedStore"]
