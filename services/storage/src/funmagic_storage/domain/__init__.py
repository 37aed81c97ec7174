"""Pure domain model of storage: no I/O imports (stdlib, pydantic and contracts only)."""
