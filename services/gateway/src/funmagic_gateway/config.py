"""Settings of the gateway, read from the environment."""

from pydantic import Field

from funmagic_kit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    http_port: int = Field(8000, validation_alias="HTTP_PORT", ge=1, le=65535)
    identity_url: str = Field(validation_alias="IDENTITY_URL")
    tasks_url: str = Field(validation_alias="TASKS_URL")
    credits_url: str = Field(validation_alias="CREDITS_URL")
    storage_url: str = Field(validation_alias="STORAGE_URL")
    providers_url: str = Field(validation_alias="PROVIDERS_URL")
    cors_origins: str = Field("", validation_alias="CORS_ORIGINS")

    def service_urls(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "tasks": self.tasks_url,
            "credits": self.credits_url,
            "storage": self.storage_url,
            "providers": self.providers_url,
        }
