"""Identity's HTTP API as the runtime serves it: the routes `build` returns, behind the kit's problem+json
middleware (identity has no error middleware of its own any more), on a real database and Redis.

Every refusal keeps the status and `code` clients (the gateway, the SPA) see; a caller check stand-in plays
the kit's: `X-Test-User` is the verified user, `X-Test-Role` their role.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_identity.bootstrap import Identity, build
from funmagic_identity.config import IdentitySettings
from funmagic_identity.domain.errors import LastSuperAdmin
from funmagic_kit.clock import ManualClock
from funmagic_kit.request_keys import Role
from funmagic_kit.testing import serve_routes, wait_until
from funmagic_kit.workers import Periodic

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def identity(settings: IdentitySettings, pool: AsyncConnectionPool, redis: Redis) -> Identity:
    built = build(settings, pool=pool, redis=redis, clock=ManualClock())
    await built.signing_keys.ensure_key(built.clock.now())  # as the runtime's build does before traffic
    return built


@pytest.fixture
async def http(identity: Identity) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve_routes(identity.parts.routes, "identity") as session:
        yield session


def an_email(prefix: str = "user") -> str:
    # Unique per test run: the sign-in guard counts failures per email in the shared Redis.
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def as_user(user_id: str, role: Role = "user") -> dict[str, str]:
    return {"X-Test-User": user_id, "X-Test-Role": role}


async def send(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.request(method, path, **kwargs) as response:
        return response.status, await response.json(content_type=None), response


async def refusal(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
    status, body, response = await send(http, method, path, **kwargs)
    assert response.content_type == "application/problem+json", body
    return status, body["code"]


async def sign_up(http: aiohttp.ClientSession, email: str) -> dict[str, Any]:
    status, body, _ = await send(http, "POST", "/v1/users", json={"email": email, "password": PASSWORD})
    assert status == 201, body
    return body


# --- sign-up and sign-in ------------------------------------------------------------------------------


async def test_signing_up_twice_with_one_email_is_409_email_taken(http: aiohttp.ClientSession) -> None:
    email = an_email()
    signed_up = await sign_up(http, email)
    assert signed_up["user"]["email"] == email
    assert signed_up["created"] is True

    assert await refusal(http, "POST", "/v1/users", json={"email": email.upper(), "password": PASSWORD}) == (
        409,
        "email_taken",
    )


async def test_a_weak_password_is_422_weak_password_listing_every_problem(
    http: aiohttp.ClientSession,
) -> None:
    status, body, _ = await send(http, "POST", "/v1/users", json={"email": an_email(), "password": "aaa"})

    assert (status, body["code"]) == (422, "weak_password")
    assert body["problems"] == [
        "use at least 10 characters",
        "use more than three different characters",
    ]


async def test_signing_up_with_something_that_is_not_an_email_is_422_invalid_input(
    http: aiohttp.ClientSession,
) -> None:
    status, body, _ = await send(
        http, "POST", "/v1/users", json={"email": "not-an-email", "password": PASSWORD}
    )

    assert (status, body["code"], body["detail"]) == (422, "invalid_input", "not a valid email address")


async def test_wrong_passwords_are_401_until_the_account_is_paused_with_429_and_retry_after(
    http: aiohttp.ClientSession, settings: IdentitySettings
) -> None:
    email = an_email("guessed")
    await sign_up(http, email)
    wrong = {"email": email, "password": "not the password at all"}

    for _ in range(settings.sign_in_max_failures):
        assert await refusal(http, "POST", "/v1/sessions", json=wrong) == (401, "invalid_credentials")
    status, body, response = await send(
        http, "POST", "/v1/sessions", json={"email": email, "password": PASSWORD}
    )

    assert (status, body["code"]) == (429, "too_many_attempts")
    assert 1 <= int(response.headers["Retry-After"]) <= settings.sign_in_failure_window_seconds


async def test_signing_in_to_a_disabled_account_is_403_account_disabled(http: aiohttp.ClientSession) -> None:
    email = an_email()
    user_id = (await sign_up(http, email))["user"]["id"]
    status, _, _ = await send(
        http,
        "POST",
        f"/v1/users/{user_id}/disable",
        json={"reason": "spam"},
        headers=as_user(str(uuid.uuid4()), "admin"),
    )
    assert status == 200

    assert await refusal(http, "POST", "/v1/sessions", json={"email": email, "password": PASSWORD}) == (
        403,
        "account_disabled",
    )


# --- sessions, links and OAuth ------------------------------------------------------------------------


async def test_an_unknown_refresh_token_is_401_session_expired(http: aiohttp.ClientSession) -> None:
    assert await refusal(
        http, "POST", "/v1/sessions/refresh", json={"refresh_token": "no-such-session.no-such-token"}
    ) == (401, "session_expired")


async def test_a_verification_link_that_was_never_sent_is_400_invalid_token(
    http: aiohttp.ClientSession,
) -> None:
    assert await refusal(
        http, "POST", "/v1/email-verifications/confirm", json={"token": "never-sent-token-value"}
    ) == (400, "invalid_token")


async def test_the_verification_link_in_the_dev_mailbox_verifies_the_email(
    http: aiohttp.ClientSession,
) -> None:
    email = an_email()
    await sign_up(http, email)
    status, mailbox, _ = await send(http, "GET", "/v1/dev/mail", params={"to": email}, headers=INTERNAL)
    assert status == 200, mailbox
    (mail,) = mailbox["items"]
    token = mail["body"].split("token=", 1)[1].split()[0]

    status, user, _ = await send(http, "POST", "/v1/email-verifications/confirm", json={"token": token})

    assert (status, user["email"], user["email_verified"]) == (200, email, True)


async def test_the_dev_mailbox_without_an_address_lists_the_mail_to_anyone(
    http: aiohttp.ClientSession,
) -> None:
    first, second = an_email(), an_email()
    await sign_up(http, first)
    await sign_up(http, second)

    status, mailbox, _ = await send(http, "GET", "/v1/dev/mail", params={"limit": "100"}, headers=INTERNAL)
    status_one, just_one, _ = await send(http, "GET", "/v1/dev/mail", params={"limit": "1"}, headers=INTERNAL)

    assert status == 200, mailbox
    assert {first, second} <= {mail["to"] for mail in mailbox["items"]}
    assert (status_one, len(just_one["items"])) == (200, 1)
    # Its links sign anyone in: no user, not even an admin, reads it with their own token.
    for caller in (as_user(str(uuid.uuid4())), as_user(str(uuid.uuid4()), "super_admin")):
        status, problem, _ = await send(http, "GET", "/v1/dev/mail", headers=caller)
        assert status == 403, problem


async def test_an_oauth_callback_for_a_flow_never_started_is_400_oauth_failed(
    http: aiohttp.ClientSession,
) -> None:
    assert await refusal(
        http, "POST", "/v1/oauth/google/callback", json={"code": "a-code", "state": "never-started-state"}
    ) == (400, "oauth_failed")


# --- administration -----------------------------------------------------------------------------------


async def test_an_unknown_user_is_404_user_not_found(http: aiohttp.ClientSession) -> None:
    admin = as_user(str(uuid.uuid4()), "admin")
    assert await refusal(http, "GET", f"/v1/users/{uuid.uuid4()}", headers=admin) == (404, "user_not_found")


async def test_an_admin_changing_a_role_is_403_not_allowed(http: aiohttp.ClientSession) -> None:
    user_id = (await sign_up(http, an_email()))["user"]["id"]
    admin = as_user(str(uuid.uuid4()), "admin")

    assert await refusal(http, "PUT", f"/v1/users/{user_id}/role", json={"role": "admin"}, headers=admin) == (
        403,
        "not_allowed",
    )


async def test_demoting_the_last_super_admin_is_409_last_super_admin(
    http: aiohttp.ClientSession, identity: Identity
) -> None:
    root, created = await identity.handlers.create_super_admin(an_email("root"), PASSWORD, "Root")
    assert created

    assert await refusal(
        http,
        "PUT",
        f"/v1/users/{root.id}/role",
        json={"role": "admin"},
        headers=as_user(root.id, "super_admin"),
    ) == (409, "last_super_admin")


async def test_two_super_admins_demoting_each_other_at_once_leave_one(
    identity: Identity, database_url: str
) -> None:
    first, _ = await identity.handlers.create_super_admin(an_email("root"), PASSWORD, "First")
    second, _ = await identity.handlers.create_super_admin(an_email("root"), PASSWORD, "Second")

    def demote(actor: str, target: str) -> Awaitable[object]:
        return identity.handlers.change_role(actor_id=actor, actor_role="super_admin", user_id=target,
                                             new_role="admin")  # fmt: skip

    # Both demotions are held just before they commit (their outbox rows wait on a lock this test holds),
    # so each decides while the other is still in flight: each must count the other's change.
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute("LOCK TABLE outbox IN SHARE MODE")
        demotions = asyncio.gather(demote(first.id, second.id), demote(second.id, first.id),
                                   return_exceptions=True)  # fmt: skip

        async def both_waiting() -> bool:
            cursor = await (await psycopg.AsyncConnection.connect(database_url, autocommit=True)).execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
            )
            row = await cursor.fetchone()
            await cursor.connection.close()
            return row is not None and row[0] >= 2

        await wait_until(both_waiting, timeout=10, what="both demotions waiting")
        await holder.rollback()
    outcomes = await demotions

    refused = [o for o in outcomes if isinstance(o, LastSuperAdmin)]
    assert len(refused) == 1, outcomes
    roles = {(await identity.handlers.current_user(u.id)).role for u in (first, second)}
    assert roles == {"super_admin", "admin"}


async def test_the_user_list_pages_with_kit_cursors_and_refuses_a_forged_one(
    http: aiohttp.ClientSession,
) -> None:
    marker = uuid.uuid4().hex[:10]
    emails = {(await sign_up(http, f"{marker}-{index}@example.com"))["user"]["email"] for index in range(3)}
    admin = as_user(str(uuid.uuid4()), "admin")
    seen: list[str] = []
    params = {"query": marker, "limit": "2"}
    for _ in range(len(emails)):
        status, page, _ = await send(http, "GET", "/v1/users", params=params, headers=admin)
        assert status == 200, page
        seen += [user["email"] for user in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert sorted(seen) == sorted(emails)
    status, problem, _ = await send(
        http, "GET", "/v1/users", params={"cursor": "not-a-cursor"}, headers=admin
    )
    assert (status, problem["code"], problem["field"]) == (422, "invalid_cursor", "cursor")


async def test_an_admin_sees_how_many_sessions_a_user_has_open(http: aiohttp.ClientSession) -> None:
    email = an_email()
    user_id = (await sign_up(http, email))["user"]["id"]  # the first session
    status, signed_in, _ = await send(
        http, "POST", "/v1/sessions", json={"email": email, "password": PASSWORD}
    )
    assert status == 201
    status, _, _ = await send(
        http,
        "POST",
        "/v1/sessions/sign-out",
        json={"refresh_token": signed_in["refresh_token"]},
        headers=as_user(user_id),
    )
    assert status == 204
    status, _, _ = await send(http, "POST", "/v1/sessions", json={"email": email, "password": PASSWORD})
    assert status == 201

    status, user, _ = await send(http, "GET", f"/v1/users/{user_id}", headers=as_user(user_id, "admin"))

    assert status == 200, user
    assert (user["email"], user["session_count"]) == (email, 2)
    status, mine, _ = await send(http, "GET", "/v1/me", headers=as_user(user_id))
    assert status == 200
    assert "session_count" not in mine, "only an admin's view of one user counts sessions"


# --- platform settings (the gateway's rate limits) -------------------------------------------------------

INTERNAL = {"X-Test-Internal": "yes"}
RATE_LIMIT_SETTING = "/v1/internal/settings/rate-limit"


async def test_a_setting_never_stored_is_404_setting_not_set(http: aiohttp.ClientSession) -> None:
    assert await refusal(http, "GET", RATE_LIMIT_SETTING, headers=INTERNAL) == (404, "setting_not_set")


async def test_a_stored_setting_is_read_back_whole_with_who_changed_it(
    http: aiohttp.ClientSession, pool: AsyncConnectionPool
) -> None:
    admin_id = str(uuid.uuid4())
    document = {
        "task_creation": {"limit": 10, "window_seconds": 60},
        "tiers": [{"name": "free", "min_purchased": 0, "multiplier": 1}],
    }
    status, stored, _ = await send(
        http, "PUT", RATE_LIMIT_SETTING, json=document, headers={**INTERNAL, **as_user(admin_id, "admin")}
    )
    assert (status, stored) == (200, document)

    status, read, _ = await send(http, "GET", RATE_LIMIT_SETTING, headers=INTERNAL)

    assert (status, read) == (200, document)
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT updated_by FROM platform_settings")).fetchone()
    assert row == {"updated_by": admin_id}


async def test_settings_are_for_services_only(http: aiohttp.ClientSession) -> None:
    admin = as_user(str(uuid.uuid4()), "super_admin")
    status, _, _ = await send(http, "GET", RATE_LIMIT_SETTING, headers=admin)
    assert status == 401
    status, _, _ = await send(http, "PUT", RATE_LIMIT_SETTING, json={"a": 1}, headers=admin)
    assert status == 401


async def test_unknown_settings_and_documents_that_are_not_objects_are_refused(
    http: aiohttp.ClientSession,
) -> None:
    unknown = "/v1/internal/settings/payments"
    assert await refusal(http, "GET", unknown, headers=INTERNAL) == (404, "unknown_setting")
    assert await refusal(http, "PUT", unknown, json={"a": 1}, headers=INTERNAL) == (404, "unknown_setting")
    for not_an_object in ([1, 2], "text", 3):
        status, _, _ = await send(http, "PUT", RATE_LIMIT_SETTING, json=not_an_object, headers=INTERNAL)
        assert status == 422
    assert await refusal(http, "GET", RATE_LIMIT_SETTING, headers=INTERNAL) == (404, "setting_not_set")


# --- what build serves --------------------------------------------------------------------------------


async def test_the_jwks_route_publishes_the_loaded_signing_key(
    http: aiohttp.ClientSession, identity: Identity
) -> None:
    status, jwks, _ = await send(http, "GET", "/.well-known/jwks.json")

    assert status == 200
    assert [key["kid"] for key in jwks["keys"]] == [identity.signing_keys.current.kid]


async def test_smtp_mode_delivers_through_a_mail_worker_and_serves_no_dev_mailbox(
    settings: IdentitySettings, pool: AsyncConnectionPool, redis: Redis
) -> None:
    sink = build(settings, pool=pool, redis=redis)
    smtp = build(settings.model_copy(update={"mail_mode": "smtp"}), pool=pool, redis=redis)

    def paths(identity: Identity) -> set[str]:
        return {route.path for route in identity.parts.routes if isinstance(route, web.RouteDef)}

    def workers(identity: Identity) -> list[str]:
        return [worker.name for worker in identity.parts.workers if isinstance(worker, Periodic)]

    assert "/v1/dev/mail" in paths(sink)
    assert "/v1/dev/mail" not in paths(smtp)
    assert workers(sink) == ["signing-keys"]
    assert workers(smtp) == ["signing-keys", "mail"]
