"""Commands, handlers and ports of providers; one unit of work per command or message."""
