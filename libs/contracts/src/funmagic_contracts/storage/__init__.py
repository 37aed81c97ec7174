"""Events the storage service publishes on ``storage.events``: see ``.events``."""

__all__: list[str] = []
