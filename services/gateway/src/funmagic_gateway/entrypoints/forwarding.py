"""Forwarding a public request to an internal service: the caller's token, address and agent go along."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from funmagic_gateway.adapters.services import ServiceClient, ServiceReply
from funmagic_gateway.entrypoints.edge import CLIENT_IP_KEY
from funmagic_kit.api import json_body
from funmagic_kit.http import HttpProblem
from funmagic_kit.request_keys import PRINCIPAL_KEY

__all__ = ["forward", "idempotency_key_header", "relay", "safe_id"]


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
    principal = request.get(PRINCIPAL_KEY)
    return await service.call(
        method,
        path,
        json_body=payload,
        params=params,
        extra_headers=extra_headers,
        user_token=principal.token if principal else None,
        client_ip=request.get(CLIENT_IP_KEY) or request.remote,
        user_agent=request.headers.get("User-Agent"),
    )


async def relay(
    service: ServiceClient,
    request: web.Request,
    method: str,
    path: str,
    model: type[BaseModel] | None,
    **kwargs: Any,
) -> web.Response:
    """Forward, then answer with the service's reply validated by `model` (or its problem)."""
    reply = await forward(service, request, method, path, **kwargs)
    reply.raise_for_problem()
    if model is None or reply.body is None:
        return web.Response(status=reply.status)
    return json_body(model.model_validate(reply.body), status=reply.status)


def idempotency_key_header(request: web.Request) -> dict[str, str] | None:
    """The client's `Idempotency-Key`, checked, to pass along (a retried POST then acts once)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 200 and key.isprintable()):
        raise HttpProblem(422, "Unprocessable Content", "Idempotency-Key must be 1–200 printable characters")
    return {"Idempotency-Key": key}


def safe_id(value: str) -> str:
    """Path segments forwarded to a service: letters, digits, `-` and `_` only (no `../`, no query)."""
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_" for c in value):
        raise HttpProblem(404, "Not Found", "no such resource")
    return value
