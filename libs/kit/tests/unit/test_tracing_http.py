"""The SERVER span of a request when no exporter is configured: a trace that came in goes on out."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_kit.tracing import current_traceparent, is_recording
from funmagic_kit.tracing_http import tracing_middleware

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def traceparent_seen_by_the_handler(request: web.Request) -> web.Response:
    return web.json_response({"traceparent": current_traceparent()})


async def ask(headers: dict[str, str]) -> object:
    app = web.Application(middlewares=[tracing_middleware])
    app.router.add_get("/api/work", traceparent_seen_by_the_handler)
    async with (
        TestServer(app) as server,
        aiohttp.ClientSession() as client,
        client.get(server.make_url("/api/work"), headers=headers) as response,
    ):
        assert response.status == 200
        return (await response.json())["traceparent"]


async def test_a_request_carrying_a_trace_is_handled_inside_it() -> None:
    assert not is_recording()

    assert await ask({"traceparent": TRACEPARENT}) == TRACEPARENT


async def test_a_request_without_a_trace_starts_none_while_nothing_records() -> None:
    assert await ask({}) is None
