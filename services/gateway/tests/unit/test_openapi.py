"""The OpenAPI document is generated from the same operations the gateway routes: it covers every route."""

from __future__ import annotations

from openapi_spec_validator import validate

from funmagic_gateway.bootstrap import Gateway

NOT_IN_THE_API = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/.well-known/jwks.json")}


async def test_every_public_route_is_in_the_document_and_nothing_else(gateway: Gateway) -> None:
    api = gateway.api
    routed = {(r.method, r.path) for r in api.routes()} - NOT_IN_THE_API
    documented = {(method.upper(), path) for path, item in api.document["paths"].items() for method in item}

    assert routed == documented
    assert len(documented) >= 20


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
