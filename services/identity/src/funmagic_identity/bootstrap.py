"""The composition root of identity: the only place that names concrete classes.

Identity subscribes to no other service's events: it only publishes (users registered, verified, changed),
through its unit of work's outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_identity.adapters.mail import DevMailbox, MailDispatcher, MailSender, SmtpSender, SmtpSettings
from funmagic_identity.adapters.oauth import GenericOAuthClient
from funmagic_identity.adapters.passwords import Argon2PasswordHasher
from funmagic_identity.adapters.postgres import IdentityUnitOfWork
from funmagic_identity.adapters.redis_state import RedisOAuthStates, RedisRevocations, RedisSignInGuard
from funmagic_identity.adapters.signing_keys import JwtAccessTokenIssuer, SigningKeyRing
from funmagic_identity.application.handlers import IdentityHandlers, IdentityPolicy
from funmagic_identity.application.ports import OAuthGateway
from funmagic_identity.application.settings import PlatformSettings
from funmagic_identity.config import IdentitySettings, oauth_providers_from_env
from funmagic_identity.entrypoints import cli
from funmagic_identity.entrypoints.http import IdentityApp
from funmagic_kit.audit_log import audit_routes
from funmagic_kit.clock import Clock, SystemClock
from funmagic_kit.crypto import SecretBox
from funmagic_kit.runtime import BackgroundWorker, Runtime, ServiceParts, ServiceSpec
from funmagic_kit.workers import Periodic

# Keys rotated by the CLI or another replica are picked up within this interval.
SIGNING_KEYS_RELOAD_SECONDS = 30.0
MAIL_DELIVERY_INTERVAL_SECONDS = 2.0


@dataclass(frozen=True)
class Identity:
    handlers: IdentityHandlers
    signing_keys: SigningKeyRing
    clock: Clock
    parts: ServiceParts


def build(
    settings: IdentitySettings,
    *,
    pool: AsyncConnectionPool,
    redis: Redis,
    clock: Clock | None = None,
    mail: MailSender | None = None,
    oauth: OAuthGateway | None = None,
    signing_keys: SigningKeyRing | None = None,
) -> Identity:
    """Identity's application objects and what the runtime serves.

    `mail` delivers queued mail in `smtp` mode (default: the SMTP server of the settings; `sink` mode keeps
    it in the database for the dev mailbox). `oauth` reaches the sign-in providers (default: the ones the
    settings configure). `signing_keys` is the ring tokens are signed with (default: the one on this
    database); it must be loaded (`ensure_key`) before a token is issued, as `_build_from_runtime` does.
    """
    clock = clock or SystemClock()
    secrets = SecretBox.from_base64(settings.secret_key.get_secret_value())
    keys = signing_keys or SigningKeyRing(pool, secrets)

    def unit_of_work() -> IdentityUnitOfWork:
        return IdentityUnitOfWork(pool, secrets)

    handlers = IdentityHandlers(
        uow=unit_of_work,
        hasher=Argon2PasswordHasher(
            time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib
        ),
        tokens=JwtAccessTokenIssuer(
            keys,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        revocations=RedisRevocations(redis, access_token_ttl_seconds=settings.access_token_ttl_seconds),
        oauth=oauth
        or GenericOAuthClient(oauth_providers_from_env(settings.oauth_providers, settings.public_api_url)),
        oauth_states=RedisOAuthStates(redis),
        sign_in_guard=RedisSignInGuard(
            redis,
            max_failures=settings.sign_in_max_failures,
            window_seconds=settings.sign_in_failure_window_seconds,
        ),
        clock=clock,
        policy=IdentityPolicy(
            session_ttl=timedelta(days=settings.session_ttl_days), app_url=settings.public_app_url.rstrip("/")
        ),
    )
    workers: list[BackgroundWorker] = [
        Periodic("signing-keys", lambda: keys.load(clock.now()), SIGNING_KEYS_RELOAD_SECONDS)
    ]
    dev_mailbox = None
    if settings.mail_mode == "sink":
        dev_mailbox = DevMailbox(pool, secrets)
    else:
        sender = mail or SmtpSender(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value(),
                starttls=settings.smtp_starttls,
                sender=settings.mail_from,
            )
        )
        dispatcher = MailDispatcher(pool, secrets, sender)
        workers.append(Periodic("mail", dispatcher.deliver_pending, MAIL_DELIVERY_INTERVAL_SECONDS))
    platform_settings = PlatformSettings(uow=unit_of_work, clock=clock)
    app = IdentityApp(handlers, settings=platform_settings, dev_mailbox=dev_mailbox, jwks=keys.published_keys)
    parts = ServiceParts(
        routes=[*app.routes(), *audit_routes(pool, "identity")], unit_of_work=unit_of_work, workers=workers
    )
    return Identity(handlers=handlers, signing_keys=keys, clock=clock, parts=parts)


def _build_with(runtime: Runtime) -> Identity:
    return build(runtime.settings, pool=runtime.require_pool(), redis=runtime.redis)


async def _build_from_runtime(runtime: Runtime) -> ServiceParts:
    identity = _build_with(runtime)
    # Before any traffic: a usable signing key exists (one replica creates it) and is loaded.
    await identity.signing_keys.ensure_key(identity.clock.now())
    return identity.parts


async def _create_admin_command(runtime: Runtime, argv: Sequence[str]) -> int:
    return await cli.create_admin(_build_with(runtime).handlers, argv)


async def _rotate_signing_key_command(runtime: Runtime, argv: Sequence[str]) -> int:
    identity = _build_with(runtime)
    return await cli.rotate_signing_key(identity.signing_keys, identity.clock, argv)


SPEC = ServiceSpec(
    name="identity",
    settings_class=IdentitySettings,
    migrations_package="funmagic_identity.migrations",
    build=_build_from_runtime,
    commands={"create-admin": _create_admin_command, "rotate-signing-key": _rotate_signing_key_command},
    client_max_size=64 * 1024,
)
