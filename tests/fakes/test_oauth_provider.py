"""Tests of the fake OAuth provider, over real HTTP, the way the identity service will talk to it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oauth_provider import (
    DEFAULT_GITHUB_IDENTITY,
    Denial,
    FakeOAuthProvider,
    GitHubEmail,
    GitHubIdentity,
    GoogleIdentity,
    Provider,
    RunningFake,
    start_in_thread,
)

REDIRECT = "http://127.0.0.1:9999/auth/callback"
CLIENTS: dict[Provider, tuple[str, str]] = {
    "google": ("g-client", "g-secret"),
    "github": ("h-client", "h-secret"),
}
ALICE = GoogleIdentity(sub="1234567890", email="alice@example.com", name="Alice Liddell")
BOB = GitHubIdentity(
    id=42,
    login="bob",
    name="Bob Builder",
    email=None,
    emails=[
        GitHubEmail("bob@old.example", primary=False, verified=True, visibility=None),
        GitHubEmail("bob@example.com", primary=True, verified=True, visibility="private"),
    ],
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOAuthProvider]:
    provider = FakeOAuthProvider()
    await provider.start()
    for name, (client_id, secret) in CLIENTS.items():
        provider.register_client(name, client_id, secret, [REDIRECT])
    yield provider
    await provider.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[RunningFake]:
    """One fake on its own thread for the module, the way a session-scoped e2e fixture would use it."""
    running = start_in_thread()
    yield running
    running.stop()


@pytest.fixture
def threaded(threaded_server: RunningFake) -> RunningFake:
    threaded_server.fake.reset()  # tests sharing the server must not see each other's queues
    return threaded_server


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def authorize(http: aiohttp.ClientSession, url: str, **params: str) -> dict[str, str]:
    """Follows the consent step and returns the query the provider sent back to the redirect_uri."""
    async with http.get(url, params=params, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {key: values[0] for key, values in parse_qs(location.query).items()}


async def google_code(
    http: aiohttp.ClientSession, fake: FakeOAuthProvider, challenge: str | None = None, method: str = "S256"
) -> str:
    params = {"client_id": "g-client", "redirect_uri": REDIRECT, "response_type": "code"}
    params |= {"scope": "openid email profile", "state": "st"}
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": method}
    return (await authorize(http, fake.endpoints("google")["authorize_url"], **params))["code"]


async def github_code(http: aiohttp.ClientSession, base_url: str, challenge: str | None = None) -> str:
    params = {
        "client_id": "h-client",
        "redirect_uri": REDIRECT,
        "scope": "read:user user:email",
        "state": "s",
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return (await authorize(http, f"{base_url}/github/login/oauth/authorize", **params))["code"]


async def google_token(
    http: aiohttp.ClientSession, fake: FakeOAuthProvider, code: str, **overrides: str
) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "authorization_code", "code": code, "client_id": "g-client"}
    form |= {"client_secret": "g-secret", "redirect_uri": REDIRECT} | overrides
    async with http.post(fake.endpoints("google")["token_url"], data=form) as resp:
        return resp.status, await resp.json()


async def github_token(
    http: aiohttp.ClientSession, base_url: str, code: str, accept: str | None = None, **overrides: str
) -> tuple[int, str, str]:
    form = {"code": code, "client_id": "h-client", "client_secret": "h-secret", "redirect_uri": REDIRECT}
    headers = {"Accept": accept} if accept else {}
    url = f"{base_url}/github/login/oauth/access_token"
    async with http.post(url, data=form | overrides, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.text()


def form_reply(text: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(text).items()}


# --- Google -------------------------------------------------------------------------------------


async def test_google_flow_with_pkce_s256(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    fake.queue_identity("google", ALICE)
    verifier, challenge = pkce_pair()
    urls = fake.endpoints("google")
    params = {"client_id": "g-client", "redirect_uri": REDIRECT, "response_type": "code", "state": "xyz"}
    params |= {"scope": "openid email profile", "nonce": "n-1", "code_challenge": challenge}
    callback = await authorize(http, urls["authorize_url"], **params, code_challenge_method="S256")
    assert callback["state"] == "xyz"

    status, token = await google_token(http, fake, callback["code"], code_verifier=verifier)
    assert status == 200, token
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3599
    assert "openid" in token["scope"].split()

    headers = {"Authorization": f"Bearer {token['access_token']}"}
    async with http.get(urls["userinfo_url"], headers=headers) as resp:
        assert resp.status == 200
        info = await resp.json()
    assert info["sub"] == ALICE.sub
    assert (info["email"], info["email_verified"]) == (ALICE.email, True)
    assert (info["given_name"], info["family_name"]) == ("Alice", "Liddell")

    async with http.get(urls["jwks_url"]) as resp:
        jwks = jwt.PyJWKSet.from_dict(await resp.json())
    kid = jwt.get_unverified_header(token["id_token"])["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        token["id_token"], key.key, algorithms=["RS256"], audience="g-client", issuer=urls["issuer"]
    )
    assert (claims["sub"], claims["email"], claims["nonce"]) == (ALICE.sub, ALICE.email, "n-1")
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token["id_token"], key.key, algorithms=["RS256"], audience="someone-else")


async def test_google_discovery_points_at_the_fake(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    urls = fake.endpoints("google")
    async with http.get(urls["discovery_url"]) as resp:
        doc = await resp.json()
    assert doc["issuer"] == f"{fake.url}/google"
    assert doc["token_endpoint"] == urls["token_url"] == f"{fake.url}/google/token"
    assert doc["jwks_uri"] == urls["jwks_url"]
    assert "S256" in doc["code_challenge_methods_supported"]


async def test_plain_pkce_method_is_accepted(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    verifier = secrets.token_urlsafe(48)
    code = await google_code(http, fake, challenge=verifier, method="plain")
    status, _ = await google_token(http, fake, code, code_verifier=verifier)
    assert status == 200


async def test_code_reuse_is_refused_and_revokes_the_first_token(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    code = await google_code(http, fake)
    status, first = await google_token(http, fake, code)
    assert status == 200
    status, second = await google_token(http, fake, code)
    assert (status, second["error"]) == (400, "invalid_grant")
    headers = {"Authorization": f"Bearer {first['access_token']}"}
    async with http.get(fake.endpoints("google")["userinfo_url"], headers=headers) as resp:
        assert resp.status == 401


@pytest.mark.parametrize("verifier", [None, "x" * 43, "too-short"])
async def test_google_refuses_a_wrong_or_missing_verifier(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession, verifier: str | None
) -> None:
    _, challenge = pkce_pair()
    code = await google_code(http, fake, challenge=challenge)
    extra = {} if verifier is None else {"code_verifier": verifier}
    status, body = await google_token(http, fake, code, **extra)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_google_wrong_client_secret_is_401(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    code = await google_code(http, fake)
    status, body = await google_token(http, fake, code, client_secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")


async def test_google_token_errors(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    code = await google_code(http, fake)
    status, body = await google_token(http, fake, code, grant_type="password")
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body = await google_token(http, fake, code, redirect_uri="http://127.0.0.1:9999/other")
    assert (status, body["error"]) == (400, "invalid_grant")
    fake.code_ttl = 0  # every new code is born expired
    status, body = await google_token(http, fake, await google_code(http, fake))
    assert (status, body["error"]) == (400, "invalid_grant")
    assert "expired" in body["error_description"]


async def test_google_accepts_client_secret_basic(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    form = {
        "grant_type": "authorization_code",
        "code": await google_code(http, fake),
        "redirect_uri": REDIRECT,
    }
    url = fake.endpoints("google")["token_url"]
    for secret, expected in (("wrong", 401), ("g-secret", 200)):
        basic = base64.b64encode(f"g-client:{secret}".encode()).decode()
        form["code"] = await google_code(http, fake)
        async with http.post(url, data=form, headers={"Authorization": f"Basic {basic}"}) as resp:
            assert resp.status == expected


async def test_userinfo_needs_a_valid_bearer_token(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    url = fake.endpoints("google")["userinfo_url"]
    for headers in ({}, {"Authorization": "Bearer nope"}):
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "invalid_request"


# --- GitHub -------------------------------------------------------------------------------------


async def test_github_flow_form_encoded_by_default(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    fake.queue_identity("github", BOB)
    verifier, challenge = pkce_pair()
    code = await github_code(http, fake.url, challenge)
    status, content_type, text = await github_token(http, fake.url, code, code_verifier=verifier)
    assert (status, content_type) == (200, "application/x-www-form-urlencoded")
    assert "scope=read%3Auser%2Cuser%3Aemail" in text
    reply = form_reply(text)
    assert reply["token_type"] == "bearer"
    assert reply["access_token"].startswith("gho_")

    urls = fake.endpoints("github")
    async with http.get(
        urls["userinfo_url"], headers={"Authorization": f"token {reply['access_token']}"}
    ) as resp:
        user = await resp.json()
    assert (user["login"], user["id"], user["email"]) == ("bob", 42, None)
    assert isinstance(user["id"], int)
    async with http.get(
        urls["emails_url"], headers={"Authorization": f"Bearer {reply['access_token']}"}
    ) as resp:
        emails = await resp.json()
    primary = [e["email"] for e in emails if e["primary"] and e["verified"]]
    assert primary == ["bob@example.com"]


async def test_github_token_is_json_when_asked(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    code = await github_code(http, fake.url)
    status, content_type, text = await github_token(http, fake.url, code, accept="application/json")
    assert (status, content_type) == (200, "application/json")
    assert '"token_type": "bearer"' in text
    assert '"scope": "read:user,user:email"' in text


async def test_github_errors_are_http_200(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    code = await github_code(http, fake.url)
    status, _, text = await github_token(http, fake.url, code, client_secret="wrong")
    assert (status, form_reply(text)["error"]) == (200, "incorrect_client_credentials")
    status, content_type, text = await github_token(http, fake.url, code, accept="application/json")
    assert (status, content_type) == (200, "application/json")  # the wrong secret did not burn the code
    status, _, text = await github_token(http, fake.url, code)
    assert (status, form_reply(text)["error"]) == (200, "bad_verification_code")


async def test_github_wrong_verifier_and_redirect(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession
) -> None:
    _, challenge = pkce_pair()
    code = await github_code(http, fake.url, challenge)
    _, _, text = await github_token(http, fake.url, code, code_verifier=pkce_pair()[0])
    assert form_reply(text)["error"] == "bad_verification_code"
    code = await github_code(http, fake.url)
    _, _, text = await github_token(http, fake.url, code, redirect_uri="http://evil.example/cb")
    assert form_reply(text)["error"] == "redirect_uri_mismatch"


async def test_github_user_rejects_a_bad_token(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    async with http.get(
        fake.endpoints("github")["userinfo_url"], headers={"Authorization": "token x"}
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["message"] == "Bad credentials"


# --- authorize errors, denial, faults -----------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "client_id", "redirect_uri"),
    [
        ("google", "g-client", "http://evil.example/cb"),
        ("google", "unknown", REDIRECT),
        ("github", "h-client", REDIRECT + "/sub"),
        ("github", "unknown", REDIRECT),
    ],
)
async def test_authorize_refuses_without_redirect(
    fake: FakeOAuthProvider,
    http: aiohttp.ClientSession,
    provider: Provider,
    client_id: str,
    redirect_uri: str,
) -> None:
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code"}
    params |= {"scope": "openid", "state": "s"}
    url = fake.endpoints(provider)["authorize_url"]
    async with http.get(url, params=params, allow_redirects=False) as resp:
        assert resp.status == 400
        assert "Location" not in resp.headers
        assert resp.content_type == "text/html"


@pytest.mark.parametrize("provider", ["google", "github"])
async def test_denial_redirects_with_access_denied(
    fake: FakeOAuthProvider, http: aiohttp.ClientSession, provider: Provider
) -> None:
    fake.queue_identity(provider, Denial())
    params = {"client_id": CLIENTS[provider][0], "redirect_uri": REDIRECT, "response_type": "code"}
    params |= {"scope": "openid", "state": "keep-me"}
    callback = await authorize(http, fake.endpoints(provider)["authorize_url"], **params)
    assert callback["error"] == "access_denied"
    assert callback["state"] == "keep-me"
    assert "code" not in callback


async def test_fail_next_429_then_success(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    code = await google_code(http, fake)
    fake.fail_next("google", "token", 429, times=2, retry_after=7)
    for _ in range(2):
        status, body = await google_token(http, fake, code)
        assert (status, body["error"]) == (429, "rate_limit_exceeded")
    assert fake.requests[-1].form["code"] == code  # the refused calls are still recorded
    status, _ = await google_token(http, fake, code)
    assert status == 200  # both failures are used up, and they did not consume the code


async def test_fail_next_on_github_api(fake: FakeOAuthProvider, http: aiohttp.ClientSession) -> None:
    fake.fail_next("github", "emails", 429, retry_after=3)
    _, _, text = await github_token(http, fake.url, await github_code(http, fake.url))
    headers = {"Authorization": f"Bearer {form_reply(text)['access_token']}"}
    url = fake.endpoints("github")["emails_url"]
    async with http.get(url, headers=headers) as resp:
        assert (resp.status, resp.headers["Retry-After"]) == (429, "3")
        assert "rate limit" in (await resp.json())["message"]
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert await resp.json() == [
            {"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": e.visibility}
            for e in DEFAULT_GITHUB_IDENTITY.emails
        ]


def test_control_methods_validate_their_input() -> None:
    fake = FakeOAuthProvider()
    with pytest.raises(ValueError, match="no fault point"):
        fake.fail_next("google", "emails", 500)
    with pytest.raises(TypeError):
        fake.queue_identity("google", BOB)
    with pytest.raises(ValueError, match="unknown provider"):
        fake.register_client("gitlab", "c", "s", [REDIRECT])  # type: ignore[arg-type]


# --- thread runner, HTTP control, CLI -----------------------------------------------------------


async def test_thread_runner_and_http_control(threaded: RunningFake, http: aiohttp.ClientSession) -> None:
    control = f"{threaded.url}/_control"
    client = {"provider": "github", "client_id": "h-client", "client_secret": "h-secret"}
    async with http.post(f"{control}/clients", json=client | {"redirect_uris": [REDIRECT]}) as resp:
        assert resp.status == 204
    identity = {"id": 7, "login": "carol", "name": "Carol", "email": "carol@example.com"}
    identity |= {"emails": [{"email": "carol@example.com", "primary": True, "verified": True}]}
    async with http.post(f"{control}/identities", json={"provider": "github", "identity": identity}) as resp:
        assert resp.status == 204
    async with http.post(f"{control}/identities", json={"provider": "github", "deny": True}) as resp:
        assert resp.status == 204
    failure = {"provider": "github", "endpoint": "token", "status": 503, "retry_after": 1}
    async with http.post(f"{control}/failures", json=failure) as resp:
        assert resp.status == 204
    async with http.post(f"{control}/failures", json=failure | {"endpoint": "userinfo"}) as resp:
        assert resp.status == 400  # GitHub has no userinfo endpoint

    code = await github_code(http, threaded.url)
    status, _, text = await github_token(http, threaded.url, code)
    assert (status, form_reply(text)["error"]) == (503, "temporarily_unavailable")
    status, _, text = await github_token(http, threaded.url, code)
    token = form_reply(text)["access_token"]
    async with http.get(
        f"{threaded.url}/github/api/user", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert (await resp.json())["login"] == "carol"
    denied = await authorize(http, f"{threaded.url}/github/login/oauth/authorize", client_id="h-client")
    assert denied["error"] == "access_denied"

    async with http.get(f"{control}/requests") as resp:
        recorded = await resp.json()
    assert [r["path"] for r in recorded][-2:] == ["/github/api/user", "/github/login/oauth/authorize"]
    assert any(r["form"].get("client_secret") == "h-secret" for r in recorded)
    async with http.delete(f"{control}/requests") as resp:
        assert resp.status == 204
    assert threaded.fake.requests == []


async def test_thread_runner_handle_is_safe_from_another_thread(
    threaded: RunningFake, http: aiohttp.ClientSession
) -> None:
    threaded.fake.register_client("github", "h-client", "h-secret", [REDIRECT])
    threaded.fake.queue_identity("github", BOB)  # called from this test's thread, not the server's
    _, _, text = await github_token(http, threaded.url, await github_code(http, threaded.url))
    headers = {"Authorization": f"token {form_reply(text)['access_token']}"}
    async with http.get(f"{threaded.url}/github/api/user", headers=headers) as resp:
        assert (await resp.json())["login"] == "bob"


async def test_thread_runner_stop_closes_the_port(http: aiohttp.ClientSession) -> None:
    running = start_in_thread()
    url = running.url
    async with http.get(f"{url}/google/oauth2/v3/certs") as resp:
        assert resp.status == 200
    running.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{url}/google/oauth2/v3/certs"):
            pass


async def test_standalone_cli_serves_with_the_default_client(http: aiohttp.ClientSession) -> None:
    script = Path(__file__).parent / "oauth_provider.py"
    args = ["--port", "0", "--client-id", "cli", "--client-secret", "s", "--redirect-uri", REDIRECT]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        # The fake prints its URL first once it listens, so reading that line is the readiness signal.
        first = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().strip()
        assert first.startswith("FAKE_OAUTH_URL=")
        url = first.removeprefix("FAKE_OAUTH_URL=")
        callback = await authorize(http, f"{url}/github/login/oauth/authorize", client_id="cli", state="z")
        assert callback["state"] == "z"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
