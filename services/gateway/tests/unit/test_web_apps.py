"""The built apps served on the gateway's own origin: files, deep links, caching and the page's policy."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_gateway.bootstrap import Gateway
from funmagic_gateway.config import GatewaySettings
from funmagic_gateway.entrypoints.web_apps import IMMUTABLE, NO_CACHE, WebApp, web_app_routes


async def no_tools(_: web.Request) -> web.Response:
    return web.json_response([])


def built_app(root: Path, title: str) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(f"<title>{title}</title>")
    (root / "assets" / "index-3f2a.js").write_text("console.log(1)")
    (root / "assets" / "index-3f2a.js.gz").write_bytes(gzip.compress(b"console.log(1)"))
    (root / "favicon.svg").write_text("<svg/>")
    (root / ".env").write_text("SECRET=1")
    (root / ".vite").mkdir()
    (root / ".vite" / "manifest.json").write_text('{"secret": "chunk graph"}')
    return root


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    web_dir = built_app(tmp_path / "web", "web")
    admin_dir = built_app(tmp_path / "admin", "admin")
    (tmp_path / "outside.txt").write_text("not yours")
    app = web.Application()
    app.router.add_get("/api/tools", no_tools)
    app.add_routes(
        web_app_routes(
            [WebApp(web_dir, "/"), WebApp(admin_dir, "/admin/")], content_origins=["http://127.0.0.1:8333"]
        )
    )
    async with TestServer(app) as server, aiohttp.ClientSession(str(server.make_url("/"))) as session:
        yield session


async def test_a_deep_link_answers_the_page_uncached_with_its_policy(served: aiohttp.ClientSession) -> None:
    async with served.get("/ja/tools/figme") as response:
        assert response.status == 200
        assert await response.text() == "<title>web</title>"
        assert response.headers["Cache-Control"] == NO_CACHE
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "img-src 'self' data: blob: http://127.0.0.1:8333" in policy


async def test_hashed_assets_are_cached_for_good_and_a_missing_one_is_not_a_page(
    served: aiohttp.ClientSession,
) -> None:
    async with served.get("/assets/index-3f2a.js") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == IMMUTABLE
    async with served.get("/assets/index-old.js") as response:
        assert response.status == 404


async def test_the_builds_gzip_twin_is_sent_to_browsers_that_accept_it(served: aiohttp.ClientSession) -> None:
    async with served.get("/assets/index-3f2a.js", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert await response.text() == "console.log(1)"


async def test_the_admin_prefix_is_the_admin_apps_own(served: aiohttp.ClientSession) -> None:
    async with served.get("/admin", allow_redirects=False) as response:
        assert response.status == 301
        assert response.headers["Location"] == "/admin/"
    async with served.get("/admin/users/42") as response:
        assert await response.text() == "<title>admin</title>"


async def test_api_paths_never_fall_through_to_a_page(served: aiohttp.ClientSession) -> None:
    async with served.get("/api/tools") as response:
        assert await response.json() == []
    for path in ("/api/nothing-here", "/metrics", "/health/all", "/openapi.json"):
        async with served.get(path) as response:
            assert response.status == 404, path


async def test_an_api_route_advertises_only_its_own_methods(served: aiohttp.ClientSession) -> None:
    # The apps' catch-all GET does not match API paths, so a 405 there lists the API route's methods only.
    async with served.request("OPTIONS", "/api/tools") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET,HEAD"
    async with served.request("DELETE", "/api/tools") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET,HEAD"


async def test_files_outside_the_build_and_dotfiles_are_never_served(served: aiohttp.ClientSession) -> None:
    async with served.get("/.env") as response:
        assert "SECRET" not in await response.text()
    async with served.get("/.vite/manifest.json") as response:
        assert "chunk graph" not in await response.text()
    async with served.get("/%2E%2E/outside.txt") as response:
        assert "not yours" not in await response.text()
    async with served.get("/favicon.svg") as response:
        assert await response.text() == "<svg/>"


def test_an_app_that_was_not_built_is_not_served(tmp_path: Path) -> None:
    assert web_app_routes([WebApp(tmp_path / "missing", "/")]) == []


def test_the_gateway_mounts_the_built_app_after_every_api_route(
    tmp_path: Path,
    build_gateway: Callable[[GatewaySettings], Gateway],
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    web_dir = built_app(tmp_path / "web", "web")
    gateway = build_gateway(gateway_settings(WEB_APP_DIR=str(web_dir)))

    routes = gateway.parts.routes
    assert len(routes) == len(gateway.api.routes()) + 1
    assert routes[-1].path.startswith("/{tail:")  # type: ignore[attr-defined]
