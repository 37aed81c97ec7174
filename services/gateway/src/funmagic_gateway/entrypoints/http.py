"""Public HTTP routes of the gateway, and its view of the whole platform's health."""

from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from funmagic_kit.health import HealthCheck
from funmagic_kit.runtime import Runtime


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return ()


def health_checks(runtime: Runtime) -> Sequence[HealthCheck]:
    """One check per internal service: green when that service's own `/health/all` is green."""
    return tuple(
        HealthCheck(name, _service_is_healthy(url), timeout_seconds=3.0)
        for name, url in runtime.settings.service_urls().items()
    )


def _service_is_healthy(base_url: str) -> Callable[[], Awaitable[dict[str, object]]]:
    async def check() -> dict[str, object]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base_url.rstrip('/')}/health/all") as response,
        ):
            body = await response.json()
            if response.status != 200:
                failing = [n for n, c in body.get("checks", {}).items() if not c.get("ok")]
                raise RuntimeError(f"{body.get('service')} reports failing checks: {failing}")
            return {name: check["ok"] for name, check in body["checks"].items()}

    return check
