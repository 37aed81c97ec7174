"""Commands, handlers and ports of storage; one unit of work per command or message."""
