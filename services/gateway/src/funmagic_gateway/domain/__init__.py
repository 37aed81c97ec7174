"""Pure domain model of gateway: no I/O imports (stdlib, pydantic and contracts only)."""
