"""The composition root of credits: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from funmagic_credits.adapters.commerce import CommerceStore
from funmagic_credits.adapters.postgres import PostgresLedgerStore
from funmagic_credits.adapters.stripe import StripeClient, verify_signature
from funmagic_credits.application.commerce import Commerce
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.cli import COMMANDS
from funmagic_credits.config import CreditsSettings
from funmagic_credits.entrypoints.http import CreditsApp, error_middleware
from funmagic_credits.entrypoints.kafka import CreditsReactions
from funmagic_kit.consumer import Subscription
from funmagic_kit.db import UnitOfWork
from funmagic_kit.runtime import Middleware, Runtime, ServiceSpec

__all__ = ["SPEC", "SystemClock", "build_ledger"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Wiring:
    app: CreditsApp
    reactions: CreditsReactions


def build_ledger() -> Ledger:
    return Ledger(stores=PostgresLedgerStore, clock=SystemClock())


async def startup(runtime: Runtime) -> None:
    settings: CreditsSettings = runtime.settings
    assert runtime.pool is not None
    assert runtime.exit_stack is not None
    pool = runtime.pool
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    runtime.exit_stack.push_async_callback(http.close)
    ledger = build_ledger()
    webhook_secret = settings.stripe_webhook_secret.get_secret_value()

    def verify(payload: bytes, header: str) -> int:
        return verify_signature(
            payload, header, webhook_secret, tolerance_seconds=settings.stripe_webhook_tolerance_seconds
        )

    commerce = Commerce(
        uow=lambda: UnitOfWork(pool),
        commerce_stores=CommerceStore,
        ledger=ledger,
        payments=StripeClient(settings.stripe_api_base, settings.stripe_secret_key.get_secret_value(), http),
        verify_signature=verify,
        clock=SystemClock(),
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
    )
    runtime.state["credits"] = Wiring(
        app=CreditsApp(pool=pool, ledger=ledger, commerce=commerce, clock=SystemClock()),
        reactions=CreditsReactions(ledger, signup_bonus=settings.signup_bonus_credits),
    )


def _wiring(runtime: Runtime) -> Wiring:
    return runtime.state["credits"]


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return _wiring(runtime).app.routes()


def subscriptions(runtime: Runtime) -> Sequence[Subscription]:
    return _wiring(runtime).reactions.subscriptions()


def middlewares(runtime: Runtime) -> Sequence[Middleware]:
    return (error_middleware(),)


SPEC = ServiceSpec(
    name="credits",
    settings_class=CreditsSettings,
    migrations_package="funmagic_credits.migrations",
    subscriptions=subscriptions,
    routes=routes,
    startup=startup,
    middlewares=middlewares,
    commands=COMMANDS,
)
