"""Account self-service through the gateway, as a client does it: rename, choose an avatar (uploaded with
storage's `avatar` module), change the password while signed in (the other sessions end, this one stays)."""

from __future__ import annotations

from typing import Any

import aiohttp
from clients import PASSWORD, bearer, browser, call, png, sign_in, sign_up, unique_email, upload

NEW_PASSWORD = "another long passphrase 77"


async def _avatar(token: str, module: str = "avatar") -> str:
    """An uploaded picture, with the module the avatar check wants; the new asset's id."""
    return await upload(token, png(32, 32), "me.png", module=module)


async def _as(token: str, method: str, path: str, json: Any = None) -> tuple[int, Any]:
    async with browser() as client:
        status, body, _ = await call(client, method, path, json=json, headers=bearer(token))
        return status, body


async def test_rename_and_avatar_are_kept_and_shown_with_a_url_the_browser_can_fetch(platform) -> None:
    async with browser() as client:
        user = await sign_up(client, unique_email("self"), mode="token")
    token = user["access_token"]
    status, me = await _as(token, "GET", "/api/auth/me")
    assert (status, me["avatar_url"], me["avatar_asset_id"]) == (200, None, None)  # initials, then

    avatar_id = await _avatar(token)
    status, updated = await _as(
        token, "PATCH", "/api/auth/me", {"name": "  Ada Lovelace ", "avatar_asset_id": avatar_id}
    )

    assert status == 200, updated
    assert (updated["name"], updated["avatar_asset_id"]) == ("Ada Lovelace", avatar_id)
    status, me = await _as(token, "GET", "/api/auth/me")
    assert (status, me["name"], me["avatar_asset_id"]) == (200, "Ada Lovelace", avatar_id)
    async with aiohttp.ClientSession() as http, http.get(me["avatar_url"]) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert (await response.read()).startswith(b"\x89PNG")

    status, cleared = await _as(token, "PATCH", "/api/auth/me", {"remove_avatar": True})
    assert (status, cleared["avatar_asset_id"], cleared["avatar_url"]) == (200, None, None)


async def test_an_avatar_must_be_my_own_asset_of_the_avatar_module(platform) -> None:
    async with browser() as client:
        me = await sign_up(client, unique_email("self"), mode="token")
        other = await sign_up(client, unique_email("other"), mode="token")
    token = me["access_token"]
    not_an_avatar = await _avatar(token, module="uploads")
    someone_elses = await _avatar(other["access_token"])
    missing = "0190f3a2-0000-7000-8000-000000000000"

    for asset_id in (not_an_avatar, someone_elses, missing):
        status, problem = await _as(token, "PATCH", "/api/auth/me", {"avatar_asset_id": asset_id})
        assert (status, problem["code"]) == (422, "invalid_avatar"), problem

    status, after = await _as(token, "GET", "/api/auth/me")
    assert (status, after["avatar_asset_id"]) == (200, None)


async def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(platform) -> None:
    email = unique_email("self")
    async with browser() as client:
        here = await sign_up(client, email, mode="token")
        status, elsewhere = await sign_in(client, email, mode="token")
        assert status == 201, elsewhere

    status, problem = await _as(
        here["access_token"],
        "POST",
        "/api/auth/change-password",
        {"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert (status, problem["code"]) == (403, "wrong_password")
    status, problem = await _as(
        here["access_token"],
        "POST",
        "/api/auth/change-password",
        {"current_password": PASSWORD, "new_password": "short"},
    )
    assert (status, problem["code"]) == (422, "weak_password")

    status, changed = await _as(
        here["access_token"],
        "POST",
        "/api/auth/change-password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert (status, changed) == (200, {"revoked_sessions": 1})

    # The other session: its access token is refused at once, and so is its refresh token.
    status, _ = await _as(elsewhere["access_token"], "GET", "/api/auth/session")
    assert status == 401
    async with browser() as client:
        status, problem, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}
        )
        assert (status, problem["code"]) == (401, "session_expired")
    # This session still works, and still refreshes.
    status, session = await _as(here["access_token"], "GET", "/api/auth/session")
    assert (status, session["session"]["id"]) == (200, here["session"]["id"])
    async with browser() as client:
        status, refreshed, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": here["refresh_token"]}
        )
        assert status == 200, refreshed
        # The old password no longer signs in; the new one does.
        status, problem = await sign_in(client, email, mode="token")
        assert (status, problem["code"]) == (401, "invalid_credentials")
        status, _ = await sign_in(client, email, NEW_PASSWORD, mode="token")
        assert status == 201


async def test_a_browser_session_changes_its_password_and_stays_signed_in(platform) -> None:
    """Cookie mode: the CSRF header is needed, and the browser's own cookies keep working afterwards."""
    email = unique_email("self")
    async with browser() as client:
        await sign_up(client, email)
        status, _, _ = await call(
            client,
            "POST",
            "/api/auth/change-password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert status == 403  # no CSRF header
        status, body, _ = await call(
            client,
            "POST",
            "/api/auth/change-password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            csrf=True,
        )
        assert (status, body) == (200, {"revoked_sessions": 0})
        status, me, _ = await call(client, "GET", "/api/auth/me")
        assert (status, me["email"]) == (200, email)
