"""Commands, handlers and ports of gateway; one unit of work per command or message."""
