"""Settings of the tasks service, read from the environment."""

from pydantic import Field

from funmagic_kit.settings import DatabaseSettings, ServiceSettings


class TasksSettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8002, validation_alias="HTTP_PORT", ge=1, le=65535)
    # Task inputs are checked against storage (the caller must own them); tool steps against providers.
    storage_url: str = Field(validation_alias="STORAGE_URL", min_length=1)
    providers_url: str = Field(validation_alias="PROVIDERS_URL", min_length=1)
    # Tasks a user may have pending or running at once; more are refused with 429.
    max_active_tasks_per_user: int = Field(10, validation_alias="MAX_ACTIVE_TASKS_PER_USER", ge=1)
    # Tasks' deadline for a step is the provider's (the step's timeoutSeconds) plus this grace.
    step_deadline_grace_seconds: float = Field(30.0, validation_alias="STEP_DEADLINE_GRACE_SECONDS", ge=0)
    # A task still waiting for its credits after this fails (nothing charged).
    pending_timeout_seconds: float = Field(600.0, validation_alias="PENDING_TIMEOUT_SECONDS", gt=0)
    sweep_interval_seconds: float = Field(5.0, validation_alias="TASK_SWEEP_INTERVAL_SECONDS", gt=0)
