"""Settings of the gateway, read from the environment."""

import re
from typing import Literal

from pydantic import Field

from funmagic_kit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    http_port: int = Field(8000, validation_alias="HTTP_PORT", ge=1, le=65535)
    identity_url: str = Field(validation_alias="IDENTITY_URL")
    tasks_url: str = Field(validation_alias="TASKS_URL")
    credits_url: str = Field(validation_alias="CREDITS_URL")
    storage_url: str = Field(validation_alias="STORAGE_URL")
    providers_url: str = Field(validation_alias="PROVIDERS_URL")
    # Exact browser origins allowed to call with credentials, comma-separated (no `*`).
    cors_origins: str = Field("", validation_alias="CORS_ORIGINS")
    # Addresses of reverse proxies whose X-Forwarded-For is believed (comma-separated IPs/CIDRs).
    trusted_proxies: str = Field("", validation_alias="TRUSTED_PROXIES")
    # Where the SPA lives: OAuth sign-ins end there.
    public_app_url: str = Field("http://localhost:5173", validation_alias="PUBLIC_APP_URL")
    # Cookies: Secure can be turned off only for plain-http localhost development.
    cookie_secure: bool = Field(True, validation_alias="COOKIE_SECURE")
    # Set to the parent domain (e.g. `funmagic.ai`) when the SPA and the API live on sibling subdomains.
    cookie_domain: str | None = Field(None, validation_alias="COOKIE_DOMAIN")
    cookie_samesite: Literal["Lax", "Strict", "None"] = Field("Lax", validation_alias="COOKIE_SAMESITE")
    max_body_bytes: int = Field(1024**2, validation_alias="MAX_BODY_BYTES", ge=1024)
    hsts: bool = Field(False, validation_alias="HSTS")
    upstream_timeout_seconds: float = Field(15.0, validation_alias="UPSTREAM_TIMEOUT_SECONDS", gt=0)
    # SSE: a `: heartbeat` comment after this many quiet seconds (also the longest blocking XREAD).
    sse_heartbeat_seconds: float = Field(15.0, validation_alias="SSE_HEARTBEAT_SECONDS", gt=0, le=60)
    # SSE: how often an open stream asks whether its caller was signed out or disabled (expiry is exact).
    sse_session_check_seconds: float = Field(5.0, validation_alias="SSE_SESSION_CHECK_SECONDS", gt=0, le=60)
    # How long a public catalog answer (tools, tool types, banners) is reused; 0: never cached.
    catalog_cache_seconds: float = Field(5.0, validation_alias="CATALOG_CACHE_SECONDS", ge=0, le=60)
    # SSE: Redis connections for blocking stream reads, one per open stream (a separate pool); streams
    # beyond it wait for a free connection.
    sse_redis_max_connections: int = Field(1000, validation_alias="SSE_REDIS_MAX_CONNECTIONS", ge=1)
    # The built web apps the gateway serves on its own origin (empty, or no index.html there: not served).
    web_app_dir: str = Field("", validation_alias="WEB_APP_DIR")
    web_admin_app_dir: str = Field("", validation_alias="WEB_ADMIN_APP_DIR")
    # Origins the apps' pages load pictures and 3D files from and upload to (the object store, the CDN),
    # for their Content-Security-Policy; space- or comma-separated.
    web_content_origins: str = Field("", validation_alias="WEB_CONTENT_ORIGINS")

    def service_urls(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "tasks": self.tasks_url,
            "credits": self.credits_url,
            "storage": self.storage_url,
            "providers": self.providers_url,
        }

    def content_origins(self) -> list[str]:
        return [o.strip() for o in re.split(r"[,\s]+", self.web_content_origins) if o.strip()]

    def allowed_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
