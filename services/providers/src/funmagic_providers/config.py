"""Settings of the providers service, read from the environment."""

from pydantic import Field, SecretStr

from funmagic_kit.settings import DatabaseSettings, ServiceSettings


class ProvidersSettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8005, validation_alias="HTTP_PORT", ge=1, le=65535)
    # Where the storage service listens (inputs are read and outputs stored through it).
    storage_url: str = Field(validation_alias="STORAGE_URL", min_length=1)
    # AES-256-GCM master keys for provider API keys: `id:base64,id:base64`, the current one first. Unset,
    # SECRET_KEY is the one key (id `default`). Rotate: `python -m funmagic_providers rotate-provider-keys`.
    secret_key: SecretStr = Field(validation_alias="SECRET_KEY")
    provider_master_keys: SecretStr = Field(SecretStr(""), validation_alias="PROVIDER_MASTER_KEYS")
    # Step jobs: calls in flight per process, how long a runner's claim lasts without renewal (a crashed
    # runner's jobs run again after this), how often due jobs are looked for while some are due but not
    # taken (slots or limits full), and at most how long an idle runner sleeps (it wakes when a job is
    # committed here or falls due; the limit is for jobs another replica queued and could not take, its
    # own runner being full — rare enough that an idle platform should not poll the table for it often).
    step_concurrency: int = Field(16, validation_alias="STEP_CONCURRENCY", ge=1, le=512)
    step_lease_seconds: float = Field(30.0, validation_alias="STEP_LEASE_SECONDS", ge=0.5, le=3600)
    step_poll_interval_seconds: float = Field(0.5, validation_alias="STEP_POLL_INTERVAL_SECONDS", gt=0, le=60)
    step_idle_poll_seconds: float = Field(10.0, validation_alias="STEP_IDLE_POLL_SECONDS", gt=0, le=300)
    # A step's progress reports are published at most this often, the first once the call has run this
    # long; a newer report replaces one still waiting, and one still waiting when the call ends is dropped
    # (a call shorter than this shows no progress, only started and completed). 0: every report at once.
    step_progress_interval_seconds: float = Field(
        0.5, validation_alias="STEP_PROGRESS_INTERVAL_SECONDS", ge=0, le=60
    )
    # Rate-limiter leases: a crashed holder's slot frees after this (long calls renew it).
    limiter_lease_seconds: float = Field(60.0, validation_alias="LIMITER_LEASE_SECONDS", ge=1)
    circuit_failure_threshold: int = Field(5, validation_alias="CIRCUIT_FAILURE_THRESHOLD", ge=1)
    circuit_cooldown_seconds: float = Field(30.0, validation_alias="CIRCUIT_COOLDOWN_SECONDS", gt=0)
    # How often fal.ai and Tripo are polled for a running request.
    provider_poll_interval_seconds: float = Field(
        1.0, validation_alias="PROVIDER_POLL_INTERVAL_SECONDS", gt=0, le=60
    )
    provider_call_timeout_seconds: float = Field(
        600.0, validation_alias="PROVIDER_CALL_TIMEOUT_SECONDS", gt=0
    )
    health_check_interval_seconds: float = Field(
        300.0, validation_alias="HEALTH_CHECK_INTERVAL_SECONDS", gt=0
    )
    # The queue monitor keeps a sample of every consumer group's lag this often (the trend of the last 60).
    queue_lag_sample_seconds: float = Field(10.0, validation_alias="QUEUE_LAG_SAMPLE_SECONDS", gt=0, le=3600)
