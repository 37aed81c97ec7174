"""How the storage client reads storage's answers to an output it stores: kept (201), refused for good (the
step fails: calling the provider again would make the same output), or not now (the job waits for us)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_kit.errors import TransientError
from funmagic_providers.adapters.storage_client import StorageClient
from funmagic_providers.domain.errors import OutputRefused


@pytest.fixture
async def storage_answering() -> AsyncIterator[tuple[str, list[int]]]:
    """Storage's internal route as its contract has it; each call answers the next status queued."""
    statuses: list[int] = []

    async def store(request: web.Request) -> web.Response:
        await request.read()
        status = statuses.pop(0)
        if status == 201:
            return web.json_response({"id": "asset-1"}, status=201)
        problem = {
            "type": "about:blank",
            "title": "Refused",
            "status": status,
            "detail": f"refused ({status})",
        }
        return web.json_response(problem, status=status, content_type="application/problem+json")

    app = web.Application()
    app.router.add_post("/v1/internal/assets", store)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/"), statuses


async def store(base_url: str) -> str:
    async with aiohttp.ClientSession() as http:
        stored = await StorageClient(base_url, "t" * 32, http).store_output(
            user_id="u", task_id="t", module="image-gen", filename="out.png", content_type="image/png",
            data=b"png", visibility="private",
        )  # fmt: skip
    return stored.asset_id


async def test_a_kept_output_is_its_asset(storage_answering) -> None:
    base_url, statuses = storage_answering
    statuses.append(201)
    assert await store(base_url) == "asset-1"


@pytest.mark.parametrize("status", [400, 413, 415, 422])
async def test_an_output_refused_for_good_fails_the_step(storage_answering, status: int) -> None:
    base_url, statuses = storage_answering
    statuses.append(status)
    with pytest.raises(OutputRefused, match=f"refused the output \\({status}\\)"):
        await store(base_url)


@pytest.mark.parametrize("status", [401, 403, 408, 429, 500, 503])
async def test_an_output_not_kept_now_is_retried_later(storage_answering, status: int) -> None:
    base_url, statuses = storage_answering
    statuses.append(status)
    with pytest.raises(TransientError):
        await store(base_url)
