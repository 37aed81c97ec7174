"""Events the identity service publishes on ``identity.events``: see ``.events``."""

__all__: list[str] = []
