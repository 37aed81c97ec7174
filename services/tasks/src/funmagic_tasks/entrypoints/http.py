"""Internal HTTP routes of tasks (health and /metrics come from the kit)."""

from collections.abc import Sequence

from aiohttp import web

from funmagic_kit.runtime import Runtime


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return ()
