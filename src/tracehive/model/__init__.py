"""The canonical model: events, scopes, ids, time rules and the error taxonomy."""
