"""GenericOAuthClient against a real fake Google and GitHub server; provider configuration from the env."""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_identity.adapters.oauth import GenericOAuthClient
from funmagic_identity.config import PRESETS, oauth_providers_from_env
from funmagic_identity.domain.errors import InvalidInput, OAuthFailed
from funmagic_kit.errors import ConfigError, TransientError

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "fakes"))
from oauth_provider import (
    FakeOAuthProvider,
    GitHubEmail,
    GitHubIdentity,
    GoogleIdentity,
)

Provider = Literal["google", "github"]
PUBLIC_API_URL = "https://api.funmagic.test/"
CLIENTS: dict[Provider, tuple[str, str]] = {
    "google": ("google-client", "google-secret"),
    "github": ("github-client", "github-secret"),
}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def callback(provider: str) -> str:
    return f"{PUBLIC_API_URL.rstrip('/')}/api/auth/oauth/{provider}/callback"


def env_for(fake: FakeOAuthProvider, **overrides: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for provider, (client_id, secret) in CLIENTS.items():
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
    return env | overrides


@pytest.fixture
async def fake() -> AsyncIterator[FakeOAuthProvider]:
    provider = FakeOAuthProvider()
    await provider.start(port=0)
    for name, (client_id, secret) in CLIENTS.items():
        provider.register_client(name, client_id, secret, [callback(name)])
    yield provider
    await provider.stop()


@pytest.fixture
def client(fake: FakeOAuthProvider) -> GenericOAuthClient:
    return GenericOAuthClient(oauth_providers_from_env("google,github", PUBLIC_API_URL, env_for(fake)))


async def authorize(client: GenericOAuthClient, provider: Provider, verifier: str) -> str:
    """What the browser does: follow the authorization URL and read the code off the redirect."""
    state = secrets.token_urlsafe(16)
    url = client.authorization_url(provider, state=state, code_challenge=s256(verifier))
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert location.startswith(callback(provider) + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def new_verifier() -> str:
    return secrets.token_urlsafe(64)[:86]


# --- Google -----------------------------------------------------------------------------------------


async def test_the_authorization_url_asks_for_a_code_with_pkce_s256(client: GenericOAuthClient) -> None:
    url = client.authorization_url("google", state="the-state", code_challenge="the-challenge")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "client_id": "google-client",
        "redirect_uri": callback("google"),
        "response_type": "code",
        "scope": "openid email profile",
        "state": "the-state",
        "code_challenge": "the-challenge",
        "code_challenge_method": "S256",
    }


async def test_a_google_sign_in_yields_the_verified_profile(
    fake: FakeOAuthProvider, client: GenericOAuthClient
) -> None:
    fake.queue_identity(
        "google",
        GoogleIdentity(
            sub="1122334455",
            email="Gina@Example.com",
            name="Gina Google",
            picture="https://example.com/g.png",
        ),
    )
    verifier = new_verifier()
    code = await authorize(client, "google", verifier)

    profile = await client.fetch_profile("google", code=code, code_verifier=verifier)

    assert (profile.provider, profile.account_id, profile.email, profile.email_verified) == (
        "google",
        "1122334455",
        "Gina@Example.com",
        True,
    )
    assert (profile.name, profile.image) == ("Gina Google", "https://example.com/g.png")
    assert profile.access_token.startswith("ya29.")
    (token_request,) = [r for r in fake.requests if r.path.endswith("/token")]
    assert token_request.form["code_verifier"] == verifier
    assert token_request.form["redirect_uri"] == callback("google")


async def test_an_unverified_google_email_is_reported_unverified(
    fake: FakeOAuthProvider, client: GenericOAuthClient
) -> None:
    fake.queue_identity("google", GoogleIdentity(sub="1", email="gina@example.com", email_verified=False))
    verifier = new_verifier()
    code = await authorize(client, "google", verifier)

    profile = await client.fetch_profile("google", code=code, code_verifier=verifier)

    assert (profile.email, profile.email_verified) == ("gina@example.com", False)


async def test_a_code_redeemed_with_the_wrong_verifier_is_refused(client: GenericOAuthClient) -> None:
    code = await authorize(client, "google", new_verifier())
    with pytest.raises(OAuthFailed, match="refused the sign-in"):
        await client.fetch_profile("google", code=code, code_verifier=new_verifier())


async def test_a_token_request_with_the_wrong_client_secret_is_refused(fake: FakeOAuthProvider) -> None:
    env = env_for(fake, OAUTH_GOOGLE_CLIENT_SECRET="not-the-secret")
    client = GenericOAuthClient(oauth_providers_from_env("google", PUBLIC_API_URL, env))
    verifier = new_verifier()
    code = await authorize(client, "google", verifier)

    with pytest.raises(OAuthFailed, match="invalid_client"):
        await client.fetch_profile("google", code=code, code_verifier=verifier)


# --- GitHub -----------------------------------------------------------------------------------------


async def test_a_github_sign_in_without_a_public_email_uses_the_primary_verified_address(
    fake: FakeOAuthProvider, client: GenericOAuthClient
) -> None:
    fake.queue_identity(
        "github",
        GitHubIdentity(
            id=4242,
            login="octo",
            name=None,
            email=None,
            emails=[
                GitHubEmail("old@example.com", primary=False, verified=True),
                GitHubEmail("unproven@example.com", primary=False, verified=False),
                GitHubEmail("octo@example.com", primary=True, verified=True),
            ],
        ),
    )
    verifier = new_verifier()
    code = await authorize(client, "github", verifier)

    profile = await client.fetch_profile("github", code=code, code_verifier=verifier)

    assert (profile.provider, profile.account_id) == ("github", "4242")
    assert (profile.email, profile.email_verified) == ("octo@example.com", True)
    assert profile.name == "octo"  # no display name: the login
    assert profile.image == "https://avatars.githubusercontent.com/u/4242?v=4"
    assert profile.access_token.startswith("gho_")
    assert profile.refresh_token is None


async def test_a_github_account_without_a_verified_address_is_reported_unverified(
    fake: FakeOAuthProvider, client: GenericOAuthClient
) -> None:
    fake.queue_identity(
        "github",
        GitHubIdentity(
            id=7,
            login="newbie",
            name="New Bie",
            email="public@example.com",
            emails=[GitHubEmail("newbie@example.com", primary=True, verified=False)],
        ),
    )
    verifier = new_verifier()
    code = await authorize(client, "github", verifier)

    profile = await client.fetch_profile("github", code=code, code_verifier=verifier)

    assert (profile.email, profile.email_verified, profile.name) == ("newbie@example.com", False, "New Bie")


async def test_a_github_code_used_twice_is_refused_although_github_answers_200(
    client: GenericOAuthClient,
) -> None:
    verifier = new_verifier()
    code = await authorize(client, "github", verifier)
    await client.fetch_profile("github", code=code, code_verifier=verifier)

    with pytest.raises(OAuthFailed, match="bad_verification_code"):
        await client.fetch_profile("github", code=code, code_verifier=verifier)


# --- provider trouble -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "endpoint", "status"),
    [
        ("google", "token", 429),
        ("google", "token", 500),
        ("google", "userinfo", 503),
        ("github", "token", 429),
        ("github", "token", 500),
        ("github", "user", 502),
        ("github", "emails", 500),
    ],
)
async def test_a_rate_limited_or_failing_provider_is_a_transient_error(
    fake: FakeOAuthProvider, client: GenericOAuthClient, provider: Provider, endpoint: str, status: int
) -> None:
    verifier = new_verifier()
    code = await authorize(client, provider, verifier)
    fake.fail_next(provider, endpoint, status)  # type: ignore[arg-type]

    with pytest.raises(TransientError, match=str(status)):
        await client.fetch_profile(provider, code=code, code_verifier=verifier)


async def test_a_provider_refusing_the_profile_is_an_oauth_failure(
    fake: FakeOAuthProvider, client: GenericOAuthClient
) -> None:
    verifier = new_verifier()
    code = await authorize(client, "github", verifier)
    fake.fail_next("github", "emails", 403)

    with pytest.raises(OAuthFailed, match="refused to share the emails"):
        await client.fetch_profile("github", code=code, code_verifier=verifier)


async def test_an_unreachable_token_endpoint_is_a_transient_error(fake: FakeOAuthProvider) -> None:
    gone = FakeOAuthProvider()
    await gone.start(port=0)
    dead_url = gone.endpoints("google")["token_url"]
    await gone.stop()
    env = env_for(fake, OAUTH_GOOGLE_TOKEN_URL=dead_url)
    client = GenericOAuthClient(oauth_providers_from_env("google", PUBLIC_API_URL, env), timeout_seconds=5)

    with pytest.raises(TransientError, match="unreachable"):
        await client.fetch_profile("google", code="any", code_verifier=new_verifier())


async def test_a_profile_that_is_not_json_is_invalid_input(fake: FakeOAuthProvider) -> None:
    async def html_page(request: web.Request) -> web.Response:
        return web.Response(text="<html>a login wall</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/userinfo", html_page)
    async with TestServer(app) as html:
        env = env_for(fake, OAUTH_GOOGLE_USERINFO_URL=str(html.make_url("/userinfo")))
        client = GenericOAuthClient(oauth_providers_from_env("google", PUBLIC_API_URL, env))
        verifier = new_verifier()
        code = await authorize(client, "google", verifier)

        with pytest.raises(InvalidInput, match="google returned a userinfo that is not JSON") as caught:
            await client.fetch_profile("google", code=code, code_verifier=verifier)

    assert caught.value.code == "invalid_input"


# --- oauth_providers_from_env -----------------------------------------------------------------------


def test_no_provider_names_means_no_providers() -> None:
    assert oauth_providers_from_env(" , ", PUBLIC_API_URL, {}) == {}


def test_google_and_github_only_need_a_client_id_and_secret() -> None:
    env = {
        "OAUTH_GOOGLE_CLIENT_ID": "gid",
        "OAUTH_GOOGLE_CLIENT_SECRET": "gsecret",
        "OAUTH_GITHUB_CLIENT_ID": "hid",
        "OAUTH_GITHUB_CLIENT_SECRET": "hsecret",
    }

    providers = oauth_providers_from_env(" Google , GITHUB ", PUBLIC_API_URL, env)

    assert sorted(providers) == ["github", "google"]
    google, github = providers["google"], providers["github"]
    assert (google.authorize_url, google.token_url, google.userinfo_url, google.scopes) == (
        PRESETS["google"]["authorize_url"],
        PRESETS["google"]["token_url"],
        PRESETS["google"]["userinfo_url"],
        "openid email profile",
    )
    assert google.emails_url is None
    assert google.id_claim == "sub"
    assert google.redirect_uri == "https://api.funmagic.test/api/auth/oauth/google/callback"
    assert (google.client_id, google.client_secret.get_secret_value()) == ("gid", "gsecret")
    assert github.emails_url == PRESETS["github"]["emails_url"]
    assert (github.id_claim, github.email_verified_claim, github.name_claims) == (
        "id",
        None,
        ("name", "login"),
    )
    assert github.redirect_uri == "https://api.funmagic.test/api/auth/oauth/github/callback"
    assert "hsecret" not in repr(github)


def test_settings_override_the_presets() -> None:
    env = {
        "OAUTH_GITHUB_CLIENT_ID": "hid",
        "OAUTH_GITHUB_CLIENT_SECRET": "hsecret",
        "OAUTH_GITHUB_TOKEN_URL": "https://github.example.com/login/oauth/access_token",
        "OAUTH_GITHUB_SCOPES": "read:user",
        "OAUTH_GITHUB_NAME_CLAIMS": "login, name",
        "OAUTH_GITHUB_EMAILS_URL": "",  # empty: turned off
    }

    github = oauth_providers_from_env("github", PUBLIC_API_URL, env)["github"]

    assert github.token_url == "https://github.example.com/login/oauth/access_token"
    assert github.authorize_url == PRESETS["github"]["authorize_url"]
    assert (github.scopes, github.name_claims, github.emails_url) == ("read:user", ("login", "name"), None)


def test_any_other_provider_is_configured_by_setting_all_its_urls() -> None:
    env = {
        "OAUTH_ACME_CLIENT_ID": "aid",
        "OAUTH_ACME_CLIENT_SECRET": "asecret",
        "OAUTH_ACME_AUTHORIZE_URL": "https://login.acme.example/authorize",
        "OAUTH_ACME_TOKEN_URL": "https://login.acme.example/token",
        "OAUTH_ACME_USERINFO_URL": "https://login.acme.example/userinfo",
        "OAUTH_ACME_SCOPES": "openid email",
        "OAUTH_ACME_ID_CLAIM": "uid",
        "OAUTH_ACME_PICTURE_CLAIM": "",
    }

    acme = oauth_providers_from_env("acme", PUBLIC_API_URL, env)["acme"]

    assert (acme.name, acme.authorize_url, acme.id_claim, acme.picture_claim) == (
        "acme",
        "https://login.acme.example/authorize",
        "uid",
        None,
    )
    assert acme.redirect_uri == "https://api.funmagic.test/api/auth/oauth/acme/callback"
    assert GenericOAuthClient({"acme": acme}).provider_names() == ["acme"]


def test_another_provider_without_its_urls_is_a_config_error_naming_each_missing_variable() -> None:
    env = {"OAUTH_ACME_CLIENT_ID": "aid", "OAUTH_ACME_CLIENT_SECRET": "asecret"}

    with pytest.raises(ConfigError) as caught:
        oauth_providers_from_env("acme", PUBLIC_API_URL, env)

    message = str(caught.value)
    for variable in (
        "OAUTH_ACME_AUTHORIZE_URL",
        "OAUTH_ACME_TOKEN_URL",
        "OAUTH_ACME_USERINFO_URL",
        "OAUTH_ACME_SCOPES",
    ):
        assert variable in message
    assert "OAUTH_ACME_CLIENT_ID" not in message


def test_a_preset_provider_without_a_client_id_is_a_config_error_naming_it() -> None:
    env = {"OAUTH_GOOGLE_CLIENT_ID": "", "OAUTH_GOOGLE_CLIENT_SECRET": "do-not-print-me"}

    with pytest.raises(ConfigError, match="OAUTH_GOOGLE_CLIENT_ID") as caught:
        oauth_providers_from_env("google", PUBLIC_API_URL, env)

    assert "do-not-print-me" not in str(caught.value)


def test_a_missing_client_secret_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="OAUTH_GITHUB_CLIENT_SECRET"):
        oauth_providers_from_env("github", PUBLIC_API_URL, {"OAUTH_GITHUB_CLIENT_ID": "hid"})
