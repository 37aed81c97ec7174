"""`/api/auth/*` and `/api/admin/users*`: the public face of identity.

Browsers get HttpOnly cookies (`mode: cookie`, the default); API clients ask for `mode: token` and get the
tokens in the body instead. Identity does the work; the gateway validates input, forwards the caller, and
turns identity's answer into cookies or a body. Routes that only forward are declared (`Forward`); the
ones written here set or clear cookies, redirect (OAuth), or answer from the verified token alone.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from funmagic_contracts.api.identity import (
    Accepted,
    AuthResult,
    ChangePasswordRequest,
    DeleteAccountRequest,
    ForgotPasswordRequest,
    OAuthCallbackQuery,
    OAuthProviders,
    OAuthStartQuery,
    PasswordChanged,
    ProfileUpdateRequest,
    RefreshRequest,
    ResetPasswordRequest,
    RevokedSessions,
    RoleChangeRequest,
    SessionInfo,
    SessionList,
    SessionListQuery,
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
from funmagic_contracts.api.storage import Asset
from funmagic_gateway.adapters.services import ServiceClient, ServiceReply, StorageClient
from funmagic_gateway.entrypoints.auth import OAUTH_STATE_COOKIE, REFRESH_COOKIE, CookiePolicy
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, answer, forward, operations, safe_id
from funmagic_kit.api import Operation, json_body, read_body, read_query
from funmagic_kit.clock import Clock
from funmagic_kit.http import HttpProblem
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal

__all__ = ["AuthRoutes"]

OAUTH_STATE_MAX_AGE = 600


# What refuses a request its schema allows (`Business rule:` marks them for the fuzz test, which lets these
# operations answer such a request 4xx; tests/e2e/test_gateway_openapi.py).
_SIGN_UP_RULE = (
    "Business rule: the password policy (422 `weak_password`, every problem listed): 10–128 characters, "
    "no space at either end, more than three different characters, not a common password, not the "
    "email's local part or the name; and the email must be an address (422 `invalid_input`)."
)
_REFRESH_RULE = (
    "Each refresh rotates the refresh token. A rotated token used again is a leak and ends the session "
    "(401 `session_expired`), except the one the session's last rotation replaced, within 30 s of it: "
    "another tab refreshed with the same cookie an instant before (409 `refresh_superseded`; the cookies "
    "are kept, and that refresh's answer brings the new ones)."
)
_MAILED_TOKEN_RULE = (
    "Business rule: `token` must be one mailed by identity, unused and unexpired (400 `invalid_token`)."
)
_PROFILE_RULE = (
    "Business rule: `avatar_asset_id` must be an image asset of mine uploaded with module `avatar` "
    "(422 `invalid_avatar`), and not sent together with `remove_avatar`; `name` must not be only spaces "
    "or hold control characters (422 `invalid_input`)."
)
_CHANGE_PASSWORD_RULE = (
    "Business rule: `current_password` must be my current password (403 `wrong_password`; wrong ones count "
    "towards the account's sign-in pause, 429 `too_many_attempts`); an account without a password sets one "
    "with a reset link (409 `password_not_set`); `new_password` follows the sign-up's password policy "
    "(422 `weak_password`). Every other session of mine is signed out; this one stays signed in."
)
AVATAR_MODULE = "avatar"
_OAUTH_CALLBACK_RULE = (
    "Business rule: `state` must be the one the start of this sign-in set in the browser's cookie "
    "(400 `bad_state`), and `code` one the provider issued for it."
)


class AuthRoutes:
    def __init__(
        self,
        identity: ServiceClient,
        cookies: CookiePolicy,
        clock: Clock,
        *,
        app_url: str,
        storage: ServiceClient,
    ) -> None:
        self._identity = identity
        # Avatars are storage assets: the gateway checks one before identity keeps its id, and turns the id
        # into a URL the browser can show (identity does not talk to storage).
        self._storage = storage
        self._assets = StorageClient(storage)
        self._cookies = cookies
        self._clock = clock
        self._app_url = app_url.rstrip("/")

    def operations(self) -> list[Operation]:
        auth, admin, identity = "auth", "admin: users", self._identity
        user = "/api/admin/users/{user_id}"
        # Hand-written operations name their handler; forwards say where they go, then what they are.
        return operations(
            Operation("POST", "/api/auth/sign-up/email", self.sign_up,
                      "Create an account with email and password", auth, access="public",
                      body=SignUpRequest, response=AuthResult, status=201, errors=(409,),
                      description=_SIGN_UP_RULE),
            Operation("POST", "/api/auth/sign-in/email", self.sign_in,
                      "Sign in with email and password", auth, access="public", body=SignInRequest,
                      response=AuthResult, status=201, errors=(401, 403)),
            Operation("POST", "/api/auth/refresh", self.refresh,
                      "Rotate the refresh token, get a new access token", auth, access="public",
                      body=RefreshRequest, body_required=False, response=AuthResult, errors=(401, 403, 409),
                      description=_REFRESH_RULE),
            Operation("POST", "/api/auth/sign-out", self.sign_out,
                      "Sign out of this session", auth, access="public", body=SignOutRequest,
                      body_required=False, status=204, errors=(403,)),
            Operation("POST", "/api/auth/sign-out-everywhere", self.sign_out_everywhere,
                      "Sign out of every session", auth, access="user", response=RevokedSessions,
                      errors=(403,)),
            Operation("GET", "/api/auth/session", self.session,
                      "The signed-in user and session", auth, access="user", response=SessionInfo),
            Forward("GET", "/api/auth/sessions", identity, "/v1/sessions",
                    "My active sessions, newest first (paginated)", auth, "list_sessions", access="user",
                    query=SessionListQuery, reply=SessionList, description=CURSOR_RULE),
            Forward("DELETE", "/api/auth/sessions/{session_id}", identity, "/v1/sessions/{session_id}",
                    "Revoke one of my sessions", auth, "revoke_session", access="user", owner="caller",
                    status=204, errors=(403, 404)),
            Operation("GET", "/api/auth/me", self.me,
                      "My account, with the URL of my avatar", auth, access="user", response=UserView,
                      errors=(404,)),
            Operation("PATCH", "/api/auth/me", self.update_profile,
                      "Change my name or avatar", auth, access="user", body=ProfileUpdateRequest,
                      response=UserView, errors=(404,), description=_PROFILE_RULE),
            Forward("POST", "/api/auth/change-password", identity, "/v1/me/password",
                    "Change my password (signs out my other sessions)", auth, "change_password",
                    access="user", body=ChangePasswordRequest, reply=PasswordChanged,
                    errors=(403, 409, 429), description=_CHANGE_PASSWORD_RULE),
            Operation("DELETE", "/api/auth/me", self.delete_account,
                      "Delete my account", auth, access="user", body=DeleteAccountRequest, status=204,
                      errors=(401, 403)),
            Forward("POST", "/api/auth/send-verification-email", identity, "/v1/email-verifications",
                    "Send the email verification link again", auth, "send_verification", access="user",
                    reply=VerificationSent, status=202, errors=(403,)),
            Forward("POST", "/api/auth/verify-email", identity, "/v1/email-verifications/confirm",
                    "Confirm an email address with its token", auth, "verify_email", access="public",
                    body=VerifyEmailRequest, reply=UserView, description=_MAILED_TOKEN_RULE),
            Forward("POST", "/api/auth/forgot-password", identity, "/v1/password-resets",
                    "Mail a password reset link", auth, "forgot_password", access="public",
                    body=ForgotPasswordRequest, reply=Accepted, status=202),
            Forward("POST", "/api/auth/reset-password", identity, "/v1/password-resets/confirm",
                    "Set a new password with a token", auth, "reset_password", access="public",
                    body=ResetPasswordRequest, status=204,
                    description=f"{_MAILED_TOKEN_RULE} The new password follows the sign-up's policy."),
            Forward("GET", "/api/auth/oauth/providers", identity, "/v1/oauth/providers",
                    "Configured sign-in providers", auth, "oauth_providers", access="public",
                    reply=OAuthProviders),
            Operation("GET", "/api/auth/oauth/{provider}/start", self.oauth_start,
                      "Start signing in (or linking) with a provider", auth, access="public",
                      query=OAuthStartQuery, status=302, errors=(401, 404)),
            Operation("GET", "/api/auth/oauth/{provider}/callback", self.oauth_callback,
                      "Where the provider sends the browser back", auth, access="public",
                      query=OAuthCallbackQuery, status=302, errors=(400, 403, 404, 503),
                      description=_OAUTH_CALLBACK_RULE),
            Forward("GET", "/api/admin/users", identity, "/v1/users",
                    "Find users (paginated)", admin, "list_users", access="admin", query=UserListQuery,
                    reply=UserList, description=CURSOR_RULE),
            Forward("GET", user, identity, "/v1/users/{user_id}",
                    "One user", admin, "get_user", access="admin", reply=UserView),
            Forward("PUT", user + "/role", identity, "/v1/users/{user_id}/role",
                    "Change a user's role (super_admin only)", admin, "change_role", access="super_admin",
                    body=RoleChangeRequest, reply=UserView, errors=(404, 409)),
            Forward("POST", user + "/disable", identity, "/v1/users/{user_id}/disable",
                    "Disable a user", admin, "disable_user", access="admin", body=StatusChangeRequest,
                    reply=UserView, errors=(404,)),
            Forward("POST", user + "/enable", identity, "/v1/users/{user_id}/enable",
                    "Enable a user", admin, "enable_user", access="admin", body=StatusChangeRequest,
                    reply=UserView, errors=(404,)),
        )  # fmt: skip

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
        if reply.status in (401, 403) and not body.refresh_token:
            # The browser's session is over: its problem as it is, and its cookies gone. Any other failure
            # (identity's database down: 503) says nothing about the session, which the next try may renew.
            return self._signed_out(
                web.json_response(reply.body, status=reply.status, content_type="application/problem+json")
            )
        return self._signed_in(reply, "token" if body.refresh_token else "cookie")

    async def sign_out(self, request: web.Request) -> web.Response:
        body = await _optional_body(request, SignOutRequest)
        token = body.refresh_token or request.cookies.get(REFRESH_COOKIE)
        reply = await self._call(request, "POST", "/v1/sessions/sign-out", {"refresh_token": token})
        return self._signed_out(answer(reply, None))

    async def sign_out_everywhere(self, request: web.Request) -> web.Response:
        reply = await self._call(request, "POST", "/v1/sessions/revoke-all", None)
        return self._signed_out(answer(reply, RevokedSessions))

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

    async def me(self, request: web.Request) -> web.Response:
        reply = await self._call(request, "GET", "/v1/me", None)
        reply.raise_for_problem()
        return json_body(await self._with_avatar_url(UserView.model_validate(reply.body)))

    async def update_profile(self, request: web.Request) -> web.Response:
        body = await read_body(request, ProfileUpdateRequest)
        if body.avatar_asset_id is not None:
            await self._check_avatar(request, body.avatar_asset_id)
        reply = await self._call(request, "PATCH", "/v1/me", body.model_dump())
        reply.raise_for_problem()
        return json_body(await self._with_avatar_url(UserView.model_validate(reply.body)))

    async def _check_avatar(self, request: web.Request, asset_id: str) -> None:
        """The asset must be the caller's own (asked as the caller: another user's is not found), an image
        uploaded with the `avatar` module (so its size and type limits applied)."""
        reply = await forward(self._storage, request, "GET", f"/v1/assets/{safe_id(asset_id)}")
        if reply.status == 404:
            raise HttpProblem(
                422,
                "Unprocessable Content",
                "no such asset of yours",
                code="invalid_avatar",
                field="avatar_asset_id",
            )
        reply.raise_for_problem()
        asset = Asset.model_validate(reply.body)
        if asset.module != AVATAR_MODULE or not asset.mime_type.startswith("image/"):
            raise HttpProblem(
                422,
                "Unprocessable Content",
                f"upload the avatar with module {AVATAR_MODULE!r} (an image)",
                code="invalid_avatar",
                field="avatar_asset_id",
            )

    async def _with_avatar_url(self, user: UserView) -> UserView:
        """`avatar_url`: the chosen avatar's URL from storage (gone from storage: none), else the provider's
        picture."""
        url = user.image
        if user.avatar_asset_id is not None:
            found = await self._assets.urls(user.id, [user.avatar_asset_id])
            if user.avatar_asset_id in found:
                url = found[user.avatar_asset_id].url
        return user.model_copy(update={"avatar_url": url})

    async def delete_account(self, request: web.Request) -> web.Response:
        body = await read_body(request, DeleteAccountRequest)
        reply = await self._call(request, "DELETE", "/v1/me", body.model_dump())
        return self._signed_out(answer(reply, None))

    # --- OAuth ---------------------------------------------------------------------------------------

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

    # --- helpers -------------------------------------------------------------------------------------

    async def _call(self, request: web.Request, method: str, path: str, payload: Any) -> ServiceReply:
        return await forward(self._identity, request, method, path, payload=payload)

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

    def _signed_out(self, response: web.Response) -> web.Response:
        """`response`, ending the browser's session: its cookies are cleared."""
        self._cookies.clear_session(response)
        return response

    def _set_session_cookies(self, response: web.StreamResponse, body: dict[str, Any]) -> None:
        self._cookies.set_session(
            response,
            access_token=body["access_token"],
            access_expires_at=datetime.fromisoformat(body["access_token_expires_at"]),
            refresh_token=body["refresh_token"],
            refresh_expires_at=datetime.fromisoformat(body["refresh_token_expires_at"]),
            now=self._clock.now(),
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
