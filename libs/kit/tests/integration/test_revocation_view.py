"""The gateway's local view of session revocations, against a real Redis: it answers from memory only
while the announcements provably reach it, and goes to Redis (or fails closed) otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from funmagic_kit.auth import (
    InvalidToken,
    JwksSource,
    TokenVerifier,
    mark_session_revoked,
    mark_tokens_invalid_before,
)
from funmagic_kit.errors import TransientError
from funmagic_kit.revocations import RevocationView, revocation_keys
from funmagic_kit.testing import wait_until

from .conftest import holds
from .signing import AUDIENCE, ISSUER, ManualClock, PublishedKeys, SigningKey, claims_for


class CountingRedis(Redis):
    """A real client that counts the commands it sends (the view's round trips), by name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return await super().execute_command(*args, **options)


@pytest.fixture
async def view_redis(stack) -> AsyncIterator[CountingRedis]:
    # Named, so a test can find the view's subscription among the server's clients and cut it.
    client = CountingRedis.from_url(stack.redis_url, client_name=f"view-{uuid.uuid4().hex[:12]}")
    yield client
    await client.aclose()


@pytest.fixture
async def run_view() -> AsyncIterator[Callable[[RevocationView], Any]]:
    running: list[tuple[RevocationView, asyncio.Task[None]]] = []

    async def start(view: RevocationView) -> RevocationView:
        running.append((view, asyncio.create_task(view.run())))
        await wait_until(holds(lambda: view.current), timeout=10, what="the view to become current")
        return view

    yield start
    for view, task in running:
        view.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4().hex}"


async def test_a_current_view_answers_a_session_it_knows_without_a_round_trip(
    view_redis: CountingRedis, run_view, user_id: str
) -> None:
    view = await run_view(RevocationView(view_redis))

    first = await view.session(user_id, "s1")
    view_redis.sent.clear()
    again = [await view.session(user_id, "s1") for _ in range(5)]

    assert not first.revoked
    assert first.valid_after is None
    assert again == [first] * 5
    assert "MGET" not in view_redis.sent


async def test_an_announced_revocation_reaches_the_view_and_spares_the_users_other_sessions(
    redis: Redis, view_redis: CountingRedis, run_view, user_id: str
) -> None:
    view = await run_view(RevocationView(view_redis))
    assert not (await view.session(user_id, "revoked")).revoked
    assert not (await view.session(user_id, "kept")).revoked

    await mark_session_revoked(redis, user_id, "revoked", ttl_seconds=60)

    await wait_until(
        lambda: _revoked(view, user_id, "revoked"), timeout=5, what="the revocation to reach the view"
    )
    assert not (await view.session(user_id, "kept")).revoked


async def test_an_announced_invalidation_moment_reaches_the_view(
    redis: Redis, view_redis: CountingRedis, run_view, user_id: str
) -> None:
    view = await run_view(RevocationView(view_redis))
    assert (await view.session(user_id, "s1")).valid_after is None

    await mark_tokens_invalid_before(redis, user_id, 1234.5, ttl_seconds=60)

    async def moment_known() -> bool:
        return (await view.session(user_id, "s1")).valid_after == 1234.5

    await wait_until(moment_known, timeout=5, what="the invalidation moment to reach the view")


async def test_a_cut_subscription_forgets_everything_so_a_revocation_it_missed_is_still_seen(
    redis: Redis, view_redis: CountingRedis, run_view, user_id: str
) -> None:
    view = await run_view(RevocationView(view_redis, retry_seconds=0.05))
    assert not (await view.session(user_id, "s1")).revoked
    name = view_redis.get_connection_kwargs()["client_name"]

    # Written without its announcement while the subscription is cut: only forgetting can reveal it.
    await redis.client_kill_filter(_id=await _client_id(redis, name, subscribed=True))
    revoked_key, _ = revocation_keys(user_id, "s1")
    await redis.set(revoked_key, "1", ex=60)

    await wait_until(lambda: _revoked(view, user_id, "s1"), timeout=10, what="the view to re-read Redis")
    await wait_until(holds(lambda: view.current), timeout=10, what="the view to be current again")
    await redis.delete(revoked_key)


async def test_a_view_that_has_not_heard_from_redis_within_its_staleness_bound_asks_redis(
    redis: Redis, view_redis: CountingRedis, run_view, user_id: str
) -> None:
    clock = ManualClock(now=time.monotonic())
    view = await run_view(RevocationView(view_redis, clock=clock, max_staleness=1.0))
    assert not (await view.session(user_id, "s1")).revoked
    revoked_key, _ = revocation_keys(user_id, "s1")
    await redis.set(revoked_key, "1", ex=60)  # unannounced: the remembered answer is now stale

    clock.advance(1.5)

    assert not view.current
    assert (await view.session(user_id, "s1")).revoked
    await redis.delete(revoked_key)


async def test_without_redis_the_view_fails_closed(stack, run_view, user_id: str) -> None:
    reachable = CountingRedis.from_url(stack.redis_url)
    view = await run_view(RevocationView(reachable, retry_seconds=0.05))
    await view.session(user_id, "s1")
    gone = CountingRedis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    unreachable = RevocationView(gone, retry_seconds=0.05)
    task = asyncio.create_task(unreachable.run())

    try:
        assert not unreachable.current
        with pytest.raises(TransientError, match="cannot check the session's revocation"):
            await unreachable.session(user_id, "s1")
    finally:
        unreachable.stop()
        await asyncio.wait_for(task, timeout=10)
        await gone.aclose()
        await reachable.aclose()


async def test_the_verifier_refuses_a_token_of_a_session_revoked_after_it_was_seen(
    redis: Redis, view_redis: CountingRedis, run_view, user_id: str
) -> None:
    key = SigningKey.generate()
    view = await run_view(RevocationView(view_redis))
    verifier = TokenVerifier(
        JwksSource(PublishedKeys([key]).fetch), view_redis, issuer=ISSUER, audience=AUDIENCE, revocations=view
    )
    token = key.sign(claims_for(user_id, "s1"))
    assert (await verifier.verify(token)).session_id == "s1"

    await mark_session_revoked(redis, user_id, "s1", ttl_seconds=60)

    async def refused() -> bool:
        try:
            await verifier.verify(token)
        except InvalidToken:
            return True
        return False

    await wait_until(refused, timeout=5, what="the verifier to refuse the revoked session")


async def _revoked(view: RevocationView, user_id: str, session_id: str) -> bool:
    return (await view.session(user_id, session_id)).revoked


async def _client_id(redis: Redis, name: str, *, subscribed: bool) -> int:
    for client in await redis.client_list():
        if client.get("name") == name and (int(client.get("sub", 0)) > 0) == subscribed:
            return int(client["id"])
    raise AssertionError(f"no client named {name} (subscribed: {subscribed})")
