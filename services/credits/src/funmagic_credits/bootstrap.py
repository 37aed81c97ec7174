"""The composition root of credits: the only place that names concrete classes."""

from funmagic_credits.config import CreditsSettings
from funmagic_credits.entrypoints.http import routes
from funmagic_credits.entrypoints.kafka import subscriptions
from funmagic_kit.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="credits",
    settings_class=CreditsSettings,
    migrations_package="funmagic_credits.migrations",
    subscriptions=subscriptions,
    routes=routes,
)
