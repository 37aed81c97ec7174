"""Calls from the gateway to the internal services: the internal credential, the user's token, the client.

Replies are returned as they are (status and JSON), so a service's problem+json reaches the client
unchanged; an unreachable service becomes a 503 problem.

Below `ServiceClient`, the clients of the application's ports (`application.ports`): each calls one
service route and reads its answer with the shared model. A part the gateway composes refuses as the
service did, but a service that failed (5xx) is a 503: it is the gateway's dependency that is down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from funmagic_contracts.api.audit import AuditPage, AuditQuery
from funmagic_contracts.api.credits import AdminUserCredits, CreditStats, LifetimePurchases
from funmagic_contracts.api.identity import UserView
from funmagic_contracts.api.providers import Provider, ProviderPage
from funmagic_contracts.api.stats import StatsQuery
from funmagic_contracts.api.storage import AssetUrl, AssetUrls, AssetUrlsRequest
from funmagic_contracts.api.tasks import AdminTaskQuery, TaskPage, TaskQuery, TaskStats
from funmagic_gateway.application.ports import Caller
from funmagic_gateway.application.views import CreationPage, TaskDetail
from funmagic_gateway.domain.rate_limits import RateLimitSettings
from funmagic_kit.auth import INTERNAL_TOKEN_HEADER
from funmagic_kit.http import HttpProblem
from funmagic_kit.logs import current_correlation_id

__all__ = [
    "CreditsClient",
    "IdentityClient",
    "ProvidersClient",
    "ServiceClient",
    "ServiceReply",
    "StorageClient",
    "TasksClient",
    "query_params",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

log = logging.getLogger(__name__)


# Headers of a service's reply that mean something to the gateway's caller.
PASSED_THROUGH_HEADERS = ("Retry-After",)


@dataclass(frozen=True)
class ServiceReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_problem(self) -> None:
        """Turn a service's error reply into the same problem for the gateway's caller."""
        if self.ok:
            return
        body = self.body if isinstance(self.body, dict) else {}
        extensions = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail")}
        raise HttpProblem(
            self.status,
            str(body.get("title") or "Upstream Error"),
            body.get("detail"),
            headers=self.headers,
            **extensions,
        )


@dataclass(frozen=True)
class ServiceClient:
    """One internal service (`name` in logs and problems) at `base_url`, called over the shared `session`
    with the internal credential."""

    name: str
    base_url: str
    internal_token: str
    session: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw_body: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        user_token: str | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> ServiceReply:
        headers = {INTERNAL_TOKEN_HEADER: self.internal_token}
        if user_token:
            headers["Authorization"] = f"Bearer {user_token}"
        if client_ip:
            headers["X-Client-Ip"] = client_ip
        if user_agent:
            headers["X-Client-User-Agent"] = user_agent[:512]
        headers.update(extra_headers or {})
        correlation_id = current_correlation_id()
        if correlation_id:
            headers["X-Request-Id"] = correlation_id
        try:
            async with self.session.request(
                method,
                f"{self.base_url.rstrip('/')}{path}",
                json=json_body if raw_body is None else None,
                data=raw_body,
                params=params,
                headers=headers,
            ) as response:
                text = await response.text()
                status = response.status
                headers = {h: response.headers[h] for h in PASSED_THROUGH_HEADERS if h in response.headers}
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("service unreachable", extra={"service": self.name, "error": type(error).__name__})
            raise HttpProblem(503, "Service Unavailable", f"{self.name} is not reachable; retry") from None
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if status >= 500:
            log.warning("service failed", extra={"service": self.name, "status": status, "path": path})
        return ServiceReply(status, body, headers)


def query_params(query: BaseModel) -> dict[str, str]:
    """A validated query as the string parameters a service reads (`true`/`false` for booleans)."""
    return {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in query.model_dump(mode="json", exclude_none=True).items()
    }


def _read(reply: ServiceReply, model: type[ModelT], service: str) -> ModelT:
    """The answer as `model`; the service's refusal as it is; a failure of the service (5xx) a 503."""
    if reply.status >= 500:
        raise HttpProblem(
            503,
            "Service Unavailable",
            f"{service} failed to answer; retry",
            headers={"Retry-After": reply.headers.get("Retry-After", "2")},
        )
    reply.raise_for_problem()
    return model.model_validate(reply.body)


async def _call(
    service: ServiceClient,
    caller: Caller,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    payload: Any = None,
) -> ServiceReply:
    return await service.call(
        method,
        path,
        json_body=payload,
        params=params,
        user_token=caller.token,
        client_ip=caller.client_ip,
        user_agent=caller.user_agent,
    )


@dataclass(frozen=True)
class TasksClient:
    service: ServiceClient

    async def my_tasks(self, caller: Caller, query: TaskQuery) -> CreationPage:
        reply = await _call(self.service, caller, "GET", "/v1/tasks", params=query_params(query))
        return _read(reply, CreationPage, self.service.name)

    async def task(self, caller: Caller, task_id: str) -> TaskDetail:
        reply = await _call(self.service, caller, "GET", f"/v1/tasks/{task_id}")
        return _read(reply, TaskDetail, self.service.name)

    async def search(self, caller: Caller, query: AdminTaskQuery) -> TaskPage:
        reply = await _call(self.service, caller, "GET", "/v1/admin/tasks", params=query_params(query))
        return _read(reply, TaskPage, self.service.name)

    async def task_stats(self, caller: Caller, query: StatsQuery) -> TaskStats:
        reply = await _call(self.service, caller, "GET", "/v1/admin/stats/tasks", params=query_params(query))
        return _read(reply, TaskStats, self.service.name)


@dataclass(frozen=True)
class StorageClient:
    service: ServiceClient

    async def urls(self, user_id: str, asset_ids: Sequence[str]) -> Mapping[str, AssetUrl]:
        """Asked with the gateway's own credential: the owner is named, whoever is calling."""
        body = AssetUrlsRequest(user_id=user_id, asset_ids=list(asset_ids)).model_dump()
        reply = await _call(self.service, Caller(), "POST", "/v1/internal/assets/urls", payload=body)
        return _read(reply, AssetUrls, self.service.name).urls


@dataclass(frozen=True)
class IdentityClient:
    service: ServiceClient
    # Where the rate-limit settings are kept (identity's internal settings route).
    settings_path: str = "/v1/internal/settings/rate-limit"

    async def user(self, caller: Caller, user_id: str) -> UserView:
        reply = await _call(self.service, caller, "GET", f"/v1/users/{user_id}")
        return _read(reply, UserView, self.service.name)

    async def load(self) -> RateLimitSettings | None:
        """The stored rate limits (None: never stored). A stored document this gateway cannot read is a
        ValueError (pydantic's ValidationError)."""
        reply = await _call(self.service, Caller(), "GET", self.settings_path)
        if (
            reply.status == 404
            and isinstance(reply.body, dict)
            and reply.body.get("code") == "setting_not_set"
        ):
            return None
        return _read(reply, RateLimitSettings, self.service.name)

    async def save(self, settings: RateLimitSettings, caller: Caller) -> None:
        """Stored whole; the caller's token goes along so identity records whose change it is."""
        payload = settings.model_dump(mode="json")
        reply = await _call(self.service, caller, "PUT", self.settings_path, payload=payload)
        _read(reply, RateLimitSettings, self.service.name)


@dataclass(frozen=True)
class CreditsClient:
    service: ServiceClient

    async def user_credits(self, caller: Caller, user_id: str, *, transactions: int) -> AdminUserCredits:
        path, params = f"/v1/admin/users/{user_id}/credits", {"limit": str(transactions)}
        reply = await _call(self.service, caller, "GET", path, params=params)
        return _read(reply, AdminUserCredits, self.service.name)

    async def credit_stats(self, caller: Caller, query: StatsQuery) -> CreditStats:
        params = query_params(query)
        reply = await _call(self.service, caller, "GET", "/v1/admin/stats/credits", params=params)
        return _read(reply, CreditStats, self.service.name)

    async def lifetime_purchased(self, user_id: str) -> int:
        path = f"/v1/internal/users/{user_id}/purchases"
        reply = await _call(self.service, Caller(), "GET", path)
        return _read(reply, LifetimePurchases, self.service.name).lifetime_purchased


@dataclass(frozen=True)
class ProvidersClient:
    service: ServiceClient
    # The registry's largest page: the admin overview shows every provider of user tools at once.
    page_size: int = 200

    async def web_providers(self, caller: Caller) -> Sequence[Provider]:
        """Every web-scope provider, page after page (one page but for a very large registry)."""
        found: list[Provider] = []
        params = {"limit": str(self.page_size)}
        while True:
            reply = await _call(self.service, caller, "GET", "/v1/admin/providers", params=params)
            page = _read(reply, ProviderPage, self.service.name)
            found += page.items
            if not page.next_cursor or not page.items:
                return found
            params = {**params, "cursor": page.next_cursor}


@dataclass(frozen=True)
class AuditClient:
    """One service's audit log (`GET /v1/admin/audit`, served alike by every service)."""

    service: ServiceClient

    async def audit_page(self, caller: Caller, query: AuditQuery) -> AuditPage:
        # The service filter is the gateway's own: each service answers for itself.
        params = query_params(query.model_copy(update={"service": None}))
        reply = await _call(self.service, caller, "GET", "/v1/admin/audit", params=params)
        return _read(reply, AuditPage, self.service.name)
