"""Pure domain model of tasks: no I/O imports (stdlib, pydantic and contracts only)."""
