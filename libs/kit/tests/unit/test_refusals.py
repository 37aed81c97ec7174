"""A domain's refusal becomes problem+json at the edge, once: its kind decides the status, its `code`,
`field` and details become members of the answer; a dependency that is down is a 503 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_kit import errors
from funmagic_kit.http import problem_middleware
from funmagic_kit.metrics import Metrics


class EmailTaken(errors.Conflict):
    code = "email_taken"


class WeakPassword(errors.Refused):
    code = "weak_password"


REFUSALS: dict[str, Exception] = {
    "malformed": errors.Malformed("that token is not one"),
    "unauthenticated": errors.Unauthenticated("wrong password", code="invalid_credentials"),
    "forbidden": errors.Forbidden("admins only"),
    "not-found": errors.NotFound("no such task"),
    "conflict": EmailTaken("this email is registered"),
    "too-large": errors.TooLarge("at most 10 MB"),
    "limit": errors.LimitReached("slow down", retry_after_seconds=30),
    "upstream": errors.UpstreamRefused("the payment provider refused"),
    "refused": WeakPassword("too short", field="password", details={"problems": ["too short"]}),
    "transient": errors.TransientError("the database is unavailable"),
}


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    def raising(error: Exception):
        async def handler(request: web.Request) -> web.Response:
            raise error

        return handler

    app = web.Application(middlewares=[problem_middleware(Metrics("test"))])
    app.add_routes([web.get(f"/{name}", raising(error)) for name, error in REFUSALS.items()])
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
        yield session
    await server.close()


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("malformed", 400, "malformed"),
        ("unauthenticated", 401, "invalid_credentials"),
        ("forbidden", 403, "forbidden"),
        ("not-found", 404, "not_found"),
        ("conflict", 409, "email_taken"),
        ("too-large", 413, "too_large"),
        ("limit", 429, "limit_reached"),
        ("upstream", 502, "upstream_refused"),
        ("refused", 422, "weak_password"),
        ("transient", 503, "unavailable"),
    ],
)
async def test_each_kind_of_refusal_has_its_status_and_code(
    client: aiohttp.ClientSession, name: str, status: int, code: str
) -> None:
    async with client.get(f"/{name}") as response:
        body = await response.json(content_type=None)
        assert response.status == status
        assert response.content_type == "application/problem+json"
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"] == str(REFUSALS[name])


async def test_the_field_and_details_of_a_refusal_are_members_of_the_answer(
    client: aiohttp.ClientSession,
) -> None:
    async with client.get("/refused") as response:
        body = await response.json(content_type=None)
    assert body["field"] == "password"
    assert body["problems"] == ["too short"]


async def test_a_limit_says_when_to_try_again(client: aiohttp.ClientSession) -> None:
    async with client.get("/limit") as response:
        assert response.headers["Retry-After"] == "30"


async def test_a_dependency_that_is_down_asks_the_client_to_come_back(client: aiohttp.ClientSession) -> None:
    async with client.get("/transient") as response:
        assert response.status == 503
        assert int(response.headers["Retry-After"]) > 0


def test_a_code_given_at_the_raise_overrides_the_kinds_default() -> None:
    assert errors.NotFound("gone").code == "not_found"
    assert errors.NotFound("gone", code="task_not_found").code == "task_not_found"
    assert EmailTaken("x").code == "email_taken"
