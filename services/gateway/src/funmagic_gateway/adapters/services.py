"""Calls from the gateway to the internal services: the internal credential, the user's token, the client.

Replies are returned as they are (status and JSON), so a service's problem+json reaches the client
unchanged; an unreachable service becomes a 503 problem.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from funmagic_kit.auth import INTERNAL_TOKEN_HEADER
from funmagic_kit.http import HttpProblem
from funmagic_kit.logs import current_correlation_id

__all__ = ["ServiceClient", "ServiceReply"]

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
