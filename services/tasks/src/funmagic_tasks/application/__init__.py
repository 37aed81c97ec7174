"""Commands, handlers and ports of tasks; one unit of work per command or message."""
