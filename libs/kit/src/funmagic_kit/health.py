"""Health endpoints: `/health` (the process lives) and one route per dependency, plus `/health/all`.

Each check makes a real request (SELECT 1, PING, a Kafka metadata request, an S3 bucket list). A check
that fails or takes longer than its timeout is red; `/health/all` is 200 only when every check is green.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

__all__ = ["HealthCheck", "HealthChecks", "check_result"]

CheckFn = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class HealthCheck:
    name: str
    run: CheckFn
    timeout_seconds: float = 2.0


async def check_result(check: HealthCheck) -> dict[str, object]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check.run(), timeout=check.timeout_seconds)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {check.timeout_seconds}s"}
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    result: dict[str, object] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if isinstance(detail, dict):
        result["detail"] = detail
    return result


class HealthChecks:
    def __init__(self, service: str) -> None:
        self.service = service
        self._checks: dict[str, HealthCheck] = {}

    def add(self, check: HealthCheck) -> None:
        self._checks[check.name] = check

    async def run_all(self) -> dict[str, dict[str, object]]:
        names = list(self._checks)
        results = await asyncio.gather(*(check_result(self._checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    def routes(self) -> list[web.RouteDef]:
        routes = [web.get("/health", self._live), web.get("/health/all", self._all)]
        routes += [web.get(f"/health/{name}", self._one(name)) for name in self._checks]
        return routes

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": self.service})

    async def _all(self, request: web.Request) -> web.Response:
        checks = await self.run_all()
        ok = all(c["ok"] for c in checks.values())
        body = {"status": "ok" if ok else "fail", "service": self.service, "checks": checks}
        return web.json_response(body, status=200 if ok else 503)

    def _one(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            result = await check_result(self._checks[name])
            body = {"status": "ok" if result["ok"] else "fail", "service": self.service, name: result}
            return web.json_response(body, status=200 if result["ok"] else 503)

        return handler
