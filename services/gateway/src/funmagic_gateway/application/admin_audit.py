"""The audit log of admin writes over every service, newest first: each service keeps the writes it made
(`funmagic_kit.audit`), and this merges their pages.

Every service is asked for a page with the same filters and cursor, at once, as the admin (each checks the
role). A service's page holds its newest `limit` entries after the cursor, so the newest `limit` of all of
them are the page; the next cursor is the last entry's (`at`, `id`), which every service reads the same
way. All or nothing, like the overview: when one service cannot answer, the answer is its refusal (a 503
when it failed or is down), never a page with a service's entries missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from funmagic_contracts.api.audit import AuditedService, AuditPage, AuditQuery
from funmagic_gateway.application.ports import AuditLog, Caller
from funmagic_kit.pagination import encode_cursor

__all__ = ["AdminAudit"]


@dataclass(frozen=True)
class AdminAudit:
    logs: Mapping[AuditedService, AuditLog]

    async def page(self, caller: Caller, query: AuditQuery) -> AuditPage:
        asked = [query.service] if query.service else list(self.logs)
        answers = await asyncio.gather(
            *(self.logs[service].audit_page(caller, query) for service in asked), return_exceptions=True
        )
        pages: list[AuditPage] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            pages.append(answer)
        merged = sorted(
            (entry for page in pages for entry in page.items), key=lambda e: (e.at, e.id), reverse=True
        )
        items = merged[: query.limit]
        more = len(merged) > query.limit or any(page.next_cursor for page in pages)
        next_cursor = encode_cursor(items[-1].at, items[-1].id) if more and items else None
        return AuditPage(items=items, next_cursor=next_cursor)
