"""Settings of the identity service, read from the environment."""

from pydantic import Field

from funmagic_kit.settings import DatabaseSettings, ServiceSettings


class IdentitySettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8001, validation_alias="HTTP_PORT", ge=1, le=65535)
