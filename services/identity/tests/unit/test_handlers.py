"""The identity use cases, driven through IdentityHandlers with in-memory fakes of every port.

The fake unit of work works on a copy of the committed state: changes and published events become visible
only when the `async with` block exits cleanly, as with the Postgres unit of work.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import (
    UserDisabled,
    UserEmailVerified,
    UserEnabled,
    UserRegistered,
    UserRoleChanged,
)
from funmagic_identity.application.handlers import (
    ClientContext,
    IdentityHandlers,
    IdentityPolicy,
    SignedIn,
)
from funmagic_identity.application.ports import (
    IdentityStore,
    IdentityUnitOfWork,
    OAuthProfile,
    OutgoingMail,
    SessionPage,
    SessionRecord,
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
    PasswordNotSet,
    RefreshSuperseded,
    SessionExpired,
    TooManyAttempts,
    UserNotFound,
    WeakPassword,
    WrongPassword,
)
from funmagic_identity.domain.users import ProfileChange, Role, User
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import ManualClock

E = TypeVar("E", bound=IntegrationEvent)
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"
CONTEXT = ClientContext(ip_address="203.0.113.7", user_agent="pytest")

# --- fakes ------------------------------------------------------------------------------------------


@dataclass
class _Verification:
    identifier: str
    expires_at: datetime
    consumed: bool = False


@dataclass
class _Account:
    user_id: str
    access_token: str
    refresh_token: str | None


@dataclass
class _State:
    """Everything the fake database holds; a unit of work changes a deep copy of it."""

    users: dict[str, User] = field(default_factory=dict)
    password_hashes: dict[str, str | None] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    revoked_reasons: dict[str, str] = field(default_factory=dict)
    # hash → (session, when it was rotated: None while it is the newest)
    refresh_tokens: dict[bytes, tuple[str, datetime | None]] = field(default_factory=dict)
    verifications: dict[bytes, _Verification] = field(default_factory=dict)
    accounts: dict[tuple[str, str], _Account] = field(default_factory=dict)
    mail: list[OutgoingMail] = field(default_factory=list)
    events: list[IntegrationEvent] = field(default_factory=list)
    audit: list[AdminAction] = field(default_factory=list)


class InMemoryIdentityStore:
    def __init__(self, state: _State) -> None:
        self._s = state

    def _live(self, user_id: str) -> User | None:
        return None if user_id in self._s.deleted else self._s.users.get(user_id)

    async def add_user(self, user: User, password_hash: str | None) -> None:
        assert all(u.email != user.email for u in self._s.users.values() if u.id not in self._s.deleted)
        self._s.users[user.id] = user.model_copy(update={"has_password": password_hash is not None})
        self._s.password_hashes[user.id] = password_hash

    async def user_by_id(self, user_id: str, *, for_update: bool = False) -> User | None:
        return self._live(user_id)

    async def user_by_email(self, email: str, *, for_update: bool = False) -> User | None:
        return next((u for u in self._s.users.values() if u.email == email and self._live(u.id)), None)

    async def password_hash(self, user_id: str) -> str | None:
        return self._s.password_hashes.get(user_id)

    async def set_password_hash(self, user_id: str, password_hash: str | None, now: datetime) -> None:
        self._s.password_hashes[user_id] = password_hash
        user = self._s.users[user_id]
        self._s.users[user_id] = user.model_copy(
            update={"has_password": password_hash is not None, "updated_at": now}
        )

    async def update_user(self, user_id: str, now: datetime, **changes: Any) -> User:
        update: dict[str, Any] = {"updated_at": now}
        for column, value in changes.items():
            if column in ("email_verified", "role", "name", "image", "avatar_asset_id"):
                update[column] = value
            elif column == "disabled_at":
                update["disabled"] = value is not None
            elif column == "deleted_at":
                self._s.deleted.add(user_id)
            elif column != "disabled_reason":
                raise ValueError(f"cannot update {column}")
        self._s.users[user_id] = self._s.users[user_id].model_copy(update=update)
        return self._s.users[user_id]

    async def count_super_admins(self) -> int:
        return sum(1 for u in self._s.users.values() if u.role == "super_admin" and self._live(u.id))

    async def search_users(
        self, *, query: str | None, role: Role | None, limit: int, cursor: str | None
    ) -> UserPage:
        users = sorted(
            (u for u in self._s.users.values() if self._live(u.id)),
            key=lambda u: (u.created_at, u.id),
            reverse=True,
        )
        users = [u for u in users if (not query or query in u.email) and (not role or u.role == role)]
        start = int(cursor or 0)
        page = users[start : start + limit]
        more = len(users) > start + limit
        return UserPage(users=page, next_cursor=str(start + limit) if more else None)

    async def add_session(self, session: SessionRecord, refresh_token_hash: bytes) -> None:
        self._s.sessions[session.id] = session
        self._s.refresh_tokens[refresh_token_hash] = (session.id, None)

    async def session(self, session_id: str, *, for_update: bool = False) -> SessionRecord | None:
        return self._s.sessions.get(session_id)

    async def session_by_refresh_hash(
        self, token_hash: bytes
    ) -> tuple[SessionRecord, datetime | None] | None:
        found = self._s.refresh_tokens.get(token_hash)
        return (self._s.sessions[found[0]], found[1]) if found else None

    async def rotate_refresh_token(
        self, session_id: str, old_hash: bytes, new_hash: bytes, now: datetime
    ) -> bool:
        if self._s.refresh_tokens.get(old_hash) != (session_id, None):
            return False
        self._s.refresh_tokens[old_hash] = (session_id, now)
        self._s.refresh_tokens[new_hash] = (session_id, None)
        session = self._s.sessions[session_id]
        self._s.sessions[session_id] = replace(session, last_refreshed_at=now)
        return True

    async def revoke_session(self, session_id: str, reason: str, now: datetime) -> bool:
        session = self._s.sessions[session_id]
        if session.revoked_at is not None:
            return False
        self._s.sessions[session_id] = replace(session, revoked_at=now)
        self._s.revoked_reasons[session_id] = reason
        return True

    async def revoke_user_sessions(self, user_id: str, reason: str, now: datetime) -> list[str]:
        ids = [s.id for s in self._s.sessions.values() if s.user_id == user_id and s.revoked_at is None]
        for session_id in ids:
            await self.revoke_session(session_id, reason, now)
        return ids

    async def revoke_other_sessions(
        self, user_id: str, keep_session_id: str, reason: str, now: datetime
    ) -> list[str]:
        ids = [
            s.id
            for s in self._s.sessions.values()
            if s.user_id == user_id and s.id != keep_session_id and s.revoked_at is None
        ]
        for session_id in ids:
            await self.revoke_session(session_id, reason, now)
        return ids

    def _active_sessions(self, user_id: str, now: datetime) -> list[SessionRecord]:
        return [
            s
            for s in self._s.sessions.values()
            if s.user_id == user_id and s.revoked_at is None and s.expires_at > now
        ]

    async def sessions_of(
        self, user_id: str, now: datetime, *, limit: int, cursor: str | None
    ) -> SessionPage:
        sessions = sorted(
            self._active_sessions(user_id, now), key=lambda s: (s.created_at, s.id), reverse=True
        )
        start = int(cursor or 0)
        page = sessions[start : start + limit]
        more = len(sessions) > start + limit
        return SessionPage(sessions=page, next_cursor=str(start + limit) if more else None)

    async def count_active_sessions(self, user_id: str, now: datetime) -> int:
        return len(self._active_sessions(user_id, now))

    async def add_verification(
        self, identifier: str, token_hash: bytes, expires_at: datetime, now: datetime
    ) -> None:
        self._s.verifications[token_hash] = _Verification(identifier, expires_at)

    async def consume_verification(self, token_hash: bytes, purpose: str, now: datetime) -> str | None:
        found = self._s.verifications.get(token_hash)
        if found is None or found.consumed or found.expires_at <= now:
            return None
        if not found.identifier.startswith(f"{purpose}:"):
            return None
        found.consumed = True
        return found.identifier.split(":", 1)[1]

    async def drop_verifications(self, identifier: str, now: datetime) -> None:
        for verification in self._s.verifications.values():
            if verification.identifier == identifier:
                verification.consumed = True

    async def account_user(self, provider: str, account_id: str) -> str | None:
        account = self._s.accounts.get((provider, account_id))
        return account.user_id if account and self._live(account.user_id) else None

    async def link_account(
        self,
        user_id: str,
        provider: str,
        account_id: str,
        access_token: str,
        refresh_token: str | None,
        now: datetime,
    ) -> None:
        self._s.accounts[(provider, account_id)] = _Account(user_id, access_token, refresh_token)

    async def queue_mail(self, mail: OutgoingMail, now: datetime) -> None:
        self._s.mail.append(mail)


class FakeDatabase:
    def __init__(self) -> None:
        self.committed = _State()

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeUnitOfWork:
    store: IdentityStore

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self._working = _State()
        self._pending: list[IntegrationEvent] = []
        self._recorded: list[AdminAction] = []
        self._after_commit: list[Callable[[], None]] = []

    async def __aenter__(self) -> FakeUnitOfWork:
        self._working = copy.deepcopy(self._database.committed)
        self._pending, self._recorded = [], []
        self.store = InMemoryIdentityStore(self._working)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._working.events.extend(self._pending)
            self._working.audit.extend(self._recorded)
            self._database.committed = self._working
            for callback in self._after_commit:
                callback()

    def publish(
        self,
        event: IntegrationEvent,
        *,
        caused_by: Envelope | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_id: UUID | None = None,
        time: datetime | None = None,
    ) -> None:
        self._pending.append(event)

    def record(self, action: AdminAction) -> None:
        self._recorded.append(action)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


class FakeHasher:
    def __init__(self) -> None:
        self.burned: list[str] = []

    async def hash(self, password: str) -> str:
        return "fake$" + hashlib.sha256(password.encode()).hexdigest()

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == await self.hash(password)

    async def burn(self, password: str) -> None:
        self.burned.append(password)


class FakeTokenIssuer:
    ttl_seconds = 300

    def issue(self, user: User, session_id: str, now: datetime) -> str:
        return f"access:{user.id}:{session_id}:{user.role}:{int(user.email_verified)}"


class CountingSignInGuard:
    """Refuses an account after `limit` failures until a success; remembers which emails it saw."""

    def __init__(self, limit: int = 3, retry_after_seconds: int = 60) -> None:
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
        self.failures: dict[str, int] = {}

    async def retry_after(self, email: str) -> int | None:
        return self.retry_after_seconds if self.failures.get(email, 0) >= self.limit else None

    async def failed(self, email: str) -> None:
        self.failures[email] = self.failures.get(email, 0) + 1

    async def succeeded(self, email: str) -> None:
        self.failures.pop(email, None)


class RecordingRevocations:
    def __init__(self) -> None:
        self.sessions: list[tuple[str, str]] = []
        self.invalid_before: list[tuple[str, datetime]] = []

    async def session_revoked(self, user_id: str, session_id: str) -> None:
        self.sessions.append((user_id, session_id))

    async def tokens_invalid_before(self, user_id: str, moment: datetime) -> None:
        self.invalid_before.append((user_id, moment))


class FakeOAuthGateway:
    """Answers every code with the profile the test chose, and remembers the PKCE values it saw."""

    def __init__(self) -> None:
        self.next_profile: OAuthProfile | None = None
        self.challenges: dict[str, str] = {}  # state → code_challenge
        self.verifiers: list[str] = []

    def provider_names(self) -> Sequence[str]:
        return ["github", "google"]

    def authorization_url(self, provider: str, *, state: str, code_challenge: str) -> str:
        self.challenges[state] = code_challenge
        return f"https://{provider}.example/authorize?state={state}&code_challenge={code_challenge}"

    async def fetch_profile(self, provider: str, *, code: str, code_verifier: str) -> OAuthProfile:
        assert self.next_profile is not None, "the test did not choose a profile"
        assert self.next_profile.provider == provider
        self.verifiers.append(code_verifier)
        return self.next_profile


class FakeOAuthStates:
    def __init__(self) -> None:
        self.values: dict[str, dict[str, str | None]] = {}

    async def put(self, state: str, value: dict[str, str | None], ttl_seconds: int) -> None:
        assert ttl_seconds > 0
        self.values[state] = dict(value)

    async def take(self, state: str) -> dict[str, str | None] | None:
        return self.values.pop(state, None)


@dataclass
class World:
    handlers: IdentityHandlers
    db: FakeDatabase
    hasher: FakeHasher
    guard: CountingSignInGuard
    revocations: RecordingRevocations
    oauth: FakeOAuthGateway
    states: FakeOAuthStates
    clock: ManualClock

    @property
    def events(self) -> list[IntegrationEvent]:
        return self.db.committed.events

    @property
    def mail(self) -> list[OutgoingMail]:
        return self.db.committed.mail

    def user(self, user_id: str) -> User:
        return self.db.committed.users[user_id]

    def active_sessions(self, user_id: str) -> list[SessionRecord]:
        return [s for s in self.db.committed.sessions.values() if s.user_id == user_id and not s.revoked_at]

    def last_link(self, purpose: str) -> str:
        mail = next(m for m in reversed(self.mail) if m.purpose == purpose)
        found = re.search(r"token=([A-Za-z0-9_-]+)", mail.body)
        assert found, mail.body
        return found[1]

    async def sign_up(self, email: str = "alice@example.com", name: str = "Alice") -> SignedIn:
        return await self.handlers.sign_up(email, PASSWORD, name, CONTEXT)

    async def oauth_sign_in(
        self,
        profile: OAuthProfile,
        *,
        link_user_id: str | None = None,
        redirect_to: str = "/after",
    ) -> SignedIn:
        started = await self.handlers.start_oauth(
            profile.provider, redirect_to=redirect_to, link_user_id=link_user_id
        )
        self.oauth.next_profile = profile
        return await self.handlers.finish_oauth(
            profile.provider, code="the-code", state=started.state, context=CONTEXT
        )

    async def make_admin(self, user_id: str, role: Role) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.store.update_user(user_id, START, role=role)


@pytest.fixture
def world() -> World:
    db = FakeDatabase()
    hasher, guard, revocations = FakeHasher(), CountingSignInGuard(), RecordingRevocations()
    oauth, states, clock = FakeOAuthGateway(), FakeOAuthStates(), ManualClock(START)
    handlers = IdentityHandlers(
        uow=db.unit_of_work,
        hasher=hasher,
        tokens=FakeTokenIssuer(),
        revocations=revocations,
        oauth=oauth,
        oauth_states=states,
        clock=clock,
        policy=IdentityPolicy(app_url="https://app.example"),
        sign_in_guard=guard,
    )
    return World(handlers, db, hasher, guard, revocations, oauth, states, clock)


def google_profile(
    email: str | None = "gina@example.com", *, verified: bool = True, account_id: str = "g-1"
) -> OAuthProfile:
    return OAuthProfile(
        provider="google",
        account_id=account_id,
        email=email,
        email_verified=verified,
        name="Gina Google",
        image="https://example.com/gina.png",
        access_token="google-access",
        refresh_token="google-refresh",
    )


def github_profile(email: str = "gus@example.com", *, verified: bool, account_id: str = "42") -> OAuthProfile:
    return OAuthProfile(
        provider="github",
        account_id=account_id,
        email=email,
        email_verified=verified,
        name="",
        image=None,
        access_token="github-access",
        refresh_token=None,
    )


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def of_type(events: list[IntegrationEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


# --- the fake unit of work itself -----------------------------------------------------------------


async def test_the_fake_unit_of_work_discards_changes_and_events_when_the_block_raises() -> None:
    db = FakeDatabase()
    uow: IdentityUnitOfWork = db.unit_of_work()
    user = User(id="u1", email="u@example.com", name="U", created_at=START, updated_at=START)

    async def register_then_fail() -> None:
        async with uow:
            await uow.store.add_user(user, None)
            uow.publish(UserEmailVerified(user_id="u1", email="u@example.com"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await register_then_fail()
    assert db.committed.users == {}
    assert db.committed.events == []


# --- sign-up ----------------------------------------------------------------------------------------


async def test_sign_up_registers_the_user_by_email_and_opens_a_session(world: World) -> None:
    signed_in = await world.handlers.sign_up(" Alice@Example.COM ", PASSWORD, " Alice ", CONTEXT)

    assert signed_in.created
    assert signed_in.user.email == "alice@example.com"
    assert signed_in.user.name == "Alice"
    assert signed_in.user.has_password
    assert not signed_in.user.email_verified
    assert signed_in.session.user_id == signed_in.user.id
    assert signed_in.session.expires_at == START + timedelta(days=30)
    assert signed_in.access_token_expires_at == START + timedelta(seconds=300)
    assert signed_in.refresh_token.startswith(signed_in.session.id + ".")
    assert world.events == [
        UserRegistered(
            user_id=signed_in.user.id,
            email="alice@example.com",
            name="Alice",
            method="email",
            registered_at=START,
        )
    ]


async def test_sign_up_queues_a_verification_mail_with_a_single_use_link(world: World) -> None:
    await world.sign_up()

    (mail,) = world.mail
    assert mail.recipient == "alice@example.com"
    assert mail.purpose == "email-verification"
    assert "https://app.example/verify-email?token=" in mail.body
    assert PASSWORD not in mail.body


async def test_sign_up_without_a_name_uses_the_email_local_part(world: World) -> None:
    signed_in = await world.handlers.sign_up("carol@example.com", PASSWORD, "   ", CONTEXT)
    assert signed_in.user.name == "carol"


async def test_sign_up_with_an_email_already_registered_is_refused(world: World) -> None:
    await world.sign_up("alice@example.com")

    with pytest.raises(EmailAlreadyRegistered):
        await world.handlers.sign_up("ALICE@example.com", PASSWORD, "Other Alice", CONTEXT)

    assert len(of_type(world.events, UserRegistered)) == 1
    assert len(world.db.committed.users) == 1
    assert len(world.mail) == 1


async def test_sign_up_with_a_weak_password_stores_nothing(world: World) -> None:
    with pytest.raises(WeakPassword):
        await world.handlers.sign_up("alice@example.com", "short", "Alice", CONTEXT)
    assert world.db.committed.users == {}
    assert world.events == []


# --- sign-in ----------------------------------------------------------------------------------------


async def test_sign_in_with_the_right_password_opens_a_new_session(world: World) -> None:
    first = await world.sign_up()

    signed_in = await world.handlers.sign_in("ALICE@example.com", PASSWORD, CONTEXT)

    assert signed_in.user.id == first.user.id
    assert not signed_in.created
    assert signed_in.session.id != first.session.id
    assert {s.id for s in world.active_sessions(first.user.id)} == {first.session.id, signed_in.session.id}


async def test_sign_in_with_a_wrong_password_is_refused_as_invalid_credentials(world: World) -> None:
    signed_up = await world.sign_up()

    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("alice@example.com", "not the password at all", CONTEXT)

    assert [s.id for s in world.active_sessions(signed_up.user.id)] == [signed_up.session.id]


async def test_sign_in_with_an_unknown_email_burns_a_hash_and_answers_like_a_wrong_password(
    world: World,
) -> None:
    with pytest.raises(InvalidCredentials, match="email or password is wrong"):
        await world.handlers.sign_in("nobody@example.com", "some password", CONTEXT)
    assert world.hasher.burned == ["some password"]


async def test_sign_in_with_something_that_is_not_an_email_burns_a_hash_too(world: World) -> None:
    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("not-an-email", "some password", CONTEXT)
    assert world.hasher.burned == ["some password"]


async def test_sign_in_to_an_account_without_a_password_burns_a_hash(world: World) -> None:
    await world.oauth_sign_in(google_profile("gina@example.com"))

    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("gina@example.com", "any password here", CONTEXT)
    assert world.hasher.burned == ["any password here"]


async def test_wrong_passwords_are_counted_per_normalised_email(world: World) -> None:
    await world.sign_up()
    for spelling in ("alice@example.com", "ALICE@example.com "):
        with pytest.raises(InvalidCredentials):
            await world.handlers.sign_in(spelling, "not the password at all", CONTEXT)
    assert world.guard.failures == {"alice@example.com": 2}


async def test_an_account_with_too_many_failures_is_refused_before_the_password_is_checked(
    world: World,
) -> None:
    await world.sign_up()
    world.guard.failures["alice@example.com"] = world.guard.limit

    with pytest.raises(TooManyAttempts) as caught:
        await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)

    assert caught.value.retry_after_seconds == world.guard.retry_after_seconds
    assert world.guard.failures == {"alice@example.com": world.guard.limit}  # the refusal is not counted


async def test_unknown_emails_count_as_failures_too(world: World) -> None:
    for _ in range(world.guard.limit):
        with pytest.raises(InvalidCredentials):
            await world.handlers.sign_in("nobody@example.com", "some password", CONTEXT)
    with pytest.raises(TooManyAttempts):
        await world.handlers.sign_in("nobody@example.com", "some password", CONTEXT)


async def test_a_successful_sign_in_clears_the_failures(world: World) -> None:
    await world.sign_up()
    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("alice@example.com", "not the password at all", CONTEXT)
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    assert world.guard.failures == {}


async def test_sign_in_to_a_disabled_account_is_refused_as_disabled(world: World) -> None:
    signed_up = await world.sign_up()
    admin = await world.sign_up("admin@example.com", "Admin")
    await world.make_admin(admin.user.id, "admin")
    await world.handlers.set_disabled(
        actor_id=admin.user.id, actor_role="admin", user_id=signed_up.user.id, disabled=True, reason="spam"
    )

    with pytest.raises(AccountDisabled):
        await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)


# --- refresh ----------------------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(world: World) -> None:
    signed_up = await world.sign_up()
    world.clock.advance(minutes=10)

    refreshed = await world.handlers.refresh(signed_up.refresh_token)

    assert refreshed.session.id == signed_up.session.id
    assert refreshed.refresh_token != signed_up.refresh_token
    assert refreshed.refresh_token.startswith(signed_up.session.id + ".")
    assert refreshed.access_token_expires_at == world.clock.now() + timedelta(seconds=300)
    again = await world.handlers.refresh(refreshed.refresh_token)
    assert again.refresh_token not in (signed_up.refresh_token, refreshed.refresh_token)
    assert world.revocations.sessions == []


async def test_reusing_a_rotated_refresh_token_revokes_the_session(world: World) -> None:
    signed_up = await world.sign_up()
    refreshed = await world.handlers.refresh(signed_up.refresh_token)
    world.clock.advance(seconds=31)  # no longer another tab's refresh of the same moment

    with pytest.raises(SessionExpired, match="already used"):
        await world.handlers.refresh(signed_up.refresh_token)

    assert world.revocations.sessions == [(signed_up.user.id, signed_up.session.id)]
    assert world.db.committed.revoked_reasons == {signed_up.session.id: "refresh_token_reused"}
    # The thief's copy and the owner's newest token are both dead now.
    with pytest.raises(SessionExpired):
        await world.handlers.refresh(refreshed.refresh_token)


async def test_a_refresh_token_rotated_an_instant_before_by_another_tab_is_superseded_not_leaked(
    world: World,
) -> None:
    signed_up = await world.sign_up()
    winner = await world.handlers.refresh(signed_up.refresh_token)  # the other tab, with the same cookie
    world.clock.advance(seconds=30)

    with pytest.raises(RefreshSuperseded):
        await world.handlers.refresh(signed_up.refresh_token)

    assert world.revocations.sessions == []
    assert world.db.committed.revoked_reasons == {}
    assert (await world.handlers.refresh(winner.refresh_token)).session.id == signed_up.session.id


async def test_a_token_older_than_the_last_rotation_is_a_leak_however_soon_it_comes_back(
    world: World,
) -> None:
    signed_up = await world.sign_up()
    second = await world.handlers.refresh(signed_up.refresh_token)
    world.clock.advance(seconds=1)
    await world.handlers.refresh(second.refresh_token)  # its successor was used: no tab races with it now

    with pytest.raises(SessionExpired, match="already used"):
        await world.handlers.refresh(signed_up.refresh_token)

    assert world.db.committed.revoked_reasons == {signed_up.session.id: "refresh_token_reused"}


async def test_an_unknown_refresh_token_is_refused_without_revoking_anything(world: World) -> None:
    await world.sign_up()
    with pytest.raises(SessionExpired):
        await world.handlers.refresh("no-such-session.no-such-token")
    assert world.revocations.sessions == []


async def test_an_expired_session_cannot_be_refreshed(world: World) -> None:
    signed_up = await world.sign_up()
    world.clock.advance(days=30)
    with pytest.raises(SessionExpired):
        await world.handlers.refresh(signed_up.refresh_token)


async def test_a_disabled_users_session_cannot_be_refreshed(world: World) -> None:
    signed_up = await world.sign_up()
    async with world.db.unit_of_work() as uow:  # disabled behind the sessions' back
        await uow.store.update_user(signed_up.user.id, START, disabled_at=START)
    with pytest.raises(SessionExpired):
        await world.handlers.refresh(signed_up.refresh_token)


# --- sign-out ---------------------------------------------------------------------------------------


async def test_sign_out_everywhere_revokes_every_session_and_invalidates_tokens(world: World) -> None:
    signed_up = await world.sign_up()
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)

    assert await world.handlers.sign_out_everywhere(signed_up.user.id) == 2

    assert world.active_sessions(signed_up.user.id) == []
    assert world.revocations.invalid_before == [(signed_up.user.id, START)]


async def test_a_user_cannot_revoke_another_users_session(world: World) -> None:
    alice = await world.sign_up()
    bob = await world.sign_up("bob@example.com", "Bob")
    with pytest.raises(UserNotFound, match="no such session"):
        await world.handlers.revoke_session(bob.user.id, alice.session.id)
    assert world.active_sessions(alice.user.id) == [alice.session]
    assert world.revocations.sessions == []


# --- email verification ----------------------------------------------------------------------------


async def test_verify_email_marks_the_user_verified_and_publishes_once(world: World) -> None:
    signed_up = await world.sign_up()
    token = world.last_link("email-verification")
    world.clock.advance(hours=1)

    user = await world.handlers.verify_email(token)

    assert user.email_verified
    assert world.user(signed_up.user.id).email_verified
    assert of_type(world.events, UserEmailVerified) == [
        UserEmailVerified(user_id=signed_up.user.id, email="alice@example.com")
    ]
    assert world.revocations.invalid_before == [(signed_up.user.id, world.clock.now())]
    with pytest.raises(InvalidVerificationToken):
        await world.handlers.verify_email(token)
    assert len(of_type(world.events, UserEmailVerified)) == 1


async def test_a_verification_link_expires_after_a_day(world: World) -> None:
    await world.sign_up()
    token = world.last_link("email-verification")
    world.clock.advance(hours=24)
    with pytest.raises(InvalidVerificationToken):
        await world.handlers.verify_email(token)
    assert of_type(world.events, UserEmailVerified) == []


async def test_resending_a_verification_link_retires_the_previous_one(world: World) -> None:
    signed_up = await world.sign_up()
    first = world.last_link("email-verification")

    assert await world.handlers.resend_verification(signed_up.user.id)

    second = world.last_link("email-verification")
    with pytest.raises(InvalidVerificationToken):
        await world.handlers.verify_email(first)
    await world.handlers.verify_email(second)
    assert not await world.handlers.resend_verification(signed_up.user.id)


async def test_a_password_reset_link_does_not_verify_an_email(world: World) -> None:
    await world.sign_up()
    await world.handlers.request_password_reset("alice@example.com")
    with pytest.raises(InvalidVerificationToken):
        await world.handlers.verify_email(world.last_link("password-reset"))


# --- password reset ---------------------------------------------------------------------------------


async def test_reset_password_sets_the_new_password_revokes_sessions_and_invalidates_tokens(
    world: World,
) -> None:
    signed_up = await world.sign_up()
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    await world.handlers.request_password_reset("Alice@Example.com")
    world.clock.advance(minutes=5)

    assert await world.handlers.reset_password(world.last_link("password-reset"), NEW_PASSWORD) is None

    assert world.active_sessions(signed_up.user.id) == []
    assert set(world.db.committed.revoked_reasons.values()) == {"password_reset"}
    assert world.revocations.invalid_before == [(signed_up.user.id, world.clock.now())]
    with pytest.raises(SessionExpired):
        await world.handlers.refresh(signed_up.refresh_token)
    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    await world.handlers.sign_in("alice@example.com", NEW_PASSWORD, CONTEXT)


async def test_reset_password_proves_the_mailbox_and_verifies_the_email(world: World) -> None:
    signed_up = await world.sign_up()
    await world.handlers.request_password_reset("alice@example.com")
    assert await world.handlers.reset_password(world.last_link("password-reset"), NEW_PASSWORD) is None
    assert world.user(signed_up.user.id).email_verified
    assert of_type(world.events, UserEmailVerified) == [
        UserEmailVerified(user_id=signed_up.user.id, email="alice@example.com")
    ]


async def test_a_weak_new_password_leaves_the_reset_link_usable(world: World) -> None:
    await world.sign_up()
    await world.handlers.request_password_reset("alice@example.com")
    token = world.last_link("password-reset")

    with pytest.raises(WeakPassword):
        await world.handlers.reset_password(token, "abcabcabcabc")

    assert await world.handlers.reset_password(token, NEW_PASSWORD) is None
    with pytest.raises(InvalidVerificationToken):
        await world.handlers.reset_password(token, "yet another passphrase")


async def test_a_password_reset_link_expires_after_thirty_minutes(world: World) -> None:
    await world.sign_up()
    await world.handlers.request_password_reset("alice@example.com")
    world.clock.advance(minutes=30)
    with pytest.raises(InvalidVerificationToken):
        await world.handlers.reset_password(world.last_link("password-reset"), NEW_PASSWORD)
    assert world.revocations.invalid_before == []


async def test_a_reset_request_for_an_unknown_email_sends_nothing_and_does_not_fail(world: World) -> None:
    assert await world.handlers.request_password_reset("nobody@example.com") is None
    assert await world.handlers.request_password_reset("not an email") is None
    assert world.mail == []


# --- administration ---------------------------------------------------------------------------------


async def test_an_admin_sees_a_user_with_their_active_sessions_counted(world: World) -> None:
    alice = await world.sign_up()
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    signed_out = await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    await world.handlers.sign_out(user_id=None, session_id=None, refresh_token=signed_out.refresh_token)

    detail = await world.handlers.user_for_admin(alice.user.id)

    assert (detail.user.id, detail.session_count) == (alice.user.id, 2)
    world.clock.advance(days=31)
    assert (await world.handlers.user_for_admin(alice.user.id)).session_count == 0, "all expired"


async def test_an_admin_asking_for_an_unknown_user_is_told_so(world: World) -> None:
    with pytest.raises(UserNotFound):
        await world.handlers.user_for_admin("00000000-0000-0000-0000-000000000000")


# --- roles and status -------------------------------------------------------------------------------


async def test_change_role_publishes_the_change_and_invalidates_the_users_tokens(world: World) -> None:
    boss = await world.sign_up("boss@example.com", "Boss")
    await world.make_admin(boss.user.id, "super_admin")
    alice = await world.sign_up()
    world.clock.advance(minutes=1)

    updated = await world.handlers.change_role(
        actor_id=boss.user.id, actor_role="super_admin", user_id=alice.user.id, new_role="admin"
    )

    assert updated.role == "admin"
    assert world.user(alice.user.id).role == "admin"
    assert of_type(world.events, UserRoleChanged) == [
        UserRoleChanged(user_id=alice.user.id, old_role="user", new_role="admin", changed_by=boss.user.id)
    ]
    assert world.db.committed.audit == [
        AdminAction(
            "user.role_changed",
            "user",
            alice.user.id,
            {"role": {"from": "user", "to": "admin"}},
            actor_id=boss.user.id,
        )
    ]
    assert world.revocations.invalid_before == [(alice.user.id, world.clock.now())]


async def test_change_role_to_the_current_role_changes_nothing(world: World) -> None:
    alice = await world.sign_up()
    await world.handlers.change_role(
        actor_id="boss", actor_role="super_admin", user_id=alice.user.id, new_role="user"
    )
    assert of_type(world.events, UserRoleChanged) == []
    assert world.db.committed.audit == [], "no change, nothing audited"
    assert world.revocations.invalid_before == []


async def test_an_admin_cannot_change_roles(world: World) -> None:
    alice = await world.sign_up()
    with pytest.raises(NotAllowed):
        await world.handlers.change_role(
            actor_id="an-admin", actor_role="admin", user_id=alice.user.id, new_role="admin"
        )
    assert world.user(alice.user.id).role == "user"
    assert of_type(world.events, UserRoleChanged) == []


async def test_set_disabled_publishes_user_disabled_revokes_sessions_and_invalidates_tokens(
    world: World,
) -> None:
    admin = await world.sign_up("admin@example.com", "Admin")
    await world.make_admin(admin.user.id, "admin")
    alice = await world.sign_up()

    updated = await world.handlers.set_disabled(
        actor_id=admin.user.id, actor_role="admin", user_id=alice.user.id, disabled=True, reason="spam"
    )

    assert updated.disabled
    assert of_type(world.events, UserDisabled) == [
        UserDisabled(user_id=alice.user.id, by=admin.user.id, reason="spam")
    ]
    assert world.active_sessions(alice.user.id) == []
    assert world.revocations.invalid_before == [(alice.user.id, START)]


async def test_set_disabled_false_publishes_user_enabled(world: World) -> None:
    admin = await world.sign_up("admin@example.com", "Admin")
    await world.make_admin(admin.user.id, "admin")
    alice = await world.sign_up()
    await world.handlers.set_disabled(
        actor_id=admin.user.id, actor_role="admin", user_id=alice.user.id, disabled=True, reason="spam"
    )

    updated = await world.handlers.set_disabled(
        actor_id=admin.user.id, actor_role="admin", user_id=alice.user.id, disabled=False, reason="appeal"
    )

    assert not updated.disabled
    assert of_type(world.events, UserEnabled) == [
        UserEnabled(user_id=alice.user.id, by=admin.user.id, reason="appeal")
    ]
    assert len(world.revocations.invalid_before) == 1  # only the disabling invalidated tokens
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)


async def test_disabling_an_already_disabled_user_publishes_nothing_more(world: World) -> None:
    admin = await world.sign_up("admin@example.com", "Admin")
    await world.make_admin(admin.user.id, "admin")
    alice = await world.sign_up()
    for _ in range(2):
        await world.handlers.set_disabled(
            actor_id=admin.user.id, actor_role="admin", user_id=alice.user.id, disabled=True, reason="spam"
        )
    assert len(of_type(world.events, UserDisabled)) == 1


async def test_a_refused_status_change_publishes_nothing(world: World) -> None:
    admin = await world.sign_up("admin@example.com", "Admin")
    other_admin = await world.sign_up("other@example.com", "Other")
    await world.make_admin(admin.user.id, "admin")
    await world.make_admin(other_admin.user.id, "admin")

    with pytest.raises(NotAllowed):
        await world.handlers.set_disabled(
            actor_id=admin.user.id, actor_role="admin", user_id=other_admin.user.id, disabled=True, reason="x"
        )
    assert not world.user(other_admin.user.id).disabled
    assert of_type(world.events, UserDisabled) == []


# --- create_super_admin -----------------------------------------------------------------------------


async def test_create_super_admin_creates_a_verified_super_admin(world: World) -> None:
    user, created = await world.handlers.create_super_admin("Root@Example.com", PASSWORD, "Root")

    assert created
    assert (user.email, user.role, user.email_verified, user.has_password) == (
        "root@example.com",
        "super_admin",
        True,
        True,
    )
    assert world.events == [
        UserRegistered(
            user_id=user.id, email="root@example.com", name="Root", method="email", registered_at=START
        ),
        UserEmailVerified(user_id=user.id, email="root@example.com"),
        UserRoleChanged(user_id=user.id, old_role="user", new_role="super_admin", changed_by=user.id),
    ]
    await world.handlers.sign_in("root@example.com", PASSWORD, CONTEXT)


async def test_create_super_admin_needs_a_password_for_a_new_account(world: World) -> None:
    with pytest.raises(InvalidCredentials):
        await world.handlers.create_super_admin("root@example.com", None, "Root")
    assert world.db.committed.users == {}


async def test_create_super_admin_promotes_an_existing_user(world: World) -> None:
    alice = await world.sign_up()

    user, created = await world.handlers.create_super_admin("alice@example.com", None, "ignored")

    assert not created
    assert user.id == alice.user.id
    assert user.role == "super_admin"
    assert of_type(world.events, UserRoleChanged) == [
        UserRoleChanged(
            user_id=alice.user.id, old_role="user", new_role="super_admin", changed_by=alice.user.id
        )
    ]
    assert world.revocations.invalid_before == [(alice.user.id, START)]


async def test_create_super_admin_promoting_an_admin_reports_the_old_role(world: World) -> None:
    alice = await world.sign_up()
    await world.make_admin(alice.user.id, "admin")

    await world.handlers.create_super_admin("alice@example.com", None, "ignored")

    (changed,) = of_type(world.events, UserRoleChanged)
    assert changed.old_role == "admin"


async def test_create_super_admin_refuses_a_disabled_account(world: World) -> None:
    admin = await world.sign_up("admin@example.com", "Admin")
    await world.make_admin(admin.user.id, "admin")
    alice = await world.sign_up()
    await world.handlers.set_disabled(
        actor_id=admin.user.id, actor_role="admin", user_id=alice.user.id, disabled=True, reason="spam"
    )
    world.events.clear()

    with pytest.raises(NotAllowed):
        await world.handlers.create_super_admin("alice@example.com", None, "ignored")

    assert of_type(world.events, UserRoleChanged) == []


async def test_create_super_admin_for_an_existing_super_admin_publishes_nothing(world: World) -> None:
    root, _ = await world.handlers.create_super_admin("root@example.com", PASSWORD, "Root")
    published = len(world.events)

    again, created = await world.handlers.create_super_admin("root@example.com", None, "Root")

    assert (again.id, created) == (root.id, False)
    assert len(world.events) == published


# --- OAuth ------------------------------------------------------------------------------------------


async def test_start_oauth_keeps_a_pkce_verifier_whose_s256_challenge_goes_to_the_provider(
    world: World,
) -> None:
    started = await world.handlers.start_oauth("google", redirect_to="/studio", link_user_id=None)

    stored = world.states.values[started.state]
    verifier = str(stored["verifier"])
    assert 43 <= len(verifier) <= 128
    assert world.oauth.challenges[started.state] == s256(verifier)
    assert parse_qs(urlsplit(started.authorization_url).query)["state"] == [started.state]
    assert stored["provider"] == "google"
    assert stored["redirect_to"] == "/studio"


async def test_start_oauth_with_an_unknown_provider_is_refused(world: World) -> None:
    with pytest.raises(UserNotFound, match="unknown sign-in provider"):
        await world.handlers.start_oauth("myspace", redirect_to="/", link_user_id=None)
    assert world.states.values == {}


async def test_oauth_with_a_new_verified_email_registers_a_verified_user(world: World) -> None:
    signed_in = await world.oauth_sign_in(google_profile("Gina@Example.com"), redirect_to="/studio")

    user = signed_in.user
    assert signed_in.created
    assert signed_in.redirect_to == "/studio"
    assert (user.email, user.name, user.email_verified, user.has_password) == (
        "gina@example.com",
        "Gina Google",
        True,
        False,
    )
    assert user.image == "https://example.com/gina.png"
    assert world.events == [
        UserRegistered(
            user_id=user.id,
            email="gina@example.com",
            name="Gina Google",
            method="google",
            registered_at=START,
        ),
        UserEmailVerified(user_id=user.id, email="gina@example.com"),
    ]
    assert world.mail == []
    assert world.db.committed.accounts[("google", "g-1")] == _Account(
        user.id, "google-access", "google-refresh"
    )
    (verifier,) = world.oauth.verifiers  # the code was redeemed with the verifier of the started flow
    assert [s256(verifier)] == list(world.oauth.challenges.values())


async def test_oauth_with_a_new_unverified_email_registers_an_unverified_user_and_mails_a_link(
    world: World,
) -> None:
    signed_in = await world.oauth_sign_in(github_profile("gus@example.com", verified=False))

    assert signed_in.created
    assert not signed_in.user.email_verified
    assert signed_in.user.name == "gus"  # no name from the provider: the email's local part
    assert [type(e) for e in world.events] == [UserRegistered]
    assert of_type(world.events, UserRegistered)[0].method == "github"
    assert [m.purpose for m in world.mail] == ["email-verification"]


async def test_oauth_sign_in_again_with_a_linked_account_finds_the_same_user(world: World) -> None:
    first = await world.oauth_sign_in(google_profile())
    again = await world.oauth_sign_in(google_profile(email="changed@example.com"))
    assert again.user.id == first.user.id
    assert not again.created
    assert len(of_type(world.events, UserRegistered)) == 1


async def test_oauth_without_an_email_is_refused(world: World) -> None:
    with pytest.raises(OAuthFailed, match="did not share an email"):
        await world.oauth_sign_in(google_profile(email=None))
    assert world.db.committed.users == {}


async def test_a_verified_provider_email_takes_over_an_unverified_password_account(world: World) -> None:
    squatter = await world.sign_up("gina@example.com", "Impostor")
    world.clock.advance(minutes=1)

    signed_in = await world.oauth_sign_in(google_profile("gina@example.com"))

    assert signed_in.user.id == squatter.user.id
    assert not signed_in.created
    owner = world.user(squatter.user.id)
    assert owner.email_verified
    assert not owner.has_password
    assert world.db.committed.password_hashes[squatter.user.id] is None
    assert world.db.committed.sessions[squatter.session.id].revoked_at == world.clock.now()
    assert world.db.committed.revoked_reasons[squatter.session.id] == "email_proven_by_oauth"
    assert (squatter.user.id, world.clock.now()) in world.revocations.invalid_before
    assert of_type(world.events, UserEmailVerified) == [
        UserEmailVerified(user_id=squatter.user.id, email="gina@example.com")
    ]
    assert world.db.committed.accounts[("google", "g-1")].user_id == squatter.user.id
    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("gina@example.com", PASSWORD, CONTEXT)
    with pytest.raises(SessionExpired):
        await world.handlers.refresh(squatter.refresh_token)


async def test_a_verified_provider_email_links_to_a_verified_account_and_keeps_its_password(
    world: World,
) -> None:
    owner = await world.sign_up("gina@example.com", "Gina")
    await world.handlers.verify_email(world.last_link("email-verification"))

    signed_in = await world.oauth_sign_in(google_profile("gina@example.com"))

    assert signed_in.user.id == owner.user.id
    assert world.user(owner.user.id).has_password
    assert world.active_sessions(owner.user.id) != []
    await world.handlers.sign_in("gina@example.com", PASSWORD, CONTEXT)


async def test_an_unverified_provider_email_colliding_with_an_account_is_refused(world: World) -> None:
    owner = await world.sign_up("gus@example.com", "Gus")

    with pytest.raises(OAuthFailed, match="sign in with your password and link"):
        await world.oauth_sign_in(github_profile("gus@example.com", verified=False))

    assert world.user(owner.user.id).has_password
    assert world.active_sessions(owner.user.id) == [owner.session]
    assert world.db.committed.accounts == {}
    assert of_type(world.events, UserEmailVerified) == []


async def test_finishing_oauth_with_an_unknown_state_is_refused(world: World) -> None:
    world.oauth.next_profile = google_profile()
    with pytest.raises(OAuthFailed, match="unknown or expired"):
        await world.handlers.finish_oauth("google", code="c", state="never-started", context=CONTEXT)
    assert world.oauth.verifiers == []  # no code is redeemed for an unknown state


async def test_finishing_oauth_with_a_state_started_for_another_provider_is_refused(world: World) -> None:
    started = await world.handlers.start_oauth("github", redirect_to="/", link_user_id=None)
    world.oauth.next_profile = google_profile()
    with pytest.raises(OAuthFailed):
        await world.handlers.finish_oauth("google", code="c", state=started.state, context=CONTEXT)
    assert world.db.committed.users == {}


async def test_an_oauth_state_is_single_use(world: World) -> None:
    started = await world.handlers.start_oauth("google", redirect_to="/", link_user_id=None)
    world.oauth.next_profile = google_profile()
    await world.handlers.finish_oauth("google", code="c", state=started.state, context=CONTEXT)
    with pytest.raises(OAuthFailed):
        await world.handlers.finish_oauth("google", code="c", state=started.state, context=CONTEXT)


async def test_linking_attaches_the_provider_account_to_the_signed_in_user(world: World) -> None:
    alice = await world.sign_up()

    linked = await world.oauth_sign_in(
        github_profile("other-address@example.com", verified=True), link_user_id=alice.user.id
    )

    assert linked.user.id == alice.user.id
    assert not linked.created
    assert world.db.committed.accounts[("github", "42")].user_id == alice.user.id
    assert len(of_type(world.events, UserRegistered)) == 1  # alice's own sign-up only
    later = await world.oauth_sign_in(github_profile("other-address@example.com", verified=True))
    assert later.user.id == alice.user.id


async def test_linking_an_account_already_linked_to_another_user_is_refused(world: World) -> None:
    gina = await world.oauth_sign_in(google_profile("gina@example.com"))
    alice = await world.sign_up()

    with pytest.raises(OAuthFailed, match="linked to another user"):
        await world.oauth_sign_in(google_profile("gina@example.com"), link_user_id=alice.user.id)

    assert world.db.committed.accounts[("google", "g-1")].user_id == gina.user.id


async def test_oauth_into_a_disabled_account_is_refused(world: World) -> None:
    gina = await world.oauth_sign_in(google_profile())
    async with world.db.unit_of_work() as uow:
        await uow.store.update_user(gina.user.id, START, disabled_at=START)
    sessions_before = len(world.db.committed.sessions)

    with pytest.raises(AccountDisabled):
        await world.oauth_sign_in(google_profile())
    assert len(world.db.committed.sessions) == sessions_before


# --- self-service: profile and password --------------------------------------------------------------

AVATAR = "0190f3a2-1111-7000-8000-000000000001"


async def test_update_profile_renames_and_sets_the_avatar_without_publishing(world: World) -> None:
    signed_up = await world.sign_up()
    events_before = len(world.events)
    world.clock.advance(minutes=1)

    user = await world.handlers.update_profile(
        signed_up.user.id, ProfileChange(name="  Alice L. ", avatar_asset_id=AVATAR)
    )

    assert (user.name, user.avatar_asset_id, user.updated_at) == ("Alice L.", AVATAR, world.clock.now())
    assert world.user(signed_up.user.id) == user
    assert len(world.events) == events_before  # no other service keeps names or avatars
    assert world.revocations.invalid_before == []


async def test_update_profile_clears_the_avatar(world: World) -> None:
    signed_up = await world.sign_up()
    await world.handlers.update_profile(signed_up.user.id, ProfileChange(avatar_asset_id=AVATAR))

    user = await world.handlers.update_profile(signed_up.user.id, ProfileChange(clear_avatar=True))

    assert user.avatar_asset_id is None


async def test_an_update_that_changes_nothing_leaves_the_user_untouched(world: World) -> None:
    signed_up = await world.sign_up()
    world.clock.advance(minutes=1)

    user = await world.handlers.update_profile(signed_up.user.id, ProfileChange(name="Alice"))

    assert user.updated_at == START


async def test_a_refused_profile_update_stores_nothing(world: World) -> None:
    signed_up = await world.sign_up()
    with pytest.raises(InvalidInput):
        await world.handlers.update_profile(signed_up.user.id, ProfileChange(name=" "))
    assert world.user(signed_up.user.id).name == "Alice"


async def test_change_password_keeps_this_session_and_revokes_the_others(world: World) -> None:
    here = await world.sign_up()
    elsewhere = await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    world.clock.advance(minutes=1)

    revoked = await world.handlers.change_password(here.user.id, here.session.id, PASSWORD, NEW_PASSWORD)

    assert revoked == 1
    assert [s.id for s in world.active_sessions(here.user.id)] == [here.session.id]
    assert world.db.committed.revoked_reasons == {elsewhere.session.id: "password_changed"}
    # Only the other session's tokens stop at once; this session's token stays good.
    assert world.revocations.sessions == [(here.user.id, elsewhere.session.id)]
    assert world.revocations.invalid_before == []
    with pytest.raises(SessionExpired):
        await world.handlers.refresh(elsewhere.refresh_token)
    await world.handlers.refresh(here.refresh_token)
    with pytest.raises(InvalidCredentials):
        await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)
    await world.handlers.sign_in("alice@example.com", NEW_PASSWORD, CONTEXT)
    assert world.mail[-1].purpose == "password-changed"
    assert world.mail[-1].recipient == "alice@example.com"


async def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failure(world: World) -> None:
    here = await world.sign_up()
    elsewhere = await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)

    with pytest.raises(WrongPassword):
        await world.handlers.change_password(here.user.id, here.session.id, "not my password", NEW_PASSWORD)

    assert world.guard.failures == {"alice@example.com": 1}
    assert {s.id for s in world.active_sessions(here.user.id)} == {here.session.id, elsewhere.session.id}
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)


async def test_too_many_wrong_current_passwords_pause_the_account(world: World) -> None:
    here = await world.sign_up()
    for _ in range(world.guard.limit):
        with pytest.raises(WrongPassword):
            await world.handlers.change_password(here.user.id, here.session.id, "wrong guess!", NEW_PASSWORD)

    with pytest.raises(TooManyAttempts):
        await world.handlers.change_password(here.user.id, here.session.id, PASSWORD, NEW_PASSWORD)


async def test_a_weak_new_password_is_refused_and_the_old_one_stays(world: World) -> None:
    here = await world.sign_up()
    with pytest.raises(WeakPassword):
        await world.handlers.change_password(here.user.id, here.session.id, PASSWORD, "short")
    await world.handlers.sign_in("alice@example.com", PASSWORD, CONTEXT)


async def test_an_account_without_a_password_cannot_change_one(world: World) -> None:
    signed_in = await world.oauth_sign_in(google_profile("gina@example.com", verified=True))
    with pytest.raises(PasswordNotSet):
        await world.handlers.change_password(
            signed_in.user.id, signed_in.session.id, "anything at all", NEW_PASSWORD
        )
