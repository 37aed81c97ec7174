"""Tasks' client of storage's `publish-for-catalog`, against a stand-in of storage's internal route: the path
and the internal credential it calls with, the CDN URL it reads, an unknown asset as None, and storage
failing as a transient error (a 503 at tasks' edge)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_kit.auth import INTERNAL_TOKEN_HEADER
from funmagic_kit.errors import TransientError
from funmagic_tasks.adapters.services import StorageCatalogImages

TOKEN = "tasks-tests-internal-token-0123456789"
KNOWN, MISSING, BROKEN, ADMIN = (str(uuid.uuid4()) for _ in range(4))


@pytest.fixture
async def storage() -> AsyncIterator[tuple[str, list[tuple[str, str | None, object]]]]:
    """Storage's internal route as the agreed interface has it; each call is recorded."""
    calls: list[tuple[str, str | None, object]] = []

    async def publish(request: web.Request) -> web.Response:
        asset_id = request.match_info["asset_id"]
        calls.append((asset_id, request.headers.get(INTERNAL_TOKEN_HEADER), await request.json()))
        if asset_id == MISSING:
            return web.json_response({"code": "not_found"}, status=404)
        if asset_id == BROKEN:
            return web.json_response({"code": "oops"}, status=500)
        return web.json_response({"asset_id": asset_id, "url": f"https://cdn.test/{asset_id}.png"})

    app = web.Application()
    app.router.add_post("/v1/internal/assets/{asset_id}/publish-for-catalog", publish)
    async with TestServer(app) as server:
        yield str(server.make_url("/")), calls


async def test_an_image_is_published_and_its_cdn_url_returned(storage) -> None:
    base_url, calls = storage
    async with aiohttp.ClientSession() as http:
        images = StorageCatalogImages(base_url, TOKEN, http)

        url = await images.publish(KNOWN, ADMIN)
        missing = await images.publish(MISSING, ADMIN)
        with pytest.raises(TransientError):
            await images.publish(BROKEN, ADMIN)

    assert (url, missing) == (f"https://cdn.test/{KNOWN}.png", None)
    on_behalf = {"admin_id": ADMIN}
    assert calls == [(KNOWN, TOKEN, on_behalf), (MISSING, TOKEN, on_behalf), (BROKEN, TOKEN, on_behalf)]


async def test_storage_out_of_reach_is_a_transient_error() -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TransientError):
            await StorageCatalogImages("http://127.0.0.1:9", TOKEN, http).publish(KNOWN, ADMIN)
