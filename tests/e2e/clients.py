"""How e2e tests talk to the platform: a browser-like client (cookies, CSRF header) and an API client."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import aiohttp

# The e2e platform's ports: the gateway on the base, the others after it (run_services.PORT_OFFSETS).
E2E_PORT_BASE = int(os.environ.get("FUNMAGIC_E2E_PORT_BASE", "18000"))
# FUNMAGIC_GATEWAY_URL points the same clients at another platform (tests/compose: the composed one).
GATEWAY_URL = os.environ.get("FUNMAGIC_GATEWAY_URL") or f"http://127.0.0.1:{E2E_PORT_BASE}"
IDENTITY_URL = f"http://127.0.0.1:{E2E_PORT_BASE + 1}"
STORAGE_URL = f"http://127.0.0.1:{E2E_PORT_BASE + 4}"
PASSWORD = "a long test passphrase 42"
# The e2e platform's Stripe credentials (the fake Stripe server knows the same ones).
STRIPE_SECRET_KEY = "sk_test_e2e_secret_key"
STRIPE_WEBHOOK_SECRET = "whsec_e2e_webhook_secret"
_TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def browser(gateway: str = GATEWAY_URL) -> aiohttp.ClientSession:
    """Keeps cookies like a browser (127.0.0.1 needs the unsafe jar) and never follows redirects itself."""
    return aiohttp.ClientSession(base_url=gateway, cookie_jar=aiohttp.CookieJar(unsafe=True))


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


# --- files: a small PNG, upload through the presigned flow, download through the asset's URL ---------


def png(width: int = 64, height: int = 48, background: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    """A real PNG: a red rectangle on a plain background (what the local background removal expects)."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), background)
    box = (width // 4, height // 4, 3 * width // 4, 3 * height // 4)
    ImageDraw.Draw(image).rectangle(box, fill=(200, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def upload(
    token: str,
    data: bytes,
    filename: str = "input.png",
    *,
    module: str = "uploads",
    gateway: str = GATEWAY_URL,
) -> str:
    """Upload → PUT to S3 → complete (into storage's `module`); returns the new asset's id."""
    ticket_request = {
        "filename": filename,
        "content_type": "image/png",
        "size": len(data),
        "module": module,
    }
    async with browser(gateway) as client:
        status, ticket, _ = await call(
            client, "POST", "/api/assets/uploads", headers=bearer(token), json=ticket_request
        )
        assert status == 201, ticket
        async with (
            aiohttp.ClientSession() as http,
            http.put(ticket["url"], data=data, headers=ticket["headers"]) as response,
        ):
            assert response.status == 200
        status, asset, _ = await call(
            client, "POST", f"/api/assets/uploads/{ticket['upload_id']}/complete", headers=bearer(token)
        )
        assert status == 201, asset
    return asset["id"]


async def download(token: str, asset_id: str, *, gateway: str = GATEWAY_URL) -> tuple[dict[str, Any], bytes]:
    async with browser(gateway) as client:
        status, asset, _ = await call(client, "GET", f"/api/assets/{asset_id}", headers=bearer(token))
        assert status == 200, asset
    async with aiohttp.ClientSession() as http, http.get(asset["url"]) as response:
        assert response.status == 200
        return asset, await response.read()


# --- Server-Sent Events -------------------------------------------------------------------------


class SseEvent:
    def __init__(self, event: str, data: Any, id: str | None) -> None:
        self.event, self.data, self.id = event, data, id

    def __repr__(self) -> str:
        return f"SseEvent({self.event!r}, id={self.id!r})"


async def read_sse(
    token: str,
    path: str,
    *,
    last_event_id: str | None = None,
    stop_after: Any = None,
    timeout: float = 60.0,
) -> tuple[int, list[SseEvent], str | None]:
    """Open an SSE stream and read events until the server ends it, `stop_after(event)` is true, or the
    timeout passes. Returns (status, events, the `retry:` hint)."""
    import asyncio
    import json

    headers = bearer(token) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    events: list[SseEvent] = []
    retry: str | None = None
    async with (
        aiohttp.ClientSession(base_url=GATEWAY_URL) as http,
        http.get(path, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout + 5)) as response,
    ):
        if response.status != 200:
            return response.status, events, None
        assert response.headers["Content-Type"].startswith("text/event-stream")
        fields: dict[str, str] = {}

        async def read() -> None:
            nonlocal retry
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    continue
                if line == "":
                    if "event" in fields or "data" in fields:
                        data = fields.get("data")
                        event = SseEvent(fields.get("event", "message"), json.loads(data) if data else None,
                                         fields.get("id"))  # fmt: skip
                        events.append(event)
                        if stop_after is not None and stop_after(event):
                            return
                    fields.clear()
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "retry":
                    retry = value
                elif name == "data" and "data" in fields:
                    fields["data"] += "\n" + value
                else:
                    fields[name] = value

        await asyncio.wait_for(read(), timeout)
    return 200, events, retry
