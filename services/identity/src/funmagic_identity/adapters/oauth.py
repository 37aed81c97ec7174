"""A generic OAuth2 / OpenID Connect client: every provider is configuration (URLs, scopes, claim names).

Authorization code with `state` and PKCE (S256). The profile comes from the userinfo endpoint; a provider
whose userinfo may lack a verified email (GitHub) names an emails endpoint, and the primary verified
address is used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp

from funmagic_identity.application.ports import OAuthProfile
from funmagic_identity.config import OAuthProviderConfig
from funmagic_identity.domain.errors import InvalidInput, OAuthFailed
from funmagic_kit.errors import TransientError

__all__ = ["GenericOAuthClient"]

log = logging.getLogger(__name__)


class GenericOAuthClient:
    def __init__(
        self, providers: Mapping[str, OAuthProviderConfig], *, timeout_seconds: float = 10.0
    ) -> None:
        self._providers = dict(providers)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    def provider_names(self) -> Sequence[str]:
        return sorted(self._providers)

    def authorization_url(self, provider: str, *, state: str, code_challenge: str) -> str:
        config = self._providers[provider]
        query = {
            "client_id": config.client_id,
            "redirect_uri": config.redirect_uri,
            "response_type": "code",
            "scope": config.scopes,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            **config.extra_authorize_params,
        }
        return f"{config.authorize_url}?{urlencode(query)}"

    async def fetch_profile(self, provider: str, *, code: str, code_verifier: str) -> OAuthProfile:
        config = self._providers[provider]
        async with aiohttp.ClientSession(timeout=self._timeout) as http:
            tokens = await self._exchange_code(http, config, code, code_verifier)
            access_token = tokens["access_token"]
            info = await self._get_json(http, config.userinfo_url, access_token, provider, "userinfo")
            if not isinstance(info, dict):
                raise OAuthFailed(f"{provider} returned an unexpected profile")
            emails = (
                await self._get_json(http, config.emails_url, access_token, provider, "emails")
                if config.emails_url
                else None
            )
        email, verified = _pick_email(config, info, emails)
        account_id = info.get(config.id_claim)
        if account_id in (None, ""):
            raise OAuthFailed(f"{provider} did not return an account id")
        name = next((str(info[c]) for c in config.name_claims if info.get(c)), "")
        picture = info.get(config.picture_claim) if config.picture_claim else None
        return OAuthProfile(
            provider=provider,
            account_id=str(account_id),
            email=email,
            email_verified=verified,
            name=name,
            image=str(picture) if picture else None,
            access_token=str(access_token),
            refresh_token=tokens.get("refresh_token"),
        )

    async def _exchange_code(
        self, http: aiohttp.ClientSession, config: OAuthProviderConfig, code: str, code_verifier: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": config.redirect_uri,
            "client_id": config.client_id,
            "client_secret": config.client_secret.get_secret_value(),
            "code_verifier": code_verifier,
        }
        try:
            async with http.post(
                config.token_url, data=form, headers={"Accept": "application/json"}
            ) as response:
                text = await response.text()
                status = response.status
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientError(
                f"{config.name} token endpoint unreachable: {type(error).__name__}"
            ) from error
        if status == 429 or status >= 500:
            raise TransientError(f"{config.name} token endpoint answered {status}")
        body = _parse_token_reply(text, content_type)
        # GitHub reports errors with HTTP 200 and an `error` field; others use 400/401.
        if status >= 400 or "error" in body or "access_token" not in body:
            log.info("token exchange refused", extra={"provider": config.name, "error": body.get("error")})
            raise OAuthFailed(f"{config.name} refused the sign-in ({body.get('error', status)})")
        return body

    async def _get_json(
        self, http: aiohttp.ClientSession, url: str, access_token: str, provider: str, what: str
    ) -> Any:
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        try:
            async with http.get(url, headers=headers) as response:
                if response.status == 429 or response.status >= 500:
                    raise TransientError(f"{provider} {what} answered {response.status}")
                if response.status >= 400:
                    raise OAuthFailed(f"{provider} refused to share the {what} ({response.status})")
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    # Answered as it always was (422 invalid_input), not as a crash.
                    raise InvalidInput(f"{provider} returned a {what} that is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientError(f"{provider} {what} unreachable: {type(error).__name__}") from error


def _parse_token_reply(text: str, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        try:
            parsed = json.loads(text)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    return dict(parse_qsl(text))


def _pick_email(config: OAuthProviderConfig, info: dict[str, Any], emails: Any) -> tuple[str | None, bool]:
    if isinstance(emails, list):
        entries = [e for e in emails if isinstance(e, dict) and e.get("email")]
        chosen = next((e for e in entries if e.get("primary") and e.get("verified")), None)
        chosen = chosen or next((e for e in entries if e.get("verified")), None)
        if chosen is not None:
            return str(chosen["email"]), True
        primary = next((e for e in entries if e.get("primary")), None)
        return (str(primary["email"]), False) if primary else (info.get(config.email_claim), False)
    email = info.get(config.email_claim)
    verified = bool(info.get(config.email_verified_claim)) if config.email_verified_claim else False
    return (str(email) if email else None), verified and bool(email)
