"""Commands, handlers and ports of identity; one unit of work per command or message."""
