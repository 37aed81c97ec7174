"""The merged audit log: each service's page in, the newest `limit` of all of them out, a cursor that every
service reads the same way, and no page when a service cannot answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from funmagic_contracts.api.audit import AuditEntry, AuditPage, AuditQuery
from funmagic_contracts.ids import uuid7
from funmagic_gateway.application.admin_audit import AdminAudit
from funmagic_gateway.application.ports import Caller
from funmagic_kit.errors import TransientError
from funmagic_kit.pagination import decode_cursor

START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def entry(service: str, minute: int) -> AuditEntry:
    return AuditEntry(
        id=str(uuid7()), at=START + timedelta(minutes=minute), service=service, actor_id="admin",
        action="tool.updated", subject_type="tool", subject_id=f"{service}-{minute}", changes={},
    )  # fmt: skip


@dataclass
class FakeLog:
    """A service's log: its entries newest first, paged after the cursor like the kit's route."""

    entries: list[AuditEntry]
    asked: list[AuditQuery] = field(default_factory=list)
    down: bool = False

    async def audit_page(self, caller: Caller, query: AuditQuery) -> AuditPage:
        self.asked.append(query)
        if self.down:
            raise TransientError("tasks failed to answer; retry")
        newest = sorted(self.entries, key=lambda e: (e.at, e.id), reverse=True)
        if query.cursor:
            at, last_id = decode_cursor(query.cursor, datetime, UUID)
            newest = [e for e in newest if (e.at, UUID(e.id)) < (at, UUID(last_id))]
        page = newest[: query.limit]
        return AuditPage(items=page, next_cursor="more" if len(newest) > query.limit else None)


async def test_pages_hold_the_newest_entries_of_all_services_and_walk_each_once() -> None:
    logs = {
        "credits": FakeLog([entry("credits", m) for m in (1, 4, 5)]),
        "identity": FakeLog([entry("identity", m) for m in (2, 3, 6)]),
    }
    audit = AdminAudit(logs)  # type: ignore[arg-type]

    walked: list[AuditEntry] = []
    cursor = None
    while True:
        page = await audit.page(Caller(), AuditQuery(limit=2, cursor=cursor))
        walked += page.items
        cursor = page.next_cursor
        if cursor is None:
            break

    assert [e.subject_id for e in walked] == [
        "identity-6", "credits-5", "credits-4", "identity-3", "identity-2", "credits-1",
    ]  # fmt: skip


async def test_a_service_filter_asks_that_service_only() -> None:
    credits, identity = FakeLog([entry("credits", 1)]), FakeLog([entry("identity", 2)])
    audit = AdminAudit({"credits": credits, "identity": identity})  # type: ignore[arg-type]

    page = await audit.page(Caller(), AuditQuery(service="credits"))

    assert [e.service for e in page.items] == ["credits"]
    assert identity.asked == []


async def test_a_service_that_cannot_answer_makes_the_whole_page_fail() -> None:
    audit = AdminAudit(
        {"credits": FakeLog([entry("credits", 1)]), "tasks": FakeLog([], down=True)}  # type: ignore[dict-item]
    )
    with pytest.raises(TransientError):
        await audit.page(Caller(), AuditQuery())
