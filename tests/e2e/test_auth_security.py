"""Attacks on the edge, each expected to be refused with the right status (problem+json every time)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
import uuid

import jwt
import psycopg
import pytest
from clients import IDENTITY_URL, PASSWORD, bearer, browser, call, sign_in, sign_up, unique_email
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from funmagic_kit.crypto import SecretBox
from funmagic_kit.testing import wait_until


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def signing_key(platform, platform_env) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """Identity's real signing key, read the way only someone holding SECRET_KEY and the database could."""
    with psycopg.connect(platform_env["IDENTITY_DATABASE_URL"]) as conn:
        kid, encrypted = conn.execute(
            "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    pem = SecretBox.from_base64(platform_env["SECRET_KEY"]).decrypt(bytes(encrypted), purpose="signing-key")
    return kid, serialization.load_pem_private_key(pem, password=None)


@pytest.fixture
async def account(platform) -> dict:
    async with browser() as client:
        return await sign_up(client, unique_email("sec"), mode="token")


def _claims(account: dict, **overrides: object) -> dict:
    now = time.time()
    claims = {
        "iss": "funmagic",
        "aud": "funmagic-api",
        "sub": account["user"]["id"],
        "sid": account["session"]["id"],
        "role": "super_admin",  # what an attacker would like to be
        "email": account["user"]["email"],
        "name": "x",
        "email_verified": True,
        "iat": now,
        "exp": int(now) + 300,
    }
    claims.update(overrides)
    return claims


async def _session_status(token: str) -> tuple[int, dict]:
    async with browser() as client:
        status, body, response = await call(client, "GET", "/api/auth/session", headers=bearer(token))
        assert response.content_type == "application/problem+json" or status == 200
        return status, body


async def test_a_genuine_token_is_accepted(account) -> None:
    status, _ = await _session_status(account["access_token"])
    assert status == 200


async def test_a_tampered_token_is_refused(account) -> None:
    header, payload, signature = account["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "super_admin"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"

    status, problem = await _session_status(forged)
    assert status == 401
    assert "invalid" in problem["detail"]


async def test_an_unsigned_alg_none_token_is_refused(account, signing_key) -> None:
    kid, _ = signing_key
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    token = f"{header}.{_b64(json.dumps(_claims(account)).encode())}."

    status, problem = await _session_status(token)
    assert status == 401
    assert "algorithm" in problem["detail"]


async def test_an_hs256_token_keyed_with_the_public_key_is_refused(account, signing_key) -> None:
    kid, private_key = signing_key
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}."
        f"{_b64(json.dumps(_claims(account)).encode())}"
    )
    signature = _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())

    status, problem = await _session_status(f"{signing_input}.{signature}")
    assert status == 401
    assert "algorithm" in problem["detail"]


async def test_an_expired_token_is_refused(account, signing_key) -> None:
    kid, private_key = signing_key
    now = time.time()
    token = jwt.encode(
        _claims(account, role="user", iat=now - 600, exp=int(now) - 60),
        private_key,
        algorithm="ES256",
        headers={"kid": kid},
    )

    status, problem = await _session_status(token)
    assert status == 401
    assert "expired" in problem["detail"]


async def test_a_token_signed_by_an_unknown_key_is_refused(account) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(
        _claims(account), stranger, algorithm="ES256", headers={"kid": f"unknown-{uuid.uuid4()}"}
    )

    status, problem = await _session_status(token)
    assert status == 401
    assert "unknown key" in problem["detail"]


async def test_a_real_key_with_a_foreign_kid_or_audience_is_refused(account, signing_key) -> None:
    kid, private_key = signing_key
    wrong_audience = jwt.encode(
        _claims(account, aud="another-api"), private_key, algorithm="ES256", headers={"kid": kid}
    )
    assert (await _session_status(wrong_audience))[0] == 401


async def test_a_revoked_session_is_refused_at_once(account) -> None:
    async with browser() as client:
        status, _, _ = await call(
            client,
            "POST",
            "/api/auth/sign-out",
            json={"refresh_token": account["refresh_token"]},
            headers=bearer(account["access_token"]),
        )
        assert status == 204
    status, problem = await _session_status(account["access_token"])
    assert status == 401
    assert "revoked" in problem["detail"]


async def test_a_cookie_authenticated_change_needs_the_csrf_token() -> None:
    async with browser() as client:
        await sign_up(client, unique_email("csrf"))
        status, problem, _ = await call(client, "POST", "/api/auth/sign-out-everywhere")
        assert status == 403
        assert problem["code"] == "csrf_token"
        status, problem, _ = await call(
            client, "POST", "/api/auth/sign-out-everywhere", headers={"X-CSRF-Token": "guessed"}
        )
        assert status == 403
        status, _, _ = await call(client, "POST", "/api/auth/sign-out-everywhere", csrf=True)
        assert status == 200


async def test_a_state_change_from_a_foreign_origin_is_refused() -> None:
    async with browser() as client:
        status, problem, _ = await call(
            client,
            "POST",
            "/api/auth/sign-in/email",
            json={"email": unique_email("x"), "password": PASSWORD},
            headers={"Origin": "https://evil.test"},
        )
        assert status == 403
        assert problem["code"] == "csrf_origin"


async def test_an_allowed_origin_gets_cors_headers_with_credentials() -> None:
    async with browser() as client:
        status, _, response = await call(
            client,
            "OPTIONS",
            "/api/auth/session",
            headers={"Origin": "http://app.test", "Access-Control-Request-Method": "GET"},
        )
        assert status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://app.test"
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        status, _, response = await call(
            client,
            "OPTIONS",
            "/api/auth/session",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_rapid_wrong_passwords_are_throttled_then_allowed_after_the_window(
    platform, identity_command
) -> None:
    admin_email = unique_email("limits-admin")
    result = identity_command(
        "create-admin", "--email", admin_email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stderr
    # The e2e gateway trusts 127.0.0.1 as a proxy, so this test's requests come from an address of its own.
    from_address = {
        "X-Forwarded-For": f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    }
    async with browser() as client:
        status, admin = await sign_in(client, admin_email, mode="token")
        admin_headers = bearer(admin["access_token"])
        status, relaxed, _ = await call(
            client, "GET", "/api/admin/settings/rate-limit", headers=admin_headers
        )
        assert status == 200
        tight = {**relaxed, "auth_action": {"limit": 5, "window_seconds": 3}}
        status, _, _ = await call(
            client, "PUT", "/api/admin/settings/rate-limit", json=tight, headers=admin_headers
        )
        assert status == 200
        try:
            statuses, retry_after = [], None
            for _ in range(20):
                status, _, response = await call(
                    client,
                    "POST",
                    "/api/auth/sign-in/email",
                    json={"email": admin_email, "password": "wrong password 000"},
                    headers=from_address,
                )
                statuses.append(status)
                retry_after = response.headers.get("Retry-After", retry_after)
            assert statuses[:5] == [401] * 5, statuses
            assert statuses[5:] == [429] * 15, statuses
            assert retry_after is not None
            assert 1 <= int(retry_after) <= 3

            answered: list[int] = []

            async def no_longer_throttled() -> bool:
                status, _, _ = await call(
                    client,
                    "POST",
                    "/api/auth/sign-in/email",
                    json={"email": admin_email, "password": PASSWORD, "mode": "token"},
                    headers=from_address,
                )
                answered.append(status)
                return status != 429

            await wait_until(
                no_longer_throttled, timeout=15, what="the sign-in limit's window to pass", interval=0.2
            )
            assert answered[-1] == 201, "after the window the right password works again"
        finally:
            status, _, _ = await call(
                client, "PUT", "/api/admin/settings/rate-limit", json=relaxed, headers=admin_headers
            )
            assert status == 200


async def test_an_oversized_body_is_refused() -> None:
    async with browser() as client:
        status, _problem, response = await call(
            client,
            "POST",
            "/api/auth/sign-in/email",
            data=b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert status == 413
        assert response.content_type == "application/problem+json"


async def test_malformed_json_is_a_bad_request() -> None:
    async with browser() as client:
        status, problem, _ = await call(
            client,
            "POST",
            "/api/auth/sign-in/email",
            data=b'{"email": "a@example.com", "password": ',
            headers={"Content-Type": "application/json"},
        )
        assert status == 400
        assert "JSON" in problem["detail"]


async def test_unknown_fields_are_refused() -> None:
    async with browser() as client:
        status, problem, _ = await call(
            client,
            "POST",
            "/api/auth/sign-up/email",
            json={"email": unique_email("x"), "password": PASSWORD, "role": "super_admin"},
        )
        assert status == 422
        assert problem["errors"][0]["loc"] == ["role"]
        assert problem["errors"][0]["type"] == "extra_forbidden"


async def test_a_body_that_is_not_json_is_refused() -> None:
    async with browser() as client:
        status, _, _ = await call(
            client,
            "POST",
            "/api/auth/sign-in/email",
            data="email=a&password=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 415


async def test_a_service_reached_directly_refuses_callers_without_credentials(account) -> None:
    async with browser() as client:
        for headers in ({}, {"X-Internal-Token": "not-the-internal-token-at-all"}):
            async with client.get(f"{IDENTITY_URL}/v1/users", headers=headers) as response:
                assert response.status == 401
        # A user's own token reaches the service, but only as that user: admin routes stay closed.
        async with client.get(
            f"{IDENTITY_URL}/v1/users", headers=bearer(account["access_token"])
        ) as response:
            assert response.status == 403


async def test_an_account_is_protected_from_guessing_spread_over_many_addresses(platform) -> None:
    email = unique_email("guessed")
    async with browser() as client:
        await sign_up(client, email, mode="token")
        statuses = []
        for attempt in range(12):
            # A different address each time: the per-IP limit never triggers, the per-account one does.
            headers = {"X-Forwarded-For": f"10.99.{attempt}.{random.randint(1, 254)}"}
            status, _, response = await call(
                client,
                "POST",
                "/api/auth/sign-in/email",
                json={"email": email, "password": f"guess number {attempt:03d}", "mode": "token"},
                headers=headers,
            )
            statuses.append(status)
        assert statuses[:10] == [401] * 10, statuses
        assert statuses[10:] == [429, 429], statuses
        assert int(response.headers["Retry-After"]) > 0
        status, problem, _ = await call(
            client,
            "POST",
            "/api/auth/sign-in/email",
            json={"email": email, "password": PASSWORD, "mode": "token"},
            headers={"X-Forwarded-For": "10.99.200.1"},
        )
        assert status == 429, "even the right password waits: the guesser must not learn it is right"
        assert problem["code"] == "too_many_attempts"
