"""One way to load configuration: a pydantic-settings class per service, from the environment.

Names follow the seed's environment variables (DATABASE_URL, REDIS_URL, S3_*, CDN_URL). Secrets have no
defaults; a missing or invalid variable stops the process at start with a message naming it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from funmagic_kit.errors import ConfigError
from funmagic_kit.kafka import KafkaNames

__all__ = [
    "DatabaseSettings",
    "S3Settings",
    "ServiceSettings",
    "load_settings",
]


class ServiceSettings(BaseSettings):
    """What every service process needs."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    http_host: str = Field("127.0.0.1", validation_alias="HTTP_HOST")
    http_port: int = Field(validation_alias="HTTP_PORT", ge=1, le=65535)
    kafka_bootstrap_servers: str = Field(validation_alias="KAFKA_BOOTSTRAP_SERVERS", min_length=1)
    redis_url: str = Field(validation_alias="REDIS_URL", min_length=1)
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # The share of successful, fast requests written to the access log (errors and slow ones always are).
    access_log_sample: float = Field(0.1, validation_alias="ACCESS_LOG_SAMPLE", ge=0, le=1)

    # Consumer tuning. Idle consumers long-poll: the broker answers a fetch as soon as data arrives
    # (fetch.min.bytes=1), so a long wait costs no latency and an idle platform sleeps instead of polling
    # a hundred times a second. Retries run in place, never by seeking back (which would wait for the
    # parked fetch).
    kafka_fetch_max_wait_ms: int = Field(5_000, validation_alias="KAFKA_FETCH_MAX_WAIT_MS", ge=0)
    # How long one wait of a consumer's loop for records lasts (stopping does not wait for it).
    kafka_consumer_wake_ms: int = Field(1_000, validation_alias="KAFKA_CONSUMER_WAKE_MS", ge=10)
    # The most records one fetch hands over, handled in one transaction (a failure re-runs them singly).
    consumer_max_batch: int = Field(100, validation_alias="CONSUMER_MAX_BATCH", ge=1, le=10_000)
    # Put in front of every topic and consumer group name, so platforms can share one Kafka cluster
    # (see `funmagic_kit.kafka.KafkaNames`); end it with a dot by convention: `blue.`.
    kafka_topic_prefix: str = Field(
        "", validation_alias="KAFKA_TOPIC_PREFIX", pattern=r"^[A-Za-z0-9._-]{0,64}$"
    )
    consumer_max_attempts: int = Field(5, validation_alias="CONSUMER_MAX_ATTEMPTS", ge=1)
    # Kafka consumers per service, each reading all its topics: partitions are handled in parallel (each
    # still in order). Keep DATABASE_POOL_MAX at least this high.
    consumer_concurrency: int = Field(1, validation_alias="CONSUMER_CONCURRENCY", ge=1)
    consumer_retry_backoff_ms: int = Field(200, validation_alias="CONSUMER_RETRY_BACKOFF_MS", ge=0)
    shutdown_grace_seconds: float = Field(15.0, validation_alias="SHUTDOWN_GRACE_SECONDS", gt=0)

    # Who may call: services refuse requests without this credential or a valid user token. A
    # comma-separated list is accepted so the credential can be rotated without downtime.
    internal_api_token: SecretStr = Field(validation_alias="INTERNAL_API_TOKEN")
    # Where the public keys of identity's access tokens are published, and the claims they must carry.
    auth_jwks_url: str = Field(validation_alias="AUTH_JWKS_URL", min_length=1)
    auth_issuer: str = Field("funmagic", validation_alias="AUTH_ISSUER", min_length=1)
    auth_audience: str = Field("funmagic-api", validation_alias="AUTH_AUDIENCE", min_length=1)
    # When set, `/metrics` answers only `Authorization: Bearer <this>`; unset (or empty), it is open.
    metrics_auth_token: SecretStr | None = Field(None, validation_alias="METRICS_AUTH_TOKEN")

    def kafka_names(self) -> KafkaNames:
        return KafkaNames(self.kafka_topic_prefix)

    def metrics_token(self) -> str | None:
        """The bearer token `/metrics` asks for, or None when the metrics are open."""
        if self.metrics_auth_token is None:
            return None
        return self.metrics_auth_token.get_secret_value().strip() or None

    def internal_api_tokens(self) -> list[str]:
        return [t.strip() for t in self.internal_api_token.get_secret_value().split(",") if t.strip()]

    @field_validator("internal_api_token")
    @classmethod
    def _internal_token_is_long(cls, value: SecretStr) -> SecretStr:
        tokens = [t.strip() for t in value.get_secret_value().split(",") if t.strip()]
        if not tokens or any(len(t) < 24 for t in tokens):
            raise ValueError("each internal API token must be at least 24 characters")
        return value


class DatabaseSettings(BaseSettings):
    """Mixed into the settings of services that own a Postgres database."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    database_pool_min: int = Field(2, validation_alias="DATABASE_POOL_MIN", ge=1)
    database_pool_max: int = Field(10, validation_alias="DATABASE_POOL_MAX", ge=1)


class S3Settings(BaseSettings):
    """The seed's S3 variables."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    s3_endpoint: str = Field(validation_alias="S3_ENDPOINT")
    # The host clients reach S3 at, when it differs from the one services use (presigned URLs are
    # signed for this host). Unset means the same as S3_ENDPOINT.
    s3_public_endpoint: str | None = Field(None, validation_alias="S3_PUBLIC_ENDPOINT")
    s3_access_key: SecretStr = Field(validation_alias="S3_ACCESS_KEY")
    s3_secret_key: SecretStr = Field(validation_alias="S3_SECRET_KEY")
    s3_region: str = Field("us-east-1", validation_alias="S3_REGION")
    s3_bucket_public: str = Field("funmagic-public", validation_alias="S3_BUCKET_PUBLIC")
    s3_bucket_private: str = Field("funmagic-private", validation_alias="S3_BUCKET_PRIVATE")
    s3_bucket_admin: str = Field("funmagic-admin", validation_alias="S3_BUCKET_ADMIN")
    cdn_url: str = Field(validation_alias="CDN_URL")


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT], env: dict[str, str] | None = None, **overrides: Any) -> SettingsT:
    """Build settings from the environment (or from `env`, for tests), failing with a readable error.

    Passing `env` reads only that mapping, so tests never touch `os.environ`.
    """
    try:
        if env is None:
            return cls(**overrides)
        values = {**_by_alias(cls, env), **overrides}
        return cls.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise ConfigError(f"{cls.__name__} is invalid: {problems}") from None


def _by_alias(cls: type[BaseSettings], env: dict[str, str]) -> dict[str, str]:
    folded = {k.upper(): v for k, v in env.items()}
    values: dict[str, str] = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else name
        if alias.upper() in folded:
            values[alias] = folded[alias.upper()]
    return values
