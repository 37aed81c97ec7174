"""Signing in with Google and GitHub through the gateway, against the fake provider (a real HTTP server)."""

from __future__ import annotations

import random

import aiohttp
import pytest
from clients import GATEWAY_URL, bearer, browser, call, cookie, sign_in, sign_up, unique_email
from oauth_provider import Denial, GitHubEmail, GitHubIdentity, GoogleIdentity


async def _follow_provider(client: aiohttp.ClientSession, location: str) -> str:
    """What the browser does at the provider: load the consent page, which redirects back to us."""
    async with (
        aiohttp.ClientSession() as provider_browser,
        provider_browser.get(location, allow_redirects=False) as response,
    ):
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def oauth_sign_in(
    client: aiohttp.ClientSession, provider: str, *, redirect_to: str = "/tools", link: bool = False
) -> tuple[int, dict | None, str | None]:
    """start → provider → callback, like a browser; returns the callback's status, problem, Location."""
    status, body, response = await call(
        client,
        "GET",
        f"/api/auth/oauth/{provider}/start",
        params={"redirect_to": redirect_to, "link": str(link).lower()},
    )
    assert status == 302, body
    callback = await _follow_provider(client, response.headers["Location"])
    assert callback.startswith(f"{GATEWAY_URL}/api/auth/oauth/{provider}/callback")
    status, body, response = await call(client, "GET", callback.removeprefix(GATEWAY_URL))
    return status, body if status != 302 else None, response.headers.get("Location")


async def _session(client: aiohttp.ClientSession) -> dict:
    status, body, _ = await call(client, "GET", "/api/auth/session")
    assert status == 200, body
    return body


async def test_a_new_google_user_is_created_signed_in_and_sent_back_to_the_app(platform, oauth_fake) -> None:
    email = unique_email("google")
    oauth_fake.queue_identity("google", GoogleIdentity(sub=f"g-{email}", email=email, name="Grace Hopper"))
    async with browser() as client:
        status, problem, location = await oauth_sign_in(client, "google", redirect_to="/tools/figme")

        assert status == 302, problem
        assert location == "http://app.test/tools/figme"
        assert cookie(client, "fm_oauth_state") is None, "the state cookie is single use"
        session = await _session(client)
        assert session["user"]["email"] == email
        assert session["user"]["name"] == "Grace Hopper"
        assert session["user"]["email_verified"] is True

    authorize = next(r for r in oauth_fake.requests if r.path.endswith("/o/oauth2/v2/auth"))
    assert authorize.query["code_challenge_method"] == "S256", "PKCE is always used"


async def test_a_returning_google_user_gets_the_same_account(platform, oauth_fake) -> None:
    email = unique_email("returning")
    identity = GoogleIdentity(sub=f"g-{email}", email=email)
    user_ids = []
    for _ in range(2):
        oauth_fake.queue_identity("google", identity)
        async with browser() as client:
            status, problem, _ = await oauth_sign_in(client, "google")
            assert status == 302, problem
            user_ids.append((await _session(client))["user"]["id"])
    assert user_ids[0] == user_ids[1]


async def test_a_github_user_without_a_public_email_signs_in_with_the_primary_verified_one(
    platform, oauth_fake
) -> None:
    email = unique_email("octo")
    oauth_fake.queue_identity(
        "github",
        GitHubIdentity(
            id=random.randint(10**6, 10**9),
            login="octocat",
            name=None,
            email=None,
            emails=[
                GitHubEmail(unique_email("old"), primary=False, verified=True),
                GitHubEmail(email, primary=True, verified=True),
            ],
        ),
    )
    async with browser() as client:
        status, problem, _ = await oauth_sign_in(client, "github")
        assert status == 302, problem
        session = await _session(client)
        assert session["user"]["email"] == email
        assert session["user"]["name"] == "octocat"


async def test_a_signed_in_user_links_github_and_can_then_sign_in_with_it(platform, oauth_fake) -> None:
    email = unique_email("linker")
    github_id = random.randint(10**6, 10**9)
    other_email = unique_email("different")  # linking does not need matching emails: the user is signed in
    identity = GitHubIdentity(id=github_id, login="linker", emails=[GitHubEmail(other_email)])
    async with browser() as client:
        account = await sign_up(client, email)
        oauth_fake.queue_identity("github", identity)
        status, problem, _ = await oauth_sign_in(client, "github", link=True)
        assert status == 302, problem
        assert (await _session(client))["user"]["id"] == account["user"]["id"]

    oauth_fake.queue_identity("github", identity)
    async with browser() as client:
        status, problem, _ = await oauth_sign_in(client, "github")
        assert status == 302, problem
        assert (await _session(client))["user"]["id"] == account["user"]["id"]


async def test_linking_needs_a_signed_in_user(platform) -> None:
    async with browser() as client:
        status, problem, _ = await call(
            client, "GET", "/api/auth/oauth/github/start", params={"link": "true"}
        )
        assert status == 401, problem


async def test_a_verified_provider_email_links_to_the_existing_account_and_voids_an_unproven_password(
    platform, oauth_fake
) -> None:
    email = unique_email("squatted")
    async with browser() as squatter:
        squatted = await sign_up(squatter, email, mode="token")  # never verified: the address is not theirs

    oauth_fake.queue_identity("google", GoogleIdentity(sub=f"g-{email}", email=email, email_verified=True))
    async with browser() as owner:
        status, problem, _ = await oauth_sign_in(owner, "google")
        assert status == 302, problem
        session = await _session(owner)
        assert session["user"]["id"] == squatted["user"]["id"]
        assert session["user"]["email_verified"] is True

    async with browser() as squatter:
        assert (await sign_in(squatter, email, mode="token"))[0] == 401, "the unproven password is gone"
        status, _, _ = await call(
            squatter, "GET", "/api/auth/session", headers=bearer(squatted["access_token"])
        )
        assert status == 401, "and so are its sessions"


async def test_an_unverified_provider_email_never_links_to_an_existing_account(platform, oauth_fake) -> None:
    email = unique_email("victim")
    async with browser() as client:
        await sign_up(client, email, mode="token")
    oauth_fake.queue_identity("google", GoogleIdentity(sub=f"g-{email}", email=email, email_verified=False))
    async with browser() as attacker:
        status, problem, _ = await oauth_sign_in(attacker, "google")
        assert status == 400
        assert problem["code"] == "oauth_failed"
        assert cookie(attacker, "fm_access") is None


async def test_a_callback_with_a_foreign_state_is_refused(platform, oauth_fake) -> None:
    oauth_fake.queue_identity("google", GoogleIdentity(sub="g-csrf", email=unique_email("csrf")))
    async with browser() as victim, browser() as attacker:
        # The attacker starts a flow and lures the victim's browser to the callback with the attacker's code.
        _, _, response = await call(attacker, "GET", "/api/auth/oauth/google/start")
        callback = await _follow_provider(attacker, response.headers["Location"])
        status, problem, _ = await call(victim, "GET", callback.removeprefix(GATEWAY_URL))
        assert status == 400
        assert problem["code"] == "bad_state"
        assert cookie(victim, "fm_access") is None

        # A state that matches the cookie but was never issued by identity is refused as well.
        _, _, response = await call(victim, "GET", "/api/auth/oauth/google/start")
        victim.cookie_jar.update_cookies({"fm_oauth_state": "forged-state-value-123"})
        status, problem, _ = await call(
            victim,
            "GET",
            "/api/auth/oauth/google/callback",
            params={"code": "whatever", "state": "forged-state-value-123"},
        )
        assert status == 400, problem


@pytest.mark.parametrize("target", ["https://evil.test/steal", "//evil.test/x", "/\\evil.test"])
async def test_the_app_redirect_never_leaves_the_app(platform, oauth_fake, target: str) -> None:
    oauth_fake.queue_identity("google", GoogleIdentity(sub=f"g-{target}", email=unique_email("redirect")))
    async with browser() as client:
        status, problem, location = await oauth_sign_in(client, "google", redirect_to=target)
        assert status == 302, problem
        assert location == "http://app.test/"


async def test_a_denied_consent_signs_nobody_in(platform, oauth_fake) -> None:
    oauth_fake.queue_identity("github", Denial())
    async with browser() as client:
        status, problem, _ = await oauth_sign_in(client, "github")
        assert status == 400
        assert problem["code"] == "oauth_denied"
        assert cookie(client, "fm_access") is None


async def test_a_provider_rate_limit_is_reported_as_unavailable_and_retrying_works(
    platform, oauth_fake
) -> None:
    email = unique_email("throttled")
    oauth_fake.fail_next("google", "token", 429, retry_after=1)
    oauth_fake.queue_identity("google", GoogleIdentity(sub=f"g-{email}", email=email))
    async with browser() as client:
        status, problem, _ = await oauth_sign_in(client, "google")
        assert status == 503, problem
        assert cookie(client, "fm_access") is None

    oauth_fake.queue_identity("google", GoogleIdentity(sub=f"g-{email}", email=email))
    async with browser() as client:
        status, problem, _ = await oauth_sign_in(client, "google")
        assert status == 302, problem


async def test_unknown_providers_are_not_found(platform) -> None:
    async with browser() as client:
        status, problem, _ = await call(client, "GET", "/api/auth/oauth/myspace/start")
        assert status == 404, problem
        status, providers, _ = await call(client, "GET", "/api/auth/oauth/providers")
        assert providers == {"providers": ["github", "google"]}
