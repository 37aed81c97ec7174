"""Events the providers service publishes on ``providers.events``: see ``.events``."""

__all__: list[str] = []
