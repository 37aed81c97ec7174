"""The OpenAPI document is generated from the same operations the gateway routes: it covers every route."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from openapi_spec_validator import validate

from funmagic_gateway.bootstrap import Gateway
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE

NOT_IN_THE_API = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/.well-known/jwks.json")}


async def test_every_public_route_is_in_the_document_and_nothing_else(gateway: Gateway) -> None:
    api = gateway.api
    routed = {(r.method, _without_patterns(r.path)) for r in api.routes()} - NOT_IN_THE_API
    documented = {(method.upper(), path) for path, item in api.document["paths"].items() for method in item}

    assert routed == documented
    assert len(documented) >= 20


def _without_patterns(path: str) -> str:
    return re.sub(r"{(\w+):[^{}]+}", r"{\1}", path)


async def test_a_path_allows_exactly_the_methods_documented_for_it(gateway: Gateway) -> None:
    # A literal path such as /api/assets/uploads must not also be read as /api/assets/{asset_id}: OPTIONS
    # (and a wrong method's 405) would then list the sibling's methods as well.
    app = web.Application()
    app.add_routes(gateway.api.routes())
    for path, item in gateway.api.document["paths"].items():
        concrete = re.sub(r"{\w+}", "7d1f1f8e-3f3c-4c8a-9a51-0c2b2f4b9e10", path)
        match = await app.router.resolve(make_mocked_request("OPTIONS", concrete, app=app))
        assert isinstance(match.http_exception, web.HTTPMethodNotAllowed), path
        allowed = set(match.http_exception.allowed_methods) - {"HEAD"}  # aiohttp answers HEAD for each GET
        assert allowed == {method.upper() for method in item}, path


async def test_the_document_is_valid_openapi_3_1(gateway: Gateway) -> None:
    validate(gateway.api.document)
    assert gateway.api.document["openapi"] == "3.1.0"


async def test_protected_operations_declare_their_security_and_errors(gateway: Gateway) -> None:
    paths = gateway.api.document["paths"]
    session = paths["/api/auth/session"]["get"]
    role = paths["/api/admin/users/{user_id}/role"]["put"]
    sign_in = paths["/api/auth/sign-in/email"]["post"]

    assert session["security"] == [{"bearer": []}, {"cookie": []}]
    assert "401" in session["responses"]
    assert {"401", "403"} <= set(role["responses"])
    assert "security" not in sign_in
    assert {"400", "413", "415", "422", "429"} <= set(sign_in["responses"])
    assert sign_in["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SignInRequest"
    }


async def test_every_operation_says_who_may_call_it_and_whose_object_it_names(gateway: Gateway) -> None:
    """The authorisation matrix (tests/e2e/test_authorization_matrix.py) checks these against the running
    platform; here, that none is missing: a user's route naming an object must say whose it is."""
    for path, item in gateway.api.document["paths"].items():
        for method, operation in item.items():
            assert operation["x-access"] in ("public", "user", "admin", "super_admin"), (method, path)
            if operation["x-access"] == "user" and "{" in path:
                assert operation["x-owner"] in ("caller", "caller_or_admin", "admin"), (method, path)
    paths = gateway.api.document["paths"]
    assert paths["/api/admin/users/{user_id}/role"]["put"]["x-access"] == "super_admin"
    assert paths["/api/admin/studio/chats/{chat_id}"]["get"]["x-owner"] == "admin"
    assert paths["/api/assets/{asset_id}"]["delete"]["x-owner"] == "caller"


def _answer_schema(document: dict, method: str, path: str, status: str = "200") -> dict | None:
    content = document["paths"][path][method]["responses"][status].get("content")
    return content["application/json"]["schema"] if content else None


async def test_the_routes_of_backend_parity_are_documented_with_their_answers(gateway: Gateway) -> None:
    document = gateway.api.document
    ref = "#/components/schemas/{}".format
    answers = {
        ("get", "/api/tasks"): ref("CreationPage"),
        ("get", "/api/tasks/{task_id}"): ref("TaskDetail"),
        ("get", "/api/admin/tasks/{task_id}"): ref("TaskDetail"),
        ("get", "/api/admin/users/{user_id}/overview"): ref("AdminUserOverview"),
        ("get", "/api/admin/tool-types/{type_id}/active-tools-count"): ref("ActiveToolsCount"),
        ("get", "/api/assets"): ref("AssetPage"),
        ("get", "/api/admin/settings/rate-limit"): ref("RateLimitSettings"),
        ("get", "/api/admin/stats/overview"): ref("AdminStatsOverview"),
        ("get", "/api/admin/stats/tasks"): ref("TaskStats"),
        ("get", "/api/admin/stats/credits"): ref("CreditStats"),
    }
    for (method, path), schema in answers.items():
        assert _answer_schema(document, method, path) == {"$ref": schema}, (method, path)
    for path in ("/api/tasks/{task_id}", "/api/admin/tasks/{task_id}"):
        assert "204" in document["paths"][path]["delete"]["responses"]
        assert _answer_schema(document, "delete", path, "204") is None
    schemas = document["components"]["schemas"]
    assert "thumbnail_url" in schemas["Creation"]["properties"]
    assert "url" in schemas["OutputAsset"]["properties"]
    assert "session_count" in schemas["UserView"]["properties"]
    assert "tiers" in schemas["RateLimitSettings"]["properties"]
    assert {"name", "min_purchased", "multiplier"} <= set(schemas["RateLimitTier"]["properties"])
    assert "kind" in {p["name"] for p in document["paths"]["/api/assets"]["get"]["parameters"]}
    assert "category" in {p["name"] for p in document["paths"]["/api/tasks"]["get"]["parameters"]}
    assert "counts" in schemas["AssetPage"]["properties"]
    for public in ("ToolSummary", "BannerView"):
        assert "thumbnail_url" in schemas[public]["properties"], public
    assert "image_url" in schemas["PublicStyleReference"]["properties"]


async def test_the_admin_stats_routes_take_the_window_and_say_who_may_read_them(gateway: Gateway) -> None:
    document = gateway.api.document
    for path in ("/api/admin/stats/overview", "/api/admin/stats/tasks", "/api/admin/stats/credits"):
        operation = document["paths"][path]["get"]
        (window,) = [p for p in operation["parameters"] if p["name"] == "window"]
        assert window["schema"]["enum"] == ["1h", "24h", "7d", "30d"], path
        assert window["schema"]["default"] == "24h", path
        assert {"401", "403", "422"} <= set(operation["responses"]), path
    assert "503" in document["paths"]["/api/admin/stats/overview"]["get"]["responses"]
    schemas = document["components"]["schemas"]
    assert {"series", "success_rate", "active_users", "by_status"} <= set(schemas["TaskStats"]["properties"])
    assert {"credits_sold", "revenue", "credits_spent"} <= set(schemas["CreditStats"]["properties"])
    assert {"is_healthy", "health_checked_at"} <= set(schemas["ProviderHealth"]["properties"])


async def test_my_sessions_are_documented_as_a_paginated_list(gateway: Gateway) -> None:
    """As every list of the platform: `limit` (20 by default, at most 100) and the `cursor` a page gave, an
    answer with its `next_cursor`, and the rule that refuses any other cursor."""
    document = gateway.api.document
    operation = document["paths"]["/api/auth/sessions"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}

    assert set(parameters) == {"limit", "cursor"}
    assert all(p["in"] == "query" and not p.get("required") for p in parameters.values())
    limit = parameters["limit"]["schema"]
    assert (limit["default"], limit["minimum"], limit["maximum"]) == (20, 1, 100)
    answer = _answer_schema(document, "get", "/api/auth/sessions")
    assert answer == {"$ref": "#/components/schemas/SessionList"}
    assert {"items", "next_cursor"} <= set(document["components"]["schemas"]["SessionList"]["properties"])
    assert CURSOR_RULE in operation["description"]
    assert "422" in operation["responses"]
