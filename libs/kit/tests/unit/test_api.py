"""API operations end to end: input validation, access enforcement, and the generated OpenAPI document.

The operations run on a real aiohttp server behind the kit's `problem_middleware`, so every `HttpProblem`
is seen the way a client sees it.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field, create_model

from funmagic_kit.api import (
    Access,
    Operation,
    Problem,
    build_openapi,
    docs_page,
    enforce_access,
    idempotency_key,
    json_body,
    read_body,
    read_query,
)
from funmagic_kit.http import HttpProblem, problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import AUTH_ERROR_KEY, INTERNAL_CALLER_KEY, PRINCIPAL_KEY, Principal

# Stand-ins for what the gateway and caller middlewares put on the request.
TEST_ROLE = "X-Test-Role"
TEST_AUTH_ERROR = "X-Test-Auth-Error"
TEST_INTERNAL = "X-Test-Internal"


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=64)
    password: str = Field(min_length=8)
    referrals: int = Field(0, ge=0)


class Account(BaseModel):
    id: str
    email: str


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = None


class Items(BaseModel):
    limit: int
    cursor: str | None


class Ok(BaseModel):
    ok: bool = True


async def sign_up(request: web.Request) -> web.Response:
    body = await read_body(request, SignUp)
    return json_body(
        Account(id="acc-1", email=body.email), status=201, headers={"Location": "/accounts/acc-1"}
    )


async def list_items(request: web.Request) -> web.Response:
    query = read_query(request, ListQuery)
    return json_body(Items(limit=query.limit, cursor=query.cursor))


async def get_item(request: web.Request) -> web.Response:
    return json_body(Ok())


async def delete_item(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def ping(request: web.Request) -> web.Response:
    return json_body(Ok())


async def me(request: web.Request) -> web.Response:
    return json_body(Ok())


async def manage(request: web.Request) -> web.Response:
    return json_body(Ok())


async def own(request: web.Request) -> web.Response:
    return json_body(Ok())


async def reconcile(request: web.Request) -> web.Response:
    return json_body(Ok())


OPERATIONS = [
    Operation(
        "POST",
        "/api/accounts",
        sign_up,
        "Create an account",
        "accounts",
        access="public",
        body=SignUp,
        response=Account,
        status=201,
        errors=(409,),
    ),
    Operation(
        "GET", "/api/items", list_items, "List items", "items", access="user", query=ListQuery, response=Items
    ),
    Operation(
        "GET",
        "/api/items/{item_id}",
        get_item,
        "Get an item",
        "items",
        access="user",
        owner="caller",
        response=Ok,
    ),
    Operation(
        "DELETE",
        "/api/items/{item_id}",
        delete_item,
        "Delete an item",
        "items",
        access="admin",
        status=204,
        cookie_auth=False,
    ),
    Operation("GET", "/ping", ping, "Ping", "misc", access="public", response=Ok),
    Operation("GET", "/api/me", me, "Who am I", "accounts", access="user", response=Ok),
    Operation("POST", "/api/admin/manage", manage, "Manage", "admin", access="admin", response=Ok),
    Operation("POST", "/api/admin/own", own, "Own the place", "admin", access="super_admin", response=Ok),
    Operation(
        "POST",
        "/internal/reconcile",
        reconcile,
        "Reconcile",
        "internal",
        access="internal",
        response=Ok,
        extra_responses={302: "Moved"},
    ),
]


def principal_with(role: str) -> Principal:
    now = time.time()
    return Principal("user-1", "session-1", role, "u@example.test", "U", True, now, now + 300, "token")  # type: ignore[arg-type]


@web.middleware
async def fake_callers(request: web.Request, handler):
    if role := request.headers.get(TEST_ROLE):
        request[PRINCIPAL_KEY] = principal_with(role)
    if reason := request.headers.get(TEST_AUTH_ERROR):
        request[AUTH_ERROR_KEY] = reason
    request[INTERNAL_CALLER_KEY] = request.headers.get(TEST_INTERNAL) == "yes"
    return await handler(request)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    app = web.Application(
        middlewares=[problem_middleware(Metrics("test")), fake_callers], client_max_size=1024
    )
    app.add_routes([op.route() for op in OPERATIONS])
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
        yield session
    await server.close()


async def problem_of(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert body["status"] == status
    assert body["type"] == "about:blank"
    return body


# --- read_body ---------------------------------------------------------------------------------------


async def test_a_valid_body_reaches_the_handler_and_the_reply_is_json(client: aiohttp.ClientSession) -> None:
    async with client.post("/api/accounts", json={"email": "a@example.test", "password": "long-enough"}) as r:
        assert r.status == 201
        assert r.content_type == "application/json"
        assert r.headers["Location"] == "/accounts/acc-1"
        assert await r.json() == {"id": "acc-1", "email": "a@example.test"}


async def test_a_json_content_type_with_a_charset_is_accepted(client: aiohttp.ClientSession) -> None:
    async with client.post(
        "/api/accounts",
        data=b'{"email": "a@example.test", "password": "long-enough"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    ) as response:
        assert response.status == 201


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_declared_as_json_is_415(
    client: aiohttp.ClientSession, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with client.post(
        "/api/accounts", data=b'{"email": "a@example.test", "password": "long-enough"}', headers=headers
    ) as response:
        body = await problem_of(response, 415)
    assert body["title"] == "Unsupported Media Type"


@pytest.mark.parametrize("raw", [b'{"email": ', b"", b"\xff\xfe\x00{", b"{'single': 'quotes'}"])
async def test_a_body_that_is_not_valid_json_is_400(client: aiohttp.ClientSession, raw: bytes) -> None:
    async with client.post(
        "/api/accounts", data=raw, headers={"Content-Type": "application/json"}
    ) as response:
        body = await problem_of(response, 400)
    assert body["detail"] == "the body is not valid JSON"


@pytest.mark.parametrize(
    ("referrals", "error_type"), [(3.0, "int_type"), (True, "int_type"), ("3", "int_type"), (3.5, "int_type")]
)
async def test_a_body_integer_is_an_integer_without_a_fraction_a_boolean_or_quotes(
    client: aiohttp.ClientSession, referrals: object, error_type: str
) -> None:
    # JSON Schema counts 3.0 as an integer; the API does not (the document's description says so).
    sent = {"email": "a@example.test", "password": "long-enough", "referrals": referrals}
    async with client.post("/api/accounts", json=sent) as response:
        body = await problem_of(response, 422)
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["referrals"], error_type)]


async def test_invalid_and_unknown_fields_are_422_listing_where_and_why_without_the_values(
    client: aiohttp.ClientSession,
) -> None:
    sent = {"email": "e" * 65 + "@example.test", "password": "pw-Zq9", "is_admin": "smuggled-Xy7"}

    async with client.post("/api/accounts", json=sent) as response:
        text = await response.text()
        body = await problem_of(response, 422)

    assert {(tuple(e["loc"]), e["type"]) for e in body["errors"]} == {
        (("email",), "string_too_long"),
        (("password",), "string_too_short"),
        (("is_admin",), "extra_forbidden"),
    }
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
    for value in sent.values():
        assert value not in text


@pytest.mark.parametrize(
    ("raw", "loc", "error_type"),
    [
        (b'{"email": "a\\u0000@example.test", "password": "long-enough"}', ["email"], "string_nul"),
        (b'{"email": "a@example.test", "password": "long-\\ud800-enough"}', ["password"], "string_surrogate"),
        (b'{"email": 12345678, "password": "long-enough"}', ["email"], "string_type"),
        (b'{"email": "a@example.test", "password": "long-enough", "x": NaN}', ["x"], "number_not_finite"),
    ],
)
async def test_values_postgres_or_json_cannot_hold_and_loose_types_are_422_naming_the_field(
    client: aiohttp.ClientSession, raw: bytes, loc: list, error_type: str
) -> None:
    async with client.post(
        "/api/accounts", data=raw, headers={"Content-Type": "application/json"}
    ) as response:
        body = await problem_of(response, 422)

    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(loc, error_type)]


async def test_a_json_body_that_is_not_an_object_is_422(client: aiohttp.ClientSession) -> None:
    async with client.post("/api/accounts", json=["a@example.test", "long-enough"]) as response:
        body = await problem_of(response, 422)
    assert [e["type"] for e in body["errors"]] == ["model_type"]


async def test_a_body_larger_than_the_app_allows_is_413(client: aiohttp.ClientSession) -> None:
    oversized = {"email": "a@example.test", "password": "p" * 4096}
    async with client.post("/api/accounts", json=oversized) as response:
        await problem_of(response, 413)


# --- read_query --------------------------------------------------------------------------------------


async def test_query_parameters_are_parsed_into_the_model(client: aiohttp.ClientSession) -> None:
    async with client.get(
        "/api/items", params={"limit": "5", "cursor": "c-1"}, headers={TEST_ROLE: "user"}
    ) as r:
        assert r.status == 200
        assert await r.json() == {"limit": 5, "cursor": "c-1"}


async def test_missing_query_parameters_take_their_defaults(client: aiohttp.ClientSession) -> None:
    async with client.get("/api/items", headers={TEST_ROLE: "user"}) as response:
        assert await response.json() == {"limit": 20, "cursor": None}


@pytest.mark.parametrize(
    ("params", "loc", "error_type"),
    [
        ({"limit": "0"}, ["limit"], "greater_than_equal"),
        ({"limit": "101"}, ["limit"], "less_than_equal"),
        ({"limit": "many"}, ["limit"], "int_parsing"),
        ({"sort": "secret-sort-value"}, ["sort"], "extra_forbidden"),
    ],
)
async def test_invalid_query_parameters_are_422(
    client: aiohttp.ClientSession, params: dict, loc: list, error_type: str
) -> None:
    async with client.get("/api/items", params=params, headers={TEST_ROLE: "user"}) as response:
        text = await response.text()
        body = await problem_of(response, 422)

    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(loc, error_type)]
    for value in params.values():
        assert value not in text


async def test_a_nul_in_a_query_parameter_is_422(client: aiohttp.ClientSession) -> None:
    async with client.get("/api/items?cursor=a%00b", headers={TEST_ROLE: "user"}) as response:
        body = await problem_of(response, 422)

    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["cursor"], "string_nul")]


# --- enforce_access ----------------------------------------------------------------------------------


async def test_a_public_operation_needs_no_caller(client: aiohttp.ClientSession) -> None:
    async with client.get("/ping") as response:
        assert response.status == 200


async def test_a_user_operation_without_a_principal_is_401_asking_for_a_bearer_token(
    client: aiohttp.ClientSession,
) -> None:
    async with client.get("/api/me") as response:
        body = await problem_of(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body["detail"] == "sign in first"


async def test_the_401_carries_the_reason_the_token_was_refused(client: aiohttp.ClientSession) -> None:
    async with client.get("/api/me", headers={TEST_AUTH_ERROR: "token has expired"}) as response:
        body = await problem_of(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body["detail"] == "token has expired"


@pytest.mark.parametrize(
    ("path", "role", "status"),
    [
        ("/api/me", "user", 200),
        ("/api/me", "super_admin", 200),
        ("/api/admin/manage", "user", 403),
        ("/api/admin/manage", "admin", 200),
        ("/api/admin/manage", "super_admin", 200),
        ("/api/admin/own", "user", 403),
        ("/api/admin/own", "admin", 403),
        ("/api/admin/own", "super_admin", 200),
    ],
)
async def test_a_role_operation_admits_that_role_and_higher_only(
    client: aiohttp.ClientSession, path: str, role: str, status: int
) -> None:
    method = "GET" if path == "/api/me" else "POST"
    async with client.request(method, path, headers={TEST_ROLE: role}) as response:
        assert response.status == status
        if status == 403:
            body = await problem_of(response, 403)
            assert "role" in body["detail"]
            assert "WWW-Authenticate" not in response.headers


async def test_an_admin_operation_without_a_principal_is_401_not_403(client: aiohttp.ClientSession) -> None:
    async with client.post("/api/admin/manage") as response:
        await problem_of(response, 401)


async def test_an_internal_operation_needs_the_internal_caller_flag(client: aiohttp.ClientSession) -> None:
    async with client.post("/internal/reconcile", headers={TEST_ROLE: "super_admin"}) as response:
        body = await problem_of(response, 401)
    assert body["detail"] == "this route is for services only"

    async with client.post("/internal/reconcile", headers={TEST_INTERNAL: "yes"}) as response:
        assert response.status == 200


def test_public_access_leaves_the_handler_as_it_is() -> None:
    assert enforce_access("public", ping) is ping


def test_guarded_handlers_keep_their_name_for_the_operation_id() -> None:
    assert enforce_access("admin", manage).__name__ == "manage"


# --- build_openapi -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi("Test API", "1.2.3", OPERATIONS, description="For tests.")


def operations_of(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def refs_in(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def unresolved_refs(document: dict[str, Any]) -> list[str]:
    schemas = document["components"]["schemas"]
    return [ref for ref in refs_in(document) if ref.removeprefix("#/components/schemas/") not in schemas]


def test_the_document_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    validate(document)

    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Test API", "version": "1.2.3", "description": "For tests."}


def test_every_declared_operation_appears_once_and_nothing_else(document: dict[str, Any]) -> None:
    found = [(path, method) for path, method, _ in operations_of(document)]

    assert sorted(found) == sorted((op.path, op.method.lower()) for op in OPERATIONS)
    assert set(document["paths"]) == {op.path for op in OPERATIONS}
    assert set(document["paths"]["/api/items/{item_id}"]) == {"get", "delete"}
    operation_ids = [operation["operationId"] for _, _, operation in operations_of(document)]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_reference_points_to_a_component_schema(document: dict[str, Any]) -> None:
    assert unresolved_refs(document) == []
    assert {"SignUp", "Account", "Items", "Ok", "Problem"} <= set(document["components"]["schemas"])


def test_request_bodies_and_replies_reference_their_models(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/accounts"]["post"]

    assert create["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignUp"}}},
    }
    assert create["responses"]["201"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Account"}}
    }
    assert document["components"]["schemas"]["SignUp"]["additionalProperties"] is False


def test_only_non_public_operations_declare_security(document: dict[str, Any]) -> None:
    for op in OPERATIONS:
        operation = document["paths"][op.path][op.method.lower()]
        if op.access == "public":
            assert "security" not in operation, op.path
            assert "401" not in operation["responses"], op.path
        else:
            assert operation["security"], op.path
            assert "401" in operation["responses"], op.path
    assert document["paths"]["/api/me"]["get"]["security"] == [{"bearer": []}, {"cookie": []}]
    assert document["paths"]["/api/items/{item_id}"]["delete"]["security"] == [{"bearer": []}]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "cookie"}


def test_every_operation_says_who_may_call_it_and_whose_object_it_names(document: dict[str, Any]) -> None:
    for op in OPERATIONS:
        operation = document["paths"][op.path][op.method.lower()]
        assert operation["x-access"] == op.access, op.path
    assert document["paths"]["/api/items/{item_id}"]["get"]["x-owner"] == "caller"
    assert "x-owner" not in document["paths"]["/api/items/{item_id}"]["delete"]


def test_an_operation_must_declare_its_access() -> None:
    with pytest.raises(TypeError, match="access"):
        Operation("GET", "/api/forgotten", ping, "Forgotten", "misc")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("path", "access"), [("/api/items", "user"), ("/api/items/{item_id}", "admin"), ("/x/{x_id}", "public")]
)
def test_an_owner_belongs_to_a_user_operation_naming_an_object(path: str, access: Access) -> None:
    with pytest.raises(ValueError, match="owner"):
        Operation("GET", path, ping, "s", "t", access=access, owner="caller")


def test_error_responses_are_problem_details(document: dict[str, Any]) -> None:
    error_responses = [
        (path, status, response)
        for path, _, operation in operations_of(document)
        for status, response in operation["responses"].items()
        if int(status) >= 400
    ]

    assert error_responses
    for path, status, response in error_responses:
        assert response["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }, (path, status)
    assert set(document["components"]["schemas"]["Problem"]["required"]) == set(
        name for name, field in Problem.model_fields.items() if field.is_required()
    )


def test_the_error_statuses_follow_from_what_the_operation_declares(document: dict[str, Any]) -> None:
    def statuses(path: str, method: str) -> set[str]:
        return {s for s in document["paths"][path][method]["responses"] if int(s) >= 300}

    assert statuses("/api/accounts", "post") == {"400", "409", "413", "415", "422", "429"}
    assert statuses("/api/items", "get") == {"401", "422", "429"}
    assert statuses("/api/items/{item_id}", "delete") == {"401", "403", "404", "429"}
    assert statuses("/ping", "get") == set()
    assert statuses("/internal/reconcile", "post") == {"302", "401"}


def test_path_and_query_parameters_are_declared(document: dict[str, Any]) -> None:
    item = document["paths"]["/api/items/{item_id}"]["get"]
    listing = document["paths"]["/api/items"]["get"]

    assert item["parameters"] == [
        {
            "name": "item_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
    ]
    by_name = {p["name"]: p for p in listing["parameters"]}
    assert set(by_name) == {"limit", "cursor"}
    assert all(p["in"] == "query" and p["required"] is False for p in by_name.values())
    assert by_name["limit"]["schema"]["minimum"] == 1


class Settings(BaseModel):
    name: str = Field(max_length=40)
    code: str = Field(pattern=r"^[A-Z]{3}$")
    count: int
    small: int = Field(ge=0, le=10)
    labels: dict[str, Any] = Field(default_factory=dict)


class Stored(BaseModel):
    note: str


def test_a_request_schema_says_what_the_input_rules_refuse_whatever_the_model_says() -> None:
    document = build_openapi(
        "T",
        "1",
        [Operation("PUT", "/s", ping, "s", "t", access="public", body=Settings, response=Stored)],
    )
    schemas = document["components"]["schemas"]
    settings = schemas["Settings"]["properties"]

    # No NUL in text (keys of a free-form object are text too); integers within 64 bits.
    assert settings["name"]["pattern"] == "^[^\\u0000]*$"
    assert re.fullmatch(settings["name"]["pattern"], "a\x00b") is None
    assert settings["code"]["pattern"] == "^[A-Z]{3}$"  # a pattern of its own already says it
    assert (settings["count"]["minimum"], settings["count"]["maximum"]) == (-(2**63), 2**63 - 1)
    assert (settings["small"]["minimum"], settings["small"]["maximum"]) == (0, 10)
    assert settings["labels"]["propertyNames"] == {"pattern": "^[^\\u0000]*$"}
    # Answers are left as they are.
    assert "pattern" not in schemas["Stored"]["properties"]["note"]


class Token(BaseModel):
    token: str | None = None


async def stream(request: web.Request) -> web.StreamResponse:
    raise AssertionError("not called")


def test_an_optional_body_and_an_event_stream_are_declared() -> None:
    document = build_openapi(
        "T",
        "1",
        [
            Operation("POST", "/out", ping, "s", "t", access="public", body=Token, body_required=False),
            Operation("GET", "/events", stream, "s", "t", access="user", media_type="text/event-stream"),
        ],
    )

    assert document["paths"]["/out"]["post"]["requestBody"]["required"] is False
    events = document["paths"]["/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    # Open API 3.1 describes each event of a stream, as a reader parses it.
    assert events["schema"]["type"] == "object"
    assert set(events["schema"]["properties"]) == {"event", "data", "id", "retry"}


class Colour(enum.Enum):
    red = "red"
    blue = "blue"


class ColourQuery(BaseModel):
    colour: Colour | None = None


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]


def test_a_query_parameter_of_an_enum_type_references_a_schema_that_exists() -> None:
    document = build_openapi(
        "T", "1", [Operation("GET", "/colours", ping, "s", "t", access="public", query=ColourQuery)]
    )

    assert unresolved_refs(document) == []


def reply_models_pydantic_must_rename() -> dict[str, list[type[BaseModel]]]:
    first = create_model("Reply", x=(int, ...), __module__="first_module")
    second = create_model("Reply", y=(str, ...), __module__="second_module")
    own_problem = create_model("Problem", code=(str, ...), __module__="some_service")
    return {"generic": [Page[Ok]], "same name": [first, second], "named Problem": [own_problem]}


@pytest.mark.parametrize("case", ["generic", "same name", "named Problem"])
def test_reply_models_whose_component_pydantic_renames_are_still_referenced_correctly(case: str) -> None:
    handlers = [ping, me]
    operations = [
        Operation("GET", f"/r{i}", handlers[i], "s", "t", access="public", response=model)
        for i, model in enumerate(reply_models_pydantic_must_rename()[case])
    ]

    document = build_openapi("T", "1", operations)

    assert unresolved_refs(document) == []


def test_the_docs_page_points_at_the_openapi_document_without_a_cdn() -> None:
    page = docs_page("FunMagic API", "/api/openapi.json")

    assert "<title>FunMagic API</title>" in page
    assert 'href="/api/openapi.json"' in page
    assert 'fetch("/api/openapi.json")' in page
    assert "{openapi_url}" not in page
    assert "{title}" not in page
    assert "<script src=" not in page
    assert "https://" not in page


def test_an_idempotency_key_is_passed_on_as_sent_and_absent_is_none() -> None:
    from aiohttp.test_utils import make_mocked_request

    from funmagic_kit.api import idempotency_key

    assert (
        idempotency_key(make_mocked_request("POST", "/", headers={"Idempotency-Key": "retry-1"})) == "retry-1"
    )
    assert idempotency_key(make_mocked_request("POST", "/")) is None


@pytest.mark.parametrize("key", ["", "x" * 201, "line\nbreak", "tab\there"])
def test_an_unusable_idempotency_key_is_422(key: str) -> None:
    with pytest.raises(HttpProblem) as refused:
        idempotency_key(make_mocked_request("POST", "/", headers={"Idempotency-Key": key}))
    assert refused.value.status == 422
