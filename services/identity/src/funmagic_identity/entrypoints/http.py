"""Internal HTTP API of identity, called by the gateway (health and /metrics come from the kit).

Every route needs the internal credential or a user token (the kit's caller check). Routes acting for a
user take them from the forwarded, verified access token (`request[PRINCIPAL_KEY]`), never from the body.
Refusals are the domain's errors, answered as problem+json by the kit's middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import Field, JsonValue, RootModel

from funmagic_contracts.api import Request
from funmagic_contracts.api.identity import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    ForgotPasswordRequest,
    ProfileUpdateRequest,
    ResetPasswordRequest,
    RoleChangeRequest,
    SessionListQuery,
    StatusChangeRequest,
    UserListQuery,
    VerifyEmailRequest,
)
from funmagic_identity.adapters.mail import DevMailbox
from funmagic_identity.application.handlers import ClientContext, IdentityHandlers, SignedIn
from funmagic_identity.application.ports import SessionRecord
from funmagic_identity.application.settings import PlatformSettings
from funmagic_identity.domain.users import ProfileChange, User
from funmagic_kit.api import (
    enforce_access,
    path_uuid,
    read_body,
    read_query,
    require_internal_caller,
    require_principal,
    require_role,
)
from funmagic_kit.http import HttpProblem
from funmagic_kit.request_keys import INTERNAL_CALLER_KEY, PRINCIPAL_KEY, Principal

__all__ = ["IdentityApp", "dev_mail_route"]


# Bodies and queries the gateway forwards as the client sent them are read with the public models of
# `funmagic_contracts.api.identity`. The bodies below the gateway composes instead (from the client's body,
# its cookies, the provider's redirect), so they are the service's own.


# Sign-up and sign-in: the public body less `mode`, which only the gateway reads (cookies or tokens).
class SignUpBody(Request):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)
    name: str = Field("", max_length=100)


class SignInBody(Request):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


# Refresh and sign-out: the token from the public body or, in cookie mode, from the refresh cookie; a refresh
# always has one.
class RefreshBody(Request):
    refresh_token: str = Field(min_length=10, max_length=512)


class SignOutBody(Request):
    refresh_token: str | None = Field(None, max_length=512)


# OAuth: the public query, turned into a body with `redirect_to` reduced to a path of the app (start), and the
# provider's `code` and `state` once the gateway has checked the state cookie (callback).
class OAuthStartBody(Request):
    redirect_to: str = Field("/", max_length=2048)
    link: bool = False


class OAuthCallbackBody(Request):
    code: str = Field(min_length=1, max_length=2048)
    state: str = Field(min_length=10, max_length=512)


# Not a public route: the development mail sink.
class DevMailQuery(Request):
    to: str | None = Field(
        None, min_length=3, max_length=254, description="Without it: the newest mail to anyone."
    )
    limit: int = Field(20, ge=1, le=100)


# Not a public route: a platform setting as its owner (the gateway) sends it, any JSON object (the owner
# validated it with its own model).
class SettingDocument(RootModel[dict[str, JsonValue]]):
    pass


def user_view(user: User) -> dict[str, Any]:
    return user.model_dump(mode="json")


def session_view(session: SessionRecord, current_session_id: str | None = None) -> dict[str, Any]:
    return {
        "id": session.id,
        "created_at": session.created_at.isoformat(),
        "last_refreshed_at": session.last_refreshed_at.isoformat(),
        "expires_at": session.expires_at.isoformat(),
        "ip_address": session.ip_address,
        "user_agent": session.user_agent,
        "current": session.id == current_session_id,
    }


def signed_in_view(result: SignedIn) -> dict[str, Any]:
    return {
        "user": user_view(result.user),
        "session": session_view(result.session, result.session.id),
        "access_token": result.access_token,
        "access_token_expires_at": result.access_token_expires_at.isoformat(),
        "refresh_token": result.refresh_token,
        "refresh_token_expires_at": result.session.expires_at.isoformat(),
        "created": result.created,
        "redirect_to": result.redirect_to,
    }


class IdentityApp:
    def __init__(
        self,
        handlers: IdentityHandlers,
        *,
        settings: PlatformSettings,
        dev_mailbox: DevMailbox | None,
        jwks: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._handlers = handlers
        self._settings = settings
        self._dev_mailbox = dev_mailbox
        self._jwks = jwks

    def routes(self) -> Sequence[web.RouteDef]:
        routes = [
            web.get("/.well-known/jwks.json", self.jwks),
            web.post("/v1/users", self.sign_up),
            web.post("/v1/sessions", self.sign_in),
            web.post("/v1/sessions/refresh", self.refresh),
            web.post("/v1/sessions/sign-out", self.sign_out),
            web.post("/v1/sessions/revoke-all", self.sign_out_everywhere),
            web.get("/v1/sessions", self.list_sessions),
            web.delete("/v1/sessions/{session_id}", self.revoke_session),
            web.get("/v1/me", self.me),
            web.patch("/v1/me", self.update_profile),
            web.delete("/v1/me", self.delete_account),
            web.post("/v1/me/password", self.change_password),
            web.post("/v1/email-verifications", self.resend_verification),
            web.post("/v1/email-verifications/confirm", self.verify_email),
            web.post("/v1/password-resets", self.forgot_password),
            web.post("/v1/password-resets/confirm", self.reset_password),
            web.get("/v1/oauth/providers", self.oauth_providers),
            web.post("/v1/oauth/{provider}/start", self.oauth_start),
            web.post("/v1/oauth/{provider}/callback", self.oauth_callback),
            web.get("/v1/users", self.search_users),
            web.get("/v1/users/{user_id}", self.get_user),
            web.put("/v1/users/{user_id}/role", self.change_role),
            web.post("/v1/users/{user_id}/disable", self.disable_user),
            web.post("/v1/users/{user_id}/enable", self.enable_user),
            # For other services only (the internal credential): 401 for anyone else.
            web.get("/v1/internal/settings/{name}", enforce_access("internal", self.get_setting)),
            web.put("/v1/internal/settings/{name}", enforce_access("internal", self.put_setting)),
        ]
        if self._dev_mailbox is not None:
            routes.append(dev_mail_route(self._dev_mailbox))
        return routes

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": self._jwks()}, headers={"Cache-Control": "public, max-age=60"})

    async def sign_up(self, request: web.Request) -> web.Response:
        body = await read_body(request, SignUpBody)
        result = await self._handlers.sign_up(body.email, body.password, body.name, _context(request))
        return web.json_response(signed_in_view(result), status=201)

    async def sign_in(self, request: web.Request) -> web.Response:
        body = await read_body(request, SignInBody)
        result = await self._handlers.sign_in(body.email, body.password, _context(request))
        return web.json_response(signed_in_view(result), status=201)

    async def refresh(self, request: web.Request) -> web.Response:
        body = await read_body(request, RefreshBody)
        return web.json_response(signed_in_view(await self._handlers.refresh(body.refresh_token)))

    async def sign_out(self, request: web.Request) -> web.Response:
        body = await read_body(request, SignOutBody)
        principal = request.get(PRINCIPAL_KEY)
        await self._handlers.sign_out(
            user_id=principal.user_id if principal else None,
            session_id=principal.session_id if principal else None,
            refresh_token=body.refresh_token,
        )
        return web.Response(status=204)

    async def sign_out_everywhere(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        revoked = await self._handlers.sign_out_everywhere(principal.user_id)
        return web.json_response({"revoked_sessions": revoked})

    async def list_sessions(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, SessionListQuery)
        page = await self._handlers.list_sessions(principal.user_id, limit=query.limit, cursor=query.cursor)
        return web.json_response(
            {
                "items": [session_view(s, principal.session_id) for s in page.sessions],
                "next_cursor": page.next_cursor,
            }
        )

    async def revoke_session(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        await self._handlers.revoke_session(principal.user_id, request.match_info["session_id"])
        return web.Response(status=204)

    async def me(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        return web.json_response(user_view(await self._handlers.current_user(principal.user_id)))

    async def update_profile(self, request: web.Request) -> web.Response:
        """The caller's own name and avatar. That the avatar is the caller's own asset of the `avatar` module
        is the gateway's check (it asks storage) before it forwards; identity keeps the id it is given."""
        body = await read_body(request, ProfileUpdateRequest)
        change = ProfileChange(
            name=body.name, avatar_asset_id=body.avatar_asset_id, clear_avatar=body.remove_avatar
        )
        user = await self._handlers.update_profile(require_principal(request).user_id, change)
        return web.json_response(user_view(user))

    async def change_password(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        body = await read_body(request, ChangePasswordRequest)
        revoked = await self._handlers.change_password(
            principal.user_id, principal.session_id, body.current_password, body.new_password
        )
        return web.json_response({"revoked_sessions": revoked})

    async def delete_account(self, request: web.Request) -> web.Response:
        body = await read_body(request, DeleteAccountRequest)
        await self._handlers.delete_account(require_principal(request).user_id, body.password)
        return web.Response(status=204)

    async def resend_verification(self, request: web.Request) -> web.Response:
        sent = await self._handlers.resend_verification(require_principal(request).user_id)
        return web.json_response({"sent": sent}, status=202)

    async def verify_email(self, request: web.Request) -> web.Response:
        body = await read_body(request, VerifyEmailRequest)
        return web.json_response(user_view(await self._handlers.verify_email(body.token)))

    async def forgot_password(self, request: web.Request) -> web.Response:
        body = await read_body(request, ForgotPasswordRequest)
        await self._handlers.request_password_reset(body.email)
        return web.json_response({"status": "if the account exists, a reset link was sent"}, status=202)

    async def reset_password(self, request: web.Request) -> web.Response:
        body = await read_body(request, ResetPasswordRequest)
        await self._handlers.reset_password(body.token, body.password)
        return web.Response(status=204)

    async def oauth_providers(self, request: web.Request) -> web.Response:
        return web.json_response({"providers": self._handlers.oauth_providers()})

    async def oauth_start(self, request: web.Request) -> web.Response:
        body = await read_body(request, OAuthStartBody)
        principal: Principal | None = request.get(PRINCIPAL_KEY)
        if body.link and principal is None:
            raise HttpProblem(401, "Unauthorized", "sign in before linking an account")
        started = await self._handlers.start_oauth(
            request.match_info["provider"],
            redirect_to=body.redirect_to,
            link_user_id=principal.user_id if body.link and principal else None,
        )
        return web.json_response({"authorization_url": started.authorization_url, "state": started.state})

    async def oauth_callback(self, request: web.Request) -> web.Response:
        body = await read_body(request, OAuthCallbackBody)
        result = await self._handlers.finish_oauth(
            request.match_info["provider"], code=body.code, state=body.state, context=_context(request)
        )
        return web.json_response(signed_in_view(result), status=201)

    async def search_users(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, UserListQuery)
        page = await self._handlers.search_users(
            query=query.query, role=query.role, limit=query.limit, cursor=query.cursor
        )
        return web.json_response(
            {"items": [user_view(u) for u in page.users], "next_cursor": page.next_cursor}
        )

    async def get_user(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        detail = await self._handlers.user_for_admin(path_uuid(request, "user_id", "user"))
        return web.json_response({**user_view(detail.user), "session_count": detail.session_count})

    async def change_role(self, request: web.Request) -> web.Response:
        actor = require_role(request, "admin")
        body = await read_body(request, RoleChangeRequest)
        user = await self._handlers.change_role(
            actor_id=actor.user_id,
            actor_role=actor.role,
            user_id=path_uuid(request, "user_id", "user"),
            new_role=body.role,
        )
        return web.json_response(user_view(user))

    async def disable_user(self, request: web.Request) -> web.Response:
        return await self._set_disabled(request, True)

    async def enable_user(self, request: web.Request) -> web.Response:
        return await self._set_disabled(request, False)

    async def _set_disabled(self, request: web.Request, disabled: bool) -> web.Response:
        actor = require_role(request, "admin")
        body = await read_body(request, StatusChangeRequest)
        user = await self._handlers.set_disabled(
            actor_id=actor.user_id,
            actor_role=actor.role,
            user_id=path_uuid(request, "user_id", "user"),
            disabled=disabled,
            reason=body.reason,
        )
        return web.json_response(user_view(user))

    async def get_setting(self, request: web.Request) -> web.Response:
        """The stored document (404 `setting_not_set` when it never was)."""
        stored = await self._settings.get(request.match_info["name"])
        return web.json_response(stored.document)

    async def put_setting(self, request: web.Request) -> web.Response:
        """Stores the document whole; the user whose change it is (the forwarded token, if any) is recorded
        as `updated_by`. Answers the stored document once it is committed."""
        body = await read_body(request, SettingDocument)
        principal = request.get(PRINCIPAL_KEY)
        stored = await self._settings.put(
            request.match_info["name"], body.root, by=principal.user_id if principal else None
        )
        return web.json_response(stored.document)


def dev_mail_route(mailbox: DevMailbox) -> web.RouteDef:
    """GET /v1/dev/mail[?to=…]: the mail the sink kept, newest first, for an address or for anyone (sink
    mode: development and tests; `make mail` reads it). Its links sign anyone in: for holders of the
    internal credential only, never a user's token."""

    async def dev_mail(request: web.Request) -> web.Response:
        require_internal_caller(request)
        query = read_query(request, DevMailQuery)
        recipient = query.to.strip().lower() if query.to else None
        return web.json_response({"items": await mailbox.messages_to(recipient, limit=query.limit)})

    return web.get("/v1/dev/mail", dev_mail)


def _context(request: web.Request) -> ClientContext:
    # Only the gateway (internal credential) may state the end user's address and agent.
    if not request.get(INTERNAL_CALLER_KEY):
        return ClientContext(ip_address=request.remote, user_agent=request.headers.get("User-Agent"))
    return ClientContext(
        ip_address=request.headers.get("X-Client-Ip") or None,
        user_agent=request.headers.get("X-Client-User-Agent") or None,
    )
