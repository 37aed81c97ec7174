"""Settings of the tasks service, read from the environment."""

from pydantic import Field

from funmagic_kit.settings import DatabaseSettings, ServiceSettings


class TasksSettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8002, validation_alias="HTTP_PORT", ge=1, le=65535)
