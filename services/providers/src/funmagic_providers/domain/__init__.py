"""Pure domain model of providers: no I/O imports (stdlib, pydantic and contracts only)."""
