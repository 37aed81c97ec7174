"""The composition root of storage: the only place that names concrete classes."""

from funmagic_kit.runtime import ServiceSpec
from funmagic_storage.config import StorageSettings
from funmagic_storage.entrypoints.http import routes
from funmagic_storage.entrypoints.kafka import subscriptions

SPEC = ServiceSpec(
    name="storage",
    settings_class=StorageSettings,
    migrations_package="funmagic_storage.migrations",
    subscriptions=subscriptions,
    routes=routes,
)
