"""Roles: the first super_admin comes from the CLI; only a super_admin grants or removes admin rights."""

from __future__ import annotations

import pytest
from clients import PASSWORD, bearer, browser, call, sign_in, sign_up, unique_email


@pytest.fixture(scope="module")
def super_admin_email(platform, identity_command) -> str:
    email = unique_email("root")
    result = identity_command(
        "create-admin", "--email", email, "--name", "Root", extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"created super_admin {email}" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    return email


async def _token(email: str) -> str:
    async with browser() as client:
        status, body = await sign_in(client, email, mode="token")
        assert status == 201, body
        return body["access_token"]


async def _new_user(prefix: str) -> tuple[str, str, str]:
    email = unique_email(prefix)
    async with browser() as client:
        body = await sign_up(client, email, mode="token")
    return email, body["user"]["id"], body["access_token"]


async def test_create_admin_promotes_an_existing_user_and_is_idempotent(
    platform, identity_command, super_admin_email
) -> None:
    email, user_id, token = await _new_user("promoted")
    for _ in range(2):
        result = identity_command("create-admin", "--email", email)
        assert result.returncode == 0, result.stderr
        assert "promoted super_admin" in result.stdout
    async with browser() as client:
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(token))
        assert status == 401, "a token issued before the promotion carries the old role and is refused"
    fresh = await _token(email)
    async with browser() as client:
        status, session, _ = await call(client, "GET", "/api/auth/session", headers=bearer(fresh))
        assert session["user"]["role"] == "super_admin"
        # Back to a plain user, so the super_admin count stays what the other tests expect.
        status, user, _ = await call(
            client, "PUT", f"/api/admin/users/{user_id}/role", json={"role": "user"}, headers=bearer(fresh)
        )
        assert status == 200, user


async def test_only_a_super_admin_grants_admin_and_admins_cannot_escalate(
    platform, super_admin_email
) -> None:
    root = await _token(super_admin_email)
    admin_email, admin_id, _ = await _new_user("admin")
    _, target_id, user_token = await _new_user("target")
    async with browser() as client:
        status, _, _ = await call(client, "GET", "/api/admin/users", headers=bearer(user_token))
        assert status == 403, "users are not admins"
        status, _, _ = await call(
            client,
            "PUT",
            f"/api/admin/users/{target_id}/role",
            json={"role": "admin"},
            headers=bearer(user_token),
        )
        assert status == 403

        status, granted, _ = await call(
            client, "PUT", f"/api/admin/users/{admin_id}/role", json={"role": "admin"}, headers=bearer(root)
        )
        assert status == 200, granted
        assert granted["role"] == "admin"
        admin = await _token(admin_email)

        status, _listed, _ = await call(client, "GET", "/api/admin/users", headers=bearer(admin))
        assert status == 200, "admins read the user list"
        status, _, _ = await call(
            client, "PUT", f"/api/admin/users/{target_id}/role", json={"role": "admin"}, headers=bearer(admin)
        )
        assert status == 403, "an admin cannot grant admin"
        status, _problem, _ = await call(
            client,
            "PUT",
            f"/api/admin/users/{admin_id}/role",
            json={"role": "super_admin"},
            headers=bearer(admin),
        )
        assert status == 403, "nor make themselves super_admin"


async def test_the_last_super_admin_cannot_be_demoted(platform, super_admin_email) -> None:
    root = await _token(super_admin_email)
    async with browser() as client:
        _, me, _ = await call(client, "GET", "/api/auth/session", headers=bearer(root))
        root_id = me["user"]["id"]
        # Modules that ran before made their own super_admins: step them down, leaving root the last one.
        _, listed, _ = await call(
            client,
            "GET",
            "/api/admin/users",
            params={"role": "super_admin", "limit": "100"},
            headers=bearer(root),
        )
        stepped_down = [u["id"] for u in listed["items"] if u["id"] != root_id]
        for other in stepped_down:
            status, _, _ = await call(
                client, "PUT", f"/api/admin/users/{other}/role", json={"role": "user"}, headers=bearer(root)
            )
            assert status == 200
        _, listed, _ = await call(
            client, "GET", "/api/admin/users", params={"role": "super_admin"}, headers=bearer(root)
        )
        assert [u["id"] for u in listed["items"]] == [root_id]

        status, problem, _ = await call(
            client, "PUT", f"/api/admin/users/{root_id}/role", json={"role": "admin"}, headers=bearer(root)
        )
        assert status == 409, problem
        assert problem["code"] == "last_super_admin"

        second_email, second_id, _ = await _new_user("second-root")
        status, _, _ = await call(
            client,
            "PUT",
            f"/api/admin/users/{second_id}/role",
            json={"role": "super_admin"},
            headers=bearer(root),
        )
        assert status == 200
        second = await _token(second_email)
        status, demoted, _ = await call(
            client, "PUT", f"/api/admin/users/{second_id}/role", json={"role": "user"}, headers=bearer(second)
        )
        assert status == 200, "with two, one may step down"
        assert demoted["role"] == "user"

        # Put the others back: the session's super_admin (conftest's admin_email) may be among them, and the
        # modules that run later act as that admin.
        for other in stepped_down:
            status, _, _ = await call(
                client,
                "PUT",
                f"/api/admin/users/{other}/role",
                json={"role": "super_admin"},
                headers=bearer(root),
            )
            assert status == 200


async def test_a_disabled_user_is_signed_out_everywhere_until_enabled(platform, super_admin_email) -> None:
    root = await _token(super_admin_email)
    email, user_id, token = await _new_user("disabled")
    async with browser() as client:
        status, user, _ = await call(
            client,
            "POST",
            f"/api/admin/users/{user_id}/disable",
            json={"reason": "abuse"},
            headers=bearer(root),
        )
        assert status == 200
        assert user["disabled"] is True
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=bearer(token))
        assert status == 401
        status, problem = await sign_in(client, email, mode="token")
        assert status == 403
        assert problem["code"] == "account_disabled"

        status, user, _ = await call(
            client,
            "POST",
            f"/api/admin/users/{user_id}/enable",
            json={"reason": "appeal"},
            headers=bearer(root),
        )
        assert status == 200
        assert user["disabled"] is False
        assert (await sign_in(client, email, mode="token"))[0] == 201


async def test_admins_cannot_disable_a_super_admin_or_themselves(platform, super_admin_email) -> None:
    root = await _token(super_admin_email)
    async with browser() as client:
        _, me, _ = await call(client, "GET", "/api/auth/session", headers=bearer(root))
        status, problem, _ = await call(
            client,
            "POST",
            f"/api/admin/users/{me['user']['id']}/disable",
            json={"reason": "oops"},
            headers=bearer(root),
        )
        assert status == 403, problem


async def test_the_user_list_is_paginated_and_searchable(platform, super_admin_email) -> None:
    root = await _token(super_admin_email)
    marker = unique_email("page").split("@")[0]
    emails = set()
    for index in range(5):
        email = f"{marker}-{index}@example.com"
        emails.add(email)
        async with browser() as client:
            await sign_up(client, email, mode="token")
    seen: list[str] = []
    cursor = None
    async with browser() as client:
        while True:
            params = {"query": marker, "limit": "2", **({"cursor": cursor} if cursor else {})}
            status, page, _ = await call(
                client, "GET", "/api/admin/users", params=params, headers=bearer(root)
            )
            assert status == 200, page
            assert len(page["items"]) <= 2
            seen += [u["email"] for u in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(emails), "every match once, across pages"
        status, problem, _ = await call(
            client, "GET", "/api/admin/users", params={"cursor": "not-a-cursor"}, headers=bearer(root)
        )
        assert status == 422, problem
