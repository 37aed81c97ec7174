"""The composition root: what `build` gives the runtime, and the settings it refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from funmagic_gateway.bootstrap import SPEC, Gateway
from funmagic_gateway.config import GatewaySettings
from funmagic_kit.errors import ConfigError


def test_the_parts_are_the_public_api_the_projector_and_the_edge(gateway: Gateway) -> None:
    parts = gateway.parts

    assert [(r.method, r.path) for r in parts.routes] == [(r.method, r.path) for r in gateway.api.routes()]
    # The SSE projector's topics, and credits' for the purchases that raise a user's rate-limit tier.
    assert {s.topic for s in parts.subscriptions} == {"tasks.events", "providers.events", "credits.events"}
    (purchases,) = [s for s in parts.subscriptions if s.topic == "credits.events"]
    assert purchases.event_types == ("CreditsPurchased",)
    assert parts.unit_of_work is None  # no database: the projector's appends are idempotent by themselves
    assert len(parts.middlewares) == 5  # security headers, CORS, authentication, rate limits, CSRF
    assert {c.name for c in parts.health_checks} == {
        "identity",
        "tasks",
        "credits",
        "storage",
        "providers",
        "db",
    }


def test_the_spec_serves_without_a_database_and_authenticates_callers_itself() -> None:
    assert SPEC.name == "gateway"
    assert not SPEC.uses_database
    assert not SPEC.requires_caller


@pytest.mark.parametrize("bad", ["10.0.0.5/24", "proxy.internal"])
def test_unreadable_trusted_proxies_stop_the_start(
    bad: str,
    build_gateway: Callable[[GatewaySettings], Gateway],
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        build_gateway(gateway_settings(TRUSTED_PROXIES=bad))
