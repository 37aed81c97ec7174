"""`/api/auth/*` and `/api/admin/users*`: the public face of identity.

Browsers get HttpOnly cookies (`mode: cookie`, the default); API clients ask for `mode: token` and get the
tokens in the body instead. Identity does the work; the gateway validates input, forwards the caller, and
turns identity's answer into cookies or a body.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from funmagic_gateway.adapters.services import ServiceClient, ServiceReply
from funmagic_gateway.entrypoints.auth import OAUTH_STATE_COOKIE, REFRESH_COOKIE, CookiePolicy
from funmagic_gateway.entrypoints.forwarding import forward, relay, safe_id
from funmagic_gateway.entrypoints.schemas import (
    Accepted,
    AuthResult,
    DeleteAccountRequest,
    ForgotPasswordRequest,
    OAuthCallbackQuery,
    OAuthProviders,
    OAuthStartQuery,
    RefreshRequest,
    ResetPasswordRequest,
    RevokedSessions,
    RoleChangeRequest,
    SessionInfo,
    SessionList,
    SignInRequest,
    SignOutRequest,
    SignUpRequest,
    StatusChangeRequest,
    UserList,
    UserListQuery,
    UserView,
    VerificationSent,
    VerifyEmailRequest,
)
from funmagic_kit.api import Operation, json_body, read_body, read_query
from funmagic_kit.http import HttpProblem
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal

__all__ = ["AuthRoutes"]

OAUTH_STATE_MAX_AGE = 600


class AuthRoutes:
    def __init__(self, identity: ServiceClient, cookies: CookiePolicy, *, app_url: str) -> None:
        self._identity = identity
        self._cookies = cookies
        self._app_url = app_url.rstrip("/")

    def operations(self) -> list[Operation]:
        auth, admin = "auth", "admin: users"
        return [
            Operation(
                "POST",
                "/api/auth/sign-up/email",
                self.sign_up,
                "Create an account with email and password",
                auth,
                body=SignUpRequest,
                response=AuthResult,
                status=201,
                errors=(409,),
            ),
            Operation(
                "POST",
                "/api/auth/sign-in/email",
                self.sign_in,
                "Sign in with email and password",
                auth,
                body=SignInRequest,
                response=AuthResult,
                status=201,
                errors=(401, 403),
            ),
            Operation(
                "POST",
                "/api/auth/refresh",
                self.refresh,
                "Rotate the refresh token, get a new access token",
                auth,
                body=RefreshRequest,
                response=AuthResult,
                errors=(401, 403),
            ),
            Operation(
                "POST",
                "/api/auth/sign-out",
                self.sign_out,
                "Sign out of this session",
                auth,
                body=SignOutRequest,
                status=204,
                errors=(403,),
            ),
            Operation(
                "POST",
                "/api/auth/sign-out-everywhere",
                self.sign_out_everywhere,
                "Sign out of every session",
                auth,
                access="user",
                response=RevokedSessions,
                errors=(403,),
            ),
            Operation(
                "GET",
                "/api/auth/session",
                self.session,
                "The signed-in user and session",
                auth,
                access="user",
                response=SessionInfo,
            ),
            Operation(
                "GET",
                "/api/auth/sessions",
                self.list_sessions,
                "My active sessions",
                auth,
                access="user",
                response=SessionList,
            ),
            Operation(
                "DELETE",
                "/api/auth/sessions/{session_id}",
                self.revoke_session,
                "Revoke one of my sessions",
                auth,
                access="user",
                status=204,
                errors=(403, 404),
            ),
            Operation(
                "GET",
                "/api/auth/me",
                self.me,
                "My account",
                auth,
                access="user",
                response=UserView,
                errors=(404,),
            ),
            Operation(
                "DELETE",
                "/api/auth/me",
                self.delete_account,
                "Delete my account",
                auth,
                access="user",
                body=DeleteAccountRequest,
                status=204,
                errors=(401, 403),
            ),
            Operation(
                "POST",
                "/api/auth/send-verification-email",
                self.send_verification,
                "Send the email verification link again",
                auth,
                access="user",
                response=VerificationSent,
                status=202,
                errors=(403,),
            ),
            Operation(
                "POST",
                "/api/auth/verify-email",
                self.verify_email,
                "Confirm an email address with its token",
                auth,
                body=VerifyEmailRequest,
                response=UserView,
            ),
            Operation(
                "POST",
                "/api/auth/forgot-password",
                self.forgot_password,
                "Mail a password reset link",
                auth,
                body=ForgotPasswordRequest,
                response=Accepted,
                status=202,
            ),
            Operation(
                "POST",
                "/api/auth/reset-password",
                self.reset_password,
                "Set a new password with a token",
                auth,
                body=ResetPasswordRequest,
                status=204,
            ),
            Operation(
                "GET",
                "/api/auth/oauth/providers",
                self.oauth_providers,
                "Configured sign-in providers",
                auth,
                response=OAuthProviders,
            ),
            Operation(
                "GET",
                "/api/auth/oauth/{provider}/start",
                self.oauth_start,
                "Start signing in (or linking) with a provider",
                auth,
                query=OAuthStartQuery,
                status=302,
                errors=(401, 404),
            ),
            Operation(
                "GET",
                "/api/auth/oauth/{provider}/callback",
                self.oauth_callback,
                "Where the provider sends the browser back",
                auth,
                query=OAuthCallbackQuery,
                status=302,
                errors=(400, 403, 503),
            ),
            Operation(
                "GET",
                "/api/admin/users",
                self.list_users,
                "Find users (paginated)",
                admin,
                access="admin",
                query=UserListQuery,
                response=UserList,
            ),
            Operation(
                "GET",
                "/api/admin/users/{user_id}",
                self.get_user,
                "One user",
                admin,
                access="admin",
                response=UserView,
            ),
            Operation(
                "PUT",
                "/api/admin/users/{user_id}/role",
                self.change_role,
                "Change a user's role (super_admin only)",
                admin,
                access="admin",
                body=RoleChangeRequest,
                response=UserView,
                errors=(404, 409),
            ),
            Operation(
                "POST",
                "/api/admin/users/{user_id}/disable",
                self.disable_user,
                "Disable a user",
                admin,
                access="admin",
                body=StatusChangeRequest,
                response=UserView,
                errors=(404,),
            ),
            Operation(
                "POST",
                "/api/admin/users/{user_id}/enable",
                self.enable_user,
                "Enable a user",
                admin,
                access="admin",
                body=StatusChangeRequest,
                response=UserView,
                errors=(404,),
            ),
        ]

    # --- sign-up, sign-in, sessions ------------------------------------------------------------------

    async def sign_up(self, request: web.Request) -> web.Response:
        body = await read_body(request, SignUpRequest)
        reply = await self._call(request, "POST", "/v1/users", body.model_dump(exclude={"mode"}))
        return self._signed_in(reply, body.mode, status=201)

    async def sign_in(self, request: web.Request) -> web.Response:
        body = await read_body(request, SignInRequest)
        reply = await self._call(request, "POST", "/v1/sessions", body.model_dump(exclude={"mode"}))
        return self._signed_in(reply, body.mode, status=201)

    async def refresh(self, request: web.Request) -> web.Response:
        body = await _optional_body(request, RefreshRequest)
        token = body.refresh_token or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise HttpProblem(401, "Unauthorized", "no refresh token", code="session_expired")
        reply = await self._call(request, "POST", "/v1/sessions/refresh", {"refresh_token": token})
        if not reply.ok and not body.refresh_token:
            response = web.json_response(
                reply.body, status=reply.status, content_type="application/problem+json"
            )
            self._cookies.clear_session(response)
            return response
        return self._signed_in(reply, "token" if body.refresh_token else "cookie")

    async def sign_out(self, request: web.Request) -> web.Response:
        body = await _optional_body(request, SignOutRequest)
        token = body.refresh_token or request.cookies.get(REFRESH_COOKIE)
        reply = await self._call(request, "POST", "/v1/sessions/sign-out", {"refresh_token": token})
        reply.raise_for_problem()
        response = web.Response(status=204)
        self._cookies.clear_session(response)
        return response

    async def sign_out_everywhere(self, request: web.Request) -> web.Response:
        reply = await self._call(request, "POST", "/v1/sessions/revoke-all", None)
        reply.raise_for_problem()
        response = json_body(RevokedSessions.model_validate(reply.body))
        self._cookies.clear_session(response)
        return response

    async def session(self, request: web.Request) -> web.Response:
        # Answered from the verified token (signature + revocation check), without a call to identity.
        principal: Principal = request[PRINCIPAL_KEY]
        return web.json_response(
            {
                "user": {
                    "id": principal.user_id,
                    "email": principal.email,
                    "name": principal.name,
                    "role": principal.role,
                    "email_verified": principal.email_verified,
                },
                "session": {
                    "id": principal.session_id,
                    "access_token_expires_at": datetime.fromtimestamp(principal.expires_at, UTC).isoformat(),
                },
            }
        )

    async def list_sessions(self, request: web.Request) -> web.Response:
        return await self._relay(request, "GET", "/v1/sessions", None, SessionList)

    async def revoke_session(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        return await self._relay(request, "DELETE", f"/v1/sessions/{safe_id(session_id)}", None, None)

    async def me(self, request: web.Request) -> web.Response:
        return await self._relay(request, "GET", "/v1/me", None, UserView)

    async def delete_account(self, request: web.Request) -> web.Response:
        body = await read_body(request, DeleteAccountRequest)
        reply = await self._call(request, "DELETE", "/v1/me", body.model_dump())
        reply.raise_for_problem()
        response = web.Response(status=204)
        self._cookies.clear_session(response)
        return response

    # --- verification and reset ----------------------------------------------------------------------

    async def send_verification(self, request: web.Request) -> web.Response:
        return await self._relay(request, "POST", "/v1/email-verifications", None, VerificationSent)

    async def verify_email(self, request: web.Request) -> web.Response:
        body = await read_body(request, VerifyEmailRequest)
        return await self._relay(
            request, "POST", "/v1/email-verifications/confirm", body.model_dump(), UserView
        )

    async def forgot_password(self, request: web.Request) -> web.Response:
        body = await read_body(request, ForgotPasswordRequest)
        return await self._relay(request, "POST", "/v1/password-resets", body.model_dump(), Accepted)

    async def reset_password(self, request: web.Request) -> web.Response:
        body = await read_body(request, ResetPasswordRequest)
        return await self._relay(request, "POST", "/v1/password-resets/confirm", body.model_dump(), None)

    # --- OAuth ---------------------------------------------------------------------------------------

    async def oauth_providers(self, request: web.Request) -> web.Response:
        return await self._relay(request, "GET", "/v1/oauth/providers", None, OAuthProviders)

    async def oauth_start(self, request: web.Request) -> web.Response:
        query = read_query(request, OAuthStartQuery)
        provider = safe_id(request.match_info["provider"])
        if query.link and request.get(PRINCIPAL_KEY) is None:
            raise HttpProblem(401, "Unauthorized", "sign in before linking an account")
        payload = {"redirect_to": _app_path(query.redirect_to), "link": query.link}
        reply = await self._call(request, "POST", f"/v1/oauth/{provider}/start", payload)
        reply.raise_for_problem()
        response = web.Response(status=302, headers={"Location": reply.body["authorization_url"]})
        self._cookies.set_oauth_state(response, reply.body["state"], OAUTH_STATE_MAX_AGE)
        return response

    async def oauth_callback(self, request: web.Request) -> web.Response:
        query = read_query(request, OAuthCallbackQuery)
        provider = safe_id(request.match_info["provider"])
        expected = request.cookies.get(OAUTH_STATE_COOKIE, "")
        if (
            not query.state
            or not expected
            or not hmac.compare_digest(query.state.encode(), expected.encode())
        ):
            raise HttpProblem(
                400, "Bad Request", "the sign-in state does not match; start again", code="bad_state"
            )
        if query.error or not query.code:
            raise HttpProblem(
                400,
                "Bad Request",
                f"the provider did not sign you in ({query.error or 'no code'})",
                code="oauth_denied",
            )
        reply = await self._call(
            request, "POST", f"/v1/oauth/{provider}/callback", {"code": query.code, "state": query.state}
        )
        reply.raise_for_problem()
        target = f"{self._app_url}{_app_path(reply.body.get('redirect_to') or '/')}"
        response = web.Response(status=302, headers={"Location": target})
        self._set_session_cookies(response, reply.body)
        self._cookies.clear_oauth_state(response)
        return response

    # --- administration ------------------------------------------------------------------------------

    async def list_users(self, request: web.Request) -> web.Response:
        query = read_query(request, UserListQuery)
        params = {k: str(v) for k, v in query.model_dump(exclude_none=True).items()}
        reply = await self._call(request, "GET", "/v1/users", None, params=params)
        reply.raise_for_problem()
        return json_body(UserList.model_validate(reply.body))

    async def get_user(self, request: web.Request) -> web.Response:
        user_id = safe_id(request.match_info["user_id"])
        return await self._relay(request, "GET", f"/v1/users/{user_id}", None, UserView)

    async def change_role(self, request: web.Request) -> web.Response:
        if request[PRINCIPAL_KEY].role != "super_admin":
            raise HttpProblem(403, "Forbidden", "only a super_admin can change roles", code="not_allowed")
        body = await read_body(request, RoleChangeRequest)
        user_id = safe_id(request.match_info["user_id"])
        return await self._relay(request, "PUT", f"/v1/users/{user_id}/role", body.model_dump(), UserView)

    async def disable_user(self, request: web.Request) -> web.Response:
        body = await read_body(request, StatusChangeRequest)
        user_id = safe_id(request.match_info["user_id"])
        return await self._relay(request, "POST", f"/v1/users/{user_id}/disable", body.model_dump(), UserView)

    async def enable_user(self, request: web.Request) -> web.Response:
        body = await read_body(request, StatusChangeRequest)
        user_id = safe_id(request.match_info["user_id"])
        return await self._relay(request, "POST", f"/v1/users/{user_id}/enable", body.model_dump(), UserView)

    # --- helpers -------------------------------------------------------------------------------------

    async def _call(
        self,
        request: web.Request,
        method: str,
        path: str,
        payload: Any,
        *,
        params: dict[str, str] | None = None,
    ) -> ServiceReply:
        return await forward(self._identity, request, method, path, payload=payload, params=params)

    async def _relay(
        self, request: web.Request, method: str, path: str, payload: Any, model: type | None
    ) -> web.Response:
        return await relay(self._identity, request, method, path, model, payload=payload)

    def _signed_in(self, reply: ServiceReply, mode: str, status: int = 200) -> web.Response:
        reply.raise_for_problem()
        body = reply.body
        result = AuthResult.model_validate(body)
        if mode == "cookie":
            response = json_body(
                result.model_copy(
                    update={"access_token": None, "refresh_token": None, "refresh_token_expires_at": None}
                ),
                status=status,
            )
            self._set_session_cookies(response, body)
            return response
        return json_body(result, status=status)

    def _set_session_cookies(self, response: web.StreamResponse, body: dict[str, Any]) -> None:
        self._cookies.set_session(
            response,
            access_token=body["access_token"],
            access_expires_at=datetime.fromisoformat(body["access_token_expires_at"]),
            refresh_token=body["refresh_token"],
            refresh_expires_at=datetime.fromisoformat(body["refresh_token_expires_at"]),
            now=datetime.now(UTC),
        )


async def _optional_body(request: web.Request, model: type[Any]) -> Any:
    """Refresh and sign-out may come with no body at all (the browser sends the cookie)."""
    if not request.can_read_body:
        return model()
    return await read_body(request, model)


def _app_path(redirect_to: str) -> str:
    """Only paths of the app: an absolute or scheme-relative URL would make us an open redirect."""
    parts = urlsplit(redirect_to)
    if parts.scheme or parts.netloc or not redirect_to.startswith("/") or redirect_to.startswith("//"):
        return "/"
    if "\\" in redirect_to:
        return "/"
    return redirect_to
