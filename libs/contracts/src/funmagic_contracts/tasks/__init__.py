"""Events the tasks service publishes on ``tasks.events``: see ``.events``."""

__all__: list[str] = []
