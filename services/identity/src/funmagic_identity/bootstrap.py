"""The composition root of identity: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from funmagic_identity.adapters.mail import DevMailbox, SmtpDispatcher, SmtpSettings
from funmagic_identity.adapters.oauth import GenericOAuthClient
from funmagic_identity.adapters.passwords import Argon2PasswordHasher
from funmagic_identity.adapters.postgres import unit_of_work_factory
from funmagic_identity.adapters.redis_state import RedisOAuthStates, RedisRevocations, RedisSignInGuard
from funmagic_identity.adapters.signing_keys import JwtAccessTokenIssuer, SigningKeyRing
from funmagic_identity.application.handlers import IdentityHandlers, IdentityPolicy
from funmagic_identity.cli import COMMANDS
from funmagic_identity.config import IdentitySettings, oauth_providers_from_env
from funmagic_identity.entrypoints.http import IdentityApp, error_middleware
from funmagic_identity.entrypoints.kafka import subscriptions
from funmagic_kit.crypto import SecretBox
from funmagic_kit.runtime import BackgroundWorker, Middleware, Runtime, ServiceSpec
from funmagic_kit.workers import Periodic

__all__ = ["SPEC", "SystemClock", "build_handlers"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Wiring:
    handlers: IdentityHandlers
    keys: SigningKeyRing
    app: IdentityApp
    workers: list[BackgroundWorker]


def build_handlers(settings: IdentitySettings, runtime: Runtime, keys: SigningKeyRing) -> IdentityHandlers:
    secrets = SecretBox.from_base64(settings.secret_key.get_secret_value())
    assert runtime.pool is not None
    return IdentityHandlers(
        uow=unit_of_work_factory(runtime.pool, secrets),
        hasher=Argon2PasswordHasher(
            time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib
        ),
        tokens=JwtAccessTokenIssuer(
            keys,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        revocations=RedisRevocations(
            runtime.redis, access_token_ttl_seconds=settings.access_token_ttl_seconds
        ),
        oauth=GenericOAuthClient(oauth_providers_from_env(settings.oauth_providers, settings.public_api_url)),
        oauth_states=RedisOAuthStates(runtime.redis),
        sign_in_guard=RedisSignInGuard(
            runtime.redis,
            max_failures=settings.sign_in_max_failures,
            window_seconds=settings.sign_in_failure_window_seconds,
        ),
        clock=SystemClock(),
        policy=IdentityPolicy(
            session_ttl=timedelta(days=settings.session_ttl_days), app_url=settings.public_app_url.rstrip("/")
        ),
    )


async def startup(runtime: Runtime) -> None:
    settings: IdentitySettings = runtime.settings
    assert runtime.pool is not None
    secrets = SecretBox.from_base64(settings.secret_key.get_secret_value())
    keys = SigningKeyRing(runtime.pool, secrets)
    await keys.ensure_key(SystemClock().now())
    handlers = build_handlers(settings, runtime, keys)
    # Keys rotated by the CLI or another replica are picked up within this interval.
    workers: list[BackgroundWorker] = [Periodic("signing-keys", lambda: keys.load(SystemClock().now()), 30.0)]
    dev_mailbox = None
    if settings.mail_mode == "sink":
        dev_mailbox = DevMailbox(runtime.pool, secrets)
    else:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            starttls=settings.smtp_starttls,
            sender=settings.mail_from,
        )
        workers.append(Periodic("mail", SmtpDispatcher(runtime.pool, secrets, smtp).deliver_pending, 2.0))
    app = IdentityApp(handlers, dev_mailbox=dev_mailbox, jwks=keys.published_keys)
    runtime.state["identity"] = Wiring(handlers, keys, app, workers)


def _wiring(runtime: Runtime) -> Wiring:
    return runtime.state["identity"]


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return _wiring(runtime).app.routes()


def middlewares(runtime: Runtime) -> Sequence[Middleware]:
    return (error_middleware(),)


def workers(runtime: Runtime) -> Sequence[BackgroundWorker]:
    return _wiring(runtime).workers


SPEC = ServiceSpec(
    name="identity",
    settings_class=IdentitySettings,
    migrations_package="funmagic_identity.migrations",
    subscriptions=subscriptions,
    routes=routes,
    startup=startup,
    middlewares=middlewares,
    workers=workers,
    commands=COMMANDS,
    client_max_size=64 * 1024,
)
