"""`/api/admin/providers/*` (web scope, admins) and `/api/admin/admin-providers/*` (studio scope,
super_admins): the provider registry, every route a declared forward. Keys are write-only: answers carry
`api_key_hint` only. `/api/admin/step-types` (admins): what each step type can run on."""

from __future__ import annotations

from funmagic_contracts.api.providers import (
    HealthHistoryQuery,
    Provider,
    ProviderCreate,
    ProviderHealthCheckPage,
    ProviderPage,
    ProviderQuery,
    ProviderUpdate,
    StepTypeCatalog,
)
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, operations
from funmagic_kit.api import Access, Operation

__all__ = ["provider_operations"]

# The two registries: public path, service path, who may manage it, what it holds, the operationIds' noun.
REGISTRIES: tuple[tuple[str, str, Access, str, str], ...] = (
    ("/api/admin/providers", "/v1/admin/providers", "admin", "AI providers for user tools", "provider"),
    (
        "/api/admin/admin-providers",
        "/v1/admin/admin-providers",
        "super_admin",
        "AI providers for the studio",
        "studio_provider",
    ),
)


# `Business rule:` marks what refuses a request its schema allows, for the fuzz test.
_PROVIDER_RULE = (
    "Business rule: what a provider of its `type` needs (422 `invalid_provider`, naming the field): every "
    "type but `local` an API key and an http(s) `baseUrl` without query or fragment; `config` only its "
    "known keys, with a valid `rateLimit`."
)


def provider_operations(providers: ServiceClient) -> list[Operation]:
    declared: list[Forward] = []
    for public, internal, access, what, noun in REGISTRIES:
        tag = f"admin: {public.rsplit('/', 1)[-1]}"
        item, internal_item = public + "/{provider_id}", internal + "/{provider_id}"
        declared += [
            Forward("GET", public, providers, internal,
                    f"List {what}", tag, f"list_{noun}s", access=access, query=ProviderQuery,
                    reply=ProviderPage),
            Forward("POST", public, providers, internal,
                    f"Add one of the {what}", tag, f"create_{noun}", access=access, body=ProviderCreate,
                    reply=Provider, status=201, errors=(409, 422), description=_PROVIDER_RULE,
                    idempotent=True),
            Forward("GET", item, providers, internal_item,
                    f"One of the {what}", tag, f"get_{noun}", access=access, reply=Provider, errors=(404,)),
            Forward("PATCH", item, providers, internal_item,
                    f"Change one of the {what}", tag, f"update_{noun}", access=access, body=ProviderUpdate,
                    dump="exclude_unset", reply=Provider, errors=(404, 422), description=_PROVIDER_RULE),
            Forward("DELETE", item, providers, internal_item,
                    f"Remove one of the {what}", tag, f"delete_{noun}", access=access, status=204,
                    errors=(404,)),
            Forward("POST", item + "/health-check", providers, internal_item + "/health-check",
                    "Check the provider now", tag, f"check_{noun}_health", access=access, reply=Provider,
                    errors=(404,)),
            Forward("GET", item + "/health-history", providers, internal_item + "/health-history",
                    "The provider's health checks, newest first", tag, f"{noun}_health_history",
                    access=access, query=HealthHistoryQuery, reply=ProviderHealthCheckPage, errors=(404,),
                    description="Every check, asked for or periodic, of the last 30 days: when, whether it "
                                "passed, its latency and why it failed (never a key). " + CURSOR_RULE),
        ]  # fmt: skip
    declared.append(
        Forward("GET", "/api/admin/step-types", providers, "/v1/admin/step-types",
                "What each step type runs on: provider types, their models and options", "admin: providers",
                "step_types", access="admin", reply=StepTypeCatalog,
                description="The schema of a tool's step config, from the provider adapters themselves: the "
                            "admin tool editor's step form is generated from it."),
    )  # fmt: skip
    return operations(*declared)
