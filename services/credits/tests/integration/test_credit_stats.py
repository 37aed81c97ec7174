"""The admin overview's figures of credits (`GET /v1/admin/stats/credits`) on real Postgres: ledger
commands are applied through the ledger use case at pinned times (purchases in two currencies, sign-up
bonuses, tasks held then charged in part, an admin's adjustment), then the period's figures are summed in
SQL — exact numbers, what lies outside the window left out, an empty window all zeros, and who may ask."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from credits_test_support import credits_service
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.api import credits as api
from funmagic_contracts.api.coverage import assert_reply_covers
from funmagic_credits.bootstrap import Credits
from funmagic_credits.domain.ledger import (
    AdjustCredits,
    GrantCredits,
    RecordPurchase,
    ReserveCredits,
    SettleReservation,
)
from funmagic_kit.clock import ManualClock

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30, seconds=10)  # the 1 h period: 07:31 to 08:31
STATS = "/v1/admin/stats/credits"
AS_ADMIN = {"X-Test-User": str(uuid.uuid4()), "X-Test-Role": "admin"}
ZERO = {
    "credits_sold": 0, "purchases": 0, "revenue": [], "credits_spent": 0, "credits_refunded": 0,
    "bonus_granted": 0, "credits_adjusted": 0,
}  # fmt: skip


def at(hours: int, minutes: int) -> datetime:
    return datetime(2026, 6, 1, hours, minutes, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def credits(pool: AsyncConnectionPool, clock: ManualClock) -> Credits:
    return credits_service(pool, clock=clock)


@pytest.fixture
async def http(credits: Credits, serve) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve(credits.parts.routes) as session:
        yield session


async def call(http: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    async with http.get(path, headers=headers) as response:
        return response.status, await response.json()


async def stats(http: aiohttp.ClientSession, query: str = "") -> dict:
    status, body = await call(http, STATS + query, AS_ADMIN)
    assert status == 200, body
    assert_reply_covers(api.CreditStats, body)  # the gateway's reply model keeps every member
    return body


def figures(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("window", "since", "until")}


def purchase(user_id: str, amount: int, price_minor: int, currency: str) -> RecordPurchase:
    return RecordPurchase(user_id, amount, str(uuid.uuid4()), f"cs_{uuid.uuid4().hex}", price_minor, currency)


@pytest.fixture
async def history(credits: Credits, clock: ManualClock) -> None:
    """(times UTC; the 1 h period at NOW is 07:31–08:31)

    07:20  A: sign-up bonus 50 (before the period); B buys 200 for 9.99 EUR
    08:00  B: sign-up bonus 50; A buys 100 for 4.99 USD
    08:05  B buys 300 (a package with bonus credits) for 12.99 EUR; A buys 100 for 4.99 USD
    08:10  A: task t1 holds 30, then is charged 20 (10 come back); task t2 holds 15, fails (15 come back)
    08:20  an admin takes 25 from B, gives 5 to A
    08:40  B buys 100 for 4.99 EUR (after the 1 h period, inside the 24 h one)
    """
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    t1, t2 = str(uuid.uuid4()), str(uuid.uuid4())
    admin = str(uuid.uuid4())
    steps: list[tuple[datetime, object]] = [
        (at(7, 20), GrantCredits(a, 50, "signup_bonus", f"signup:{a}:early")),
        (at(7, 20), purchase(b, 200, 999, "EUR")),
        (at(8, 0), GrantCredits(b, 50, "signup_bonus", f"signup:{b}")),
        (at(8, 0), purchase(a, 100, 499, "USD")),
        (at(8, 5), purchase(b, 300, 1299, "EUR")),
        (at(8, 5), purchase(a, 100, 499, "USD")),
        (at(8, 10), ReserveCredits(a, t1, 30)),
        (at(8, 10), SettleReservation(a, t1, 20, "completed")),
        (at(8, 10), ReserveCredits(a, t2, 15)),
        (at(8, 10), SettleReservation(a, t2, 0, "failed")),
        (at(8, 20), AdjustCredits(b, -25, admin, "chargeback", str(uuid.uuid4()))),
        (at(8, 20), AdjustCredits(a, 5, admin, "goodwill", str(uuid.uuid4()))),
        (at(8, 40), purchase(b, 100, 499, "EUR")),
    ]
    for when, command in steps:
        clock.set(when)
        assert await credits.ledger.apply(command), command  # type: ignore[arg-type]
    clock.set(NOW)


async def test_the_last_hour_sums_exactly_what_happened_in_it(http, history) -> None:
    body = await stats(http, "?window=1h")

    assert body["window"] == "1h"
    assert (datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])) == (
        at(7, 31),
        at(8, 31),
    )
    assert figures(body) == {
        "credits_sold": 500,  # 100 + 300 + 100 (not 07:20's nor 08:40's)
        "purchases": 3,
        "revenue": [
            {"currency": "EUR", "amount_minor": 1299, "purchases": 1},
            {"currency": "USD", "amount_minor": 998, "purchases": 2},
        ],
        "credits_spent": 20,  # what t1 was charged; a hold is no spend
        "credits_refunded": 25,  # t1's unused 10 and t2's 15, given back
        "bonus_granted": 50,  # B's (A's was at 07:20)
        "credits_adjusted": -20,
    }


async def test_a_day_takes_in_the_whole_history(http, history) -> None:
    body = await stats(http)  # the default window

    assert body["window"] == "24h"
    assert datetime.fromisoformat(body["until"]) == at(8, 45)
    assert (body["credits_sold"], body["purchases"], body["bonus_granted"]) == (800, 5, 100)
    assert body["revenue"] == [
        {"currency": "EUR", "amount_minor": 999 + 1299 + 499, "purchases": 3},
        {"currency": "USD", "amount_minor": 998, "purchases": 2},
    ]
    assert (body["credits_spent"], body["credits_refunded"], body["credits_adjusted"]) == (20, 25, -20)


async def test_a_window_without_activity_is_all_zeros(http, clock, history) -> None:
    clock.set(NOW + timedelta(days=45))

    assert figures(await stats(http, "?window=30d")) == ZERO
    assert figures(await stats(http, "?window=7d")) == ZERO


async def test_a_fresh_ledger_has_figures_too(http) -> None:
    assert figures(await stats(http, "?window=1h")) == ZERO


async def test_only_admins_may_ask_and_only_for_a_known_window(http) -> None:
    asked = {}
    for who, headers in {
        "anonymous": {},
        "user": {"X-Test-User": str(uuid.uuid4())},
        "admin": AS_ADMIN,
        "super_admin": {"X-Test-User": str(uuid.uuid4()), "X-Test-Role": "super_admin"},
    }.items():
        asked[who], _ = await call(http, STATS, headers)

    assert asked == {"anonymous": 401, "user": 403, "admin": 200, "super_admin": 200}
    for bad in ("2h", "30D", "", "week"):
        status, problem = await call(http, f"{STATS}?window={bad}", AS_ADMIN)
        assert status == 422, (bad, problem)
