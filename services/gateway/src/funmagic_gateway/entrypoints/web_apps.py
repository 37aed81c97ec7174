"""The built web apps, served by the gateway on its own origin: the product app at `/`, the admin app at
`/admin/` (DESIGN §12). Same origin as the API, so the session cookies need no CORS and no third party.

- Hashed build assets (`/assets/*`, `/admin/assets/*`) are cached for a year (`immutable`): a new build
  has new names.
- `index.html` is never cached, so a deploy is picked up on the next navigation.
- Any other GET under an app's prefix that is not a file is a deep link (`/ja/tools/figme`): the app's
  `index.html` answers and the app's router takes over.
- The page's Content-Security-Policy allows scripts from the origin only, styles inline (the component
  library injects its styles), and images, uploads and 3D downloads from the object store's origins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

__all__ = ["WebApp", "web_app_routes"]

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# Paths the apps never own: the API, health, metrics and documents stay the gateway's own.
_RESERVED = ("/api/", "/health", "/metrics", "/openapi.json", "/docs", "/.well-known/")
# Any tail but those (the route's pattern starts after its `/`): "/api/" reserves `/api` and all below it,
# "/health" anything that starts so.
_NOT_RESERVED = (
    "(?!"
    + "|".join(
        f"{re.escape(r.strip('/'))}(?:/|$)" if r.endswith("/") else re.escape(r.lstrip("/"))
        for r in _RESERVED
    )
    + ").*"
)


@dataclass(frozen=True)
class WebApp:
    """A built single-page app (`dist/` of apps/web or apps/admin) mounted at `prefix` ("/" or "/admin/")."""

    directory: Path
    prefix: str


def content_security_policy(content_origins: Sequence[str]) -> str:
    extra = " ".join(content_origins)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob: {extra}".strip(),
            f"connect-src 'self' {extra}".strip(),
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


def web_app_routes(apps: Sequence[WebApp], *, content_origins: Sequence[str] = ()) -> list[web.RouteDef]:
    """Routes serving each app that has been built; an app whose `index.html` is missing is skipped, so
    the API runs without them (tests, API-only deployments)."""
    built = [app for app in apps if (app.directory / "index.html").is_file()]
    # The longest prefix first: `/admin/…` must not fall through to the product app's deep links.
    built.sort(key=lambda app: len(app.prefix), reverse=True)
    if not built:
        return []
    policy = content_security_policy(content_origins)

    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.path
        if any(path.startswith(reserved) or path == reserved.rstrip("/") for reserved in _RESERVED):
            raise web.HTTPNotFound()
        for app in built:
            bare = app.prefix.rstrip("/")
            if path == bare and bare:
                raise web.HTTPMovedPermanently(app.prefix)
            if path.startswith(app.prefix):
                return _answer(app, path[len(app.prefix) :], policy)
        raise web.HTTPNotFound()

    # The reserved paths are left out of the route itself, not only refused by `serve`: a route matching
    # `/api/auth/refresh` would make aiohttp's 405 for `OPTIONS /api/auth/refresh` advertise GET there.
    return [web.get("/{tail:" + _NOT_RESERVED + "}", serve, allow_head=True)]


def _answer(app: WebApp, relative: str, policy: str) -> web.StreamResponse:
    root = app.directory.resolve()
    if relative and not relative.endswith("/"):
        candidate = (root / relative).resolve()
        # Never outside the build folder (`..`, symlinks), never a dotfile or a dot folder (`.vite/`).
        hidden = (
            any(part.startswith(".") for part in candidate.relative_to(root).parts)
            if candidate.is_relative_to(root)
            else True
        )
        if not hidden and candidate.is_file():
            cache = IMMUTABLE if relative.startswith("assets/") else "public, max-age=3600"
            return web.FileResponse(candidate, headers={"Cache-Control": cache})
        if relative.startswith("assets/"):
            raise web.HTTPNotFound()  # a missing hashed asset is a stale page, not a deep link
    return web.FileResponse(
        root / "index.html",
        headers={
            "Cache-Control": NO_CACHE,
            "Content-Security-Policy": policy,
            "Content-Type": "text/html; charset=utf-8",
        },
    )
