"""Schemathesis hooks for the gateway's fuzz test (tests/e2e/test_gateway_openapi.py), loaded by its config.

A super admin's fuzzed `PUT /api/admin/settings/rate-limit` stores whatever limits it generated (one request
a day, say); every later request of the run, and of the e2e session, would then be throttled (429) instead of
reaching its operation. Right after each such call the relaxed limits the e2e platform runs with
(FUNMAGIC_FUZZ_RATE_LIMITS, read before the run) are put back through the same route, with the same
caller's token. The counters of the e2e platform's Redis (FUNMAGIC_FUZZ_REDIS_URL) are emptied first: the
run has long used up any small limit it just set, and the request putting them back must not be refused. If
it is refused all the same (a gateway's lease of a counter refuses on its own for a moment after a change),
the relaxed limits are written to the gateways' settings cache in Redis, and the PUT is tried again.

A fuzzed `POST /api/auth/change-password` sends a wrong current password, and wrong passwords count towards
the account's sign-in pause (as they must: it is a password guess) — after ten, the run could not sign its
caller in again for a fresh token. The pause's counters (identity's `signin-failures:*`) are emptied after
each such call; the pause itself is tested by tests/e2e/test_auth_security.py.

Bodies are sent with integers written as integers: JSON Schema counts `5.0` as an `integer`, but the API
refuses a fraction where it declares one (strict types, the document's description says so, and the kit's
tests check it), so a generated `5.0` is sent as `5` — any other generated value is sent as it is.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
import requests
import schemathesis

RATE_LIMIT_SETTINGS = "/api/admin/settings/rate-limit"
COUNTERS = "rl"  # the gateway's RedisRateLimiter prefix
SETTINGS_CACHE = "ratelimit:settings"  # the gateway's RateLimitSettingsStore key
CHANGE_PASSWORD = "/api/auth/change-password"
SIGN_IN_FAILURES = "signin-failures"  # identity's RedisSignInGuard prefix


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    return _integral_floats_as_integers(body)


def _integral_floats_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_integers(item) for item in value]
    return value


def _platform_redis() -> redis.Redis:
    """The e2e platform's Redis; closed when its `with` block ends."""
    return redis.Redis.from_url(os.environ["FUNMAGIC_FUZZ_REDIS_URL"])


def _delete_keys(pattern: str) -> None:
    with _platform_redis() as counters:
        keys = list(counters.scan_iter(match=pattern))
        if keys:
            counters.delete(*keys)


def _cache_settings(settings_json: str) -> None:
    with _platform_redis() as cache:
        cache.set(SETTINGS_CACHE, settings_json, ex=300)


@schemathesis.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: object) -> None:
    if case.method.upper() == "POST" and case.path == CHANGE_PASSWORD:
        _delete_keys(f"{SIGN_IN_FAILURES}:*")
        return
    if case.method.upper() != "PUT" or case.path != RATE_LIMIT_SETTINGS:
        return
    relaxed = os.environ.get("FUNMAGIC_FUZZ_RATE_LIMITS")
    if relaxed is None:  # not the super admin's run
        return
    authorization = (case.headers or {}).get("Authorization")
    if not authorization:
        return
    _delete_keys(f"{COUNTERS}:*")
    deadline = time.monotonic() + 10
    while True:
        restored = requests.put(
            os.environ["FUNMAGIC_FUZZ_GATEWAY_URL"] + RATE_LIMIT_SETTINGS,
            data=relaxed,
            headers={"Authorization": authorization, "Content-Type": "application/json"},
            timeout=30,
        )
        if restored.status_code != 429 or time.monotonic() > deadline:
            break
        # Refused at the fuzzed limit: the gateway held a lease of the counter from just before the change,
        # which refuses on its own for up to a second (`domain.rate_limits.LOCAL_REFUSAL_SECONDS`) and counts
        # each refusal towards the window — at a limit of one a day no retry would get through. The relaxed
        # limits go where every gateway reads them (the settings' Redis cache, applied within a second);
        # the PUT then gets through and stores them with identity too.
        _cache_settings(relaxed)
        time.sleep(0.1)  # polling towards the deadline, not waiting for a state
    # A token that was just refused (signed out everywhere) changed nothing, so there is nothing to undo.
    if restored.status_code not in (200, 401):
        raise AssertionError(f"relaxed rate limits not restored: {restored.status_code} {restored.text}")
