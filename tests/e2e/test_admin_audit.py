"""The audit log of admin writes, end to end through the gateway: every admin write of every service is
found at `/api/admin/audit` with who did it, what changed and why; secrets never; a retried adjustment is
one entry; pages walk the merged log once, newest first; who may read it."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
from clients import E2E_PORT_BASE, PASSWORD, bearer, browser, call, png, upload
from run_services import PORT_OFFSETS

from funmagic_contracts.api.audit import AUDITED_SERVICES

pytestmark = pytest.mark.usefixtures("seeded_tools")

AUDIT = "/api/admin/audit"
# Keys ending in letters no UUID, time or name in the log has: their last four characters (the hint the
# providers API shows) can only be in an answer if the key leaked.
SECRET_KEY = "sk-audit-secret-" + uuid.uuid4().hex[:8] + "QzKw"
NEW_KEY = "sk-audit-rotated-" + uuid.uuid4().hex[:8] + "WyXv"


def slow_step() -> dict[str, Any]:
    """A step on the local provider that runs for half a minute: its task is still running when cancelled."""
    return {
        "id": "slow", "name": "Slow", "type": "remove-bg", "cost": 3,
        "provider": {"name": "local", "model": "default", "options": {"durationMs": 30_000}},
        "input": {"image": "required", "prompt": "none"},
    }  # fmt: skip


async def api(method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    async with browser() as client:
        status, body, _ = await call(client, method, path, headers=headers, **kwargs)
    return status, body


async def new_user(prefix: str = "audit") -> dict[str, str]:
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    status, account = await api(
        "POST", "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "mode": "token"}
    )
    assert status == 201, account
    return {"id": account["user"]["id"], "token": account["access_token"], "email": email}


async def me(token: str) -> str:
    status, session = await api("GET", "/api/auth/session", token)
    assert status == 200, session
    return session["user"]["id"]


async def entries(token: str, **filters: str) -> list[dict[str, Any]]:
    status, page = await api("GET", AUDIT, token, params={"limit": "200", **filters})
    assert status == 200, page
    return page["items"]


async def test_only_admins_and_super_admins_may_read_the_audit_log(platform, admin_token: str) -> None:
    user, promoted = await new_user(), await new_user()
    status, _ = await api(
        "PUT", f"/api/admin/users/{promoted['id']}/role", admin_token, json={"role": "admin"}
    )
    assert status == 200
    status, signed_in = await api(
        "POST", "/api/auth/sign-in/email",
        json={"email": promoted["email"], "password": PASSWORD, "mode": "token"},
    )  # fmt: skip
    assert status in (200, 201), signed_in
    tokens = {"anonymous": None, "user": user["token"], "admin": signed_in["access_token"],
              "super_admin": admin_token}  # fmt: skip
    statuses = {who: (await api("GET", AUDIT, token))[0] for who, token in tokens.items()}
    assert statuses == {"anonymous": 401, "user": 403, "admin": 200, "super_admin": 200}
    # Each service's own log checks the role too (the gateway is not the only guard).
    for service in AUDITED_SERVICES:
        url = f"http://127.0.0.1:{E2E_PORT_BASE + PORT_OFFSETS[service]}/v1/admin/audit"
        assert await _status_at(url, user["token"]) == 403, service
        assert await _status_at(url, admin_token) == 200, service
    status, problem = await api("GET", AUDIT, admin_token, params={"cursor": "not-a-cursor"})
    assert (status, problem["code"]) == (422, "invalid_cursor"), problem


async def test_every_admin_write_is_in_the_audit_log_with_who_what_and_why(
    platform, admin_token: str
) -> None:
    admin_id = await me(admin_token)
    customer = await new_user("audit-customer")

    # identity: a role change (to super_admin and back), a disable and an enable with their reason
    for role in ("super_admin", "user"):
        status, body = await api(
            "PUT", f"/api/admin/users/{customer['id']}/role", admin_token, json={"role": role}
        )
        assert status == 200, body
    for verb in ("disable", "enable"):
        status, body = await api(
            "POST", f"/api/admin/users/{customer['id']}/{verb}", admin_token, json={"reason": f"audit {verb}"}
        )
        assert status == 200, body
    # identity keeps the gateway's rate limits: stored again as they are, still an admin's write
    status, limits = await api("GET", "/api/admin/settings/rate-limit", admin_token)
    assert status == 200, limits
    status, body = await api("PUT", "/api/admin/settings/rate-limit", admin_token, json=limits)
    assert status == 200, body
    # credits: one adjustment, sent twice with one Idempotency-Key; a package created, changed, deleted
    key = {"Idempotency-Key": f"audit-{uuid.uuid4()}"}
    for _ in range(2):
        status, body = await api(
            "POST", f"/api/admin/users/{customer['id']}/credits", admin_token, headers=key,
            json={"amount": 7, "reason": "goodwill"},
        )  # fmt: skip
        assert status == 201, body
    package_fields = {"name": "Audit pack", "credits": 10, "price_minor": 100, "currency": "USD"}
    status, package = await api("POST", "/api/admin/credit-packages", admin_token, json=package_fields)
    assert status == 201, package
    package_item = f"/api/admin/credit-packages/{package['id']}"
    status, body = await api("PUT", package_item, admin_token, json={**package_fields, "price_minor": 150})
    assert status == 200, body
    status, body = await api("DELETE", package_item, admin_token)
    assert status == 204, body
    # providers: a provider with a key, then its key replaced and its limits changed
    name = f"audit-{uuid.uuid4().hex[:8]}"
    status, provider = await api(
        "POST",
        "/api/admin/providers",
        admin_token,
        json={"name": name, "type": "openai", "api_key": SECRET_KEY, "base_url": "http://127.0.0.1:9/v1"},
    )
    assert status == 201, provider
    status, body = await api(
        "PATCH", f"/api/admin/providers/{provider['id']}", admin_token,
        json={"api_key": NEW_KEY, "config": {"rateLimit": {"maxConcurrency": 2}}},
    )  # fmt: skip
    assert status == 200, body
    # tasks: a tool type, a tool and a banner, each created and changed; the cancel of a customer's
    # running task by the admin
    status, tool_type = await api(
        "POST", "/api/admin/tool-types", admin_token, json={"name": name, "display_name": "Audit type"}
    )
    assert status == 201, tool_type
    status, body = await api(
        "PATCH",
        f"/api/admin/tool-types/{tool_type['id']}",
        admin_token,
        json={"display_name": "Audited type"},
    )
    assert status == 200, body
    tool_body = {"slug": name, "title": "Audit tool", "tool_type_id": tool_type["id"],
                 "config": {"steps": [slow_step()]}}  # fmt: skip
    status, tool = await api("POST", "/api/admin/tools", admin_token, json=tool_body)
    assert status == 201, tool
    status, body = await api(
        "PATCH", f"/api/admin/tools/{tool['id']}", admin_token, json={"title": "Audited"}
    )
    assert status == 200, body
    status, banner = await api("POST", "/api/admin/banners", admin_token, json={"title": "Audit banner"})
    assert status == 201, banner
    status, body = await api(
        "PATCH", f"/api/admin/banners/{banner['id']}", admin_token, json={"title": "Audited banner"}
    )
    assert status == 200, body
    worker = await new_user("audit-worker")
    image = await upload(worker["token"], png())
    status, task = await api(
        "POST", "/api/tasks", worker["token"], json={"toolSlug": name, "input": {"imageAssetId": image}}
    )
    assert status == 202, task
    status, cancelled = await api("POST", f"/api/admin/tasks/{task['id']}/cancel", admin_token)
    assert (status, cancelled["status"]) == (200, "cancelled"), cancelled

    expected = {
        ("identity", "user.role_changed", customer["id"]),
        ("identity", "user.disabled", customer["id"]),
        ("identity", "user.enabled", customer["id"]),
        ("identity", "setting.updated", "rate-limit"),
        ("credits", "credits.adjusted", customer["id"]),
        ("credits", "package.created", package["id"]),
        ("credits", "package.updated", package["id"]),
        ("credits", "package.deleted", package["id"]),
        ("providers", "provider.created", provider["id"]),
        ("providers", "provider.updated", provider["id"]),
        ("tasks", "tool_type.created", tool_type["id"]),
        ("tasks", "tool_type.updated", tool_type["id"]),
        ("tasks", "tool.created", tool["id"]),
        ("tasks", "tool.updated", tool["id"]),
        ("tasks", "banner.created", banner["id"]),
        ("tasks", "banner.updated", banner["id"]),
        ("tasks", "task.cancelled", task["id"]),
    }
    log = await entries(admin_token, actor_id=admin_id)
    found = {(e["service"], e["action"], e["subject_id"]) for e in log}
    assert expected <= found, expected - found
    for subject in (customer, package, provider, tool_type, tool, banner, task):
        by_subject = await entries(admin_token, subject_id=subject["id"])
        assert by_subject, f"nothing about {subject['id']}"
        assert {e["actor_id"] for e in by_subject} == {admin_id}

    about_customer = await entries(admin_token, subject_type="user", subject_id=customer["id"])
    actions = [e["action"] for e in about_customer]
    assert actions.count("credits.adjusted") == 1, "a retried adjustment is one entry"
    assert actions.count("user.role_changed") == 2
    adjusted = next(e for e in about_customer if e["action"] == "credits.adjusted")
    assert (adjusted["reason"], adjusted["changes"]["amount"]) == ("goodwill", 7)
    disabled = next(e for e in about_customer if e["action"] == "user.disabled")
    assert disabled["reason"] == "audit disable"
    roles = [e["changes"]["role"] for e in about_customer if e["action"] == "user.role_changed"]
    assert roles == [{"from": "super_admin", "to": "user"}, {"from": "user", "to": "super_admin"}], (
        "newest first"
    )
    [tool_updated] = await entries(admin_token, subject_id=tool["id"], action="tool.updated")
    assert (tool_updated["changes"]["title"], tool_updated["changes"]["before"]) == (
        "Audited",
        {"title": "Audit tool"},
    )
    [cancel] = await entries(admin_token, subject_type="task", subject_id=task["id"])
    assert (cancel["action"], cancel["changes"]["owner"]) == ("task.cancelled", worker["id"])

    about_provider = await entries(admin_token, subject_id=provider["id"])
    assert [e["action"] for e in about_provider] == ["provider.updated", "provider.created"]
    assert {e["changes"].get("api_key") for e in about_provider} == {"changed"}
    assert about_provider[0]["changes"]["config"] == {"rateLimit": {"maxConcurrency": 2}}
    for filters in ({"subject_id": provider["id"]}, {"actor_id": admin_id}, {}):
        status, raw = await _raw(AUDIT, admin_token, filters)
        assert status == 200
        for secret in (SECRET_KEY, NEW_KEY):
            assert secret not in raw, "a key is in the audit log"
            assert secret[-4:] not in raw, "a key's hint is in the audit log"


async def test_pages_walk_the_merged_log_once_newest_first(platform, admin_token: str) -> None:
    subject = await new_user("audit-pages")
    for amount in (1, 2, 3):  # credits
        status, _ = await api(
            "POST", f"/api/admin/users/{subject['id']}/credits", admin_token,
            headers={"Idempotency-Key": str(uuid.uuid4())}, json={"amount": amount, "reason": "pages"},
        )  # fmt: skip
        assert status == 201
    for verb in ("disable", "enable", "disable"):  # identity
        status, _ = await api(
            "POST", f"/api/admin/users/{subject['id']}/{verb}", admin_token, json={"reason": "pages"}
        )
        assert status == 200

    everything = await entries(admin_token, subject_id=subject["id"])
    assert len(everything) == 6
    walked: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"subject_id": subject["id"], "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = await api("GET", AUDIT, admin_token, params=params)
        assert status == 200, page
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["id"] for e in walked] == [e["id"] for e in everything]
    keys = [(e["at"], e["id"]) for e in walked]
    assert keys == sorted(keys, reverse=True)
    assert {e["service"] for e in walked} == {"credits", "identity"}
    only_identity = await entries(admin_token, subject_id=subject["id"], service="identity")
    assert [e["action"] for e in only_identity] == ["user.disabled", "user.enabled", "user.disabled"]


async def _status_at(url: str, token: str) -> int:
    async with aiohttp.ClientSession() as client, client.get(url, headers=bearer(token)) as reply:
        return reply.status


async def _raw(path: str, token: str, filters: dict[str, str]) -> tuple[int, str]:
    params = {"limit": "200", **filters}
    async with browser() as client, client.get(path, headers=bearer(token), params=params) as reply:
        return reply.status, await reply.text()


async def test_an_entry_exists_only_when_the_change_committed(platform, admin_token: str) -> None:
    nobody = str(uuid.uuid4())
    status, _ = await api("PUT", f"/api/admin/users/{nobody}/role", admin_token, json={"role": "admin"})
    assert status == 404
    assert await entries(admin_token, subject_id=nobody) == [], "a refused write recorded an entry"
    # A role "change" to the role the user has changes nothing, and records nothing.
    ghost = await new_user("audit-ghost")
    status, _ = await api("PUT", f"/api/admin/users/{ghost['id']}/role", admin_token, json={"role": "user"})
    assert status == 200
    assert await entries(admin_token, subject_id=ghost["id"]) == []
