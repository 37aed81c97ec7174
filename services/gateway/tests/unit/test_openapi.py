"""The OpenAPI document is generated from the same operations the gateway routes: it covers every route."""

from __future__ import annotations

import aiohttp
from openapi_spec_validator import validate

from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.auth import CookiePolicy
from funmagic_gateway.entrypoints.auth_routes import AuthRoutes
from funmagic_gateway.entrypoints.catalog_routes import CatalogRoutes
from funmagic_gateway.entrypoints.credits_routes import CreditsRoutes
from funmagic_gateway.entrypoints.http import PublicApi, rate_limit_operations
from funmagic_gateway.entrypoints.provider_routes import ProviderRoutes
from funmagic_gateway.entrypoints.sse_routes import SseRoutes
from funmagic_gateway.entrypoints.storage_routes import StorageRoutes
from funmagic_gateway.entrypoints.task_routes import TaskRoutes

NOT_IN_THE_API = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/.well-known/jwks.json")}


async def _public_api() -> tuple[PublicApi, aiohttp.ClientSession]:
    http = aiohttp.ClientSession()  # never used: building the document makes no calls
    identity = ServiceClient("identity", "http://127.0.0.1:1", "x" * 32, http)
    auth = AuthRoutes(identity, CookiePolicy(secure=True, domain=None, samesite="Lax"), app_url="http://app")
    credits = ServiceClient("credits", "http://127.0.0.1:1", "x" * 32, http)
    operations = [
        *auth.operations(),
        *CreditsRoutes(credits).operations(),
        *StorageRoutes(credits).operations(),
        *ProviderRoutes(credits).operations(),
        *CatalogRoutes(credits).operations(),
        *TaskRoutes(credits).operations(),
        *SseRoutes(None, None).operations(),  # type: ignore[arg-type]
        *rate_limit_operations(store=None),  # type: ignore[arg-type]
    ]
    return PublicApi(operations, identity), http


async def test_every_public_route_is_in_the_document_and_nothing_else() -> None:
    api, http = await _public_api()
    async with http:
        routed = {(r.method, r.path) for r in api.routes()} - NOT_IN_THE_API
        documented = {
            (method.upper(), path) for path, item in api.document["paths"].items() for method in item
        }

    assert routed == documented
    assert len(documented) >= 20


async def test_the_document_is_valid_openapi_3_1() -> None:
    api, http = await _public_api()
    async with http:
        validate(api.document)
        assert api.document["openapi"] == "3.1.0"


async def test_protected_operations_declare_their_security_and_errors() -> None:
    api, http = await _public_api()
    async with http:
        session = api.document["paths"]["/api/auth/session"]["get"]
        role = api.document["paths"]["/api/admin/users/{user_id}/role"]["put"]
        sign_in = api.document["paths"]["/api/auth/sign-in/email"]["post"]

    assert session["security"] == [{"bearer": []}, {"cookie": []}]
    assert "401" in session["responses"]
    assert {"401", "403"} <= set(role["responses"])
    assert "security" not in sign_in
    assert {"400", "413", "415", "422", "429"} <= set(sign_in["responses"])
    assert sign_in["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SignInRequest"
    }
