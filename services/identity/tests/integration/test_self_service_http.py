"""A user's self-service over identity's HTTP API, on a real database and Redis: `PATCH /v1/me` (name and
avatar), `POST /v1/me/password` (the current password proves it is them; the other sessions end) and
`GET /v1/sessions` (my signed-in devices, a page at a time).

A caller check stand-in plays the kit's: `X-Test-User` and `X-Test-Session` are the verified token's user
and session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_identity.bootstrap import Identity, build
from funmagic_identity.config import IdentitySettings
from funmagic_kit.auth import revocation_keys
from funmagic_kit.clock import ManualClock
from funmagic_kit.pagination import encode_cursor
from funmagic_kit.testing import serve_routes

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 2026"
AVATAR = "0190f3a2-1111-7000-8000-000000000001"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def identity(
    settings: IdentitySettings, pool: AsyncConnectionPool, redis: Redis, clock: ManualClock
) -> Identity:
    built = build(settings, pool=pool, redis=redis, clock=clock)
    await built.signing_keys.ensure_key(built.clock.now())
    return built


@pytest.fixture
async def http(identity: Identity) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve_routes(identity.parts.routes, "identity") as session:
        yield session


def an_email() -> str:
    # Unique per run: the sign-in guard counts failures per email in the shared Redis.
    return f"self-{uuid.uuid4().hex[:12]}@example.com"


async def send(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.request(method, path, **kwargs) as response:
        return response.status, await response.json(content_type=None), response


async def refusal(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, str | None]:
    """The status and `code` of a problem+json answer (a body the schema refuses has no `code`)."""
    status, body, response = await send(http, method, path, **kwargs)
    assert response.content_type == "application/problem+json", body
    return status, body.get("code")


async def signed_up(http: aiohttp.ClientSession, email: str) -> dict[str, Any]:
    status, body, _ = await send(
        http, "POST", "/v1/users", json={"email": email, "password": PASSWORD, "name": "Alice"}
    )
    assert status == 201, body
    return body


async def signed_in(http: aiohttp.ClientSession, email: str, password: str = PASSWORD) -> dict[str, Any]:
    status, body, _ = await send(http, "POST", "/v1/sessions", json={"email": email, "password": password})
    assert status == 201, body
    return body


def as_session(result: dict[str, Any]) -> dict[str, str]:
    return {"X-Test-User": result["user"]["id"], "X-Test-Session": result["session"]["id"]}


# --- PATCH /v1/me -------------------------------------------------------------------------------------


async def test_patch_me_renames_and_sets_the_avatar_and_get_me_answers_them(
    http: aiohttp.ClientSession,
) -> None:
    me = await signed_up(http, an_email())

    status, body, _ = await send(
        http,
        "PATCH",
        "/v1/me",
        json={"name": "  Alice L. ", "avatar_asset_id": AVATAR},
        headers=as_session(me),
    )

    assert status == 200, body
    assert (body["name"], body["avatar_asset_id"]) == ("Alice L.", AVATAR)
    status, body, _ = await send(http, "GET", "/v1/me", headers=as_session(me))
    assert (status, body["name"], body["avatar_asset_id"]) == (200, "Alice L.", AVATAR)


async def test_patch_me_removes_the_avatar_and_keeps_the_name(http: aiohttp.ClientSession) -> None:
    me = await signed_up(http, an_email())
    await send(http, "PATCH", "/v1/me", json={"avatar_asset_id": AVATAR}, headers=as_session(me))

    status, body, _ = await send(
        http, "PATCH", "/v1/me", json={"remove_avatar": True}, headers=as_session(me)
    )

    assert (status, body["avatar_asset_id"], body["name"]) == (200, None, "Alice")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "   "}, (422, "invalid_input")),
        ({"name": "Ali\nce"}, (422, "invalid_input")),
        ({"avatar_asset_id": AVATAR, "remove_avatar": True}, (422, "invalid_input")),
        ({"avatar_asset_id": "not-a-uuid"}, (422, None)),
        ({"email": "other@example.com"}, (422, None)),
    ],
)
async def test_patch_me_refuses_what_breaks_a_rule(
    http: aiohttp.ClientSession, body: dict[str, Any], expected: tuple[int, str | None]
) -> None:
    me = await signed_up(http, an_email())

    status, code = await refusal(http, "PATCH", "/v1/me", json=body, headers=as_session(me))

    assert (status, code) == expected
    _, after, _ = await send(http, "GET", "/v1/me", headers=as_session(me))
    assert (after["name"], after["avatar_asset_id"]) == ("Alice", None)


async def test_patch_me_without_a_signed_in_user_is_401(http: aiohttp.ClientSession) -> None:
    status, _ = await refusal(http, "PATCH", "/v1/me", json={"name": "Mallory"})
    assert status == 401


# --- POST /v1/me/password -----------------------------------------------------------------------------


async def test_changing_the_password_keeps_this_session_and_ends_the_others(
    http: aiohttp.ClientSession, redis: Redis
) -> None:
    email = an_email()
    here = await signed_up(http, email)
    elsewhere = await signed_in(http, email)

    status, body, _ = await send(
        http,
        "POST",
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=as_session(here),
    )

    assert (status, body) == (200, {"revoked_sessions": 1})
    # The other session's refresh token and access token are refused at once; this one's still work.
    assert await refusal(
        http, "POST", "/v1/sessions/refresh", json={"refresh_token": elsewhere["refresh_token"]}
    ) == (401, "session_expired")
    # What every gateway replica checks access tokens against: the other session is marked revoked, this
    # one is not, and no "tokens invalid before" mark refuses this session's token either.
    user_id = here["user"]["id"]
    other_revoked, valid_after = await redis.mget(*revocation_keys(user_id, elsewhere["session"]["id"]))
    this_revoked, _ = await redis.mget(*revocation_keys(user_id, here["session"]["id"]))
    assert (other_revoked is not None, this_revoked, valid_after) == (True, None, None)
    status, _, _ = await send(
        http, "POST", "/v1/sessions/refresh", json={"refresh_token": here["refresh_token"]}
    )
    assert status == 200
    # The new password signs in, the old one no longer does.
    assert await refusal(http, "POST", "/v1/sessions", json={"email": email, "password": PASSWORD}) == (
        401,
        "invalid_credentials",
    )
    await signed_in(http, email, NEW_PASSWORD)


async def test_a_wrong_current_password_is_403_wrong_password_and_changes_nothing(
    http: aiohttp.ClientSession,
) -> None:
    email = an_email()
    here = await signed_up(http, email)
    elsewhere = await signed_in(http, email)

    assert await refusal(
        http,
        "POST",
        "/v1/me/password",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=as_session(here),
    ) == (403, "wrong_password")

    status, _, _ = await send(
        http, "POST", "/v1/sessions/refresh", json={"refresh_token": elsewhere["refresh_token"]}
    )
    assert status == 200
    await signed_in(http, email, PASSWORD)


async def test_a_new_password_breaking_the_policy_is_422_weak_password(http: aiohttp.ClientSession) -> None:
    here = await signed_up(http, an_email())

    status, body, _ = await send(
        http,
        "POST",
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=as_session(here),
    )

    assert (status, body["code"]) == (422, "weak_password")
    assert "use at least 10 characters" in body["problems"]


async def test_wrong_current_passwords_pause_the_account_like_wrong_sign_ins(
    http: aiohttp.ClientSession,
) -> None:
    # The test settings pause an account after two failures.
    here = await signed_up(http, an_email())
    wrong = {"current_password": "a wrong guess", "new_password": NEW_PASSWORD}
    for _ in range(2):
        assert await refusal(http, "POST", "/v1/me/password", json=wrong, headers=as_session(here)) == (
            403,
            "wrong_password",
        )

    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert await refusal(http, "POST", "/v1/me/password", json=right, headers=as_session(here)) == (
        429,
        "too_many_attempts",
    )


# --- GET /v1/sessions ---------------------------------------------------------------------------------


async def my_session_pages(
    http: aiohttp.ClientSession, me: dict[str, Any], limit: int
) -> list[list[dict[str, Any]]]:
    """Every page of my sessions, following `next_cursor` until it is null (and never longer than a page
    per session: a cursor that led back would otherwise loop)."""
    pages: list[list[dict[str, Any]]] = []
    params = {"limit": str(limit)}
    for _ in range(20):
        status, page, _ = await send(http, "GET", "/v1/sessions", params=params, headers=as_session(me))
        assert status == 200, page
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        params["cursor"] = page["next_cursor"]
    raise AssertionError(f"the cursors never ended: {pages}")


async def test_my_sessions_come_a_page_at_a_time_newest_first_and_no_one_elses(
    http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    email = an_email()
    mine = [await signed_up(http, email)]
    for minutes in (1, 1, 0, 1):  # the 3rd and 4th sign in at one instant: their ids order them
        clock.advance(minutes=minutes)
        mine.append(await signed_in(http, email))
    someone_else = await signed_up(http, an_email())
    await signed_in(http, someone_else["user"]["email"])
    me = mine[2]

    pages = await my_session_pages(http, me, limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [session["id"] for page in pages for session in page]
    newest_first = sorted(
        (result["session"] for result in mine), key=lambda s: (s["created_at"], s["id"]), reverse=True
    )
    assert listed == [session["id"] for session in newest_first]
    current = [session["id"] for page in pages for session in page if session["current"]]
    assert current == [me["session"]["id"]]
    # Without a limit, the default page holds all five.
    status, whole, _ = await send(http, "GET", "/v1/sessions", headers=as_session(me))
    assert (status, [s["id"] for s in whole["items"]], whole["next_cursor"]) == (200, listed, None)


async def test_a_cursor_this_list_never_gave_or_a_limit_out_of_range_is_422(
    http: aiohttp.ClientSession,
) -> None:
    me = await signed_up(http, an_email())
    forged = [
        "not-a-cursor",
        encode_cursor("yesterday", "not-a-uuid"),  # well-formed, but not a time and an id
        encode_cursor("2026-01-01T12:00:00+00:00"),  # a time without the id
    ]
    for cursor in forged:
        status, problem, _ = await send(
            http, "GET", "/v1/sessions", params={"cursor": cursor}, headers=as_session(me)
        )
        assert (status, problem["code"], problem["field"]) == (422, "invalid_cursor", "cursor"), cursor

    for limit in ("0", "101", "many"):
        status, problem, response = await send(
            http, "GET", "/v1/sessions", params={"limit": limit}, headers=as_session(me)
        )
        assert response.content_type == "application/problem+json"
        assert (status, [error["loc"] for error in problem["errors"]]) == (422, [["limit"]]), limit
