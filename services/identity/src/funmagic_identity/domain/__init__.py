"""Pure domain model of identity: no I/O imports (stdlib, pydantic and contracts only)."""
