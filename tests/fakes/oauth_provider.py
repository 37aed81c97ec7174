"""A fake Google (OpenID Connect) and GitHub (OAuth App) authorization server for identity-service tests.

It is a real aiohttp server that follows /work/shared/PROVIDERS.md section 5. Both providers share one
server: Google lives under /google and GitHub under /github, with the real paths below each prefix, so a
client is pointed at the fake by swapping only its base URL. Tests drive it in-process through
FakeOAuthProvider (or start_in_thread for sync fixtures) and out-of-process through /_control.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import secrets
import signal
import string
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from functools import partial
from html import escape
from http import HTTPStatus
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlencode, urlsplit

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

Provider = Literal["google", "github"]
Endpoint = Literal["authorize", "token", "userinfo", "user", "emails"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)

# The real paths, each under its provider's prefix.
PATHS: dict[Provider, dict[str, str]] = {
    "google": {
        "authorize": "/google/o/oauth2/v2/auth",
        "token": "/google/token",
        "userinfo": "/google/v1/userinfo",
        "jwks": "/google/oauth2/v3/certs",
        "discovery": "/google/.well-known/openid-configuration",
    },
    "github": {
        "authorize": "/github/login/oauth/authorize",
        "token": "/github/login/oauth/access_token",
        "user": "/github/api/user",
        "emails": "/github/api/user/emails",
    },
}
# Everything but the static key and discovery documents can be made to fail.
FAULT_ENDPOINTS = {p: tuple(e for e in PATHS[p] if e not in ("jwks", "discovery")) for p in PROVIDERS}
_FAULT_POINTS = {PATHS[p][e]: (p, e) for p in PROVIDERS for e in FAULT_ENDPOINTS[p]}

CODE_TTL_SECONDS = 600.0
GOOGLE_TOKEN_TTL = 3599
ID_TOKEN_TTL = 3600
_VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
_GITHUB_ERROR_DOCS = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#"
)
# Google echoes the short scopes back in their long form.
_GOOGLE_SCOPE_NAMES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
_OAUTH_ERRORS = {400: "invalid_request", 401: "invalid_client", 429: "rate_limit_exceeded"}
_OAUTH_ERRORS |= {403: "access_denied", 503: "temporarily_unavailable"}
_PHRASES = {s.value: s.phrase for s in HTTPStatus}


# --- identities ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoogleIdentity:
    sub: str
    email: str
    email_verified: bool = True
    name: str = "Test User"
    picture: str = "https://example.com/avatars/test-user.png"
    locale: str = "en"

    def claims(self) -> dict[str, Any]:
        given, _, family = self.name.partition(" ")
        return {**asdict(self), "given_name": given, "family_name": family}


@dataclass(frozen=True)
class GitHubEmail:
    email: str
    primary: bool = True
    verified: bool = True
    visibility: str | None = "private"


@dataclass(frozen=True)
class GitHubIdentity:
    id: int
    login: str
    name: str | None = None
    email: str | None = None  # the public profile email; null unless the user made one public
    emails: list[GitHubEmail] = field(default_factory=list)

    def user_json(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            # GitHub's legacy global node id is base64("04:User<id>").
            "node_id": base64.b64encode(f"04:User{self.id}".encode()).decode(),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{self.id}?v=4",
            "html_url": f"https://github.com/{self.login}",
            "type": "User",
            "name": self.name,
            "email": self.email,
        }


@dataclass(frozen=True)
class Denial:
    """Queued instead of an identity: the user presses "Cancel" on the consent screen."""


Identity = GoogleIdentity | GitHubIdentity | Denial

DEFAULT_GOOGLE_IDENTITY = GoogleIdentity(sub="109876543210987654321", email="test.user@example.com")
# No public email by default, so clients must fall back to /user/emails as with most real accounts.
DEFAULT_GITHUB_IDENTITY = GitHubIdentity(
    id=1000001, login="test-user", name="Test User", emails=[GitHubEmail("test.user@example.com")]
)


def identity_from_dict(provider: Provider, data: dict[str, Any]) -> Identity:
    """Builds an identity from the JSON the control API receives."""
    if data.get("deny"):
        return Denial()
    if provider == "google":
        return GoogleIdentity(**data)
    emails = [GitHubEmail(**e) for e in data.get("emails", [])]
    return GitHubIdentity(**{**data, "emails": emails})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


# --- internal state -----------------------------------------------------------------------------


@dataclass
class _Client:
    secret: str
    redirect_uris: list[str]


@dataclass
class _AuthCode:
    provider: Provider
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    identity: GoogleIdentity | GitHubIdentity
    scope: str
    nonce: str | None
    expires_at: float
    used: bool = False
    access_token: str | None = None


@dataclass
class _Token:
    provider: Provider
    identity: GoogleIdentity | GitHubIdentity
    scope: str


class _GrantError(Exception):
    """Why a token request was refused; each provider renders it in its own error style."""

    def __init__(self, kind: Literal["client", "code", "redirect", "pkce"], description: str) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description


# --- the server ---------------------------------------------------------------------------------


class FakeOAuthProvider:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.code_ttl: float = CODE_TTL_SECONDS  # a test sets 0 to get codes that are already expired
        # Control methods may be called from a test thread while the server loop runs elsewhere.
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], _Client] = {}
        self._identities: dict[str, deque[Identity]] = defaultdict(deque)
        self._failures: dict[tuple[str, str], deque[tuple[int, int | None]]] = defaultdict(deque)
        self._codes: dict[str, _AuthCode] = {}
        self._tokens: dict[str, _Token] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # --- lifecycle and control ---

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("the fake is already running")
        runner = web.AppRunner(self._build_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._url = f"http://{host}:{runner.addresses[0][1]}"  # the real port when port=0
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake has not been started")
        return self._url

    def register_client(
        self, provider: Provider, client_id: str, client_secret: str, redirect_uris: list[str]
    ) -> None:
        _check_provider(provider)
        if not redirect_uris:
            raise ValueError("a client needs at least one redirect_uri")
        with self._lock:
            self._clients[(provider, client_id)] = _Client(client_secret, list(redirect_uris))

    def queue_identity(self, provider: Provider, identity: Identity) -> None:
        _check_provider(provider)
        expected = GoogleIdentity if provider == "google" else GitHubIdentity
        if not isinstance(identity, expected | Denial):
            raise TypeError(
                f"{provider} needs a {expected.__name__} or Denial, not {type(identity).__name__}"
            )
        with self._lock:
            self._identities[provider].append(identity)

    def fail_next(
        self,
        provider: Provider,
        endpoint: Endpoint,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        _check_provider(provider)
        if endpoint not in FAULT_ENDPOINTS[provider]:
            raise ValueError(
                f"{provider} has no fault point {endpoint!r}; use one of {FAULT_ENDPOINTS[provider]}"
            )
        if not 400 <= status <= 599 or times < 1:
            raise ValueError("status must be 4xx/5xx and times >= 1")
        with self._lock:
            self._failures[(provider, endpoint)].extend([(status, retry_after)] * times)

    def reset(self) -> None:
        """Forgets queued identities, failures, codes, tokens and requests; keeps clients and the key."""
        with self._lock:
            self._identities.clear()
            self._failures.clear()
            self._codes.clear()
            self._tokens.clear()
            self.requests.clear()

    def endpoints(self, provider: Provider) -> dict[str, str]:
        _check_provider(provider)
        urls = {f"{name}_url": self.url + path for name, path in PATHS[provider].items()}
        if provider == "github":
            urls["userinfo_url"] = urls.pop("user_url")  # so both providers are configured alike
        else:
            urls["issuer"] = f"{self.url}/google"
        return urls

    # --- app wiring ---

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        google, github = PATHS["google"], PATHS["github"]
        app.router.add_get(google["authorize"], partial(self._authorize, provider="google"))
        app.router.add_post(google["token"], self._google_token)
        app.router.add_get(google["userinfo"], self._google_userinfo)
        app.router.add_get(google["jwks"], self._google_jwks)
        app.router.add_get(google["discovery"], self._google_discovery)
        app.router.add_get(github["authorize"], partial(self._authorize, provider="github"))
        app.router.add_post(github["token"], self._github_token)
        app.router.add_get(github["user"], partial(self._github_api, endpoint="user"))
        app.router.add_get(github["emails"], partial(self._github_api, endpoint="emails"))
        app.router.add_post("/_control/clients", self._control_clients)
        app.router.add_post("/_control/identities", self._control_identities)
        app.router.add_post("/_control/failures", self._control_failures)
        app.router.add_post("/_control/reset", self._control_reset)
        app.router.add_get("/_control/requests", self._control_list_requests)
        app.router.add_delete("/_control/requests", self._control_clear_requests)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_control"):
            # Control calls are not provider traffic: keep them out of `requests`, report bad input as 400.
            try:
                return await handler(request)
            except (KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        form = await _form(request)
        record = RecordedRequest(
            request.method, request.path, dict(request.query), form, dict(request.headers)
        )
        with self._lock:
            self.requests.append(record)
        point = _FAULT_POINTS.get(request.path)
        failure = self._take_failure(*point) if point else None
        if point and failure:
            return _failure_response(request, *point, *failure)
        return await handler(request)

    def _take_failure(self, provider: str, endpoint: str) -> tuple[int, int | None] | None:
        with self._lock:
            queue = self._failures.get((provider, endpoint))
            return queue.popleft() if queue else None

    # --- authorize (both providers) ---

    async def _authorize(self, request: web.Request, provider: Provider) -> web.Response:
        query = request.query
        client_id = query.get("client_id", "")
        with self._lock:
            client = self._clients.get((provider, client_id))
        if client is None:
            return _html_error(400, "invalid_client", f"The OAuth client {client_id!r} was not found.")
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is None and provider == "github":
            redirect_uri = client.redirect_uris[0]  # GitHub falls back to the registered callback URL
        if redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered URI: that is how codes get stolen.
            return _html_error(400, "redirect_uri_mismatch", f"{redirect_uri!r} is not registered.")
        # The redirect_uri is trusted from here on, so errors go back to it (RFC 6749 §4.1.2.1).
        state = query.get("state")
        problem = _authorize_problem(provider, query)
        if problem:
            return _redirect(redirect_uri, {"error": problem, "state": state})
        identity = self._next_identity(provider)
        if isinstance(identity, Denial):
            return _redirect(redirect_uri, _denial_params(provider, state))
        code = self._issue_code(provider, redirect_uri, identity, query)
        return _redirect(redirect_uri, {"code": code, "state": state})

    def _next_identity(self, provider: Provider) -> Identity:
        with self._lock:
            queue = self._identities[provider]
            if queue:
                return queue.popleft()
        return DEFAULT_GOOGLE_IDENTITY if provider == "google" else DEFAULT_GITHUB_IDENTITY

    def _issue_code(
        self, provider: Provider, redirect_uri: str, identity: GoogleIdentity | GitHubIdentity, query: Any
    ) -> str:
        # Google codes contain "/" (as real ones do) so clients that skip URL-decoding fail here first.
        code = "4/0" + secrets.token_urlsafe(32) if provider == "google" else secrets.token_hex(10)
        pkce = query.get("code_challenge"), query.get("code_challenge_method", "plain")  # RFC 7636 §4.3
        scope, nonce, expires_at = query.get("scope", ""), query.get("nonce"), time.time() + self.code_ttl
        auth_code = _AuthCode(
            provider, query["client_id"], redirect_uri, *pkce, identity, scope, nonce, expires_at
        )
        with self._lock:
            self._codes[code] = auth_code
        return code

    # --- token ---

    def _redeem(self, provider: Provider, client_id: str, secret: str, form: dict[str, str]) -> _AuthCode:
        with self._lock:
            client = self._clients.get((provider, client_id))
            if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
                raise _GrantError("client", "The OAuth client was not found or the secret is wrong.")
            code = self._codes.get(form.get("code", ""))
            if code is None or code.provider != provider or code.client_id != client_id:
                raise _GrantError("code", "Malformed auth code.")
            if code.used:
                # RFC 6749 §4.1.2: a replayed code also revokes the token it was exchanged for.
                self._tokens.pop(code.access_token or "", None)
                raise _GrantError("code", "The authorization code was already redeemed.")
            # Any attempt by its own client consumes the code, so a verifier cannot be guessed by retrying.
            code.used = True
            if time.time() >= code.expires_at:
                raise _GrantError("code", "The authorization code has expired.")
            redirect_uri = form.get("redirect_uri")
            # Google requires the redirect_uri at the token step; GitHub only checks it when it is sent.
            if (redirect_uri is not None or provider == "google") and redirect_uri != code.redirect_uri:
                raise _GrantError("redirect", "The redirect_uri does not match the authorization request.")
            _check_pkce(code, form.get("code_verifier"))
            return code

    def _issue_token(self, code: _AuthCode) -> str:
        if code.provider == "google":
            token = "ya29." + secrets.token_urlsafe(48)
        else:
            token = "gho_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        with self._lock:
            self._tokens[token] = _Token(code.provider, code.identity, code.scope)
            code.access_token = token
        return token

    async def _google_token(self, request: web.Request) -> web.Response:
        form = await _form(request)
        grant_type = form.get("grant_type")
        if grant_type != "authorization_code":
            error = "unsupported_grant_type" if grant_type else "invalid_request"
            return _google_error(400, error, f"Unsupported or missing grant_type: {grant_type!r}")
        client_id, secret = _client_credentials(request, form)
        try:
            code = self._redeem("google", client_id, secret, form)
        except _GrantError as exc:
            status, error = (401, "invalid_client") if exc.kind == "client" else (400, "invalid_grant")
            return _google_error(status, error, exc.description)
        scopes = code.scope.split()
        body = {
            "access_token": self._issue_token(code),
            "expires_in": GOOGLE_TOKEN_TTL,
            "token_type": "Bearer",
            "scope": " ".join(_GOOGLE_SCOPE_NAMES.get(s, s) for s in scopes),
        }
        if "openid" in scopes:  # Google only issues an id_token for the openid scope
            body["id_token"] = self._id_token(code)
        return web.json_response(body, headers=_NO_STORE)

    def _id_token(self, code: _AuthCode) -> str:
        # Authorize only binds Google identities to Google codes.
        assert isinstance(code.identity, GoogleIdentity)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": f"{self.url}/google",
            "azp": code.client_id,
            "aud": code.client_id,
            **code.identity.claims(),
            "iat": now,
            "exp": now + ID_TOKEN_TTL,
        }
        if code.nonce is not None:
            claims["nonce"] = code.nonce
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    async def _github_token(self, request: web.Request) -> web.Response:
        form = await _form(request)
        try:
            code = self._redeem("github", form.get("client_id", ""), form.get("client_secret", ""), form)
        except _GrantError as exc:
            return _github_token_reply(request, _github_grant_error(exc))
        # GitHub reports the granted scopes comma-separated, whatever separator was requested.
        scope = ",".join(code.scope.replace(",", " ").split())
        body = {"access_token": self._issue_token(code), "scope": scope, "token_type": "bearer"}
        return _github_token_reply(request, body)

    # --- profile and keys ---

    def _lookup_token(
        self, request: web.Request, provider: Provider, schemes: tuple[str, ...]
    ) -> _Token | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in schemes:
            return None
        with self._lock:
            token = self._tokens.get(value.strip())
        return token if token is not None and token.provider == provider else None

    async def _google_userinfo(self, request: web.Request) -> web.Response:
        token = self._lookup_token(request, "google", ("bearer",))
        if token is None or not isinstance(token.identity, GoogleIdentity):
            headers = {"WWW-Authenticate": 'Bearer realm="fake-google", error="invalid_token"'}
            body = {"error": "invalid_request", "error_description": "Invalid Credentials"}
            return web.json_response(body, status=401, headers=headers)
        return web.json_response(token.identity.claims())

    async def _google_jwks(self, request: web.Request) -> web.Response:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**jwk, "kid": self._kid, "alg": "RS256", "use": "sig"}]})

    async def _google_discovery(self, request: web.Request) -> web.Response:
        urls = self.endpoints("google")
        claims = ["aud", "exp", "iat", "iss", "sub", "nonce", *GoogleIdentity("", "").claims()]
        doc = {
            "issuer": urls["issuer"],
            "authorization_endpoint": urls["authorize_url"],
            "token_endpoint": urls["token_url"],
            "userinfo_endpoint": urls["userinfo_url"],
            "jwks_uri": urls["jwks_url"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": sorted(set(claims)),
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code"],
        }
        return web.json_response(doc)

    async def _github_api(self, request: web.Request, endpoint: str) -> web.Response:
        token = self._lookup_token(request, "github", ("bearer", "token"))
        if token is None or not isinstance(token.identity, GitHubIdentity):
            return _github_api_error(401, "Bad credentials")
        identity = token.identity
        body: Any = identity.user_json() if endpoint == "user" else [asdict(e) for e in identity.emails]
        scopes = ", ".join(token.scope.replace(",", " ").split())
        return web.json_response(body, headers={"X-OAuth-Scopes": scopes})

    # --- HTTP control API ---

    async def _control_clients(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.register_client(
            body["provider"], body["client_id"], body["client_secret"], list(body["redirect_uris"])
        )
        return web.Response(status=204)

    async def _control_identities(self, request: web.Request) -> web.Response:
        body = await request.json()
        data = {"deny": True} if body.get("deny") else body["identity"]
        self.queue_identity(body["provider"], identity_from_dict(body["provider"], data))
        return web.Response(status=204)

    async def _control_failures(self, request: web.Request) -> web.Response:
        body = await request.json()
        retry_after = body.get("retry_after")
        self.fail_next(body["provider"], body["endpoint"], body["status"], body.get("times", 1), retry_after)
        return web.Response(status=204)

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.Response(status=204)

    async def _control_list_requests(self, request: web.Request) -> web.Response:
        with self._lock:
            recorded = [asdict(r) for r in self.requests]
        return web.json_response(recorded)

    async def _control_clear_requests(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests.clear()
        return web.Response(status=204)


# --- helpers ------------------------------------------------------------------------------------


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; use one of {PROVIDERS}")


async def _form(request: web.Request) -> dict[str, str]:
    if request.method != "POST" or request.content_type != "application/x-www-form-urlencoded":
        return {}
    return {key: str(value) for key, value in (await request.post()).items()}


def _authorize_problem(provider: Provider, query: Any) -> str | None:
    """The OAuth error code for a bad authorize request whose client and redirect_uri are valid."""
    if provider == "google":
        response_type = query.get("response_type")
        if response_type != "code":
            return "unsupported_response_type" if response_type else "invalid_request"
        if not query.get("scope"):
            return "invalid_request"
    method = query.get("code_challenge_method")
    if method is not None and (method not in ("S256", "plain") or "code_challenge" not in query):
        return "invalid_request"
    return None


def _denial_params(provider: Provider, state: str | None) -> dict[str, str | None]:
    params = {"error": "access_denied", "state": state}
    if provider == "github":  # GitHub explains the denial; Google sends the bare error code
        description = "The user has denied your application access."
        params |= {"error_description": description, "error_uri": _github_error_uri("access_denied")}
    return params


def _redirect(redirect_uri: str, params: dict[str, str | None]) -> web.Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return web.Response(status=302, headers={"Location": f"{redirect_uri}{separator}{query}"})


def _check_pkce(code: _AuthCode, verifier: str | None) -> None:
    if code.challenge is None:
        # Strict like OAuth 2.1: a verifier without a challenge means the client forgot the challenge.
        if verifier is not None:
            raise _GrantError("pkce", "code_verifier sent but no code_challenge was given at authorize.")
        return
    if verifier is None:
        raise _GrantError("pkce", "Missing code verifier.")
    if not _VERIFIER_RE.fullmatch(verifier):
        raise _GrantError("pkce", "Invalid code verifier.")
    if code.method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        expected = verifier
    if not hmac.compare_digest(expected.encode(), code.challenge.encode()):
        raise _GrantError("pkce", "Invalid code verifier.")


def _client_credentials(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    """Google accepts client_secret_post and client_secret_basic (RFC 6749 §2.3.1)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            return unquote(client_id), unquote(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


def _google_error(status: int, error: str, description: str) -> web.Response:
    body = {"error": error, "error_description": description}
    return web.json_response(body, status=status, headers=_NO_STORE)


_GITHUB_GRANT_ERRORS = {
    "client": ("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect."),
    "code": ("bad_verification_code", "The code passed is incorrect or expired."),
    "redirect": ("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL."),
}


def _github_grant_error(exc: _GrantError) -> dict[str, str]:
    # GitHub has no PKCE-specific error code; a bad verifier is a bad code.
    error, description = _GITHUB_GRANT_ERRORS.get(exc.kind, ("bad_verification_code", exc.description))
    return {"error": error, "error_description": description, "error_uri": _github_error_uri(error)}


def _github_error_uri(error: str) -> str:
    return _GITHUB_ERROR_DOCS + error.replace("_", "-")


def _github_token_reply(request: web.Request, body: dict[str, str], status: int = 200) -> web.Response:
    """GitHub answers form-encoded unless JSON is asked for, errors included (and those with HTTP 200)."""
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response(body, status=status)
    return web.Response(
        status=status, text=urlencode(body), content_type="application/x-www-form-urlencoded", charset="utf-8"
    )


def _github_api_error(status: int, message: str) -> web.Response:
    body = {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    return web.json_response(body, status=status)


def _html_error(status: int, error: str, detail: str) -> web.Response:
    title = f"Error {status}: {escape(error)}"
    html = f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
    return web.Response(
        status=status, text=f"{html}<p>{escape(detail)}</p></body></html>", content_type="text/html"
    )


def _failure_response(
    request: web.Request, provider: Provider, endpoint: str, status: int, retry_after: int | None
) -> web.Response:
    """An injected failure, in the error style the real endpoint uses."""
    error = _OAUTH_ERRORS.get(status, "server_error")
    description = f"Injected failure: HTTP {status} {_PHRASES.get(status, '')}".rstrip()
    if endpoint == "authorize":
        response = _html_error(status, error, description)
    elif provider == "google":
        response = _google_error(status, error, description)
    elif endpoint == "token":
        body = {"error": error, "error_description": description, "error_uri": _github_error_uri(error)}
        response = _github_token_reply(request, body, status)
    else:
        message = "API rate limit exceeded" if status in (403, 429) else _PHRASES.get(status, "Error")
        response = _github_api_error(status, message)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


# --- running it ---------------------------------------------------------------------------------


class RunningFake:
    """A fake serving from its own event loop on a daemon thread; for sync or session-scoped fixtures."""

    def __init__(
        self, fake: FakeOAuthProvider, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.fake = fake
        self.url = fake.url
        self._loop = loop
        self._thread = thread

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningFake:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> RunningFake:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="fake-oauth-provider", daemon=True)
    thread.start()
    fake = FakeOAuthProvider()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(host, port), loop).result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        raise
    return RunningFake(fake, loop, thread)


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeOAuthProvider()
    url = await fake.start(args.host, args.port)
    # Defaults match the identity service's callbacks behind a gateway on its default PUBLIC_API_URL.
    redirect_uris = args.redirect_uri or [
        f"http://localhost:8000/api/auth/oauth/{provider}/callback" for provider in PROVIDERS
    ]
    for provider in PROVIDERS:
        fake.register_client(provider, args.client_id, args.client_secret, redirect_uris)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    # The first line is machine-readable so a parent process can wait for it instead of sleeping.
    print(f"FAKE_OAUTH_URL={url}", flush=True)
    print(f"client_id={args.client_id} client_secret={args.client_secret} redirect_uris={redirect_uris}")
    for provider in PROVIDERS:
        for name, endpoint in fake.endpoints(provider).items():
            print(f"{provider}.{name} = {endpoint}")
    print("control API under /_control; Ctrl-C or SIGTERM stops", flush=True)
    try:
        await stopped.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Google + GitHub OAuth2 provider for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--client-id", default="funmagic-test")
    parser.add_argument("--client-secret", default="funmagic-test-secret")
    parser.add_argument("--redirect-uri", action="append", help="repeatable; registered for both providers")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
