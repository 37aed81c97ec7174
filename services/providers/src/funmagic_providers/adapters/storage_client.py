"""The storage service's internal API, as providers uses it: read a step's input, store its outputs."""

from __future__ import annotations

from urllib.parse import unquote

import aiohttp

from funmagic_kit.auth import INTERNAL_TOKEN_HEADER
from funmagic_kit.errors import TransientError
from funmagic_providers.domain.errors import InvalidStepInput, OutputRefused
from funmagic_providers.domain.steps import InputFile, StoredAsset

__all__ = ["StorageClient"]

# What storage answers when it will never keep this output (a body too large, a type or name it refuses, a
# query it finds invalid). Anything else — its outages, a credential it does not take (ours to fix) — is
# retried: the job waits for us.
_REFUSED_FOR_GOOD = frozenset({400, 413, 415, 422})


class StorageClient:
    def __init__(self, base_url: str, internal_token: str, session: aiohttp.ClientSession) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {INTERNAL_TOKEN_HEADER: internal_token}
        self._session = session

    async def read_asset(self, user_id: str, asset_id: str) -> InputFile:
        """The bytes of an asset `user_id` owns; another user's (or a missing) asset is an input error."""
        url = f"{self._base_url}/v1/internal/assets/{asset_id}/content"
        return await self._read(url, {"user_id": user_id}, asset_id, "does not exist or is not yours")

    async def read_catalog_image(self, asset_id: str) -> InputFile:
        """The bytes of a published catalog image (a style reference's); an unpublished or missing one is
        an input error."""
        url = f"{self._base_url}/v1/internal/assets/{asset_id}/published-content"
        return await self._read(url, {}, asset_id, "is not a published image")

    async def _read(self, url: str, params: dict[str, str], asset_id: str, refusal: str) -> InputFile:
        try:
            async with self._session.get(url, params=params, headers=self._headers) as response:
                if response.status in (404, 422):
                    raise InvalidStepInput(f"input asset {asset_id} {refusal}")
                if response.status != 200:
                    raise TransientError(f"storage answered {response.status} reading asset {asset_id}")
                data = await response.read()
                filename = unquote(response.headers.get("X-Asset-Filename", "input"))
                return InputFile(asset_id, filename, response.content_type, data)
        except aiohttp.ClientError as error:
            raise TransientError(f"storage is unreachable ({type(error).__name__})") from error

    async def store_output(
        self,
        *,
        user_id: str,
        task_id: str,
        module: str,
        filename: str,
        content_type: str,
        data: bytes,
        visibility: str,
    ) -> StoredAsset:
        params = {
            "user_id": user_id, "task_id": task_id, "module": module, "filename": filename,
            "visibility": visibility,
        }  # fmt: skip
        headers = {**self._headers, "Content-Type": content_type}
        try:
            async with self._session.post(
                f"{self._base_url}/v1/internal/assets", params=params, data=data, headers=headers
            ) as response:
                if response.status != 201:
                    detail = (await response.text())[:300]
                    if response.status in _REFUSED_FOR_GOOD:
                        raise OutputRefused(f"storage refused the output ({response.status}): {detail}")
                    raise TransientError(f"storage refused an output ({response.status}): {detail}")
                asset = await response.json()
                return StoredAsset(asset_id=str(asset["id"]))
        except aiohttp.ClientError as error:
            raise TransientError(f"storage is unreachable ({type(error).__name__})") from error
