"""An open event stream lasts no longer than its caller's session: signing out or being disabled ends it
with `session_ended`, and the same token cannot open it again."""

from __future__ import annotations

import asyncio

import pytest
from clients import PASSWORD, SseEvent, bearer, browser, call, read_sse, sign_in, sign_up, unique_email

from funmagic_kit.testing import wait_until

# The gateway asks every SSE_SESSION_CHECK_SECONDS (5 s by default) whether the session still holds.
ENDS_WITHIN_SECONDS = 20


@pytest.fixture(scope="module")
def super_admin_token(platform, identity_command) -> str:
    email = unique_email("sse-root")
    result = identity_command(
        "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stdout + result.stderr

    async def token() -> str:
        async with browser() as client:
            status, body = await sign_in(client, email, mode="token")
        assert status == 201, body
        return body["access_token"]

    return asyncio.run(token())


async def _open_stream(token: str) -> tuple[asyncio.Task, list[SseEvent]]:
    """`/api/stream` read in the background until `session_ended`; returns once it is connected."""
    seen: list[SseEvent] = []

    def note(event: SseEvent) -> bool:
        seen.append(event)
        return event.event == "session_ended"

    reader = asyncio.create_task(read_sse(token, "/api/stream", stop_after=note, timeout=ENDS_WITHIN_SECONDS))

    async def connected() -> bool:
        if reader.done():
            raise AssertionError(f"the stream ended before it was connected: {reader.result()}")
        return any(event.event == "connected" for event in seen)

    await wait_until(connected, timeout=10, what="the stream to be connected", interval=0.05)
    return reader, seen


async def test_signing_out_ends_the_open_stream(platform) -> None:
    async with browser() as client:
        account = await sign_up(client, unique_email("sse-out"), mode="token")
    token = account["access_token"]
    reader, _ = await _open_stream(token)

    async with browser() as client:
        status, _, _ = await call(
            client, "POST", "/api/auth/sign-out", json={"refresh_token": account["refresh_token"]},
            headers=bearer(token),
        )  # fmt: skip
    assert status == 204

    status, events, _ = await reader
    assert status == 200
    assert [event.event for event in events] == ["connected", "session_ended"]
    assert events[-1].id is None  # it never moves the resume point
    assert "signed out" in events[-1].data["reason"]
    assert (await read_sse(token, "/api/stream", timeout=5))[0] == 401


async def test_disabling_the_user_ends_the_open_stream(platform, super_admin_token: str) -> None:
    async with browser() as client:
        account = await sign_up(client, unique_email("sse-disabled"), mode="token")
    token, user_id = account["access_token"], account["user"]["id"]
    reader, _ = await _open_stream(token)

    async with browser() as client:
        status, _, _ = await call(
            client, "POST", f"/api/admin/users/{user_id}/disable", json={"reason": "abuse"},
            headers=bearer(super_admin_token),
        )  # fmt: skip
    assert status == 200

    status, events, _ = await reader
    assert status == 200
    assert [event.event for event in events] == ["connected", "session_ended"]
    assert (await read_sse(token, "/api/stream", timeout=5))[0] == 401


async def test_a_stream_of_a_live_session_stays_open(platform) -> None:
    async with browser() as client:
        account = await sign_up(client, unique_email("sse-kept"), mode="token")
    reader, seen = await _open_stream(account["access_token"])

    # Another session of the same user signs out: this one's stream goes on.
    async with browser() as client:
        status, other = await sign_in(client, account["user"]["email"], mode="token")
        assert status == 201, other
        status, _, _ = await call(
            client, "POST", "/api/auth/sign-out", json={"refresh_token": other["refresh_token"]},
            headers=bearer(other["access_token"]),
        )  # fmt: skip
        assert status == 204

    # Watched over two session checks: still open, nothing but `connected`.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), timeout=12)
    reader.cancel()
    assert [event.event for event in seen] == ["connected"]
