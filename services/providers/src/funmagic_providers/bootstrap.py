"""The composition root of providers: the only place that names concrete classes."""

from funmagic_kit.runtime import ServiceSpec
from funmagic_providers.config import ProvidersSettings
from funmagic_providers.entrypoints.http import routes
from funmagic_providers.entrypoints.kafka import subscriptions

SPEC = ServiceSpec(
    name="providers",
    settings_class=ProvidersSettings,
    migrations_package="funmagic_providers.migrations",
    subscriptions=subscriptions,
    routes=routes,
)
