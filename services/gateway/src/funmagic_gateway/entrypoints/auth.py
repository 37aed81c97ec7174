"""Who is calling the gateway: access token from `Authorization: Bearer` or the HttpOnly cookie, and CSRF.

The authentication middleware never refuses a request itself: it records the verified user (or why the
token was refused) and each operation's declared access decides. Cookie-authenticated state changes must
echo the CSRF cookie in `X-CSRF-Token` (double submit); a token in the Authorization header cannot be
sent by another site, so it needs none.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from funmagic_kit.auth import InvalidToken, TokenVerifier, bearer_token
from funmagic_kit.errors import TransientError
from funmagic_kit.http import problem
from funmagic_kit.request_keys import AUTH_ERROR_KEY, PRINCIPAL_KEY

__all__ = [
    "ACCESS_COOKIE",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "REFRESH_COOKIE",
    "CookiePolicy",
    "authentication_middleware",
    "csrf_middleware",
]

ACCESS_COOKIE = "fm_access"
REFRESH_COOKIE = "fm_refresh"
CSRF_COOKIE = "fm_csrf"
OAUTH_STATE_COOKIE = "fm_oauth_state"
CSRF_HEADER = "X-CSRF-Token"
AUTH_VIA_KEY: web.RequestKey[str] = web.RequestKey("auth_via", str)  # "bearer" or "cookie"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CookiePolicy:
    secure: bool
    domain: str | None
    samesite: str

    def set_session(
        self,
        response: web.StreamResponse,
        *,
        access_token: str,
        access_expires_at: datetime,
        refresh_token: str,
        refresh_expires_at: datetime,
        now: datetime,
    ) -> None:
        access_age = max(1, int((access_expires_at - now).total_seconds()))
        refresh_age = max(1, int((refresh_expires_at - now).total_seconds()))
        self._set(response, ACCESS_COOKIE, access_token, access_age, path="/", http_only=True)
        # The refresh token is only ever sent to the auth routes.
        self._set(response, REFRESH_COOKIE, refresh_token, refresh_age, path="/api/auth", http_only=True)
        # Readable by the SPA, which echoes it in X-CSRF-Token.
        self._set(response, CSRF_COOKIE, secrets.token_urlsafe(24), refresh_age, path="/", http_only=False)

    def clear_session(self, response: web.StreamResponse) -> None:
        for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, "/api/auth"), (CSRF_COOKIE, "/")):
            response.del_cookie(name, path=path, domain=self.domain)

    def set_oauth_state(self, response: web.StreamResponse, state: str, max_age: int) -> None:
        # Lax whatever the policy: it must come back on the provider's top-level redirect.
        response.set_cookie(
            OAUTH_STATE_COOKIE,
            state,
            max_age=max_age,
            path="/api/auth/oauth",
            domain=self.domain,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def clear_oauth_state(self, response: web.StreamResponse) -> None:
        response.del_cookie(OAUTH_STATE_COOKIE, path="/api/auth/oauth", domain=self.domain)

    def _set(
        self, response: web.StreamResponse, name: str, value: str, max_age: int, *, path: str, http_only: bool
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            domain=self.domain,
            secure=self.secure,
            httponly=http_only,
            samesite=self.samesite,
        )


def authentication_middleware(verifier: TokenVerifier) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            # The apps' files, health and metrics: who is calling does not matter there.
            return await handler(request)
        token = bearer_token(request)
        via = "bearer"
        if token is None:
            token = request.cookies.get(ACCESS_COOKIE)
            via = "cookie"
        if token:
            try:
                request[PRINCIPAL_KEY] = await verifier.verify(token)
                request[AUTH_VIA_KEY] = via
            except InvalidToken as error:
                request[AUTH_ERROR_KEY] = error.reason
            except TransientError:
                return problem(503, "Service Unavailable", "cannot check the session right now; retry")
        return await handler(request)

    return middleware


def csrf_middleware(allowed_origins: Sequence[str], *, exempt_paths: Sequence[str] = ()) -> Middleware:
    """Refuses cross-site state changes: a foreign `Origin`, or a cookie-borne request without the token."""
    allowed = frozenset(allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in UNSAFE_METHODS or not request.path.startswith("/api/"):
            return await handler(request)
        origin = request.headers.get("Origin")
        if origin and origin not in allowed and origin != _own_origin(request):
            return problem(403, "Forbidden", "cross-site request refused", code="csrf_origin")
        uses_cookies = request.get(AUTH_VIA_KEY) == "cookie" or (
            bearer_token(request) is None and REFRESH_COOKIE in request.cookies
        )
        if uses_cookies and request.path not in exempt_paths:
            expected = request.cookies.get(CSRF_COOKIE, "")
            presented = request.headers.get(CSRF_HEADER, "")
            if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
                return problem(403, "Forbidden", f"missing or wrong {CSRF_HEADER} header", code="csrf_token")
        return await handler(request)

    return middleware


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"
