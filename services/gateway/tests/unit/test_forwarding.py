"""Declared forwards: what a `Forward` becomes (route, OpenAPI entry, handler) and what its handler sends on.

An aiohttp server stands in for the upstream service: it records every request it gets and answers what
the test told it to. The gateway side is the generated operations behind the kit's problem middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import AwareDatetime, Field

from funmagic_contracts.api import Reply, Request
from funmagic_gateway.adapters.reply_cache import ReplyCache
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import Forward, forwarding_operation, operations
from funmagic_kit.api import Operation, build_openapi
from funmagic_kit.http import HttpProblem, problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal

INTERNAL_TOKEN = "internal-token-for-unit-tests-only"


class ThingQuery(Request):
    kind: str | None = None
    featured: bool | None = None
    limit: int = Field(20, ge=1, le=100)


class ThingChange(Request):
    name: str | None = Field(None, max_length=20)
    note: str | None = None
    size: int = 1
    when: AwareDatetime | None = None


class Thing(Reply):
    id: str
    name: str
    created_at: datetime


@dataclass
class Upstream:
    """The stand-in service: what it received, and what it answers next."""

    received: list[web.Request] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def answers(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(request)
        self.bodies.append(await request.json() if request.can_read_body else None)
        if self.body is None:
            return web.Response(status=self.status, headers=self.headers)
        return web.json_response(self.body, status=self.status, headers=self.headers)

    @property
    def last(self) -> web.Request:
        assert self.received, "the upstream service was not called"
        return self.received[-1]


def principal(role: str = "user") -> Principal:
    return Principal(
        user_id="user-1",
        session_id="session-1",
        role=role,  # type: ignore[arg-type]
        email="ada@example.com",
        name="Ada",
        email_verified=True,
        issued_at=0,
        expires_at=0,
        token="the-users-access-token",
    )


@web.middleware
async def signed_in(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stands in for the authentication middleware: `X-Test-Role: <role>` signs the request in."""
    role = request.headers.get("X-Test-Role")
    if role:
        request[PRINCIPAL_KEY] = principal(role)
    return await handler(request)


Declare = Callable[[ServiceClient], Sequence[Forward]]


@asynccontextmanager
async def forwarding(declare: Declare) -> AsyncIterator[tuple[aiohttp.ClientSession, Upstream]]:
    """A gateway serving the forwards `declare` returns, in front of a recording upstream service."""
    upstream = Upstream()
    service_app = web.Application()
    service_app.router.add_route("*", "/{tail:.*}", upstream.handle)
    async with TestServer(service_app) as service, aiohttp.ClientSession() as http:
        client = ServiceClient("things", str(service.make_url("")), INTERNAL_TOKEN, http)
        gateway_app = web.Application(middlewares=[problem_middleware(Metrics("gateway-test")), signed_in])
        gateway_app.add_routes([op.route() for op in operations(*declare(client))])
        async with TestServer(gateway_app) as gateway, aiohttp.ClientSession(str(gateway.make_url(""))) as s:
            yield s, upstream


def thing_forwards(client: ServiceClient) -> Sequence[Forward]:
    item = "/api/things/{thing_id}"
    return (
        Forward("GET", "/api/things", client, "/v1/things", "Things", "things", "list_things",
                access="public", query=ThingQuery, reply=Thing),
        Forward("GET", "/api/owners/{owner_id}/things/{thing_id}", client,
                "/v1/owners/{owner_id}/things/{thing_id}/detail", "A thing", "things", "get_thing",
                access="public", reply=Thing),
        Forward("POST", "/api/things", client, "/v1/things", "Add a thing", "things", "add_thing",
                access="user", body=ThingChange, reply=Thing, status=201, idempotent=True),
        Forward("PUT", item, client, "/v1/things/{thing_id}", "Replace a thing", "things", "replace_thing",
                access="public", body=ThingChange, reply=Thing),
        Forward("PATCH", item, client, "/v1/things/{thing_id}", "Change a thing", "things", "change_thing",
                access="public", body=ThingChange, dump="exclude_unset", reply=Thing),
        Forward("POST", item + "/copies", client, "/v1/things/{thing_id}/copies", "Copy a thing", "things",
                "copy_thing", access="public", body=ThingChange, dump="exclude_none", reply=Thing),
        Forward("DELETE", item, client, "/v1/things/{thing_id}", "Remove a thing", "things", "remove_thing",
                access="public", status=204),
        Forward("POST", item + "/seal", client, "/v1/things/{thing_id}/seal", "Seal a thing", "things",
                "seal_thing", access="user", body=ThingChange, reply=Thing, guard=_only_admins),
    )  # fmt: skip


def _only_admins(request: web.Request) -> None:
    if request[PRINCIPAL_KEY].role != "admin":
        raise HttpProblem(403, "Forbidden", "admins only", code="not_allowed")


THING = {"id": "t-1", "name": "lamp", "created_at": "2026-01-01T12:00:00Z"}


# --- the declaration and its operation -----------------------------------------------------------


@pytest.fixture
async def service() -> AsyncIterator[ServiceClient]:
    """A service client for declarations alone: nothing is called."""
    async with aiohttp.ClientSession() as http:
        yield ServiceClient("things", "http://127.0.0.1:1", INTERNAL_TOKEN, http)


def test_a_forward_becomes_an_operation_named_and_documented_as_declared(service: ServiceClient) -> None:
    declared = Forward("POST", "/api/things", service, "/v1/things", "Add a thing", "things", "add_thing",
                       access="admin", body=ThingChange, reply=Thing, status=201, errors=(409,),
                       description="More words.")  # fmt: skip

    operation = forwarding_operation(declared)

    assert (operation.method, operation.path, operation.summary, operation.tag) == (
        "POST",
        "/api/things",
        "Add a thing",
        "things",
    )
    assert (operation.access, operation.body, operation.response, operation.query) == (
        "admin",
        ThingChange,
        Thing,
        None,
    )
    assert (operation.status, operation.errors, operation.description) == (201, (409,), "More words.")
    assert operation.operation_id == operation.handler.__name__ == "add_thing"
    document = build_openapi("t", "1", [operation])
    assert document["paths"]["/api/things"]["post"]["operationId"] == "add_thing"
    assert set(document["paths"]["/api/things"]["post"]["responses"]) >= {"201", "401", "403", "409", "422"}


def test_an_upstream_path_may_only_name_parameters_of_the_public_path(service: ServiceClient) -> None:
    with pytest.raises(ValueError, match="thing_idd"):
        Forward(
            "GET",
            "/api/things/{thing_id}",
            service,
            "/v1/things/{thing_idd}",
            "A thing",
            "t",
            "thing",
            access="public",
        )


def test_hand_written_operations_keep_their_place_among_forwards(service: ServiceClient) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.Response()

    written = Operation("GET", "/api/status", status, "Status", "things", access="public")
    first = Forward("GET", "/api/a", service, "/v1/a", "A", "things", "a", access="public")
    last = Forward("GET", "/api/b", service, "/v1/b", "B", "things", "b", access="public")

    listed = operations(first, written, last)

    assert [op.path for op in listed] == ["/api/a", "/api/status", "/api/b"]
    assert listed[1] is written


# --- path parameters -----------------------------------------------------------------------------


async def test_path_parameters_are_put_into_the_upstream_path_with_the_caller_going_along() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, THING)
        async with gateway.get(
            "/api/owners/o_1/things/t-1", headers={"X-Test-Role": "user", "User-Agent": "tests/1"}
        ) as response:
            assert response.status == 200

    assert upstream.last.path == "/v1/owners/o_1/things/t-1/detail"
    assert upstream.last.method == "GET"
    assert upstream.last.headers["X-Internal-Token"] == INTERNAL_TOKEN
    assert upstream.last.headers["Authorization"] == "Bearer the-users-access-token"
    assert upstream.last.headers["X-Client-User-Agent"] == "tests/1"
    assert upstream.last.headers["X-Client-Ip"] == "127.0.0.1"


async def test_an_anonymous_caller_sends_no_user_token() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, THING)
        async with gateway.get("/api/owners/o/things/t") as response:
            assert response.status == 200

    assert "Authorization" not in upstream.last.headers


@pytest.mark.parametrize("unsafe", ["a.b", "a%2Fb", "..%2F..%2Fadmin", "x" * 65, "a%20b", "a+b"])
async def test_unsafe_ids_are_not_found_and_never_forwarded(unsafe: str) -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        async with gateway.get(f"/api/owners/o/things/{unsafe}") as response:
            assert response.status == 404
            assert (await response.json())["detail"] == "no such resource"
        async with gateway.delete(f"/api/things/{unsafe}") as response:
            assert response.status == 404

    assert upstream.received == []


# --- query and body ------------------------------------------------------------------------------


async def test_the_query_goes_on_as_strings_with_defaults_and_without_unset_values() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, THING)
        async with gateway.get("/api/things?kind=lamp&featured=true") as response:
            assert response.status == 200

    assert dict(upstream.last.query) == {"kind": "lamp", "featured": "true", "limit": "20"}


async def test_an_invalid_query_is_refused_at_the_edge() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        async with gateway.get("/api/things?limit=0") as response:
            assert response.status == 422
        async with gateway.get("/api/things?colour=red") as response:
            assert response.status == 422

    assert upstream.received == []


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        # all: defaults filled in, None kept, datetimes as JSON text
        ("PUT", "/api/things/t-1", {"name": "lamp", "note": None, "size": 1, "when": "2026-01-01T12:00:00Z"}),
        # exclude_unset: only what the caller sent, an explicit null included
        ("PATCH", "/api/things/t-1", {"name": "lamp", "note": None, "when": "2026-01-01T12:00:00Z"}),
        # exclude_none: defaults filled in, nulls left out
        ("POST", "/api/things/t-1/copies", {"name": "lamp", "size": 1, "when": "2026-01-01T12:00:00Z"}),
    ],
)
async def test_the_body_goes_on_as_declared(method: str, path: str, expected: dict[str, Any]) -> None:
    sent = {"name": "lamp", "note": None, "when": "2026-01-01T12:00:00Z"}
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, THING)
        async with gateway.request(method, path, json=sent) as response:
            assert response.status == 200

    assert upstream.bodies[-1] == expected


async def test_an_invalid_body_is_refused_at_the_edge() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        async with gateway.put("/api/things/t-1", json={"name": "x" * 21}) as response:
            assert response.status == 422
        async with gateway.put("/api/things/t-1", json={"colour": "red"}) as response:
            assert response.status == 422
        async with gateway.put("/api/things/t-1", data="name=lamp") as response:
            assert response.status == 415

    assert upstream.received == []


# --- the answer ----------------------------------------------------------------------------------


async def test_the_reply_is_what_its_model_shows_with_the_services_status() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(201, {**THING, "secret": "not for clients"})
        async with gateway.put("/api/things/t-1", json={}) as response:
            assert response.status == 201
            assert response.content_type == "application/json"
            assert await response.json() == {
                "id": "t-1",
                "name": "lamp",
                "created_at": "2026-01-01T12:00:00Z",
            }


async def test_an_answer_the_reply_model_cannot_read_is_a_server_error_not_passed_on() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, {"id": "t-1"})
        async with gateway.get("/api/owners/o/things/t-1") as response:
            assert response.status == 500
            assert "t-1" not in await response.text()


async def test_without_a_reply_model_the_answer_is_the_status_alone() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(204)
        async with gateway.delete("/api/things/t-1") as response:
            assert response.status == 204
            assert await response.read() == b""

    assert upstream.last.method == "DELETE"
    assert upstream.last.path == "/v1/things/t-1"


async def test_the_services_problem_reaches_the_caller_as_it_is() -> None:
    problem = {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "taken", "code": "exists"}
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(409, problem, headers={"Retry-After": "7"})
        async with gateway.put("/api/things/t-1", json={}) as response:
            assert response.status == 409
            assert response.content_type == "application/problem+json"
            assert response.headers["Retry-After"] == "7"
            body = await response.json()

    assert (body["title"], body["detail"], body["code"]) == ("Conflict", "taken", "exists")


# --- Idempotency-Key and guards ------------------------------------------------------------------


async def test_the_idempotency_key_goes_along_where_declared() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(201, THING)
        headers = {"X-Test-Role": "user", "Idempotency-Key": "order-42 retry"}
        async with gateway.post("/api/things", json={}, headers=headers) as response:
            assert response.status == 201
        assert upstream.last.headers["Idempotency-Key"] == "order-42 retry"

        async with gateway.post("/api/things", json={}, headers={"X-Test-Role": "user"}) as response:
            assert response.status == 201
        assert "Idempotency-Key" not in upstream.last.headers


async def test_the_idempotency_key_stays_behind_where_not_declared() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, THING)
        async with gateway.put("/api/things/t-1", json={}, headers={"Idempotency-Key": "k-1"}) as response:
            assert response.status == 200

    assert "Idempotency-Key" not in upstream.last.headers


@pytest.mark.parametrize("key", ["", "k" * 201, "no\xa0break", "tab\there"])
async def test_a_malformed_idempotency_key_is_refused_before_forwarding(key: str) -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        headers = {"X-Test-Role": "user", "Idempotency-Key": key}
        async with gateway.post("/api/things", json={}, headers=headers) as response:
            assert response.status == 422
            assert "Idempotency-Key" in (await response.json())["detail"]

    assert upstream.received == []


async def test_the_declared_access_and_guard_come_before_anything_is_read() -> None:
    async with forwarding(thing_forwards) as (gateway, upstream):
        upstream.answers(200, THING)
        async with gateway.post("/api/things/t-1/seal", json={"colour": "red"}) as response:
            assert response.status == 401
        headers = {"X-Test-Role": "user"}
        async with gateway.post("/api/things/t-1/seal", json={"colour": "red"}, headers=headers) as response:
            assert response.status == 403
            assert (await response.json())["code"] == "not_allowed"
        assert upstream.received == []

        headers = {"X-Test-Role": "admin"}
        async with gateway.post("/api/things/t-1/seal", json={}, headers=headers) as response:
            assert response.status == 200

    assert upstream.last.path == "/v1/things/t-1/seal"


# --- cached answers ------------------------------------------------------------------------------


def cached_thing_forwards(cache: ReplyCache) -> Declare:
    def declare(client: ServiceClient) -> Sequence[Forward]:
        return (
            Forward("GET", "/api/things", client, "/v1/things", "Things", "things", "list_things",
                    access="public", query=ThingQuery, reply=Thing, cache=cache),
            Forward("PATCH", "/api/things/{thing_id}", client, "/v1/things/{thing_id}", "Change a thing",
                    "things", "change_thing", access="public", body=ThingChange, dump="exclude_unset",
                    reply=Thing, clears=cache),
        )  # fmt: skip

    return declare


async def test_a_cached_get_is_answered_again_without_asking_the_service_per_query() -> None:
    cache = ReplyCache(ttl_seconds=60)
    async with forwarding(cached_thing_forwards(cache)) as (gateway, upstream):
        upstream.answers(200, THING)
        first = await (await gateway.get("/api/things", params={"kind": "lamp"})).json()
        upstream.answers(200, {**THING, "name": "changed upstream"})
        again = await gateway.get("/api/things", params={"kind": "lamp"})
        other_query = await (await gateway.get("/api/things", params={"kind": "desk"})).json()

        assert again.status == 200
        assert again.content_type == "application/json"
        assert await again.json() == first
        assert first["name"] == "lamp"
        assert other_query["name"] == "changed upstream"
        assert len(upstream.received) == 2


async def test_a_successful_change_empties_the_cache_and_a_refused_one_does_not() -> None:
    cache = ReplyCache(ttl_seconds=60)
    async with forwarding(cached_thing_forwards(cache)) as (gateway, upstream):
        upstream.answers(200, THING)
        await gateway.get("/api/things")
        upstream.answers(422, {"type": "about:blank", "title": "Unprocessable", "status": 422})
        refused = await gateway.patch("/api/things/t-1", json={"name": "x"})
        kept = len(cache)
        upstream.answers(200, {**THING, "name": "desk"})
        changed = await gateway.patch("/api/things/t-1", json={"name": "desk"})
        after = await (await gateway.get("/api/things")).json()

        assert refused.status == 422
        assert kept == 1
        assert changed.status == 200
        assert after["name"] == "desk"


async def test_problems_are_never_cached() -> None:
    cache = ReplyCache(ttl_seconds=60)
    async with forwarding(cached_thing_forwards(cache)) as (gateway, upstream):
        upstream.answers(503, {"type": "about:blank", "title": "Unavailable", "status": 503})
        down = await gateway.get("/api/things")
        upstream.answers(200, THING)
        up = await gateway.get("/api/things")

        assert down.status == 503
        assert up.status == 200
        assert len(upstream.received) == 2
