"""Internal HTTP API of credits, called by the gateway (health and /metrics come from the kit).

Routes acting for a user take them from the forwarded, verified access token, never from the body; admin
routes check the role again here.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from funmagic_credits.adapters.commerce import CommerceStore
from funmagic_credits.adapters.queries import balance_of, ledger_page, transactions_page
from funmagic_credits.adapters.stripe import InvalidSignature, StripeRefused
from funmagic_credits.application.commerce import Commerce, PackageUnavailable, UnknownPackage
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.domain.ledger import AdjustCredits, LedgerRuleBroken, WouldGoNegative
from funmagic_kit.api import path_uuid, read_body, read_query, require_principal, require_role
from funmagic_kit.db import UnitOfWork
from funmagic_kit.errors import TransientError
from funmagic_kit.http import HttpProblem, problem

__all__ = ["CreditsApp", "error_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2048)


class PageQuery(_Body):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,19}$")


class CheckoutBody(_Body):
    package_id: str = Field(min_length=1, max_length=64)


class AdjustmentBody(_Body):
    amount: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reason: str = Field(min_length=1, max_length=500)


class PackageBody(_Body):
    name: str = Field(min_length=1, max_length=100)
    credits: int = Field(gt=0, le=100_000_000)
    price_minor: int = Field(ge=0, le=100_000_000)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stripe_price_id: str | None = Field(None, max_length=100)
    is_active: bool = True
    sort_order: int = Field(0, ge=-1_000_000, le=1_000_000)


def error_middleware() -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Maps credits' refusals to HTTP, here and only here."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except WouldGoNegative as error:
            return problem(409, "Conflict", str(error), code="would_go_negative")
        except LedgerRuleBroken as error:
            return problem(422, "Unprocessable Content", str(error), code="invalid_amount")
        except InvalidSignature as error:
            return problem(400, "Bad Request", str(error), code="invalid_signature")
        except UnknownPackage as error:
            # Checking out an unknown package is a missing resource; a paid session naming one is bad input.
            status = 404 if request.path == "/v1/checkout" else 400
            return problem(
                status, "Not Found" if status == 404 else "Bad Request", str(error), code="unknown_package"
            )
        except PackageUnavailable as error:
            return problem(409, "Conflict", str(error), code="package_unavailable")
        except StripeRefused as error:
            return problem(502, "Bad Gateway", str(error), code="payment_provider_refused")
        except TransientError as error:
            return problem(503, "Service Unavailable", str(error), code="unavailable")

    return middleware


class CreditsApp:
    def __init__(self, *, pool: Any, ledger: Ledger, commerce: Commerce, clock: Any) -> None:
        self._pool = pool
        self._ledger = ledger
        self._commerce = commerce
        self._clock = clock

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get("/v1/credits/me", self.my_balance),
            web.get("/v1/credits/me/transactions", self.my_transactions),
            web.get("/v1/packages", self.active_packages),
            web.post("/v1/checkout", self.checkout),
            web.post("/v1/webhooks/stripe", self.stripe_webhook),
            web.get("/v1/admin/users/{user_id}/credits", self.user_credits),
            web.get("/v1/admin/users/{user_id}/ledger", self.user_ledger),
            web.post("/v1/admin/users/{user_id}/adjustments", self.adjust),
            web.get("/v1/admin/packages", self.all_packages),
            web.post("/v1/admin/packages", self.add_package),
            web.put("/v1/admin/packages/{package_id}", self.update_package),
            web.delete("/v1/admin/packages/{package_id}", self.delete_package),
        ]

    # --- the caller's own credits --------------------------------------------------------------------

    async def my_balance(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        async with self._pool.connection() as conn:
            return web.json_response(await balance_of(conn, principal.user_id))

    async def my_transactions(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, PageQuery)
        async with self._pool.connection() as conn:
            page = await transactions_page(
                conn, principal.user_id, limit=query.limit, before=_cursor(query.cursor)
            )
        return web.json_response(page)

    async def active_packages(self, request: web.Request) -> web.Response:
        async with self._pool.connection() as conn:
            packages = await CommerceStore(conn).packages(active_only=True)
        return web.json_response({"items": [_package_view(p) for p in packages]})

    async def checkout(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        body = await read_body(request, CheckoutBody)
        key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        result = await self._commerce.checkout(principal.user_id, body.package_id, key[:200])
        return web.json_response(result, status=201)

    async def stripe_webhook(self, request: web.Request) -> web.Response:
        payload = await request.read()
        outcome = await self._commerce.handle_webhook(payload, request.headers.get("Stripe-Signature", ""))
        return web.json_response({"received": True, "outcome": outcome.status})

    # --- administration ------------------------------------------------------------------------------

    async def user_credits(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        user_id = path_uuid(request, "user_id", "user")
        query = read_query(request, PageQuery)
        async with self._pool.connection() as conn:
            balance = await balance_of(conn, user_id)
            transactions = await transactions_page(
                conn, user_id, limit=query.limit, before=_cursor(query.cursor)
            )
        return web.json_response({**balance, "transactions": transactions})

    async def user_ledger(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, PageQuery)
        async with self._pool.connection() as conn:
            page = await ledger_page(
                conn, path_uuid(request, "user_id", "user"), limit=query.limit, before=_cursor(query.cursor)
            )
        return web.json_response(page)

    async def adjust(self, request: web.Request) -> web.Response:
        admin = require_role(request, "admin")
        body = await read_body(request, AdjustmentBody)
        user_id = path_uuid(request, "user_id", "user")
        # A retried request (same Idempotency-Key) adjusts once.
        reference = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        command = AdjustCredits(user_id, body.amount, admin.user_id, body.reason.strip(), reference[:200])
        async with UnitOfWork(self._pool) as uow:
            await self._ledger.execute(uow.conn, command)
        async with self._pool.connection() as conn:
            return web.json_response(await balance_of(conn, user_id), status=201)

    async def all_packages(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        async with self._pool.connection() as conn:
            packages = await CommerceStore(conn).packages(active_only=False)
        return web.json_response({"items": [_package_view(p) for p in packages]})

    async def add_package(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await read_body(request, PackageBody)
        async with UnitOfWork(self._pool) as uow:
            package = await CommerceStore(uow.conn).add_package(body.model_dump(), self._clock.now())
        return web.json_response(_package_view(package), status=201)

    async def update_package(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await read_body(request, PackageBody)
        async with UnitOfWork(self._pool) as uow:
            package = await CommerceStore(uow.conn).update_package(
                request.match_info["package_id"], body.model_dump(), self._clock.now()
            )
        if package is None:
            raise HttpProblem(404, "Not Found", "no such credit package")
        return web.json_response(_package_view(package))

    async def delete_package(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        async with UnitOfWork(self._pool) as uow:
            deleted = await CommerceStore(uow.conn).delete_package(
                request.match_info["package_id"], self._clock.now()
            )
        if not deleted:
            raise HttpProblem(404, "Not Found", "no such credit package")
        return web.Response(status=204)


def _package_view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat()}


def _cursor(value: str | None) -> int | None:
    return int(value) if value else None
