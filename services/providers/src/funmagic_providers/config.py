"""Settings of the providers service, read from the environment."""

from pydantic import Field

from funmagic_kit.settings import DatabaseSettings, ServiceSettings


class ProvidersSettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8005, validation_alias="HTTP_PORT", ge=1, le=65535)
