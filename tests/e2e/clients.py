"""How e2e tests talk to the platform: a browser-like client (cookies, CSRF header) and an API client."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import aiohttp

GATEWAY_URL = f"http://127.0.0.1:{int(os.environ.get('FUNMAGIC_E2E_PORT_BASE', '18000'))}"
IDENTITY_URL = f"http://127.0.0.1:{int(os.environ.get('FUNMAGIC_E2E_PORT_BASE', '18000')) + 1}"
PASSWORD = "a long test passphrase 42"
# The e2e platform's Stripe credentials (the fake Stripe server knows the same ones).
STRIPE_SECRET_KEY = "sk_test_e2e_secret_key"
STRIPE_WEBHOOK_SECRET = "whsec_e2e_webhook_secret"
_TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def browser() -> aiohttp.ClientSession:
    """Keeps cookies like a browser (127.0.0.1 needs the unsafe jar) and never follows redirects itself."""
    return aiohttp.ClientSession(base_url=GATEWAY_URL, cookie_jar=aiohttp.CookieJar(unsafe=True))


def cookie(session: aiohttp.ClientSession, name: str) -> str | None:
    for item in session.cookie_jar:
        if item.key == name:
            return item.value
    return None


def csrf_headers(session: aiohttp.ClientSession) -> dict[str, str]:
    return {"X-CSRF-Token": cookie(session, "fm_csrf") or ""}


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
    csrf: bool = False,
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    all_headers = {**(csrf_headers(session) if csrf else {}), **(headers or {})}
    async with session.request(
        method, path, json=json, headers=all_headers, allow_redirects=False, **kwargs
    ) as response:
        text = await response.text()
        try:
            body = await response.json(content_type=None) if text else None
        except ValueError:
            body = text
        return response.status, body, response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(
    session: aiohttp.ClientSession, email: str, password: str = PASSWORD, *, mode: str = "cookie"
) -> dict[str, Any]:
    status, body, _ = await call(
        session, "POST", "/api/auth/sign-up/email", json={"email": email, "password": password, "mode": mode}
    )
    assert status == 201, body
    return body


async def sign_in(
    session: aiohttp.ClientSession, email: str, password: str = PASSWORD, *, mode: str = "cookie"
) -> tuple[int, Any]:
    status, body, _ = await call(
        session, "POST", "/api/auth/sign-in/email", json={"email": email, "password": password, "mode": mode}
    )
    return status, body


async def mailbox(email: str, internal_token: str) -> list[dict[str, Any]]:
    """The dev mail sink of identity (a service route: it needs the internal credential)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{IDENTITY_URL}/v1/dev/mail", params={"to": email}, headers={"X-Internal-Token": internal_token}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return (await response.json())["items"]


async def token_from_mail(email: str, purpose: str, internal_token: str) -> str:
    messages = [m for m in await mailbox(email, internal_token) if m["purpose"] == purpose]
    assert messages, f"no {purpose} mail for {email}"
    match = _TOKEN.search(messages[0]["body"])
    assert match, messages[0]["body"]
    return match.group(1)
