"""E2E fixtures: the six services as separate processes on their own ports, driven from outside.

Identity signs in with Google and GitHub against a fake OAuth provider (a real HTTP server, see
tests/fakes/oauth_provider.py). The platform uses its own Redis database, so its rate-limit counters and
settings never mix with a developer's `make run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))
sys.path.insert(0, str(REPO / "tests" / "fakes"))
sys.path.insert(0, str(Path(__file__).parent))

import oauth_provider  # noqa: E402
import run_services  # noqa: E402
import stripe_api  # noqa: E402
from clients import E2E_PORT_BASE, GATEWAY_URL, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET  # noqa: E402

from funmagic_kit.testing import drop_database  # noqa: E402

E2E_REDIS_DB = 3
SERVICES_WITH_DATABASE = ("identity", "tasks", "credits", "storage", "providers")
OAUTH_CLIENTS = {
    "google": ("e2e-google-client", "e2e-google-secret"),
    "github": ("e2e-github-client", "e2e-github-secret"),
}
# High enough that the suite itself is never throttled; the throttling test tightens them on purpose.
RELAXED_RATE_LIMITS = {
    name: {"limit": 100_000, "window_seconds": 60}
    for name in ("global_api", "user_api", "task_creation", "upload", "auth_session", "auth_action")
}


FUZZ_TESTS = "test_schemathesis_finds_nothing_wrong"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)

    # The gateway's fuzz tests and the authorisation matrix run last in the session: they leave tools, tool
    # types, banners, providers, packages, chats… behind that other tests (and the browser tests' pages,
    # which show the first page of such lists) would see.
    def runs_last(item: pytest.Item) -> bool:
        matrix = Path(str(item.fspath)).name == "test_authorization_matrix.py"
        return matrix or item.name.startswith(FUZZ_TESTS)

    last = [item for item in items if runs_last(item)]
    items[:] = [item for item in items if not runs_last(item)] + last


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    needed = ["KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "POSTGRES_URL", "S3_ENDPOINT", "INTERNAL_API_TOKEN"]
    missing = [v for v in needed if not os.environ.get(v)]
    if missing:
        pytest.fail(f"the local stack is not configured ({', '.join(missing)} unset): run `make test`")
    return dict(os.environ)


@pytest.fixture(scope="session")
def oauth_fake() -> Iterator[oauth_provider.FakeOAuthProvider]:
    running = oauth_provider.start_in_thread()
    for provider, (client_id, secret) in OAUTH_CLIENTS.items():
        callback = f"{GATEWAY_URL}/api/auth/oauth/{provider}/callback"
        running.fake.register_client(provider, client_id, secret, [callback])
    try:
        yield running.fake
    finally:
        running.stop()


def _oauth_env(fake: oauth_provider.FakeOAuthProvider) -> dict[str, str]:
    env = {"OAUTH_PROVIDERS": "google,github"}
    for provider, (client_id, secret) in OAUTH_CLIENTS.items():
        prefix = f"OAUTH_{provider.upper()}_"
        endpoints = fake.endpoints(provider)
        env |= {
            prefix + "CLIENT_ID": client_id,
            prefix + "CLIENT_SECRET": secret,
            prefix + "AUTHORIZE_URL": endpoints["authorize_url"],
            prefix + "TOKEN_URL": endpoints["token_url"],
            prefix + "USERINFO_URL": endpoints["userinfo_url"],
        }
        if "emails_url" in endpoints:
            env[prefix + "EMAILS_URL"] = endpoints["emails_url"]
    return env


@pytest.fixture(scope="session")
def stripe_fake() -> Iterator[stripe_api.RunningFake]:
    # Its hosted checkout page can pay (test mode), delivering the webhook to the e2e gateway like Stripe.
    running = stripe_api.start_in_thread(
        secret_key=STRIPE_SECRET_KEY,
        webhook_url=f"{GATEWAY_URL}/api/webhooks/stripe",
        webhook_secret=STRIPE_WEBHOOK_SECRET,
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def e2e_redis_url(stack_env: dict[str, str]) -> str:
    return stack_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{E2E_REDIS_DB}"


@pytest.fixture(scope="session")
def poison_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The services' FUNMAGIC_POISON_DIR (a kit test hook): while a file named after an event id is in it,
    every consumer refuses that event as if its handler failed for good, so it goes to the dead-letter
    topic at once; deleting the file "fixes the handler"."""
    return tmp_path_factory.mktemp("poison")


def apply_e2e_redis_settings(redis_url: str) -> None:
    """The settings the e2e platform keeps in Redis (relaxed rate limits). Written at the session's start,
    and again by a test that restarted Redis: the local Redis keeps no journal, so a SIGKILL loses them."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.set("ratelimit:settings", json.dumps(RELAXED_RATE_LIMITS))
    finally:
        client.close()


@pytest.fixture(scope="session")
def e2e_redis_settings(e2e_redis_url: str):
    """Writes the e2e settings into Redis again (after a test restarted it)."""
    return lambda: apply_e2e_redis_settings(e2e_redis_url)


@pytest.fixture(scope="session")
def platform_env(
    stack_env: dict[str, str],
    oauth_fake: oauth_provider.FakeOAuthProvider,
    stripe_fake: stripe_api.RunningFake,
    e2e_redis_url: str,
    poison_dir: Path,
) -> Iterator[dict[str, str]]:
    """The e2e services' environment: fresh databases per session, so counts (super_admins…) are exact."""
    import psycopg
    import redis

    suffix = uuid.uuid4().hex[:8]
    databases = {name: f"funmagic_{name}_e2e_{suffix}" for name in SERVICES_WITH_DATABASE}
    admin_url = stack_env["POSTGRES_URL"] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for database in databases.values():
            conn.execute(f'CREATE DATABASE "{database}"')
    client = redis.Redis.from_url(e2e_redis_url)
    client.flushdb()
    client.close()
    apply_e2e_redis_settings(e2e_redis_url)
    env = {
        **stack_env,
        **_oauth_env(oauth_fake),
        **{
            f"{name.upper()}_DATABASE_URL": f"{stack_env['POSTGRES_URL']}/{db}"
            for name, db in databases.items()
        },
        "REDIS_URL": e2e_redis_url,
        "PUBLIC_APP_URL": "http://app.test",
        "CORS_ORIGINS": "http://app.test",
        # Tests act as a proxy in front of the gateway to give requests addresses of their own.
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "STRIPE_API_BASE": stripe_fake.url,
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        # Short leases and polls so the crash and provider tests take seconds, not minutes.
        "STEP_LEASE_SECONDS": "3",
        "LIMITER_LEASE_SECONDS": "10",
        "PROVIDER_POLL_INTERVAL_SECONDS": "0.1",
        # Progress coalesced on the same faster clock as the polls (a tenth of the defaults).
        "STEP_PROGRESS_INTERVAL_SECONDS": "0.05",
        # A deleted account's files go seconds after the deletion, not 72 hours (test_account_lifecycle.py).
        "DELETED_USER_ASSET_GRACE_HOURS": "0.001",
        "DELETED_USER_PURGE_INTERVAL_SECONDS": "1",
        "FUNMAGIC_POISON_DIR": str(poison_dir),
    }
    try:
        yield env
    finally:
        for database in databases.values():
            asyncio.run(drop_database(stack_env["POSTGRES_URL"], database))


class ExpectedServerErrors:
    """The 500s a test causes on purpose, so the end-of-session scan of the logs lets them pass:
    `expected_server_errors.allow("tasks", r'"path": "/v1/boom"')` allows the tasks service's log lines
    with `"status": 500` that match the pattern. No test needs one today."""

    def __init__(self) -> None:
        self._allowed: list[tuple[str, re.Pattern[str]]] = []

    def allow(self, service: str, pattern: str) -> None:
        self._allowed.append((service, re.compile(pattern)))

    def allows(self, service: str, line: str) -> bool:
        return any(s == service and p.search(line) for s, p in self._allowed)


@pytest.fixture(scope="session")
def expected_server_errors() -> ExpectedServerErrors:
    return ExpectedServerErrors()


def server_errors_in_logs(run_dir: Path, expected: ExpectedServerErrors) -> list[str]:
    """Every log line of the services that answered a 500 (a JSON access-log line with `"status": 500`)
    and that no test asked for."""
    found = []
    for log in sorted(run_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"status": 500' in line and not expected.allows(log.stem, line):
                found.append(f"{log.name}: {line}")
    return found


@pytest.fixture(scope="session")
def platform(
    platform_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    expected_server_errors: ExpectedServerErrors,
) -> Iterator[dict]:
    """All six services, started once for the e2e session and stopped with SIGTERM at its end.

    At the end, the services' logs must hold no 500 answer a test did not ask for: a failure of a
    dependency is a 503, and anything else answering 500 is a bug (the lines are in the failure)."""
    run_dir = tmp_path_factory.mktemp("services")
    services = run_services.start_all(platform_env, E2E_PORT_BASE, run_dir)
    by_name = {s.name: s for s in services}
    try:
        yield by_name
    finally:
        # By name: a test that restarts a service (after a SIGKILL) puts the new process in its place.
        run_services.stop_all(list(by_name.values()))
    found = server_errors_in_logs(run_dir, expected_server_errors)
    if found:
        pytest.fail(f"{len(found)} answer(s) of 500 in the services' logs:\n" + "\n".join(found[:50]))


@pytest.fixture
def no_server_errors_so_far(platform: dict, expected_server_errors: ExpectedServerErrors):
    """Checks now what the end of the session checks anyway: no service answered a 500 so far."""
    run_dir = next(iter(platform.values())).log_path.parent

    def check() -> None:
        found = server_errors_in_logs(run_dir, expected_server_errors)
        assert not found, f"{len(found)} answer(s) of 500 in the services' logs:\n" + "\n".join(found[:20])

    return check


@pytest.fixture(scope="session")
def identity_command(platform_env: dict[str, str]):
    """Runs `python -m funmagic_identity <args>` against the e2e platform's database and Redis."""

    def run(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = run_services.service_environment("identity", platform_env, E2E_PORT_BASE)
        return subprocess.run(
            [sys.executable, "-m", "funmagic_identity", *args],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def service_command(platform_env: dict[str, str]):
    """Runs `python -m funmagic_<service> <args>` against the e2e platform's databases and Redis."""

    def run(
        service: str, *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = run_services.service_environment(service, platform_env, E2E_PORT_BASE)
        return subprocess.run(
            [sys.executable, "-m", f"funmagic_{service}", *args],
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def seeded_tools(platform, service_command) -> None:
    """The product's tools, on the local provider (idempotent: every module may ask for it)."""
    result = service_command("tasks", "seed")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def admin_email(platform, identity_command) -> str:
    """A super_admin created once for the e2e session."""
    from clients import PASSWORD, unique_email

    email = unique_email("e2e-root")
    result = identity_command(
        "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stderr
    return email


@pytest.fixture
async def admin_token(admin_email: str) -> str:
    """A fresh access token of the session's super_admin (tokens live five minutes)."""
    from clients import browser, sign_in

    async with browser() as client:
        status, body = await sign_in(client, admin_email, mode="token")
    assert status in (200, 201), body
    return body["access_token"]
