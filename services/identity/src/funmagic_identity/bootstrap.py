"""The composition root of identity: the only place that names concrete classes."""

from funmagic_identity.config import IdentitySettings
from funmagic_identity.entrypoints.http import routes
from funmagic_identity.entrypoints.kafka import subscriptions
from funmagic_kit.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="identity",
    settings_class=IdentitySettings,
    migrations_package="funmagic_identity.migrations",
    subscriptions=subscriptions,
    routes=routes,
)
