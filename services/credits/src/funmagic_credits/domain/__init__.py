"""Pure domain model of credits: no I/O imports (stdlib, pydantic and contracts only)."""
