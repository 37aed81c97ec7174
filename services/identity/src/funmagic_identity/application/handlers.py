"""The identity use cases: one unit of work each, events through the outbox in the same transaction."""

from __future__ import annotations

__all__ = [
    "AdminUserDetail",
    "ClientContext",
    "IdentityHandlers",
    "IdentityPolicy",
    "OAuthStart",
    "SignedIn",
    "hash_token",
]

import base64
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from funmagic_contracts.identity.events import (
    UserDeleted,
    UserDisabled,
    UserEmailVerified,
    UserEnabled,
    UserRegistered,
    UserRoleChanged,
)
from funmagic_identity.application.ports import (
    AccessTokenIssuer,
    IdentityStore,
    IdentityUnitOfWork,
    OAuthGateway,
    OAuthProfile,
    OAuthStates,
    OutgoingMail,
    PasswordHasher,
    Revocations,
    SessionPage,
    SessionRecord,
    SignInGuard,
    UnitOfWorkFactory,
    UserPage,
)
from funmagic_identity.domain.errors import (
    AccountDisabled,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidInput,
    InvalidVerificationToken,
    NotAllowed,
    OAuthFailed,
    RefreshSuperseded,
    SessionExpired,
    TooManyAttempts,
    UserNotFound,
    WrongPassword,
)
from funmagic_identity.domain.sessions import reuse_is_a_leak
from funmagic_identity.domain.users import (
    ProfileChange,
    Role,
    User,
    check_password_policy,
    display_name,
    normalise_email,
    password_change_is_allowed,
    profile_changes,
    role_change_is_allowed,
    status_change_is_allowed,
)
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock

log = logging.getLogger(__name__)

# The reason of the audit entries the operator's command writes (they have no actor).
_BY_OPERATOR = "create-super-admin command"

EMAIL_VERIFICATION = "email-verification"
PASSWORD_RESET = "password-reset"
PASSWORD_CHANGED = "password-changed"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IdentityPolicy:
    session_ttl: timedelta = timedelta(days=30)
    email_verification_ttl: timedelta = timedelta(hours=24)
    password_reset_ttl: timedelta = timedelta(minutes=30)
    oauth_state_ttl: timedelta = timedelta(minutes=10)
    app_url: str = "http://localhost:5173"


@dataclass(frozen=True)
class ClientContext:
    ip_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: SessionRecord
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    created: bool = False
    redirect_to: str | None = None


@dataclass(frozen=True)
class OAuthStart:
    authorization_url: str
    state: str


@dataclass(frozen=True)
class AdminUserDetail:
    """An account as an admin sees it: the user and how many sessions they have open."""

    user: User
    session_count: int


@dataclass(frozen=True, kw_only=True)
class IdentityHandlers:
    """The use cases, over the ports they need (the composition root passes the concrete ones)."""

    uow: UnitOfWorkFactory
    hasher: PasswordHasher
    tokens: AccessTokenIssuer
    revocations: Revocations
    oauth: OAuthGateway
    oauth_states: OAuthStates
    sign_in_guard: SignInGuard
    clock: Clock
    policy: IdentityPolicy

    # --- email and password -------------------------------------------------------------------------

    async def sign_up(self, email: str, password: str, name: str, context: ClientContext) -> SignedIn:
        email = normalise_email(email)
        name = display_name(name, email)
        check_password_policy(password, email=email, name=name)
        password_hash = await self.hasher.hash(password)
        now = self.clock.now()
        user = _new_user(email, name, now, has_password=True)
        async with self.uow() as uow:
            if await uow.store.user_by_email(email) is not None:
                raise EmailAlreadyRegistered("an account with this email already exists")
            await uow.store.add_user(user, password_hash)
            uow.publish(
                UserRegistered(user_id=user.id, email=email, name=name, method="email", registered_at=now)
            )
            await self._send_verification(uow, user, now)
            signed_in = await self._open_session(uow, user, context, now)
        log.info("user signed up", extra={"user_id": user.id, "session_id": signed_in.session.id})
        return SignedIn(**{**signed_in.__dict__, "created": True})

    async def sign_in(self, email: str, password: str, context: ClientContext) -> SignedIn:
        try:
            email = normalise_email(email)
        except InvalidInput:
            await self.hasher.burn(password)
            raise InvalidCredentials("email or password is wrong") from None
        retry_after = await self.sign_in_guard.retry_after(email)
        if retry_after is not None:
            raise TooManyAttempts(retry_after)
        async with self.uow() as uow:
            user = await uow.store.user_by_email(email)
            password_hash = await uow.store.password_hash(user.id) if user else None
        if user is None or password_hash is None:
            await self.hasher.burn(password)
            await self.sign_in_guard.failed(email)
            raise InvalidCredentials("email or password is wrong")
        if not await self.hasher.verify(password_hash, password):
            await self.sign_in_guard.failed(email)
            log.info("sign-in refused: wrong password", extra={"user_id": user.id})
            raise InvalidCredentials("email or password is wrong")
        await self.sign_in_guard.succeeded(email)
        if user.disabled:
            raise AccountDisabled("this account is disabled")
        now = self.clock.now()
        async with self.uow() as uow:
            signed_in = await self._open_session(uow, user, context, now)
        log.info("user signed in", extra={"user_id": user.id, "session_id": signed_in.session.id})
        return signed_in

    async def refresh(self, refresh_token: str) -> SignedIn:
        now = self.clock.now()
        old_hash = hash_token(refresh_token)
        async with self.uow() as uow:
            found = await uow.store.session_by_refresh_hash(old_hash)
            if found is None:
                raise SessionExpired("sign in again")
            session, retired_at = found
            if retired_at is None:
                return await self._rotate(uow, session.id, old_hash, now)
            last_rotation_at = session.last_refreshed_at
            if not reuse_is_a_leak(retired_at=retired_at, last_rotation_at=last_rotation_at, now=now):
                raise RefreshSuperseded()  # another tab's refresh with the same cookie, an instant before
            # An old refresh token came back: it leaked. The revocation commits before the refusal.
            await uow.store.revoke_session(session.id, "refresh_token_reused", now)
        await self.revocations.session_revoked(session.user_id, session.id)
        log.warning(
            "refresh token reused: session revoked",
            extra={"user_id": session.user_id, "session_id": session.id},
        )
        raise SessionExpired("this refresh token was already used; the session is revoked for safety")

    async def _rotate(
        self, uow: IdentityUnitOfWork, session_id: str, old_hash: bytes, now: datetime
    ) -> SignedIn:
        session = await uow.store.session(session_id, for_update=True)
        if session is None or session.revoked_at is not None or session.expires_at <= now:
            raise SessionExpired("sign in again")
        user = await uow.store.user_by_id(session.user_id)
        if user is None or user.disabled:
            raise SessionExpired("sign in again")
        new_refresh = f"{session.id}.{_new_token()}"
        if not await uow.store.rotate_refresh_token(session.id, old_hash, hash_token(new_refresh), now):
            # A concurrent refresh with the same token (another tab's) won the row lock; the session lives on.
            raise RefreshSuperseded()
        return self._signed_in(user, session, new_refresh, now)

    async def sign_out(
        self, *, user_id: str | None, session_id: str | None, refresh_token: str | None
    ) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            session = None
            if refresh_token:
                found = await uow.store.session_by_refresh_hash(hash_token(refresh_token))
                session = found[0] if found else None
            if session is None and session_id:
                session = await uow.store.session(session_id)
                if session is not None and session.user_id != user_id:
                    session = None
            if session is None:
                return
            await uow.store.revoke_session(session.id, "signed_out", now)
        await self.revocations.session_revoked(session.user_id, session.id)

    async def sign_out_everywhere(self, user_id: str) -> int:
        now = self.clock.now()
        async with self.uow() as uow:
            revoked = await uow.store.revoke_user_sessions(user_id, "signed_out_everywhere", now)
        await self.revocations.tokens_invalid_before(user_id, now)
        return len(revoked)

    async def list_sessions(self, user_id: str, *, limit: int, cursor: str | None) -> SessionPage:
        async with self.uow() as uow:
            return await uow.store.sessions_of(user_id, self.clock.now(), limit=limit, cursor=cursor)

    async def revoke_session(self, user_id: str, session_id: str) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            session = await uow.store.session(session_id)
            if session is None or session.user_id != user_id:
                raise UserNotFound("no such session")  # another user's session id is simply not found
            await uow.store.revoke_session(session_id, "revoked_by_user", now)
        await self.revocations.session_revoked(user_id, session_id)

    async def current_user(self, user_id: str) -> User:
        async with self.uow() as uow:
            user = await uow.store.user_by_id(user_id)
        if user is None:
            raise UserNotFound("no such user")
        return user

    # --- self-service: profile and password ----------------------------------------------------------

    async def update_profile(self, user_id: str, change: ProfileChange) -> User:
        """The user's own name and avatar. No event: no other service keeps a user's name or avatar (the
        catalog's `UserRegistered` carries the name at sign-up only). Access tokens keep the old name until
        their next refresh (minutes); `GET /v1/me` answers the new one at once."""
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.store.user_by_id(user_id, for_update=True)
            if user is None:
                raise UserNotFound("no such user")
            changes = profile_changes(user, change)
            if not changes:
                return user
            updated = await uow.store.update_user(user_id, now, **changes)
        log.info("profile updated", extra={"user_id": user_id, "fields": sorted(changes)})
        return updated

    async def change_password(
        self, user_id: str, session_id: str, current_password: str, new_password: str
    ) -> int:
        """A new password for a signed-in user who proves the current one. Every other session of theirs is
        revoked (whoever else holds one no longer gets in), the asking one stays signed in. Wrong current
        passwords count towards the same per-account pause as wrong sign-ins, so a stolen session cannot be
        used to guess the password. Answers how many sessions were revoked."""
        async with self.uow() as uow:
            user = await uow.store.user_by_id(user_id)
            password_hash = await uow.store.password_hash(user_id) if user else None
        if user is None:
            raise UserNotFound("no such user")
        retry_after = await self.sign_in_guard.retry_after(user.email)
        if retry_after is not None:
            raise TooManyAttempts(retry_after)
        matches = password_hash is not None and await self.hasher.verify(password_hash, current_password)
        if password_hash is not None and not matches:
            await self.sign_in_guard.failed(user.email)
            log.info("password change refused: wrong current password", extra={"user_id": user_id})
        password_change_is_allowed(
            user,
            has_password=password_hash is not None,
            current_password_matches=matches,
            new_password=new_password,
        )
        await self.sign_in_guard.succeeded(user.email)
        new_hash = await self.hasher.hash(new_password)
        now = self.clock.now()
        async with self.uow() as uow:
            locked = await uow.store.user_by_id(user_id, for_update=True)
            if locked is None:
                raise UserNotFound("no such user")
            if await uow.store.password_hash(user_id) != password_hash:
                # Another change (or a reset) won the race since the check: this one proved an old password.
                raise WrongPassword("the password just changed; enter the current one again")
            await uow.store.set_password_hash(user_id, new_hash, now)
            revoked = await uow.store.revoke_other_sessions(user_id, session_id, "password_changed", now)
            await uow.store.queue_mail(
                OutgoingMail(
                    recipient=user.email,
                    subject="Your FunMagic password was changed",
                    body=(
                        f"Hello {user.name},\n\nThe password of your FunMagic account was just changed, "
                        "and every other device was signed out.\n"
                        "If it was not you, reset your password now:\n"
                        f"{self.policy.app_url}/forgot-password\n"
                    ),
                    purpose=PASSWORD_CHANGED,
                ),
                now,
            )
        # Per session, not `tokens_invalid_before`: that would also refuse the asking session's token.
        for revoked_id in revoked:
            await self.revocations.session_revoked(user_id, revoked_id)
        log.info("password changed", extra={"user_id": user_id, "revoked_sessions": len(revoked)})
        return len(revoked)

    # --- verification and reset ----------------------------------------------------------------------

    async def resend_verification(self, user_id: str) -> bool:
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.store.user_by_id(user_id)
            if user is None:
                raise UserNotFound("no such user")
            if user.email_verified:
                return False
            await self._send_verification(uow, user, now)
        return True

    async def verify_email(self, token: str) -> User:
        now = self.clock.now()
        async with self.uow() as uow:
            user_id = await uow.store.consume_verification(hash_token(token), EMAIL_VERIFICATION, now)
            if user_id is None:
                raise InvalidVerificationToken("this link is invalid, used or expired")
            user = await uow.store.user_by_id(user_id, for_update=True)
            if user is None:
                raise InvalidVerificationToken("this link is invalid, used or expired")
            if not user.email_verified:
                user = await uow.store.update_user(user.id, now, email_verified=True)
                uow.publish(UserEmailVerified(user_id=user.id, email=user.email))
        await self.revocations.tokens_invalid_before(user.id, now)  # tokens carry email_verified
        return user

    async def request_password_reset(self, email: str) -> None:
        """Always succeeds from the caller's view, so it does not tell which emails have accounts."""
        try:
            email = normalise_email(email)
        except InvalidInput:
            return
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.store.user_by_email(email)
            if user is None or user.disabled:
                return
            identifier = f"{PASSWORD_RESET}:{user.id}"
            await uow.store.drop_verifications(identifier, now)  # only the newest link works
            token = _new_token()
            await uow.store.add_verification(
                identifier, hash_token(token), now + self.policy.password_reset_ttl, now
            )
            minutes = int(self.policy.password_reset_ttl.total_seconds() // 60)
            await uow.store.queue_mail(
                OutgoingMail(
                    recipient=user.email,
                    subject="Reset your FunMagic password",
                    body=(
                        f"Hello {user.name},\n\n"
                        "Someone asked to reset the password of your FunMagic account.\n"
                        f"Choose a new one here (valid {minutes} minutes, once):\n"
                        f"{self.policy.app_url}/reset-password?token={token}\n\n"
                        "If it was not you, ignore this mail; your password stays as it is.\n"
                    ),
                    purpose=PASSWORD_RESET,
                ),
                now,
            )

    async def reset_password(self, token: str, password: str) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            user_id = await uow.store.consume_verification(hash_token(token), PASSWORD_RESET, now)
            user = await uow.store.user_by_id(user_id, for_update=True) if user_id else None
            if user is None or user.disabled:
                raise InvalidVerificationToken("this link is invalid, used or expired")
            check_password_policy(password, email=user.email, name=user.name)
            await uow.store.set_password_hash(user.id, await self.hasher.hash(password), now)
            if not user.email_verified:
                # The link reached the mailbox, which proves ownership of the address.
                await uow.store.update_user(user.id, now, email_verified=True)
                uow.publish(UserEmailVerified(user_id=user.id, email=user.email))
            await uow.store.revoke_user_sessions(user.id, "password_reset", now)
        await self.revocations.tokens_invalid_before(user.id, now)
        log.info("password reset", extra={"user_id": user.id})

    async def delete_account(self, user_id: str, password: str | None) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.store.user_by_id(user_id, for_update=True)
            if user is None:
                raise UserNotFound("no such user")
            password_hash = await uow.store.password_hash(user_id)
            if password_hash is not None and not (
                password and await self.hasher.verify(password_hash, password)
            ):
                raise InvalidCredentials("confirm with your current password")
            if user.role == "super_admin" and await uow.store.count_super_admins() <= 1:
                raise NotAllowed("the last super_admin cannot delete their account")
            await uow.store.revoke_user_sessions(user_id, "account_deleted", now)
            await uow.store.update_user(user_id, now, deleted_at=now)
            uow.publish(UserDeleted(user_id=user_id))
        await self.revocations.tokens_invalid_before(user_id, now)

    # --- OAuth ---------------------------------------------------------------------------------------

    def oauth_providers(self) -> list[str]:
        return list(self.oauth.provider_names())

    async def start_oauth(self, provider: str, *, redirect_to: str, link_user_id: str | None) -> OAuthStart:
        if provider not in self.oauth.provider_names():
            raise UserNotFound(f"unknown sign-in provider {provider!r}")
        state = _new_token()
        verifier = _new_token() + _new_token()  # 86 characters: within PKCE's 43–128
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        await self.oauth_states.put(
            state,
            {
                "provider": provider,
                "verifier": verifier,
                "redirect_to": redirect_to,
                "link_user_id": link_user_id,
            },
            int(self.policy.oauth_state_ttl.total_seconds()),
        )
        return OAuthStart(
            self.oauth.authorization_url(provider, state=state, code_challenge=challenge), state
        )

    async def finish_oauth(self, provider: str, *, code: str, state: str, context: ClientContext) -> SignedIn:
        started = await self.oauth_states.take(state)
        if started is None or started.get("provider") != provider:
            raise OAuthFailed("the sign-in attempt is unknown or expired; start again")
        profile = await self.oauth.fetch_profile(provider, code=code, code_verifier=str(started["verifier"]))
        now = self.clock.now()
        async with self.uow() as uow:
            user, created = await self._user_for_profile(uow, profile, started.get("link_user_id"), now)
            if user.disabled:
                raise AccountDisabled("this account is disabled")
            signed_in = await self._open_session(uow, user, context, now)
        return SignedIn(
            **{**signed_in.__dict__, "created": created, "redirect_to": started.get("redirect_to")}
        )

    async def _user_for_profile(
        self, uow: IdentityUnitOfWork, profile: OAuthProfile, link_user_id: str | None, now: datetime
    ) -> tuple[User, bool]:
        store = uow.store
        linked_user_id = await store.account_user(profile.provider, profile.account_id)
        if linked_user_id is not None:
            if link_user_id is not None and link_user_id != linked_user_id:
                raise OAuthFailed(f"this {profile.provider} account is linked to another user")
            user = await store.user_by_id(linked_user_id)
            if user is None:
                raise OAuthFailed("the account linked to this sign-in no longer exists")
            await _link(store, user.id, profile, now)
            return user, False
        if link_user_id is not None:
            user = await store.user_by_id(link_user_id)
            if user is None:
                raise OAuthFailed("sign in again before linking an account")
            await _link(store, user.id, profile, now)
            return user, False
        if not profile.email:
            raise OAuthFailed(f"{profile.provider} did not share an email address")
        email = normalise_email(profile.email)
        existing = await store.user_by_email(email, for_update=True)
        if existing is not None:
            if not profile.email_verified:
                raise OAuthFailed(
                    "an account with this email exists; sign in with your password and link "
                    f"{profile.provider} from your profile (its email is not verified there)"
                )
            if not existing.email_verified:
                # Someone registered this address without proving it. The provider proved it now, so the
                # unproven password (perhaps set by an impostor) and its sessions go.
                await store.set_password_hash(existing.id, None, now)
                await store.revoke_user_sessions(existing.id, "email_proven_by_oauth", now)
                existing = await store.update_user(existing.id, now, email_verified=True)
                uow.publish(UserEmailVerified(user_id=existing.id, email=existing.email))
                await self.revocations.tokens_invalid_before(existing.id, now)
            await _link(store, existing.id, profile, now)
            return existing, False
        user = _new_user(email, profile.name, now, image=profile.image, email_verified=profile.email_verified)
        await store.add_user(user, None)
        await _link(store, user.id, profile, now)
        method = profile.provider if profile.provider in ("google", "github") else "email"
        uow.publish(
            UserRegistered(user_id=user.id, email=email, name=user.name, method=method, registered_at=now)
        )
        if user.email_verified:
            uow.publish(UserEmailVerified(user_id=user.id, email=email))
        else:
            await self._send_verification(uow, user, now)
        return user, True

    # --- administration ------------------------------------------------------------------------------

    async def search_users(
        self, *, query: str | None, role: Role | None, limit: int, cursor: str | None
    ) -> UserPage:
        async with self.uow() as uow:
            return await uow.store.search_users(query=query, role=role, limit=limit, cursor=cursor)

    async def user_for_admin(self, user_id: str) -> AdminUserDetail:
        """The account with its active (neither revoked nor expired) sessions counted."""
        async with self.uow() as uow:
            user = await uow.store.user_by_id(user_id)
            if user is None:
                raise UserNotFound("no such user")
            sessions = await uow.store.count_active_sessions(user_id, self.clock.now())
        return AdminUserDetail(user=user, session_count=sessions)

    async def change_role(self, *, actor_id: str, actor_role: Role, user_id: str, new_role: Role) -> User:
        now = self.clock.now()
        async with self.uow() as uow:
            target = await uow.store.user_by_id(user_id, for_update=True)
            if target is None:
                raise UserNotFound("no such user")
            if target.role == new_role:
                return target
            role_change_is_allowed(
                actor_id=actor_id,
                actor_role=actor_role,
                target=target,
                new_role=new_role,
                super_admins=await uow.store.count_super_admins(),
            )
            updated = await uow.store.update_user(user_id, now, role=new_role)
            uow.publish(
                UserRoleChanged(user_id=user_id, old_role=target.role, new_role=new_role, changed_by=actor_id)
            )
            change = {"role": {"from": target.role, "to": new_role}}
            uow.record(AdminAction("user.role_changed", "user", user_id, change, actor_id=actor_id))
        await self.revocations.tokens_invalid_before(user_id, now)
        log.info("role changed", extra={"user_id": user_id, "new_role": new_role, "by": actor_id})
        return updated

    async def set_disabled(
        self, *, actor_id: str, actor_role: Role, user_id: str, disabled: bool, reason: str
    ) -> User:
        now = self.clock.now()
        async with self.uow() as uow:
            target = await uow.store.user_by_id(user_id, for_update=True)
            if target is None:
                raise UserNotFound("no such user")
            status_change_is_allowed(actor_id=actor_id, actor_role=actor_role, target=target)
            if target.disabled == disabled:
                return target
            if disabled:
                updated = await uow.store.update_user(user_id, now, disabled_at=now, disabled_reason=reason)
                await uow.store.revoke_user_sessions(user_id, "account_disabled", now)
                uow.publish(UserDisabled(user_id=user_id, by=actor_id, reason=reason))
                change = {"disabled": {"from": False, "to": True}}
                uow.record(AdminAction("user.disabled", "user", user_id, change, reason, actor_id=actor_id))
            else:
                updated = await uow.store.update_user(user_id, now, disabled_at=None, disabled_reason=None)
                uow.publish(UserEnabled(user_id=user_id, by=actor_id, reason=reason))
                change = {"disabled": {"from": True, "to": False}}
                uow.record(AdminAction("user.enabled", "user", user_id, change, reason, actor_id=actor_id))
        if disabled:
            await self.revocations.tokens_invalid_before(user_id, now)
        return updated

    async def create_super_admin(self, email: str, password: str | None, name: str) -> tuple[User, bool]:
        """The operator's way in (CLI): a new verified super_admin, or an existing user promoted."""
        email = normalise_email(email)
        now = self.clock.now()
        async with self.uow() as uow:
            existing = await uow.store.user_by_email(email, for_update=True)
            if existing is not None:
                if existing.disabled:
                    raise NotAllowed("enable the account before making it a super_admin")
                if existing.role != "super_admin":
                    old_role = existing.role
                    existing = await uow.store.update_user(existing.id, now, role="super_admin")
                    uow.publish(
                        UserRoleChanged(
                            user_id=existing.id,
                            old_role=old_role,
                            new_role="super_admin",
                            changed_by=existing.id,
                        )
                    )
                    # The operator's doing, not an admin's: no actor.
                    change = {"role": {"from": old_role, "to": "super_admin"}}
                    uow.record(AdminAction("user.role_changed", "user", existing.id, change, _BY_OPERATOR))
                created, user = False, existing
            else:
                if password is None:
                    raise InvalidCredentials("a new super_admin needs a password")
                check_password_policy(password, email=email, name=name)
                user = _new_user(email, name, now, role="super_admin", email_verified=True, has_password=True)
                await uow.store.add_user(user, await self.hasher.hash(password))
                uow.publish(
                    UserRegistered(
                        user_id=user.id, email=email, name=user.name, method="email", registered_at=now
                    )
                )
                uow.publish(UserEmailVerified(user_id=user.id, email=email))
                uow.publish(
                    UserRoleChanged(
                        user_id=user.id, old_role="user", new_role="super_admin", changed_by=user.id
                    )
                )
                change = {"email": email, "role": {"from": "user", "to": "super_admin"}}
                uow.record(AdminAction("user.created", "user", user.id, change, _BY_OPERATOR))
                created = True
        await self.revocations.tokens_invalid_before(user.id, now)
        return user, created

    # --- helpers -------------------------------------------------------------------------------------

    async def _open_session(
        self, uow: IdentityUnitOfWork, user: User, context: ClientContext, now: datetime
    ) -> SignedIn:
        session = SessionRecord(
            id=str(uuid.uuid4()),
            user_id=user.id,
            created_at=now,
            last_refreshed_at=now,
            expires_at=now + self.policy.session_ttl,
            ip_address=context.ip_address,
            user_agent=(context.user_agent or "")[:512] or None,
            revoked_at=None,
        )
        refresh_token = f"{session.id}.{_new_token()}"
        await uow.store.add_session(session, hash_token(refresh_token))
        return self._signed_in(user, session, refresh_token, now)

    def _signed_in(self, user: User, session: SessionRecord, refresh_token: str, now: datetime) -> SignedIn:
        return SignedIn(
            user=user,
            session=session,
            access_token=self.tokens.issue(user, session.id, now),
            access_token_expires_at=now + timedelta(seconds=self.tokens.ttl_seconds),
            refresh_token=refresh_token,
        )

    async def _send_verification(self, uow: IdentityUnitOfWork, user: User, now: datetime) -> None:
        identifier = f"{EMAIL_VERIFICATION}:{user.id}"
        await uow.store.drop_verifications(identifier, now)
        token = _new_token()
        await uow.store.add_verification(
            identifier, hash_token(token), now + self.policy.email_verification_ttl, now
        )
        await uow.store.queue_mail(
            OutgoingMail(
                recipient=user.email,
                subject="Confirm your email for FunMagic",
                body=(
                    f"Hello {user.name},\n\nConfirm that this is your email address:\n"
                    f"{self.policy.app_url}/verify-email?token={token}\n\n"
                    "The link works once, for 24 hours. If you did not sign up, ignore this mail.\n"
                ),
                purpose=EMAIL_VERIFICATION,
            ),
            now,
        )


def _new_user(email: str, name: str, now: datetime, **traits: Any) -> User:
    """A user about to be added: a new id, their display name, created now; `traits` set the rest (role,
    email_verified, has_password, image), each the model's default when not given."""
    return User(
        id=str(uuid.uuid4()),
        email=email,
        name=display_name(name, email),
        created_at=now,
        updated_at=now,
        **traits,
    )


async def _link(store: IdentityStore, user_id: str, profile: OAuthProfile, now: datetime) -> None:
    await store.link_account(
        user_id, profile.provider, profile.account_id, profile.access_token, profile.refresh_token, now
    )
