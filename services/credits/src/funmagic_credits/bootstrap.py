"""The composition root of credits: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from psycopg_pool import AsyncConnectionPool

from funmagic_credits.adapters.maintenance import LedgerMaintenance
from funmagic_credits.adapters.queries import CreditsReads
from funmagic_credits.adapters.stripe import StripeClient, StripeWebhooks
from funmagic_credits.adapters.unit_of_work import CreditsUnitOfWork
from funmagic_credits.application.commerce import Commerce
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.application.ports import PaymentGateway
from funmagic_credits.config import CreditsSettings
from funmagic_credits.entrypoints import cli, kafka
from funmagic_credits.entrypoints.http import CreditsApp
from funmagic_kit.audit_log import audit_routes
from funmagic_kit.clock import Clock, SystemClock
from funmagic_kit.errors import ConfigError
from funmagic_kit.runtime import Command, Runtime, ServiceParts, ServiceSpec
from funmagic_kit.tracing_http import external_tracing_client_middleware


@dataclass(frozen=True)
class Credits:
    ledger: Ledger
    commerce: Commerce
    maintenance: LedgerMaintenance
    parts: ServiceParts


def build(
    settings: CreditsSettings,
    *,
    pool: AsyncConnectionPool,
    http: aiohttp.ClientSession | None = None,
    clock: Clock | None = None,
    payments: PaymentGateway | None = None,
) -> Credits:
    """Credits' application objects and what the runtime serves. `http` reaches Stripe; a test may leave it
    out and pass a stand-in for Stripe's API as `payments` (webhook signatures are always checked for
    real)."""
    clock = clock or SystemClock()
    if payments is None:
        if http is None:
            raise ConfigError("credits needs an HTTP session to reach Stripe")
        payments = StripeClient(settings.stripe_api_base, settings.stripe_secret_key.get_secret_value(), http)

    def unit_of_work() -> CreditsUnitOfWork:
        return CreditsUnitOfWork(pool)

    ledger = Ledger(uow=unit_of_work, clock=clock)
    commerce = Commerce(
        uow=unit_of_work,
        ledger=ledger,
        payments=payments,
        webhooks=StripeWebhooks(
            settings.stripe_webhook_secret.get_secret_value(),
            tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
        ),
        clock=clock,
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
    )
    parts = ServiceParts(
        routes=[
            *CreditsApp(
                ledger=ledger,
                commerce=commerce,
                reads=CreditsReads(pool),
                clock=clock,
                # Stripe's own test keys: nothing is charged, and the pricing page says so.
                payments_test_mode=settings.stripe_secret_key.get_secret_value().startswith("sk_test_"),
            ).routes(),
            *audit_routes(pool, "credits"),
        ],
        subscriptions=kafka.subscriptions(ledger, signup_bonus=settings.signup_bonus_credits),
        unit_of_work=unit_of_work,
    )
    maintenance = LedgerMaintenance(pool, settings.kafka_bootstrap_servers, settings.kafka_names())
    return Credits(ledger=ledger, commerce=commerce, maintenance=maintenance, parts=parts)


async def _build_with(runtime: Runtime) -> Credits:
    http = await runtime.exit_stack.enter_async_context(
        # Stripe only: spans, and no traceparent sent out.
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=15), middlewares=(external_tracing_client_middleware,)
        )
    )
    return build(runtime.settings, pool=runtime.require_pool(), http=http)


async def _build_from_runtime(runtime: Runtime) -> ServiceParts:
    return (await _build_with(runtime)).parts


def _maintenance_command(
    command: Callable[[LedgerMaintenance, Sequence[str]], Awaitable[int]],
) -> Command:
    async def run(runtime: Runtime, argv: Sequence[str]) -> int:
        return await command((await _build_with(runtime)).maintenance, argv)

    return run


async def _seed_packages(runtime: Runtime, argv: Sequence[str]) -> int:
    return await cli.seed_packages((await _build_with(runtime)).commerce, argv)


SPEC = ServiceSpec(
    name="credits",
    settings_class=CreditsSettings,
    migrations_package="funmagic_credits.migrations",
    build=_build_from_runtime,
    commands={
        "rebuild": _maintenance_command(cli.rebuild),
        "verify": _maintenance_command(cli.verify),
        "replay-topic": _maintenance_command(cli.replay_topic),
        "seed-packages": _seed_packages,
    },
    # Every balance, history or checkout request re-checks the forwarded token: from the local view.
    revocation_view=True,
)
