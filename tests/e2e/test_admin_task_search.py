"""The admin task search by creation date: `created_from` ≤ created_at < `created_to`, with the other
filters and keyset pages as before; a period that ends before it starts is refused at the edge."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from clients import png, upload
from test_backend_parity import api, completed_task, new_user

pytestmark = pytest.mark.usefixtures("seeded_tools")


async def test_tasks_are_found_by_the_period_they_were_created_in(admin_token: str) -> None:
    user = await new_user("date-search")
    image = await upload(user["token"], png())
    first = await completed_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    second = await completed_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    first_at = datetime.fromisoformat(first["created_at"])
    second_at = datetime.fromisoformat(second["created_at"])
    assert first_at < second_at

    async def found(**period: datetime) -> list[str]:
        params = {"user_id": user["id"], **{name: at.isoformat() for name, at in period.items()}}
        status, page, _ = await api("GET", "/api/admin/tasks", admin_token, params=params)
        assert status == 200, page
        return [task["id"] for task in page["items"]]

    assert await found(created_from=first_at, created_to=second_at) == [first["id"]]
    assert await found(created_from=second_at) == [second["id"]]
    assert await found(created_to=first_at) == []
    assert await found(created_from=first_at - timedelta(hours=1)) == [second["id"], first["id"]]

    status, problem, _ = await api(
        "GET", "/api/admin/tasks", admin_token,
        params={"created_from": second_at.isoformat(), "created_to": first_at.isoformat()},
    )  # fmt: skip
    assert status == 422, problem
    assert "created_to" in str(problem)
