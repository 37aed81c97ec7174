"""Settings of the identity service, read from the environment.

OAuth providers are configuration: `OAUTH_PROVIDERS=google,github` and, per provider `<P>`,
`OAUTH_<P>_CLIENT_ID`, `OAUTH_<P>_CLIENT_SECRET`, and optionally `OAUTH_<P>_AUTHORIZE_URL`, `_TOKEN_URL`,
`_USERINFO_URL`, `_EMAILS_URL`, `_SCOPES`, `_ID_CLAIM`, `_EMAIL_CLAIM`, `_EMAIL_VERIFIED_CLAIM`,
`_NAME_CLAIMS`, `_PICTURE_CLAIM`. Google and GitHub have their public endpoints as defaults; any other
OAuth2/OIDC provider (Apple, Facebook…) is added by setting all of them, with no code change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from funmagic_kit.errors import ConfigError
from funmagic_kit.settings import DatabaseSettings, ServiceSettings

__all__ = ["IdentitySettings", "OAuthProviderConfig", "oauth_providers_from_env"]


class IdentitySettings(ServiceSettings, DatabaseSettings):
    http_port: int = Field(8001, validation_alias="HTTP_PORT", ge=1, le=65535)
    # AES-256-GCM key (32 bytes, base64) for secrets at rest: signing keys, OAuth tokens, queued mail.
    secret_key: SecretStr = Field(validation_alias="SECRET_KEY")
    access_token_ttl_seconds: int = Field(300, validation_alias="ACCESS_TOKEN_TTL_SECONDS", ge=30, le=3600)
    session_ttl_days: int = Field(30, validation_alias="SESSION_TTL_DAYS", ge=1, le=365)
    # Where the SPA lives: links in mails point there (e.g. /verify-email?token=…).
    public_app_url: str = Field("http://localhost:5173", validation_alias="PUBLIC_APP_URL")
    # Where browsers reach the gateway: OAuth providers redirect back to it.
    public_api_url: str = Field("http://localhost:8000", validation_alias="PUBLIC_API_URL")
    oauth_providers: str = Field("", validation_alias="OAUTH_PROVIDERS")
    # `sink` keeps mail in the database for developers and tests (GET /v1/dev/mail); `smtp` delivers it.
    mail_mode: Literal["sink", "smtp"] = Field("sink", validation_alias="MAIL_MODE")
    mail_from: str = Field("FunMagic <no-reply@funmagic.local>", validation_alias="MAIL_FROM")
    smtp_host: str = Field("", validation_alias="SMTP_HOST")
    smtp_port: int = Field(587, validation_alias="SMTP_PORT", ge=1, le=65535)
    smtp_username: str = Field("", validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr = Field(SecretStr(""), validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(True, validation_alias="SMTP_STARTTLS")
    # Per account, whatever the caller's address: wrong passwords allowed per window before a pause.
    sign_in_max_failures: int = Field(10, validation_alias="SIGN_IN_MAX_FAILURES", ge=1)
    sign_in_failure_window_seconds: int = Field(900, validation_alias="SIGN_IN_FAILURE_WINDOW_SECONDS", ge=1)
    password_hash_time_cost: int = Field(2, validation_alias="PASSWORD_HASH_TIME_COST", ge=1, le=10)
    password_hash_memory_kib: int = Field(19_456, validation_alias="PASSWORD_HASH_MEMORY_KIB", ge=8_192)


class OAuthProviderConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    authorize_url: str = Field(min_length=1)
    token_url: str = Field(min_length=1)
    userinfo_url: str = Field(min_length=1)
    emails_url: str | None = None
    scopes: str
    redirect_uri: str
    id_claim: str = "sub"
    email_claim: str = "email"
    email_verified_claim: str | None = "email_verified"
    name_claims: tuple[str, ...] = ("name",)
    picture_claim: str | None = "picture"
    extra_authorize_params: dict[str, str] = Field(default_factory=dict)


PRESETS: dict[str, dict[str, Any]] = {
    "google": {
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "userinfo_url": "https://openidconnect.googleapis.com/v1/userinfo",
        "scopes": "openid email profile",
    },
    "github": {
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "userinfo_url": "https://api.github.com/user",
        "emails_url": "https://api.github.com/user/emails",
        "scopes": "read:user user:email",
        "id_claim": "id",
        "email_verified_claim": None,
        "name_claims": ("name", "login"),
        "picture_claim": "avatar_url",
    },
}
_FIELDS = (
    "client_id",
    "client_secret",
    "authorize_url",
    "token_url",
    "userinfo_url",
    "emails_url",
    "scopes",
    "id_claim",
    "email_claim",
    "email_verified_claim",
    "picture_claim",
)


def oauth_providers_from_env(
    names: str, public_api_url: str, env: Mapping[str, str] | None = None
) -> dict[str, OAuthProviderConfig]:
    env = os.environ if env is None else env
    providers: dict[str, OAuthProviderConfig] = {}
    for name in [n.strip().lower() for n in names.split(",") if n.strip()]:
        prefix = f"OAUTH_{name.upper()}_"
        values: dict[str, Any] = {**PRESETS.get(name, {}), "name": name}
        values["redirect_uri"] = f"{public_api_url.rstrip('/')}/api/auth/oauth/{name}/callback"
        for field in _FIELDS:
            if prefix + field.upper() in env:
                values[field] = env[prefix + field.upper()] or None
        if prefix + "NAME_CLAIMS" in env:
            values["name_claims"] = tuple(c.strip() for c in env[prefix + "NAME_CLAIMS"].split(","))
        try:
            providers[name] = OAuthProviderConfig.model_validate(values)
        except ValidationError as error:
            missing = ", ".join(prefix + str(e["loc"][0]).upper() for e in error.errors(include_input=False))
            raise ConfigError(f"OAuth provider {name!r} is misconfigured: check {missing}") from None
    return providers
