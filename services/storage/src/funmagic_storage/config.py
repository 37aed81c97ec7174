"""Settings of the storage service, read from the environment."""

from pydantic import Field

from funmagic_kit.settings import DatabaseSettings, S3Settings, ServiceSettings


class StorageSettings(ServiceSettings, DatabaseSettings, S3Settings):
    http_port: int = Field(8004, validation_alias="HTTP_PORT", ge=1, le=65535)
