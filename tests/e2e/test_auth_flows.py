"""Accounts and sessions through the gateway, over real HTTP, with the real stack behind it."""

from __future__ import annotations

from clients import (
    PASSWORD,
    bearer,
    browser,
    call,
    cookie,
    mailbox,
    sign_in,
    sign_up,
    token_from_mail,
    unique_email,
)


async def test_sign_up_verify_sign_in_refresh_and_sign_out(platform, stack_env) -> None:
    internal_token = stack_env["INTERNAL_API_TOKEN"]
    email = unique_email("flow")
    async with browser() as client:
        signed_up = await sign_up(client, email.upper())  # emails are normalised
        assert signed_up["user"]["email"] == email
        assert signed_up["user"]["email_verified"] is False
        assert signed_up["access_token"] is None, "cookie mode must not put tokens in the body"
        assert cookie(client, "fm_access")
        assert cookie(client, "fm_refresh")
        assert cookie(client, "fm_csrf")

        token = await token_from_mail(email, "email-verification", internal_token)
        status, verified, _ = await call(client, "POST", "/api/auth/verify-email", json={"token": token})
        assert status == 200, verified
        assert verified["email_verified"] is True
        status, _again, _ = await call(client, "POST", "/api/auth/verify-email", json={"token": token})
        assert status == 400, "a verification link works once"

    async with browser() as client:
        status, body = await sign_in(client, email)
        assert status == 201, body
        status, session, _ = await call(client, "GET", "/api/auth/session")
        assert status == 200, session
        assert session["user"] == {
            "id": signed_up["user"]["id"],
            "email": email,
            "name": signed_up["user"]["name"],
            "role": "user",
            "email_verified": True,
        }
        first_access = cookie(client, "fm_access")
        first_refresh = cookie(client, "fm_refresh")

        status, refreshed, _ = await call(client, "POST", "/api/auth/refresh", csrf=True)
        assert status == 200, refreshed
        assert cookie(client, "fm_access") != first_access
        assert cookie(client, "fm_refresh") != first_refresh
        status, _, _ = await call(client, "GET", "/api/auth/session")
        assert status == 200

        old_cookie = cookie(client, "fm_access")
        status, _, _ = await call(client, "POST", "/api/auth/sign-out", csrf=True)
        assert status == 204
        assert cookie(client, "fm_access") is None

    async with browser() as stale:
        stale.cookie_jar.update_cookies({"fm_access": old_cookie})
        status, problem, response = await call(stale, "GET", "/api/auth/session")
        assert status == 401
        assert response.content_type == "application/problem+json"
        assert "revoked" in problem["detail"]


async def test_a_password_reset_replaces_the_password_and_ends_every_session(platform, stack_env) -> None:
    email = unique_email("reset")
    new_password = "a brand new passphrase 77"
    async with browser() as client:
        await sign_up(client, email, mode="token")
        status, old_session = await sign_in(client, email, mode="token")
        assert status == 201

        status, accepted, _ = await call(client, "POST", "/api/auth/forgot-password", json={"email": email})
        assert status == 202, accepted
        status, unknown, _ = await call(
            client, "POST", "/api/auth/forgot-password", json={"email": unique_email("nobody")}
        )
        assert (status, unknown) == (202, accepted), "the answer must not tell which emails have accounts"

        token = await token_from_mail(email, "password-reset", stack_env["INTERNAL_API_TOKEN"])
        status, weak, _ = await call(
            client, "POST", "/api/auth/reset-password", json={"token": token, "password": "short"}
        )
        assert status == 422, weak
        assert weak["code"] == "weak_password"
        status, _, _ = await call(
            client, "POST", "/api/auth/reset-password", json={"token": token, "password": new_password}
        )
        # The weak attempt consumed nothing: the transaction rolled back, the link still worked once.
        assert status == 204
        status, _, _ = await call(
            client, "POST", "/api/auth/reset-password", json={"token": token, "password": new_password}
        )
        assert status == 400, "a reset link works once"

        assert (await sign_in(client, email, PASSWORD))[0] == 401
        assert (await sign_in(client, email, new_password, mode="token"))[0] == 201
        status, _, _ = await call(
            client, "GET", "/api/auth/session", headers=bearer(old_session["access_token"])
        )
        assert status == 401, "sessions from before the reset are over"
        status, _, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": old_session["refresh_token"]}
        )
        assert status == 401


async def test_reusing_a_rotated_refresh_token_revokes_the_session(platform) -> None:
    email = unique_email("reuse")
    async with browser() as client:
        first = await sign_up(client, email, mode="token")
        status, middle, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert status == 200, middle
        status, second, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": middle["refresh_token"]}
        )
        assert status == 200, second
        assert second["refresh_token"] not in (first["refresh_token"], middle["refresh_token"])

        # Older than the last rotation: no other tab can be racing with it, so it leaked.
        status, problem, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert status == 401
        assert "revoked" in problem["detail"]
        # The thief's replay killed the session for the legitimate holder too.
        status, _, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert status == 401
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(second["access_token"]))
        assert status == 401


async def test_a_refresh_superseded_by_another_tabs_an_instant_before_keeps_the_session(platform) -> None:
    email = unique_email("two-tabs")
    async with browser() as client:
        first = await sign_up(client, email, mode="token")
        status, winner, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert status == 200, winner

        status, problem, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert (status, problem["code"]) == (409, "refresh_superseded")
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(winner["access_token"]))
        assert status == 200, "the session lives on"
        status, renewed, _ = await call(
            client, "POST", "/api/auth/refresh", json={"refresh_token": winner["refresh_token"]}
        )
        assert status == 200, renewed


async def test_sessions_can_be_listed_and_revoked_one_by_one_or_all(platform) -> None:
    email = unique_email("sessions")
    async with browser() as client:
        await sign_up(client, email, mode="token")
        _, laptop = await sign_in(client, email, mode="token")
        _, phone = await sign_in(client, email, mode="token")

        status, listed, _ = await call(
            client, "GET", "/api/auth/sessions", headers=bearer(laptop["access_token"])
        )
        assert status == 200
        assert len(listed["items"]) == 3
        assert [s["current"] for s in listed["items"]].count(True) == 1

        status, _, _ = await call(
            client,
            "DELETE",
            f"/api/auth/sessions/{phone['session']['id']}",
            headers=bearer(laptop["access_token"]),
        )
        assert status == 204
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(phone["access_token"]))
        assert status == 401

        other = await sign_up(client, unique_email("other"), mode="token")
        status, _, _ = await call(
            client,
            "DELETE",
            f"/api/auth/sessions/{laptop['session']['id']}",
            headers=bearer(other["access_token"]),
        )
        assert status == 404, "another user's session is not yours to revoke"

        status, revoked, _ = await call(
            client, "POST", "/api/auth/sign-out-everywhere", headers=bearer(laptop["access_token"])
        )
        assert status == 200
        assert revoked["revoked_sessions"] == 2
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(laptop["access_token"]))
        assert status == 401


async def test_my_sessions_come_a_page_at_a_time_through_the_gateway(platform) -> None:
    email = unique_email("pages")
    async with browser() as client:
        here = await sign_up(client, email, mode="token")
        for _ in range(2):
            status, _ = await sign_in(client, email, mode="token")
            assert status == 201
        await sign_up(client, unique_email("someone-else"), mode="token")
        me = bearer(here["access_token"])

        status, first, _ = await call(client, "GET", "/api/auth/sessions", params={"limit": "2"}, headers=me)
        assert status == 200, first
        assert (len(first["items"]), first["next_cursor"] is not None) == (2, True)
        params = {"limit": "2", "cursor": first["next_cursor"]}
        status, last, _ = await call(client, "GET", "/api/auth/sessions", params=params, headers=me)
        assert status == 200, last
        assert (len(last["items"]), last["next_cursor"]) == (1, None)
        listed = [session["id"] for session in first["items"] + last["items"]]
        assert len(set(listed)) == 3, "the pages are disjoint and hold my three sessions"
        assert here["session"]["id"] in listed

        forged = {"cursor": "bm90LWEtY3Vyc29y"}  # base64 of "not-a-cursor"
        status, problem, _ = await call(client, "GET", "/api/auth/sessions", params=forged, headers=me)
        assert (status, problem["code"]) == (422, "invalid_cursor")
        too_many = {"limit": "101"}
        status, problem, _ = await call(client, "GET", "/api/auth/sessions", params=too_many, headers=me)
        assert (status, [error["loc"] for error in problem["errors"]]) == (422, [["limit"]])


async def test_sign_up_refuses_a_taken_email_and_a_weak_password(platform) -> None:
    email = unique_email("taken")
    async with browser() as client:
        await sign_up(client, email, mode="token")
        status, taken, _ = await call(
            client, "POST", "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD}
        )
        assert status == 409
        assert taken["code"] == "email_taken"
        status, weak, _ = await call(
            client,
            "POST",
            "/api/auth/sign-up/email",
            json={"email": unique_email("weak"), "password": "1234567890"},
        )
        assert status == 422
        assert weak["code"] == "weak_password"
        assert "1234567890" not in str(weak), "the password is never echoed back"


async def test_a_deleted_account_can_no_longer_sign_in(platform, stack_env) -> None:
    email = unique_email("delete")
    async with browser() as client:
        account = await sign_up(client, email, mode="token")
        token = account["access_token"]
        status, problem, _ = await call(
            client, "DELETE", "/api/auth/me", json={"password": "not my password 123"}, headers=bearer(token)
        )
        assert status == 401, problem
        status, _, _ = await call(
            client, "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=bearer(token)
        )
        assert status == 204
        assert (await sign_in(client, email))[0] == 401
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(token))
        assert status == 401
    assert await mailbox(email, stack_env["INTERNAL_API_TOKEN"])  # what was sent stays on record
