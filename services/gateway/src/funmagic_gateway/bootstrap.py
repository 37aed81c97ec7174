"""The composition root of gateway: the only place that names concrete classes."""

from funmagic_gateway.config import GatewaySettings
from funmagic_gateway.entrypoints.http import health_checks, routes
from funmagic_gateway.entrypoints.kafka import subscriptions
from funmagic_kit.runtime import ServiceSpec

SPEC = ServiceSpec(
    name="gateway",
    settings_class=GatewaySettings,
    subscriptions=subscriptions,
    routes=routes,
    health_checks=health_checks,
)
