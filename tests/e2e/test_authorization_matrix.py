"""The authorisation matrix: every operation of the served /openapi.json, called as each kind of caller,
answers as its declaration says.

Each operation declares `x-access` (public, user, admin, super_admin) and, when its path names an object
someone owns, `x-owner` (caller, caller_or_admin, admin: see the document's description). The callers:

- anonymous (no token), a plain user who owns objects (`owner`: a task, an asset, an upload, a session),
  another plain user owning nothing (`other`), an admin owning nothing (`admin`), the admin who owns a
  studio chat and its reply (`chat_admin`, called only where that chat is named), and a super admin.

Every path id is a real object, made for this test and owned by someone other than the caller (but for
the allowed calls of an owned object). A denied caller must get exactly its answer: 401 without a token,
403 without the role, 404 for another's object, and no answer to a denied caller, nor any answer to
anonymous or the other user, holds the owners' ids or emails. An allowed caller must get a success (or
the answer listed in `TOLERATED`, with why), so an operation with a body needs a valid one in `BODIES`.
Calls that consume their object (deletes, disabling a user, deleting one's account) are given a fresh one
each, so the rest of the matrix still has its objects; at the end the owners still have theirs. The
number of operations checked must be the number in the document: a new route is covered, or this test
fails.
"""

from __future__ import annotations

import inspect
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from clients import GATEWAY_URL, PASSWORD, bearer, png, unique_email

from funmagic_kit.testing import wait_until

ALLOWED = "allowed"
ROLES = {"user": 1, "admin": 2, "super_admin": 3}
# A fresh sign-in before the 5-minute access token could expire mid-matrix.
TOKEN_AGE_SECONDS = 200

# Allowed calls whose answer is not a success, by design of the call the matrix can make.
TOLERATED: dict[tuple[str, str], tuple[set[int], str]] = {
    ("POST", "/api/auth/verify-email"): ({400}, "the token is made up (a real one is single-use)"),
    ("POST", "/api/auth/reset-password"): ({400}, "the token is made up (a real one is single-use)"),
    ("GET", "/api/auth/oauth/{provider}/callback"): ({400}, "no OAuth state cookie: a browser's flow"),
    ("POST", "/api/webhooks/stripe"): ({400}, "not signed by Stripe"),
    ("POST", "/api/admin/studio/chats/{chat_id}/messages"): ({409}, "a text reply of the chat still runs"),
}


# --- callers --------------------------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    role: str | None  # None: anonymous
    email: str = ""
    id: str = ""
    token: str | None = None
    signed_in_at: float = 0.0

    async def headers(self, http: aiohttp.ClientSession) -> dict[str, str]:
        if self.role is None:
            return {}
        if self.token is None or time.monotonic() - self.signed_in_at > TOKEN_AGE_SECONDS:
            self.token = (await sign_in(http, self.email))["access_token"]
            self.signed_in_at = time.monotonic()
        return bearer(self.token)


@dataclass
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def send(
    http: aiohttp.ClientSession,
    caller: Caller,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    all_headers = {**(await caller.headers(http)), **(headers or {})}
    async with http.request(
        method, path, json=body, params=params, headers=all_headers, allow_redirects=False
    ) as response:
        if response.content_type == "text/event-stream":
            return Answer(response.status, "")  # a stream (some never end): its status is the answer
        return Answer(response.status, await response.text())


async def sign_in(http: aiohttp.ClientSession, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "mode": "token"}
    async with http.post("/api/auth/sign-in/email", json=body) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def new_account(http: aiohttp.ClientSession, name: str) -> Caller:
    email = unique_email(f"matrix-{name}")
    body = {"email": email, "password": PASSWORD, "mode": "token"}
    async with http.post("/api/auth/sign-up/email", json=body) as response:
        assert response.status == 201, await response.text()
        account = await response.json()
    return Caller(name, "user", email, account["user"]["id"], account["access_token"], time.monotonic())


# --- the objects the paths name -------------------------------------------------------------------------


@dataclass
class World:
    http: aiohttp.ClientSession
    root: Caller
    owner: Caller
    chat_admin: Caller
    ids: dict[str, str] = field(default_factory=dict)
    assets_of: dict[str, str] = field(default_factory=dict)
    rate_limits: Any = None

    async def ok(self, caller: Caller, method: str, path: str, status: int, **kwargs: Any) -> Any:
        answer = await send(self.http, caller, method, path, **kwargs)
        assert answer.status == status, (method, path, answer.status, answer.text)
        return answer.json() if answer.text else None

    async def promoted(self, caller: Caller, role: str) -> Caller:
        await self.ok(self.root, "PUT", f"/api/admin/users/{caller.id}/role", 200, body={"role": role})
        caller.role, caller.token = role, None  # a token issued before the promotion is refused
        return caller

    async def account(self, name: str, role: str = "user") -> Caller:
        caller = await new_account(self.http, name)
        return caller if role == "user" else await self.promoted(caller, role)

    # --- owned by the owner

    async def asset(self, caller: Caller) -> str:
        ticket = await self.upload_ticket(caller)
        asset = await self.ok(caller, "POST", f"/api/assets/uploads/{ticket}/complete", 201)
        return asset["id"]

    async def upload_ticket(self, caller: Caller) -> str:
        """An upload whose file is in place but not yet confirmed."""
        data = png()
        request = {"filename": "in.png", "content_type": "image/png", "size": len(data), "module": "uploads"}
        ticket = await self.ok(caller, "POST", "/api/assets/uploads", 201, body=request)
        async with (
            aiohttp.ClientSession() as s3,
            s3.put(ticket["url"], data=data, headers=ticket["headers"]) as r,
        ):
            assert r.status == 200, await r.text()
        return ticket["upload_id"]

    async def own_asset(self, caller: Caller) -> str:
        if caller.name not in self.assets_of:
            self.assets_of[caller.name] = await self.asset(caller)
        return self.assets_of[caller.name]

    async def task(self, *, finished: bool = False) -> str:
        body = {"toolSlug": "background-remove", "input": {"imageAssetId": await self.own_asset(self.owner)}}
        task = await self.ok(self.owner, "POST", "/api/tasks", 202, body=body)
        if finished:

            async def ended() -> bool:
                shown = await self.ok(self.owner, "GET", f"/api/tasks/{task['id']}", 200)
                return shown["status"] in ("completed", "failed", "cancelled")

            await wait_until(ended, timeout=60, what=f"task {task['id']} to finish", interval=0.1)
        return task["id"]

    async def session(self) -> str:
        return (await sign_in(self.http, self.owner.email))["session"]["id"]

    # --- owned by the chat's admin

    async def chat(self) -> str:
        body = {"title": "matrix", "provider": "local", "model": "local-chat"}
        return (await self.ok(self.chat_admin, "POST", "/api/admin/studio/chats", 201, body=body))["id"]

    async def reply(self, chat_id: str) -> str:
        path = f"/api/admin/studio/chats/{chat_id}/messages"
        posted = await self.ok(self.chat_admin, "POST", path, 202, body={"content": "hello"})
        return posted["replies"][0]["id"]

    # --- the admins' catalog, packages, providers (nobody's: admins manage them all)

    async def package(self) -> str:
        body = {"name": "Matrix pack", "credits": 10, "price_minor": 100, "currency": "USD"}
        return (await self.ok(self.root, "POST", "/api/admin/credit-packages", 201, body=body))["id"]

    async def provider(self, registry: str) -> str:
        body = {"name": f"matrix-{uuid.uuid4().hex[:10]}", "type": "local"}
        return (await self.ok(self.root, "POST", f"/api/admin/{registry}", 201, body=body))["id"]

    async def tool_type(self) -> str:
        body = {"name": f"matrix-{uuid.uuid4().hex[:10]}", "display_name": "Matrix"}
        return (await self.ok(self.root, "POST", "/api/admin/tool-types", 201, body=body))["id"]

    async def tool(self) -> str:
        body = {"slug": f"matrix-{uuid.uuid4().hex[:10]}", "title": "Matrix",
                "tool_type_id": self.ids["type_id"], "config": {"steps": [LOCAL_STEP]}}  # fmt: skip
        return (await self.ok(self.root, "POST", "/api/admin/tools", 201, body=body))["id"]

    async def banner(self) -> str:
        return (await self.ok(self.root, "POST", "/api/admin/banners", 201, body={"title": "Matrix"}))["id"]

    async def user(self) -> str:
        return (await new_account(self.http, "target")).id

    def secrets(self) -> dict[str, str]:
        """What no one but the owners (and the admins, where declared) may read."""
        names = ("task_id", "asset_id", "upload_id", "session_id", "chat_id", "message_id", "output_id")
        return {
            "the owner's id": self.owner.id,
            "the owner's email": self.owner.email,
            "the chat admin's id": self.chat_admin.id,
            "the chat admin's email": self.chat_admin.email,
            **{f"the {name}": self.ids[name] for name in names if name in self.ids},
        }


LOCAL_STEP = {
    "id": "first", "name": "first", "type": "remove-bg", "cost": 1,
    "provider": {"name": "local", "model": "default", "options": {}},
    "input": {"image": "required", "prompt": "none"},
}  # fmt: skip

# For a consuming operation, each allowed call gets a fresh object: (method, path) → {parameter: maker}.
Maker = Callable[[World], Awaitable[str]]
FRESH: dict[tuple[str, str], dict[str, Maker]] = {
    ("DELETE", "/api/auth/sessions/{session_id}"): {"session_id": World.session},
    ("DELETE", "/api/assets/{asset_id}"): {"asset_id": lambda w: w.asset(w.owner)},
    ("DELETE", "/api/tasks/{task_id}"): {"task_id": World.task},
    ("DELETE", "/api/admin/tasks/{task_id}"): {"task_id": World.task},
    ("DELETE", "/api/admin/studio/chats/{chat_id}"): {"chat_id": World.chat},
    ("DELETE", "/api/admin/credit-packages/{package_id}"): {"package_id": World.package},
    ("DELETE", "/api/admin/providers/{provider_id}"): {"provider_id": lambda w: w.provider("providers")},
    ("DELETE", "/api/admin/admin-providers/{provider_id}"): {
        "provider_id": lambda w: w.provider("admin-providers")
    },
    ("DELETE", "/api/admin/tool-types/{type_id}"): {"type_id": World.tool_type},
    ("DELETE", "/api/admin/tools/{tool_id}"): {"tool_id": World.tool},
    ("DELETE", "/api/admin/banners/{banner_id}"): {"banner_id": World.banner},
    ("PUT", "/api/admin/users/{user_id}/role"): {"user_id": World.user},
    ("POST", "/api/admin/users/{user_id}/disable"): {"user_id": World.user},
    ("POST", "/api/admin/users/{user_id}/enable"): {"user_id": World.user},
}


def shared_id(world: World, path: str, name: str) -> str:
    """The object a path parameter names, for calls that do not consume it."""
    if name == "provider_id":
        return world.ids["studio_provider_id" if "/admin-providers/" in path else "provider_id"]
    return world.ids[name]


# --- bodies and query parameters -----------------------------------------------------------------------

Made = Callable[[World, Caller], Any]


async def _signer_refresh_token(world: World, caller: Caller) -> dict[str, str]:
    return {"refresh_token": (await sign_in(world.http, world.ids["signer_email"]))["refresh_token"]}


async def _own_task_input(world: World, caller: Caller) -> dict[str, Any]:
    return {"toolSlug": "background-remove", "input": {"imageAssetId": await world.own_asset(caller)}}


def _upload_request(world: World, caller: Caller) -> dict[str, Any]:
    return {"filename": "a.png", "content_type": "image/png", "size": 100, "module": "uploads"}


def _package_body(world: World, caller: Caller) -> dict[str, Any]:
    return {"name": "Matrix pack", "credits": 10, "price_minor": 100, "currency": "USD"}


def _provider_body(world: World, caller: Caller) -> dict[str, Any]:
    return {"name": f"matrix-{uuid.uuid4().hex[:10]}", "type": "local"}


BODIES: dict[tuple[str, str], Made] = {
    ("POST", "/api/auth/sign-up/email"): lambda w, c: {
        "email": unique_email("matrix-signup"), "password": PASSWORD, "mode": "token"
    },
    ("POST", "/api/auth/sign-in/email"): lambda w, c: {
        "email": w.ids["signer_email"], "password": PASSWORD, "mode": "token"
    },
    ("POST", "/api/auth/refresh"): _signer_refresh_token,
    ("POST", "/api/auth/sign-out"): _signer_refresh_token,
    ("DELETE", "/api/auth/me"): lambda w, c: {"password": PASSWORD},
    ("PATCH", "/api/auth/me"): lambda w, c: {"name": "Matrix"},
    ("POST", "/api/auth/change-password"): lambda w, c: {
        "current_password": PASSWORD, "new_password": PASSWORD
    },
    ("POST", "/api/auth/verify-email"): lambda w, c: {"token": "not-a-real-token"},
    ("POST", "/api/auth/forgot-password"): lambda w, c: {"email": w.ids["signer_email"]},
    ("POST", "/api/auth/reset-password"): lambda w, c: {"token": "not-a-real-token", "password": PASSWORD},
    # A denied caller asks to make the owner an admin: the owner's role shows whether it was refused.
    ("PUT", "/api/admin/users/{user_id}/role"): lambda w, c: {"role": "admin"},
    ("POST", "/api/admin/users/{user_id}/disable"): lambda w, c: {"reason": "matrix"},
    ("POST", "/api/admin/users/{user_id}/enable"): lambda w, c: {"reason": "matrix"},
    ("POST", "/api/credits/checkout"): lambda w, c: {"package_id": w.ids["package_id"]},
    ("POST", "/api/webhooks/stripe"): lambda w, c: {"id": "evt_matrix", "type": "ping", "data": {}},
    ("POST", "/api/admin/users/{user_id}/credits"): lambda w, c: {"amount": 1, "reason": "matrix"},
    ("POST", "/api/admin/credit-packages"): _package_body,
    ("PUT", "/api/admin/credit-packages/{package_id}"): _package_body,
    ("POST", "/api/assets/uploads"): _upload_request,
    ("POST", "/api/admin/assets/uploads"): _upload_request,
    ("POST", "/api/admin/providers"): _provider_body,
    ("PATCH", "/api/admin/providers/{provider_id}"): lambda w, c: {"display_name": "Matrix"},
    ("POST", "/api/admin/admin-providers"): _provider_body,
    ("PATCH", "/api/admin/admin-providers/{provider_id}"): lambda w, c: {"display_name": "Matrix"},
    ("POST", "/api/admin/queue/dead-letters/{topic}/replay"): lambda w, c: {
        # An offset no dead-letter topic reaches: the replay touches nothing.
        "messages": [{"partition": 0, "offset": 10**15}]
    },
    ("PUT", "/api/admin/settings/rate-limit"): lambda w, c: w.rate_limits,
    ("POST", "/api/admin/tool-types"): lambda w, c: {
        "name": f"matrix-{uuid.uuid4().hex[:10]}", "display_name": "Matrix"
    },
    ("PATCH", "/api/admin/tool-types/{type_id}"): lambda w, c: {"display_name": "Matrix"},
    ("POST", "/api/admin/tools"): lambda w, c: {
        "slug": f"matrix-{uuid.uuid4().hex[:10]}", "title": "Matrix", "tool_type_id": w.ids["type_id"],
        "config": {"steps": [LOCAL_STEP]},
    },
    ("PATCH", "/api/admin/tools/{tool_id}"): lambda w, c: {"title": "Matrix"},
    ("POST", "/api/admin/banners"): lambda w, c: {"title": "Matrix"},
    ("PATCH", "/api/admin/banners/{banner_id}"): lambda w, c: {"title": "Matrix"},
    ("POST", "/api/tasks"): _own_task_input,
    ("POST", "/api/admin/studio/chats"): lambda w, c: {
        "title": "m", "provider": "local", "model": "local-chat"
    },
    ("PATCH", "/api/admin/studio/chats/{chat_id}"): lambda w, c: {"title": "renamed"},
    ("POST", "/api/admin/studio/chats/{chat_id}/messages"): lambda w, c: {"content": "hi again"},
}  # fmt: skip

# Operations that end the caller's own sessions or account: an allowed call is made by a new account of
# the caller's role, so the callers (and the owner's objects) live on.
# (A password change signs out the caller's other sessions.)
ENDS_THE_CALLER = {
    ("POST", "/api/auth/sign-out-everywhere"),
    ("DELETE", "/api/auth/me"),
    ("POST", "/api/auth/change-password"),
}


# --- the declaration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    method: str
    path: str
    access: str
    owner: str | None
    has_body: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def expected(self, caller: Caller) -> str | int:
        """ALLOWED, or the status a caller who may not call it gets."""
        if self.access == "public":
            return ALLOWED
        if caller.role is None or self.access == "internal":
            return 401
        if ROLES[caller.role] < ROLES[self.access]:
            return 403
        if self.owner == "caller":
            return ALLOWED if caller.name == "owner" else 404
        if self.owner == "caller_or_admin":
            return ALLOWED if caller.name == "owner" or ROLES[caller.role] >= ROLES["admin"] else 404
        if self.owner == "admin":
            reads = caller.role == "super_admin" and self.method == "GET"
            return ALLOWED if caller.name == "chat_admin" or reads else 404
        return ALLOWED


def declared_operations(document: dict[str, Any]) -> tuple[list[Declared], list[str]]:
    operations, undeclared = [], []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            access, owner = operation.get("x-access"), operation.get("x-owner")
            if access not in ("public", "user", "admin", "super_admin", "internal"):
                undeclared.append(f"{method.upper()} {path}: x-access is {access!r}")
                continue
            if access == "user" and "{" in path and owner not in ("caller", "caller_or_admin", "admin"):
                undeclared.append(f"{method.upper()} {path}: names an object but not whose (x-owner)")
                continue
            operations.append(Declared(method.upper(), path, access, owner, "requestBody" in operation))
    return operations, undeclared


# --- the matrix -----------------------------------------------------------------------------------------


@pytest.fixture
async def http(platform) -> Any:
    # No cookie jar: a sign-in's cookies must never make a later anonymous call signed in.
    async with aiohttp.ClientSession(base_url=GATEWAY_URL, cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.fixture
async def world(http: aiohttp.ClientSession, identity_command, seeded_tools) -> World:
    email = unique_email("matrix-root")
    result = identity_command(
        "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    root = Caller("super_admin", "super_admin", email, (await sign_in(http, email))["user"]["id"])
    world = World(http, root, await new_account(http, "owner"), await new_account(http, "chat-admin"))
    world.chat_admin.name = "chat_admin"
    await world.promoted(world.chat_admin, "admin")
    ids = world.ids
    ids["signer_email"] = (await new_account(http, "signer")).email
    # The owner's: a finished task (its output too), an asset, an upload waiting to be confirmed, a second
    # session.
    ids["task_id"] = await world.task(finished=True)
    task = await world.ok(world.owner, "GET", f"/api/tasks/{ids['task_id']}", 200)
    assert task["status"] == "completed", task
    ids["output_id"] = task["payload"]["output"]["assets"][0]["asset_id"]
    ids["asset_id"] = await world.asset(world.owner)
    ids["upload_id"] = await world.upload_ticket(world.owner)
    ids["session_id"] = await world.session()
    ids["user_id"] = world.owner.id
    # The chat admin's chat and a reply in it.
    ids["chat_id"] = await world.chat()
    ids["message_id"] = await world.reply(ids["chat_id"])
    # The admins' objects.
    ids["package_id"] = await world.package()
    ids["provider_id"] = await world.provider("providers")
    ids["studio_provider_id"] = await world.provider("admin-providers")
    ids["type_id"] = await world.tool_type()
    ids["tool_id"] = await world.tool()
    ids["banner_id"] = await world.banner()
    ids["topic"] = "identity-events-dlq"
    ids["slug"] = "background-remove"
    ids["provider"] = "google"
    world.rate_limits = await world.ok(root, "GET", "/api/admin/settings/rate-limit", 200)
    return world


async def test_every_operation_answers_each_caller_as_it_declares(
    http: aiohttp.ClientSession, world: World
) -> None:
    async with http.get("/openapi.json") as response:
        document = await response.json()
    operations, undeclared = declared_operations(document)
    assert not undeclared, "operations without an authorisation declaration:\n" + "\n".join(undeclared)

    admin = await world.account("admin", "admin")
    other = await new_account(http, "other")
    callers = [Caller("anonymous", None), world.owner, other, admin, world.root]
    secrets = world.secrets()
    problems: list[str] = []
    covered = 0
    for op in operations:
        called = [*callers, world.chat_admin] if op.owner == "admin" else callers
        # Denied callers first: an allowed call may change the object (a denied one must not).
        ordered = sorted(called, key=lambda c: op.expected(c) == ALLOWED)
        for caller in ordered:
            problems += await check(world, op, caller, secrets)
        covered += 1

    assert not problems, f"{len(problems)} answers differ from the declarations:\n" + "\n".join(problems)
    in_document = sum(len(item) for item in document["paths"].values())
    assert covered == in_document, f"the matrix covered {covered} of the document's {in_document} operations"

    # Denied calls changed nothing: the owners still have their objects.
    ids = world.ids
    await world.ok(world.owner, "GET", f"/api/tasks/{ids['task_id']}", 200)
    await world.ok(world.owner, "GET", f"/api/assets/{ids['asset_id']}", 200)
    await world.ok(world.chat_admin, "GET", f"/api/admin/studio/chats/{ids['chat_id']}", 200)
    sessions = await world.ok(world.owner, "GET", "/api/auth/sessions", 200)
    assert ids["session_id"] in {s["id"] for s in sessions["items"]}, "the owner's session is not revoked"
    assert (await world.ok(world.owner, "GET", "/api/auth/me", 200))["role"] == "user"
    for path in ("providers/{provider_id}", "admin-providers/{studio_provider_id}", "tool-types/{type_id}",
                 "tools/{tool_id}", "banners/{banner_id}"):  # fmt: skip
        await world.ok(world.root, "GET", "/api/admin/" + path.format(**ids), 200)


async def check(world: World, op: Declared, caller: Caller, secrets: dict[str, str]) -> list[str]:
    expected = op.expected(caller)
    acting = caller
    if expected == ALLOWED and op.key in ENDS_THE_CALLER:
        acting = await world.account(f"{caller.name}-clone", caller.role or "user")
    ids: dict[str, str] = {}
    for name in _parameters(op.path):
        fresh = FRESH.get(op.key, {}).get(name)
        ids[name] = await fresh(world) if fresh and expected == ALLOWED else shared_id(world, op.path, name)
    path = op.path.format(**ids)
    # A denied call gets a body made for the owner (valid, so the answer is the denial, never a 422).
    maker = acting if expected == ALLOWED else world.owner
    body = await _made(BODIES.get(op.key), world, maker) if op.has_body else None
    answer = await send(world.http, acting, op.method, path, body=body)

    where = f"{op.method} {op.path} as {caller.name}"
    problems = []
    if expected == ALLOWED:
        tolerated, _why = TOLERATED.get(op.key, (set(), ""))
        if not (200 <= answer.status < 400 or answer.status in tolerated):
            problems.append(f"{where}: {answer.status}, expected a success: {answer.text[:300]}")
    elif answer.status != expected:
        problems.append(f"{where}: {answer.status}, expected {expected}: {answer.text[:300]}")
    if expected != ALLOWED or caller.name in ("anonymous", "other"):
        sent = path + repr(body)
        for what, secret in secrets.items():
            if secret and secret not in sent and secret in answer.text:
                problems.append(f"{where}: the answer ({answer.status}) holds {what}")
    return problems


async def _made(make: Made | None, world: World, caller: Caller) -> Any:
    if make is None:
        return {}
    made = make(world, caller)
    return await made if inspect.isawaitable(made) else made


def _parameters(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


async def test_objects_named_in_a_body_or_a_query_are_the_callers_own_too(
    http: aiohttp.ClientSession, world: World
) -> None:
    """Ids the path does not carry: a task's input image and parent, a studio prompt's quoted image, every
    admin's chats. Another user's (or admin's) are refused as if they did not exist, and never shown."""
    other = await new_account(http, "other")
    ids, secrets = world.ids, world.secrets()
    refused: list[tuple[Caller, str, str, Any, set[int]]] = [
        (other, "POST", "/api/tasks", {"toolSlug": "background-remove",
                                       "input": {"imageAssetId": ids["asset_id"]}}, {422}),
        (other, "POST", "/api/tasks", {"toolSlug": "background-remove", "parentTaskId": ids["task_id"],
                                       "input": {"imageAssetId": await world.own_asset(other)}}, {404}),
    ]  # fmt: skip
    # An image of the chat admin's studio, quoted in another admin's chat.
    path = f"/api/admin/studio/chats/{ids['chat_id']}/messages"
    image = {"content": "a fox", "kind": "image", "model": "local-image", "options": {"size": "256x256"}}
    reply_id = (await world.ok(world.chat_admin, "POST", path, 202, body=image))["replies"][0]["id"]

    async def drawn() -> bool:
        page = await world.ok(world.chat_admin, "GET", path, 200, params={"limit": "100"})
        reply = next(m for m in page["items"] if m["id"] == reply_id)
        ids["image_id"] = reply["images"][0]["asset_id"] if reply["images"] else ""
        return reply["status"] in ("completed", "failed", "cancelled")

    await wait_until(drawn, timeout=60, what="the studio image", interval=0.1)
    assert ids["image_id"], "the local provider drew the image"
    admin = await world.account("admin", "admin")
    admins_chat = (await world.ok(admin, "POST", "/api/admin/studio/chats", 201,
                                  body={"provider": "local", "model": "local-chat"}))["id"]  # fmt: skip
    refused.append((admin, "POST", f"/api/admin/studio/chats/{admins_chat}/messages",
                    {"content": "like this", "quoted_image_ids": [ids["image_id"]]}, {422}))  # fmt: skip
    secrets["the chat admin's image"] = ids["image_id"]

    for caller, method, sent_path, body, statuses in refused:
        answer = await send(http, caller, method, sent_path, body=body)
        assert answer.status in statuses, (sent_path, body, answer)
        sent = sent_path + repr(body)
        assert not [what for what, secret in secrets.items() if secret not in sent and secret in answer.text]
    answer = await send(http, admin, "GET", "/api/admin/studio/chats", params={"all": "true"})
    assert answer.status == 403, answer
    answer = await send(http, world.root, "GET", "/api/admin/studio/chats", params={"all": "true"})
    assert answer.status == 200, answer
    assert ids["chat_id"] in answer.text, "a super admin lists every admin's chats"
