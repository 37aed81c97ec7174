"""Settings of the storage service, read from the environment."""

from pydantic import Field, field_validator

from funmagic_kit.settings import DatabaseSettings, S3Settings, ServiceSettings


class StorageSettings(ServiceSettings, DatabaseSettings, S3Settings):
    http_port: int = Field(8004, validation_alias="HTTP_PORT", ge=1, le=65535)
    download_url_ttl_seconds: int = Field(
        3600, validation_alias="DOWNLOAD_URL_TTL_SECONDS", ge=60, le=7 * 86400
    )
    upload_url_ttl_seconds: int = Field(900, validation_alias="UPLOAD_URL_TTL_SECONDS", ge=60, le=86400)
    # Uploads not confirmed within this time are swept, with their objects.
    pending_upload_ttl_seconds: int = Field(3600, validation_alias="PENDING_UPLOAD_TTL_SECONDS", ge=60)
    upload_sweep_interval_seconds: float = Field(60.0, validation_alias="UPLOAD_SWEEP_INTERVAL_SECONDS", gt=0)
    # A deleted account's files (UserDeleted) stay this long, so an operator can still hand them back after a
    # mistaken or contested deletion; then the purge worker removes them, records and objects, except the
    # published ones (docs/architecture.md, "What a closed account leaves behind"). Disabling removes nothing.
    # Fractions are fine (tests use a few seconds: 0.001 is 3.6 s); 0 purges at the next round.
    deleted_user_asset_grace_hours: float = Field(
        72.0, validation_alias="DELETED_USER_ASSET_GRACE_HOURS", ge=0
    )
    # How often the purge worker looks for deleted accounts whose grace period has passed.
    deleted_user_purge_interval_seconds: float = Field(
        300.0, validation_alias="DELETED_USER_PURGE_INTERVAL_SECONDS", gt=0
    )
    upload_max_bytes: int = Field(20 * 1024 * 1024, validation_alias="UPLOAD_MAX_BYTES", ge=1)
    # Per-module limits, e.g. `avatar=2097152,image-gen=31457280`.
    upload_module_max_bytes: str = Field("avatar=5242880", validation_alias="UPLOAD_MODULE_MAX_BYTES")

    # Origins of the web apps: browsers PUT uploads to presigned URLs and fetch 3D outputs cross-origin, so
    # every bucket answers CORS for these (comma-separated; empty: no CORS rules are set).
    s3_cors_origins: str = Field("", validation_alias="S3_CORS_ORIGINS")

    def cors_origins(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.s3_cors_origins.split(",") if origin.strip()]

    def module_limits(self) -> dict[str, int]:
        limits = {}
        for part in self.upload_module_max_bytes.split(","):
            if part.strip():
                module, _, value = part.partition("=")
                limits[module.strip()] = int(value)
        return limits

    @field_validator("upload_module_max_bytes")
    @classmethod
    def _limits_parse(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                module, sep, number = part.partition("=")
                if not sep or not module.strip() or not number.strip().isdigit():
                    raise ValueError(f"expected module=bytes pairs, got {part!r}")
        return value
