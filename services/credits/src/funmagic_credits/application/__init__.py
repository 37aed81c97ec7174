"""Commands, handlers and ports of credits; one unit of work per command or message."""
