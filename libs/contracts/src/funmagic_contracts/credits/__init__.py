"""Events the credits service publishes on ``credits.events``: see ``.events``."""

__all__: list[str] = []
