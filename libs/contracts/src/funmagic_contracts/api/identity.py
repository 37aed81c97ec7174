"""`/api/auth/*` and `/api/admin/users*`: the models of identity's public face.

Request models identity reads its route's body (or query) with, as the gateway forwards them:

    VerifyEmailRequest     POST /v1/email-verifications/confirm
    ForgotPasswordRequest  POST /v1/password-resets
    ResetPasswordRequest   POST /v1/password-resets/confirm
    DeleteAccountRequest   DELETE /v1/me
    ProfileUpdateRequest   PATCH /v1/me (the gateway checks the avatar asset with storage first)
    ChangePasswordRequest  POST /v1/me/password
    SessionListQuery       GET /v1/sessions (query)
    UserListQuery          GET /v1/users (query)
    RoleChangeRequest      PUT /v1/users/{user_id}/role
    StatusChangeRequest    POST /v1/users/{user_id}/disable and /enable

The others are the gateway's own, from which it composes identity's body (identity has a model of each):
`SignUpRequest` and `SignInRequest` go on without `mode` (POST /v1/users, POST /v1/sessions);
`RefreshRequest` and `SignOutRequest` may leave the token to the refresh cookie (POST /v1/sessions/refresh,
/sign-out); `OAuthStartQuery` becomes the body of POST /v1/oauth/{provider}/start with `redirect_to`
reduced to a path of the app; `OAuthCallbackQuery` gives the callback's `code` and `state`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from funmagic_contracts.api.base import Reply, Request

__all__ = [
    "Accepted",
    "AuthMode",
    "AuthResult",
    "ChangePasswordRequest",
    "CurrentSession",
    "DeleteAccountRequest",
    "ForgotPasswordRequest",
    "OAuthCallbackQuery",
    "OAuthProviders",
    "OAuthStartQuery",
    "PasswordChanged",
    "ProfileUpdateRequest",
    "RefreshRequest",
    "ResetPasswordRequest",
    "RevokedSessions",
    "Role",
    "RoleChangeRequest",
    "SessionInfo",
    "SessionList",
    "SessionListQuery",
    "SessionUser",
    "SessionView",
    "SignInRequest",
    "SignOutRequest",
    "SignUpRequest",
    "StatusChangeRequest",
    "UserList",
    "UserListQuery",
    "UserView",
    "VerificationSent",
    "VerifyEmailRequest",
]

Role = Literal["user", "admin", "super_admin"]
AuthMode = Literal["cookie", "token"]
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


# --- requests -------------------------------------------------------------------------------------------


class SignUpRequest(Request):
    email: str = Field(min_length=3, max_length=254, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=256, description="10–128 characters, not a common one.")
    name: str = Field("", max_length=100)
    mode: AuthMode = Field(
        "cookie",
        description="`cookie` sets HttpOnly cookies (browsers); `token` returns the tokens (API clients).",
    )


class SignInRequest(Request):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)
    mode: AuthMode = "cookie"


class RefreshRequest(Request):
    refresh_token: str | None = Field(
        None,
        min_length=10,
        max_length=512,
        description="Token mode only; browsers send the refresh cookie instead (and may send no body).",
    )


class SignOutRequest(Request):
    refresh_token: str | None = Field(None, max_length=512)


class VerifyEmailRequest(Request):
    token: str = Field(min_length=10, max_length=512)


class ForgotPasswordRequest(Request):
    email: str = Field(min_length=1, max_length=254)


class ResetPasswordRequest(Request):
    token: str = Field(min_length=10, max_length=512)
    password: str = Field(min_length=1, max_length=256)


class DeleteAccountRequest(Request):
    password: str | None = Field(
        None, max_length=256, description="Required when the account has a password."
    )


class ProfileUpdateRequest(Request):
    """Only the fields sent change; an empty body changes nothing."""

    name: str | None = Field(
        None, min_length=1, max_length=100, description="Trimmed; 1–100 characters, no control characters."
    )
    avatar_asset_id: str | None = Field(
        None,
        max_length=36,
        pattern=_UUID,
        description="An asset of mine uploaded with module `avatar` (POST /api/assets/uploads), an image.",
    )
    remove_avatar: bool = Field(False, description="Remove my avatar (then without `avatar_asset_id`).")


class ChangePasswordRequest(Request):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(
        min_length=1, max_length=256, description="10–128 characters, not a common one."
    )


class OAuthStartQuery(Request):
    # Bounded so that the longest request line this allows, every character percent-encoded, stays
    # well within what the gateway reads (the same for `code`).
    redirect_to: str = Field("/", max_length=1024, description="A path of the app to return to.")
    link: bool = Field(False, description="Link the provider to the signed-in account instead of signing in.")


class OAuthCallbackQuery(Request):
    model_config = ConfigDict(extra="ignore")  # providers add their own parameters (scope, authuser…)

    code: str | None = Field(None, max_length=1024)
    state: str | None = Field(None, max_length=512)
    error: str | None = Field(None, max_length=200)


class SessionListQuery(Request):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


class UserListQuery(Request):
    query: str | None = Field(None, max_length=200, description="Part of an email or name.")
    role: Role | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


class RoleChangeRequest(Request):
    role: Role


class StatusChangeRequest(Request):
    reason: str = Field(min_length=1, max_length=500)


# --- replies --------------------------------------------------------------------------------------------


# An account: GET /v1/me, GET /v1/users/{user_id}, and every admin change of a user.
class UserView(Reply):
    id: str
    email: str
    name: str
    image: str | None = Field(None, description="The picture an OAuth provider gave, as it gave it.")
    avatar_asset_id: str | None = Field(None, description="The avatar I chose: an asset of mine.")
    avatar_url: str | None = Field(
        None,
        description="What to show as the avatar (GET and PATCH /api/auth/me): the chosen avatar's URL "
        "(presigned, valid about an hour) or else the provider's picture; null: none (show initials).",
    )
    role: Role
    email_verified: bool
    has_password: bool = False
    disabled: bool = False
    created_at: datetime
    updated_at: datetime
    session_count: int | None = Field(
        None, description="An admin's view of one user only (GET /v1/users/{user_id}): active sessions."
    )


class SessionView(Reply):
    id: str
    created_at: datetime
    last_refreshed_at: datetime
    expires_at: datetime
    ip_address: str | None = None
    user_agent: str | None = None
    current: bool = False


# Sign-up, sign-in, refresh and the OAuth callback. Identity also answers `created` and `redirect_to`,
# which the gateway reads itself (the OAuth redirect) and does not pass on.
class AuthResult(Reply):
    user: UserView
    session: SessionView
    access_token_expires_at: datetime
    access_token: str | None = Field(None, description="Token mode only.")
    refresh_token: str | None = Field(None, description="Token mode only.")
    refresh_token_expires_at: datetime | None = None


class SessionUser(Reply):
    id: str
    email: str
    name: str
    role: Role
    email_verified: bool


class CurrentSession(Reply):
    id: str
    access_token_expires_at: datetime


# GET /api/auth/session: answered by the gateway from the verified token, without calling identity.
class SessionInfo(Reply):
    user: SessionUser
    session: CurrentSession


# My active sessions, newest first (by when they were signed in).
class SessionList(Reply):
    items: list[SessionView]
    next_cursor: str | None = None


class RevokedSessions(Reply):
    revoked_sessions: int


class PasswordChanged(Reply):
    revoked_sessions: int = Field(description="How many of my other sessions were signed out.")


class Accepted(Reply):
    status: str


class VerificationSent(Reply):
    sent: bool


class OAuthProviders(Reply):
    providers: list[str]


class UserList(Reply):
    items: list[UserView]
    next_cursor: str | None = None
