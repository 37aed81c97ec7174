"""One adapter per provider type, all implementing `domain.steps.ProviderAdapter`."""
