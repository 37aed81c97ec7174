"""Other services' internal APIs as tasks uses them: does a user own an asset, publish an image for the
catalog, does a provider exist."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from funmagic_kit.auth import INTERNAL_TOKEN_HEADER
from funmagic_kit.errors import TransientError
from funmagic_tasks.domain.studio import ModelKind

__all__ = ["ProvidersDirectory", "ProvidersStudioModels", "StorageAssets", "StorageCatalogImages"]


class _InternalClient:
    # Named in errors, which may reach a client's 503: the service, not its address nor the driver's words.
    service = "a service"

    def __init__(self, base_url: str, internal_token: str, session: aiohttp.ClientSession) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {INTERNAL_TOKEN_HEADER: internal_token}
        self._session = session

    async def _exists(self, path: str, params: dict[str, str] | None = None) -> bool:
        try:
            async with self._session.get(
                self._base_url + path, params=params, headers=self._headers
            ) as response:
                if response.status == 200:
                    return True
                if response.status in (404, 422):
                    return False
                raise TransientError(f"{self.service} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientError(f"{self.service} is unreachable ({type(error).__name__})") from error

    async def _json(self, method: str, path: str, body: object = None) -> object | None:
        """The answer's JSON; None for a 404 or 422 (no such thing); any other failure is transient."""
        try:
            async with self._session.request(
                method, self._base_url + path, json=body, headers=self._headers
            ) as response:
                if response.status in (404, 422):
                    return None
                if response.status != 200:
                    raise TransientError(f"{self.service} answered {response.status}")
                return await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise TransientError(f"{self.service} is unreachable ({type(error).__name__})") from error


class StorageAssets(_InternalClient):
    service = "storage"

    async def owns(self, user_id: str, asset_id: str) -> bool:
        return await self._exists(f"/v1/internal/assets/{quote(asset_id, safe='')}", {"user_id": user_id})


class StorageCatalogImages(_InternalClient):
    service = "storage"

    async def publish(self, asset_id: str, admin_id: str) -> str | None:
        """Storage's `publish-for-catalog`: the asset's immutable CDN URL (published first if it is not yet;
        idempotent); None when storage has no such asset of `admin_id`'s (nor a public one)."""
        path = f"/v1/internal/assets/{quote(asset_id, safe='')}/publish-for-catalog"
        body = await self._json("POST", path, {"admin_id": admin_id})
        if body is None:
            return None
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            raise TransientError(f"{self.service} answered no url")
        return url


class ProvidersDirectory(_InternalClient):
    service = "providers"

    async def exists(self, name: str, scope: str = "web") -> bool:
        return await self._exists(f"/v1/internal/providers/{scope}/{quote(name, safe='')}")


_MODEL_KINDS: dict[str, ModelKind] = {"text": "text", "image": "image", "utility": "utility"}


class ProvidersStudioModels(_InternalClient):
    service = "providers"

    async def model_kind(self, provider: str, model: str) -> ModelKind | None:
        body = await self._json("GET", f"/v1/internal/studio/providers/{quote(provider, safe='')}")
        for offered in body.get("models", ()) if isinstance(body, dict) else ():
            if (
                isinstance(offered, dict)
                and offered.get("id") == model
                and offered.get("kind") in _MODEL_KINDS
            ):
                return _MODEL_KINDS[offered["kind"]]
        return None
