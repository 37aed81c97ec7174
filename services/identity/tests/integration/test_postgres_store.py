"""PostgresIdentityStore and IdentityUnitOfWork on a fresh database: what the handlers rely on holds."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import decode, parse_event
from funmagic_contracts.identity.events import UserEmailVerified, UserRegistered
from funmagic_identity.adapters.postgres import IdentityUnitOfWork
from funmagic_identity.application.ports import OutgoingMail, SessionRecord
from funmagic_identity.domain.errors import EmailAlreadyRegistered
from funmagic_identity.domain.settings import StoredSetting
from funmagic_identity.domain.users import Role, User
from funmagic_kit.crypto import SecretBox
from funmagic_kit.pagination import InvalidCursor, encode_cursor

UowFactory = Callable[[], IdentityUnitOfWork]
NOW = datetime.now(UTC).replace(microsecond=0)


def new_user(email: str, *, name: str = "Somebody", role: Role = "user", created_at: datetime = NOW) -> User:
    return User(
        id=str(uuid.uuid4()), email=email, name=name, role=role, created_at=created_at, updated_at=created_at
    )


def new_session(user_id: str, *, expires_in: timedelta = timedelta(days=30)) -> SessionRecord:
    return SessionRecord(
        id=str(uuid.uuid4()),
        user_id=user_id,
        created_at=NOW,
        last_refreshed_at=NOW,
        expires_at=NOW + expires_in,
        ip_address="198.51.100.1",
        user_agent="pytest",
        revoked_at=None,
    )


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def scalar(pool: AsyncConnectionPool, sql: str, *params: object) -> object:
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
        return next(iter(row.values())) if row else None


async def add_users(uow: UowFactory, *users: User, password_hash: str | None = None) -> None:
    async with uow() as work:
        for user in users:
            await work.store.add_user(user, password_hash)


# --- users ------------------------------------------------------------------------------------------


async def test_a_user_round_trips_through_the_store(uow: UowFactory) -> None:
    user = new_user("alice@example.com", name="Alice")
    await add_users(uow, user, password_hash="argon2-hash")

    async with uow() as work:
        by_id = await work.store.user_by_id(user.id)
        by_email = await work.store.user_by_email("alice@example.com", for_update=True)
        stored_hash = await work.store.password_hash(user.id)

    expected = user.model_copy(update={"has_password": True})
    assert by_id == expected
    assert by_email == expected
    assert stored_hash == "argon2-hash"


async def test_update_user_changes_only_the_given_columns(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    later = NOW + timedelta(minutes=5)

    async with uow() as work:
        updated = await work.store.update_user(user.id, later, email_verified=True, role="admin")

    assert (updated.email_verified, updated.role, updated.updated_at) == (True, "admin", later)
    assert updated.name == user.name
    assert updated.created_at == user.created_at
    async with uow() as work:
        assert await work.store.user_by_id(user.id) == updated


async def test_update_user_refuses_columns_it_does_not_own(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    async with uow() as work:
        with pytest.raises(ValueError, match="password_hash"):
            await work.store.update_user(user.id, NOW, password_hash="sneaky")


async def test_removing_the_password_hash_shows_as_has_password_false(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user, password_hash="argon2-hash")
    async with uow() as work:
        await work.store.set_password_hash(user.id, None, NOW)
    async with uow() as work:
        found = await work.store.user_by_id(user.id)
        assert await work.store.password_hash(user.id) is None
    assert found is not None
    assert not found.has_password


async def test_a_disabled_user_reads_back_as_disabled(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    async with uow() as work:
        disabled = await work.store.update_user(user.id, NOW, disabled_at=NOW, disabled_reason="spam")
        assert disabled.disabled
        enabled = await work.store.update_user(user.id, NOW, disabled_at=None, disabled_reason=None)
    assert not enabled.disabled


async def test_a_user_id_that_is_not_a_uuid_is_a_value_error(uow: UowFactory) -> None:
    async with uow() as work:
        with pytest.raises(ValueError, match="not a user id"):
            await work.store.user_by_id("not-a-uuid")


async def test_a_deleted_user_is_not_found_and_frees_the_email(uow: UowFactory) -> None:
    user = new_user("alice@example.com", role="super_admin")
    await add_users(uow, user)
    async with uow() as work:
        await work.store.update_user(user.id, NOW, deleted_at=NOW)

    successor = new_user("alice@example.com")
    await add_users(uow, successor)

    async with uow() as work:
        assert await work.store.user_by_id(user.id) is None
        found = await work.store.user_by_email("alice@example.com")
        assert await work.store.count_super_admins() == 0
    assert found is not None
    assert found.id == successor.id


async def test_count_super_admins_counts_only_super_admins(uow: UowFactory) -> None:
    await add_users(
        uow,
        new_user("root1@example.com", role="super_admin"),
        new_user("root2@example.com", role="super_admin"),
        new_user("admin@example.com", role="admin"),
        new_user("user@example.com"),
    )
    async with uow() as work:
        assert await work.store.count_super_admins() == 2


async def test_a_second_account_racing_for_the_same_email_is_told_the_email_is_taken(
    uow: UowFactory, pool: AsyncConnectionPool
) -> None:
    first, second = new_user("alice@example.com"), new_user("alice@example.com")
    async with uow() as winner:
        await winner.store.add_user(first, None)
        # The loser starts while the winner's insert is uncommitted; it waits on the index, then fails.
        loser = asyncio.create_task(add_users(uow, second))
    with pytest.raises(EmailAlreadyRegistered):
        await loser
    assert await scalar(pool, "SELECT count(*) FROM users WHERE email = 'alice@example.com'") == 1


async def test_a_duplicate_email_commits_nothing_of_the_second_account(
    uow: UowFactory, pool: AsyncConnectionPool
) -> None:
    first, second = new_user("alice@example.com"), new_user("alice@example.com")
    await add_users(uow, first)

    async def register_second() -> None:
        async with uow() as work:
            await work.store.add_user(second, None)
            work.publish(UserEmailVerified(user_id=second.id, email=second.email))

    with pytest.raises(EmailAlreadyRegistered):
        await register_second()
    assert await scalar(pool, "SELECT count(*) FROM users") == 1
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 0


# --- verifications ----------------------------------------------------------------------------------


async def test_a_verification_token_is_consumed_once(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    async with uow() as work:
        await work.store.add_verification(
            f"email-verification:{user.id}", digest("t1"), NOW + timedelta(hours=24), NOW
        )

    async with uow() as work:
        first = await work.store.consume_verification(digest("t1"), "email-verification", NOW)
    async with uow() as work:
        second = await work.store.consume_verification(digest("t1"), "email-verification", NOW)

    assert (first, second) == (user.id, None)


async def test_a_verification_token_only_works_for_its_own_purpose(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    async with uow() as work:
        await work.store.add_verification(
            f"password-reset:{user.id}", digest("t1"), NOW + timedelta(hours=1), NOW
        )

    async with uow() as work:
        assert await work.store.consume_verification(digest("t1"), "email-verification", NOW) is None
        assert await work.store.consume_verification(digest("t1"), "password-reset", NOW) == user.id


async def test_an_expired_verification_token_is_refused(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    expires_at = NOW + timedelta(minutes=30)
    async with uow() as work:
        await work.store.add_verification(f"password-reset:{user.id}", digest("t1"), expires_at, NOW)

    async with uow() as work:
        assert await work.store.consume_verification(digest("t1"), "password-reset", expires_at) is None
        just_before = expires_at - timedelta(microseconds=1)
        assert await work.store.consume_verification(digest("t1"), "password-reset", just_before) == user.id


async def test_an_unknown_verification_token_is_refused(uow: UowFactory) -> None:
    async with uow() as work:
        assert await work.store.consume_verification(digest("never"), "email-verification", NOW) is None


async def test_dropping_verifications_retires_only_that_identifiers_tokens(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    later = NOW + timedelta(hours=1)
    async with uow() as work:
        await work.store.add_verification(f"email-verification:{user.id}", digest("old"), later, NOW)
        await work.store.add_verification(f"password-reset:{user.id}", digest("reset"), later, NOW)
        await work.store.drop_verifications(f"email-verification:{user.id}", NOW)
        await work.store.add_verification(f"email-verification:{user.id}", digest("new"), later, NOW)

    async with uow() as work:
        assert await work.store.consume_verification(digest("old"), "email-verification", NOW) is None
        assert await work.store.consume_verification(digest("new"), "email-verification", NOW) == user.id
        assert await work.store.consume_verification(digest("reset"), "password-reset", NOW) == user.id


# --- sessions and refresh tokens --------------------------------------------------------------------


async def test_a_session_round_trips_and_is_found_by_its_refresh_token(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    session = new_session(user.id)
    await add_users(uow, user)
    async with uow() as work:
        await work.store.add_session(session, digest("r1"))

    async with uow() as work:
        assert await work.store.session(session.id, for_update=True) == session
        assert await work.store.session_by_refresh_hash(digest("r1")) == (session, None)
        assert await work.store.session_by_refresh_hash(digest("unknown")) is None
        assert await work.store.session("not-a-uuid") is None


async def test_refresh_rotation_retires_the_old_token_and_refuses_it_as_current(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    session = new_session(user.id)
    await add_users(uow, user)
    async with uow() as work:
        await work.store.add_session(session, digest("r1"))
    later = NOW + timedelta(minutes=10)

    async with uow() as work:
        assert await work.store.rotate_refresh_token(session.id, digest("r1"), digest("r2"), later)
    async with uow() as work:
        assert not await work.store.rotate_refresh_token(session.id, digest("r1"), digest("r3"), later)

    async with uow() as work:
        old = await work.store.session_by_refresh_hash(digest("r1"))
        current = await work.store.session_by_refresh_hash(digest("r2"))
        assert await work.store.session_by_refresh_hash(digest("r3")) is None
    assert old is not None
    assert old[1] == later, "retired when the session was last rotated"
    assert current is not None
    assert current[1] is None
    assert current[0].last_refreshed_at == later


async def test_revoking_a_session_is_reported_once(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    session = new_session(user.id)
    await add_users(uow, user)
    async with uow() as work:
        await work.store.add_session(session, digest("r1"))

    async with uow() as work:
        assert await work.store.revoke_session(session.id, "signed_out", NOW)
        assert not await work.store.revoke_session(session.id, "signed_out", NOW)
        revoked = await work.store.session(session.id)
    assert revoked is not None
    assert revoked.revoked_at == NOW


async def test_revoke_user_sessions_revokes_that_users_active_sessions_only(
    uow: UowFactory, pool: AsyncConnectionPool
) -> None:
    alice, bob = new_user("alice@example.com"), new_user("bob@example.com")
    a1, a2, already, b1 = (
        new_session(alice.id),
        new_session(alice.id),
        new_session(alice.id),
        new_session(bob.id),
    )
    await add_users(uow, alice, bob)
    async with uow() as work:
        for number, session in enumerate((a1, a2, already, b1)):
            await work.store.add_session(session, digest(f"r{number}"))
        await work.store.revoke_session(already.id, "signed_out", NOW)

    async with uow() as work:
        revoked = await work.store.revoke_user_sessions(alice.id, "password_reset", NOW)
        assert await work.store.revoke_user_sessions(alice.id, "password_reset", NOW) == []
        alices = await work.store.sessions_of(alice.id, NOW, limit=10, cursor=None)
        bobs = await work.store.sessions_of(bob.id, NOW, limit=10, cursor=None)
        assert [s.id for s in alices.sessions] == []
        assert [s.id for s in bobs.sessions] == [b1.id]

    assert sorted(revoked) == sorted([a1.id, a2.id])
    reason = await scalar(pool, "SELECT revoked_reason FROM sessions WHERE id = %s", already.id)
    assert reason == "signed_out"


async def test_sessions_of_leaves_out_expired_sessions(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    live, short = new_session(user.id), new_session(user.id, expires_in=timedelta(minutes=1))
    await add_users(uow, user)
    async with uow() as work:
        await work.store.add_session(live, digest("live"))
        await work.store.add_session(short, digest("short"))
        in_two_minutes = await work.store.sessions_of(
            user.id, NOW + timedelta(minutes=2), limit=10, cursor=None
        )
    assert [s.id for s in in_two_minutes.sessions] == [live.id]


async def test_active_sessions_are_counted_without_revoked_or_expired_ones(uow: UowFactory) -> None:
    user, other = new_user("counted@example.com"), new_user("other@example.com")
    live, revoked = new_session(user.id), new_session(user.id)
    short = new_session(user.id, expires_in=timedelta(minutes=1))
    await add_users(uow, user, other)
    async with uow() as work:
        for index, session in enumerate((live, revoked, short, new_session(other.id))):
            await work.store.add_session(session, digest(f"count-{index}"))
        await work.store.revoke_session(revoked.id, "signed_out", NOW)

    async with uow() as work:
        assert await work.store.count_active_sessions(user.id, NOW) == 2
        assert await work.store.count_active_sessions(user.id, NOW + timedelta(minutes=2)) == 1
        assert await work.store.count_active_sessions(str(uuid.uuid4()), NOW) == 0


# --- platform settings --------------------------------------------------------------------------------


async def test_a_setting_is_stored_whole_and_replaced_whole(uow: UowFactory) -> None:
    first = StoredSetting(
        name="rate-limit",
        document={"user_api": {"limit": 5, "window_seconds": 60}, "tiers": [{"name": "free"}]},
        updated_at=NOW,
        updated_by="admin-1",
    )
    second = StoredSetting(
        name="rate-limit", document={"upload": {"limit": 7}}, updated_at=NOW + timedelta(1), updated_by=None
    )
    async with uow() as work:
        assert await work.settings.setting("rate-limit") is None
        await work.settings.save_setting(first)
    async with uow() as work:
        assert await work.settings.setting("rate-limit") == first
        await work.settings.save_setting(second)
    async with uow() as work:
        assert await work.settings.setting("rate-limit") == second


# --- search -----------------------------------------------------------------------------------------


async def all_pages(
    uow: UowFactory, *, limit: int, query: str | None = None, role: Role | None = None
) -> list[User]:
    seen: list[User] = []
    cursor: str | None = None
    for _ in range(100):
        async with uow() as work:
            page = await work.store.search_users(query=query, role=role, limit=limit, cursor=cursor)
        assert len(page.users) <= limit
        seen += page.users
        cursor = page.next_cursor
        if cursor is None:
            return seen
    pytest.fail("search_users never stopped handing out cursors")


async def test_search_pages_through_every_user_newest_first_without_gaps_or_repeats(uow: UowFactory) -> None:
    # Five users share one creation time: the id breaks the tie, so the order is total and stable.
    tied = [new_user(f"tied{i}@example.com", created_at=NOW) for i in range(5)]
    spread = [new_user(f"u{i}@example.com", created_at=NOW - timedelta(minutes=i + 1)) for i in range(4)]
    await add_users(uow, *tied, *spread)
    expected = sorted([*tied, *spread], key=lambda u: (u.created_at, uuid.UUID(u.id)), reverse=True)

    for limit in (1, 2, 4, 9, 50):
        assert [u.id for u in await all_pages(uow, limit=limit)] == [u.id for u in expected]


async def test_search_hands_out_no_cursor_when_the_page_is_the_last(uow: UowFactory) -> None:
    await add_users(uow, new_user("a@example.com"), new_user("b@example.com"))
    async with uow() as work:
        exact = await work.store.search_users(query=None, role=None, limit=2, cursor=None)
        short = await work.store.search_users(query=None, role=None, limit=1, cursor=None)
    assert exact.next_cursor is None
    assert len(exact.users) == 2
    assert short.next_cursor is not None
    assert len(short.users) == 1


async def test_search_filters_by_role(uow: UowFactory) -> None:
    admins = [new_user(f"admin{i}@example.com", role="admin") for i in range(3)]
    await add_users(
        uow, *admins, new_user("user@example.com"), new_user("root@example.com", role="super_admin")
    )
    found = await all_pages(uow, limit=2, role="admin")
    assert sorted(u.id for u in found) == sorted(u.id for u in admins)


async def test_search_matches_email_or_name_case_insensitively(uow: UowFactory) -> None:
    by_email = new_user("carol.danvers@example.com", name="Captain")
    by_name = new_user("cd@example.com", name="Carol Smith")
    await add_users(uow, by_email, by_name, new_user("bob@example.com", name="Bob"))
    found = await all_pages(uow, limit=10, query="CAROL")
    assert sorted(u.id for u in found) == sorted([by_email.id, by_name.id])


async def test_search_treats_percent_and_underscore_in_the_query_literally(uow: UowFactory) -> None:
    percent = new_user("percent@example.com", name="100% real")
    underscore = new_user("under_score@example.com", name="Under")
    backslash = new_user("back@example.com", name="back\\slash")
    plain = new_user("plain@example.com", name="Plain")
    await add_users(uow, percent, underscore, backslash, plain)

    assert [u.id for u in await all_pages(uow, limit=10, query="%")] == [percent.id]
    assert [u.id for u in await all_pages(uow, limit=10, query="_")] == [underscore.id]
    assert [u.id for u in await all_pages(uow, limit=10, query="\\")] == [backslash.id]
    # As wildcards these would match "Plain" and "100% real".
    assert [u.id for u in await all_pages(uow, limit=10, query="l_in")] == []
    assert [u.id for u in await all_pages(uow, limit=10, query="1%l")] == []


async def test_search_refuses_a_cursor_it_did_not_make(uow: UowFactory) -> None:
    async with uow() as work:
        with pytest.raises(InvalidCursor, match="cursor is invalid"):
            await work.store.search_users(query=None, role=None, limit=10, cursor="bm90LWEtY3Vyc29y")


async def test_search_refuses_a_well_formed_cursor_whose_id_is_not_a_user_id(uow: UowFactory) -> None:
    forged = encode_cursor(NOW, "1; DROP TABLE users")
    async with uow() as work:
        with pytest.raises(InvalidCursor):
            await work.store.search_users(query=None, role=None, limit=10, cursor=forged)
        assert await work.store.count_super_admins() == 0, "the transaction is still usable"


async def test_search_leaves_out_deleted_users(uow: UowFactory) -> None:
    gone, kept = new_user("gone@example.com"), new_user("kept@example.com")
    await add_users(uow, gone, kept)
    async with uow() as work:
        await work.store.update_user(gone.id, NOW, deleted_at=NOW)
    assert [u.id for u in await all_pages(uow, limit=10)] == [kept.id]


# --- the unit of work and the outbox ----------------------------------------------------------------


async def test_published_events_reach_the_outbox_in_the_same_commit_as_the_change(
    uow: UowFactory, pool: AsyncConnectionPool
) -> None:
    user = new_user("alice@example.com", name="Alice")
    registered = UserRegistered(
        user_id=user.id, email=user.email, name=user.name, method="email", registered_at=NOW
    )
    verified = UserEmailVerified(user_id=user.id, email=user.email)

    async with uow() as work:
        await work.store.add_user(user, None)
        work.publish(registered)
        work.publish(verified)
        # Nothing is visible to others until the block ends.
        assert await scalar(pool, "SELECT count(*) FROM users") == 0
        assert await scalar(pool, "SELECT count(*) FROM outbox") == 0

    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT topic, key, payload FROM outbox ORDER BY id")
        rows = await cursor.fetchall()
    assert [(r["topic"], r["key"]) for r in rows] == [("identity.events", user.id)] * 2
    assert [parse_event(decode(bytes(r["payload"]))) for r in rows] == [registered, verified]
    assert await scalar(pool, "SELECT count(*) FROM users") == 1


async def test_nothing_is_written_when_the_block_raises(uow: UowFactory, pool: AsyncConnectionPool) -> None:
    user = new_user("alice@example.com")

    async def register_then_fail() -> None:
        async with uow() as work:
            await work.store.add_user(user, None)
            await work.store.queue_mail(OutgoingMail(user.email, "Hi", "body", "email-verification"), NOW)
            work.publish(UserEmailVerified(user_id=user.id, email=user.email))
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await register_then_fail()

    assert await scalar(pool, "SELECT count(*) FROM users") == 0
    assert await scalar(pool, "SELECT count(*) FROM outgoing_mail") == 0
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 0


async def test_a_unit_of_work_without_events_writes_no_outbox_rows(
    uow: UowFactory, pool: AsyncConnectionPool
) -> None:
    await add_users(uow, new_user("alice@example.com"))
    assert await scalar(pool, "SELECT count(*) FROM users") == 1
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 0


# --- secrets at rest --------------------------------------------------------------------------------


async def test_oauth_tokens_are_stored_encrypted(
    uow: UowFactory, pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    access, refresh = "ya29.the-access-token-value", "1//the-refresh-token-value"
    async with uow() as work:
        await work.store.link_account(user.id, "google", "g-123", access, refresh, NOW)

    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT access_token, refresh_token FROM accounts")
        row = await cursor.fetchone()
    assert row is not None
    raw_access, raw_refresh = bytes(row["access_token"]), bytes(row["refresh_token"])
    assert access.encode() not in raw_access
    assert refresh.encode() not in raw_refresh
    assert secret_box.decrypt(raw_access, purpose="oauth:google:access") == access.encode()
    assert secret_box.decrypt(raw_refresh, purpose="oauth:google:refresh") == refresh.encode()
    async with uow() as work:
        assert await work.store.account_user("google", "g-123") == user.id
        assert await work.store.account_user("github", "g-123") is None


async def test_linking_again_replaces_the_access_token_and_keeps_the_refresh_token(
    uow: UowFactory, pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    async with uow() as work:
        await work.store.link_account(user.id, "google", "g-123", "access-1", "refresh-1", NOW)
    async with uow() as work:
        await work.store.link_account(user.id, "google", "g-123", "access-2", None, NOW)

    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT access_token, refresh_token FROM accounts")
        rows = await cursor.fetchall()
    assert len(rows) == 1
    assert secret_box.decrypt(bytes(rows[0]["access_token"]), purpose="oauth:google:access") == b"access-2"
    assert secret_box.decrypt(bytes(rows[0]["refresh_token"]), purpose="oauth:google:refresh") == b"refresh-1"


async def test_queued_mail_bodies_are_stored_encrypted(
    uow: UowFactory, pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    body = "Confirm: https://app.example/verify-email?token=secret-link-token"
    async with uow() as work:
        await work.store.queue_mail(
            OutgoingMail("alice@example.com", "Confirm", body, "email-verification"), NOW
        )

    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT recipient, body FROM outgoing_mail")
        row = await cursor.fetchone()
    assert row is not None
    assert row["recipient"] == "alice@example.com"
    assert b"secret-link-token" not in bytes(row["body"])
    assert secret_box.decrypt(bytes(row["body"]), purpose="mail-body") == body.encode()


async def test_an_account_of_a_deleted_user_is_not_found(uow: UowFactory) -> None:
    user = new_user("alice@example.com")
    await add_users(uow, user)
    async with uow() as work:
        await work.store.link_account(user.id, "github", "42", "gho_token", None, NOW)
        await work.store.update_user(user.id, NOW, deleted_at=NOW)
    async with uow() as work:
        assert await work.store.account_user("github", "42") is None
