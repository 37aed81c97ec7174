"""Forwarding a public request to an internal service: the caller's token, address and agent go along.

A route that only forwards is declared, not written: a `Forward` names the public route (method, path,
summary, tag, access, models) and where it goes (the service and its path), and `forwarding_operation`
turns it into the kit `Operation` (route and OpenAPI entry) with the handler every forward shares:

1. the declared `guard`, if any (a check that needs no input, such as a role finer than `access`);
2. the query, then the body, validated with their models (400/415/422 at the edge, never upstream);
3. the path parameters, each checked with `safe_id` (else 404) and put into the upstream path;
4. the client's `Idempotency-Key`, where declared, checked once (`funmagic_kit.api.idempotency_key`);
5. the call, and the answer: the service's problem as it is, else its body validated by the reply model
   (None: no body) with the service's status.

Routes that do more (cookies, redirects, a raw body, streams) are written by hand with `forward` and
`answer`, the same two steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from funmagic_gateway.adapters.reply_cache import CachedReply, ReplyCache
from funmagic_gateway.adapters.services import ServiceClient, ServiceReply, query_params
from funmagic_gateway.application.ports import Caller
from funmagic_gateway.entrypoints.edge import CLIENT_IP_KEY
from funmagic_kit.api import (
    IDEMPOTENCY_KEY_HEADER,
    Access,
    Operation,
    Owner,
    idempotency_key,
    json_body,
    read_body,
    read_query,
)
from funmagic_kit.http import HttpProblem
from funmagic_kit.request_keys import PRINCIPAL_KEY

__all__ = [
    "CURSOR_RULE",
    "BodyDump",
    "Forward",
    "answer",
    "caller_of",
    "forward",
    "forwarding_operation",
    "operations",
    "query_params",
    "safe_id",
    "upstream_path",
]

BodyDump = Literal["all", "exclude_none", "exclude_unset"]
"""Which fields of the validated body go upstream: all (defaults filled in), those not None, those sent."""

_PATH_PARAMETER = re.compile(r"{(\w+)(?::[^{}]+)?}")
# The description of a paginated list: what refuses a cursor the schema allows (`Business rule:` marks it
# for the fuzz test, tests/e2e/test_gateway_openapi.py).
CURSOR_RULE = (
    "Business rule: `cursor` must be the `next_cursor` of a page this list returned; any other is refused "
    "(422): start again without it."
)


@dataclass(frozen=True)
class Forward:
    """A public route that forwards to one route of one service."""

    method: str
    path: str
    upstream: ServiceClient
    upstream_path: str
    summary: str
    tag: str
    # The OpenAPI operationId (and the generated handler's name).
    name: str
    # Who may call it and whose object its path names: see `funmagic_kit.api.Operation`.
    access: Access
    owner: Owner | None = None
    body: type[BaseModel] | None = None
    dump: BodyDump = "all"
    query: type[BaseModel] | None = None
    # None: the answer has no body, only the service's status.
    reply: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    description: str = ""
    # Pass the client's Idempotency-Key on (the service then acts once for retries of one request).
    idempotent: bool = False
    guard: Callable[[web.Request], None] | None = None
    # A GET whose successful answers are the same for every caller: kept here a few seconds
    # (`adapters.reply_cache`).
    cache: ReplyCache | None = None
    # A change whose success empties this cache (an admin's edit of what `cache` holds).
    clears: ReplyCache | None = None

    def __post_init__(self) -> None:
        unknown = set(_PATH_PARAMETER.findall(self.upstream_path)) - set(_PATH_PARAMETER.findall(self.path))
        if unknown:
            # A typo here would otherwise be a KeyError on every request instead of one at start-up.
            raise ValueError(f"{self.upstream_path} names {sorted(unknown)}, which {self.path} lacks")


def forwarding_operation(declared: Forward) -> Operation:
    """The kit operation of a declared forward: its route, its OpenAPI entry, and the generated handler."""

    async def handler(request: web.Request) -> web.Response:
        if declared.guard is not None:
            declared.guard(request)
        params = query_params(read_query(request, declared.query)) if declared.query else None
        payload = None
        if declared.body is not None:
            payload = _dumped(await read_body(request, declared.body), declared.dump)
        path = upstream_path(declared.upstream_path, request)
        cache = declared.cache
        key = (path, tuple(sorted((params or {}).items()))) if cache is not None else None
        if cache is not None and (cached := cache.get(key)) is not None:
            return web.Response(body=cached.body, content_type=cached.content_type)
        generation = cache.generation if cache is not None else 0
        headers = _idempotency_header(request) if declared.idempotent else None
        reply = await forward(
            declared.upstream,
            request,
            declared.method,
            path,
            payload=payload,
            params=params,
            extra_headers=headers,
        )
        response = answer(reply, declared.reply)
        if declared.clears is not None:
            declared.clears.clear()
        if cache is not None and response.status == 200 and isinstance(response.body, bytes):
            cache.put(key, CachedReply(response.body, "application/json"), fetched_in=generation)
        return response

    handler.__name__ = handler.__qualname__ = declared.name
    return Operation(
        declared.method,
        declared.path,
        handler,
        declared.summary,
        declared.tag,
        access=declared.access,
        body=declared.body,
        query=declared.query,
        response=declared.reply,
        status=declared.status,
        errors=declared.errors,
        description=declared.description,
        name=declared.name,
        owner=declared.owner,
    )


def operations(*declared: Forward | Operation) -> list[Operation]:
    """A route family's operations in the order given: forwards generated, hand-written ones as they are."""
    return [forwarding_operation(d) if isinstance(d, Forward) else d for d in declared]


async def forward(
    service: ServiceClient,
    request: web.Request,
    method: str,
    path: str,
    *,
    payload: Any = None,
    params: dict[str, str] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> ServiceReply:
    caller = caller_of(request)
    return await service.call(
        method,
        path,
        json_body=payload,
        params=params,
        extra_headers=extra_headers,
        user_token=caller.token,
        client_ip=caller.client_ip,
        user_agent=caller.user_agent,
    )


def caller_of(request: web.Request) -> Caller:
    """Who the request is for, as the services are told: the verified user's token, the client."""
    principal = request.get(PRINCIPAL_KEY)
    return Caller(
        token=principal.token if principal else None,
        client_ip=request.get(CLIENT_IP_KEY) or request.remote,
        user_agent=request.headers.get("User-Agent"),
    )


def answer(reply: ServiceReply, model: type[BaseModel] | None) -> web.Response:
    """The service's problem as it is; else its body as `model` shows it (None: no body), its status."""
    reply.raise_for_problem()
    if model is None or reply.body is None:
        return web.Response(status=reply.status)
    return json_body(model.model_validate(reply.body), status=reply.status)


def upstream_path(template: str, request: web.Request) -> str:
    """`template` with each `{name}` replaced by the request's path parameter of that name, checked."""
    return _PATH_PARAMETER.sub(lambda match: safe_id(request.match_info[match[1]]), template)


def safe_id(value: str) -> str:
    """Path segments forwarded to a service: letters, digits, `-` and `_` only (no `../`, no query)."""
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
        raise HttpProblem(404, "Not Found", "no such resource")
    return value


def _dumped(body: BaseModel, dump: BodyDump) -> Any:
    return body.model_dump(
        mode="json", exclude_none=dump == "exclude_none", exclude_unset=dump == "exclude_unset"
    )


def _idempotency_header(request: web.Request) -> dict[str, str] | None:
    key = idempotency_key(request)
    return None if key is None else {IDEMPOTENCY_KEY_HEADER: key}
