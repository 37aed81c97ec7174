"""HTTP API operations declared once: the route, its pydantic models, and the OpenAPI 3.1 document.

A handler reads its input with `read_body` / `read_query` (malformed JSON → 400, a wrong content type →
415, an invalid or unknown field → 422, never echoing the values sent, which may be passwords) and answers
with `json_body`. Both refuse what Postgres or JSON cannot hold (`input_rules`: NUL, lone surrogates,
integers past 64 bits, non-finite numbers) before the model sees it, and a body is validated strictly: a
JSON `true` or `2.0` is not an integer, a number is not a string. The OpenAPI document is generated from
the same `Operation` list, so it cannot drift from the routes.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from funmagic_kit.http import HttpProblem
from funmagic_kit.input_rules import INT64_MAX, INT64_MIN, unstorable_values
from funmagic_kit.request_keys import AUTH_ERROR_KEY, INTERNAL_CALLER_KEY, PRINCIPAL_KEY, Principal, Role
from funmagic_kit.request_once import RequestKey, request_fingerprint

__all__ = [
    "AUTH_ERROR_KEY",
    "Access",
    "Operation",
    "Owner",
    "Problem",
    "build_openapi",
    "docs_page",
    "enforce_access",
    "idempotency_key",
    "json_body",
    "path_uuid",
    "read_body",
    "read_query",
    "request_key",
    "require_internal_caller",
    "require_principal",
    "require_role",
]

Access = Literal["public", "user", "admin", "super_admin", "internal"]
Owner = Literal["caller", "caller_or_admin", "admin"]
"""Whose object the path names (`x-owner`), for `access="user"` operations: "caller", the user who created
it (anyone else gets 404, as for no such object); "caller_or_admin", the same, and any admin too;
"admin", the admin who created it (anyone else gets 404; a super_admin may read it, GET)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ModelT = TypeVar("ModelT", bound=BaseModel)

# `{name}`, or `{name:regex}` where a literal sibling path must not be read as the parameter (aiohttp's
# syntax; the document shows `{name}`).
_PATH_PARAM = re.compile(r"{(\w+)(?::[^{}]+)?}")
UUID_SEGMENT = "[0-9a-fA-F-]+"
"""The pattern of a path parameter that is a UUID, for `{asset_id:` + UUID_SEGMENT + `}`: keeps a literal
sibling such as `/api/assets/uploads` from also matching `/api/assets/{asset_id}` (and OPTIONS from listing
the sibling's methods)."""
# Every path parameter names something by an id, a slug or a key: none is longer (a longer one is simply
# not found), and the bound keeps a request line the document allows within what the server reads.
_PATH_PARAM_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200}
_REF_PREFIX = "#/components/schemas/"
# Text without the NUL character (see `_state_input_rules`).
_NO_NUL = "^[^\\u0000]*$"
# One event of a `text/event-stream` answer, as Open API 3.1 describes a stream: each event, not the whole.
_SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "description": "JSON"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
_STATUS_TITLES = {
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    # Who may call it (`x-access` in the document), always declared: a route is never public by omission.
    access: Access
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    description: str = ""
    cookie_auth: bool = True
    extra_responses: dict[int, str] = field(default_factory=dict)
    # The OpenAPI operationId; by default the handler's name (give one when handlers are shared or built).
    name: str | None = None
    # What a success answers when it is not a JSON model: "text/event-stream" for a stream of events.
    media_type: str | None = None
    # False when the body may be left out altogether (refresh and sign-out: a browser sends its cookie).
    body_required: bool = True
    # Whose object the path names (`x-owner`); see `Owner`.
    owner: Owner | None = None

    def __post_init__(self) -> None:
        if self.owner is not None and (self.access != "user" or not _PATH_PARAM.search(self.path)):
            # Ownership is the rule of an open-to-users route that names an object; anything else is a typo.
            raise ValueError(f"{self.method} {self.path}: an owner needs access='user' and a path parameter")

    @property
    def document_path(self) -> str:
        """The path as the OpenAPI document writes it: parameters without their patterns."""
        return _PATH_PARAM.sub(lambda match: "{" + match[1] + "}", self.path)

    def route(self) -> web.RouteDef:
        """The aiohttp route, with the declared access enforced before the handler runs."""
        return web.route(self.method, self.path, enforce_access(self.access, self.handler))

    @property
    def operation_id(self) -> str:
        return self.name or getattr(self.handler, "__name__", f"{self.method}_{self.path}")

    def error_statuses(self) -> list[int]:
        statuses = set(self.errors)
        if self.body is not None:
            statuses |= {400, 413, 415, 422}
        if self.query is not None or _PATH_PARAM.search(self.path):
            statuses.add(422 if self.query is not None else 404)
        if self.access != "public":
            statuses.add(401)
        if self.access in ("admin", "super_admin"):
            statuses.add(403)
        if self.path.startswith("/api/"):
            statuses.add(429)
        return sorted(statuses)


def enforce_access(access: Access, handler: Handler) -> Handler:
    """401 without a verified user (with the reason the token was refused), 403 without the role."""
    if access == "public":
        return handler

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if access == "internal":
            if not request.get(INTERNAL_CALLER_KEY):
                raise HttpProblem(401, "Unauthorized", "this route is for services only")
        else:
            require_role(request, access)
        return await handler(request)

    return guarded


def require_internal_caller(request: web.Request) -> None:
    """403 unless the caller presented the internal service credential (routes other services call)."""
    if not request.get(INTERNAL_CALLER_KEY):
        raise HttpProblem(403, "Forbidden", "services only")


def require_principal(request: web.Request) -> Principal:
    """The verified user of the request, or 401 saying why there is none."""
    principal = request.get(PRINCIPAL_KEY)
    if principal is None:
        reason = request.get(AUTH_ERROR_KEY) or "sign in first"
        raise HttpProblem(401, "Unauthorized", reason, headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_role(request: web.Request, role: Role) -> Principal:
    """The verified user, if they have at least `role` (super_admin > admin > user); else 401/403."""
    principal = require_principal(request)
    if not principal.has_role(role):
        raise HttpProblem(403, "Forbidden", f"this needs the {role} role")
    return principal


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def idempotency_key(request: web.Request) -> str | None:
    """The client's `Idempotency-Key` (a retried request with it acts once), checked: 1–200 printable
    characters, else 422. The gateway and the service it forwards to use this same check."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if not (1 <= len(key) <= 200 and key.isprintable()):
        raise HttpProblem(422, "Unprocessable Content", "Idempotency-Key must be 1–200 printable characters")
    return key


def request_key(request: web.Request, kind: str, body: BaseModel) -> RequestKey | None:
    """The caller's retryable request of this kind (`funmagic_kit.request_once`): its `Idempotency-Key`
    with the caller and what the body asks; None without the header (every such request creates)."""
    key = idempotency_key(request)
    if key is None:
        return None
    scope = f"{kind}:{require_principal(request).user_id}"
    return RequestKey(scope, key, request_fingerprint(body.model_dump(mode="json")))


def path_uuid(request: web.Request, name: str, what: str = "resource") -> str:
    """A UUID path segment in canonical form; anything else is simply not found."""
    try:
        return str(uuid.UUID(request.match_info[name]))
    except ValueError:
        raise HttpProblem(404, "Not Found", f"no such {what}") from None


async def read_body(request: web.Request, model: type[ModelT]) -> ModelT:
    if request.content_type != "application/json":
        raise HttpProblem(415, "Unsupported Media Type", "send the body as application/json")
    raw = await request.read()  # raises 413 past the app's client_max_size
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HttpProblem(400, "Bad Request", "the body is not valid JSON") from None
    _refuse_unstorable(data)
    return _validate(model, raw, strict=True)


def read_query(request: web.Request, model: type[ModelT]) -> ModelT:
    query = dict(request.query)
    _refuse_unstorable(query)
    return _validate(model, query)


def _refuse_unstorable(data: object) -> None:
    problems = unstorable_values(data)
    if problems:
        raise HttpProblem(422, "Unprocessable Content", "the request is invalid", errors=problems)


def _validate(model: type[ModelT], data: object, *, strict: bool = False) -> ModelT:
    """`data` is a query's strings (validated leniently: "2" is an integer there) or a raw JSON body
    (validated strictly as JSON)."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data, strict=strict)
        return model.model_validate(data)
    except ValidationError as error:
        # `input` is left out on purpose: it would echo passwords and tokens back.
        problems = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise HttpProblem(422, "Unprocessable Content", "the request is invalid", errors=problems) from None


def json_body(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json", headers=headers
    )


def build_openapi(
    title: str, version: str, operations: Sequence[Operation], *, description: str = ""
) -> dict[str, Any]:
    models: list[type[BaseModel]] = [Problem]
    for op in operations:
        models += [m for m in (op.body, op.response, op.query) if m is not None]
    unique = list(dict.fromkeys(models))
    # pydantic decides each component's name (generics and clashing names get qualified ones), so the
    # references come from its mapping, never from `__name__`.
    mapping, definitions = models_json_schema(
        [(m, "validation") for m in unique], ref_template="#/components/schemas/{model}"
    )
    schemas = definitions.get("$defs", {})
    refs = {model: mapping[(model, "validation")] for model in unique}
    requests = [refs[m] for op in operations for m in (op.body, op.query) if m is not None]
    for name in _referenced(requests, schemas):
        _state_input_rules(schemas[name])
    seen = [op.operation_id for op in operations]
    duplicates = sorted({name for name in seen if seen.count(name) > 1})
    if duplicates:
        # Client generators name functions after these: two operations must never share one.
        raise ValueError(f"operationIds used more than once: {', '.join(duplicates)}; give each a `name`")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.document_path, {})[op.method.lower()] = _operation_object(op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "fm_access"},
            },
        },
    }


def _operation_object(
    op: Operation, refs: dict[type[BaseModel], dict[str, Any]], schemas: dict[str, Any]
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": dict(_PATH_PARAM_SCHEMA)}
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        query_schema = _resolve(refs[op.query], schemas)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": refs[op.response]}}
    elif op.media_type is not None:
        schema = _SSE_EVENT_SCHEMA if op.media_type == "text/event-stream" else {"type": "string"}
        success["content"] = {op.media_type: {"schema": dict(schema)}}
    responses: dict[str, Any] = {str(op.status): success}
    for status, text in op.extra_responses.items():
        responses[str(status)] = {"description": text}
    for status in op.error_statuses():
        responses[str(status)] = {
            "description": _STATUS_TITLES.get(status, "Error"),
            "content": {"application/problem+json": {"schema": refs[Problem]}},
        }
    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
        "x-access": op.access,
    }
    if op.owner is not None:
        operation["x-owner"] = op.owner
    if op.description:
        operation["description"] = op.description
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": refs[op.body]}},
        }
    if op.access != "public":
        operation["security"] = [{"bearer": []}, {"cookie": []}] if op.cookie_auth else [{"bearer": []}]
    return operation


def _referenced(roots: list[dict[str, Any]], schemas: dict[str, Any]) -> set[str]:
    """The names of the components `roots` refer to, directly or through other components."""
    names: set[str] = set()
    pending: list[Any] = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                name = ref.removeprefix(_REF_PREFIX)
                if name not in names:
                    names.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return names


def _state_input_rules(schema: Any) -> None:
    """Say in a request schema what `input_rules` refuses whatever the model says, so that a request the
    document allows is never refused for it: no text holds NUL, and every integer fits in 64 bits."""
    if isinstance(schema, list):
        for item in schema:
            _state_input_rules(item)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key not in ("default", "examples", "example", "const", "enum"):
            _state_input_rules(value)
    if schema.get("type") == "string" and not schema.keys() & {"pattern", "format", "enum", "const"}:
        schema["pattern"] = _NO_NUL
    elif schema.get("type") == "integer":
        schema.setdefault("minimum", INT64_MIN)
        schema.setdefault("maximum", INT64_MAX)
    elif schema.get("type") == "object" and schema.get("additionalProperties") not in (None, False):
        # Keys are text too.
        schema.setdefault("propertyNames", {"pattern": _NO_NUL})


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return schemas[ref.rsplit("/", 1)[-1]] if ref else schema


def docs_page(title: str, openapi_url: str) -> str:
    """A self-contained page (no CDN) that lists the operations of the OpenAPI document."""
    return _DOCS_TEMPLATE.replace("{title}", title).replace("{openapi_url}", openapi_url)


_DOCS_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:960px;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem}
details{border:1px solid #e3e3e3;border-radius:6px;margin:.4rem 0;padding:.4rem .8rem}
summary{cursor:pointer}
code.m{display:inline-block;width:4.5rem;font-weight:bold}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:13px}
</style></head>
<body><h1>{title}</h1><p>Machine-readable: <a href="{openapi_url}">{openapi_url}</a></p>
<div id="ops">Loading…</div>
<script>
fetch("{openapi_url}").then(r => r.json()).then(doc => {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item))
      (byTag[op.tags[0]] ||= []).push([method, path, op]);
  const root = document.getElementById("ops"); root.textContent = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    const h = document.createElement("h2"); h.textContent = tag; root.append(h);
    for (const [method, path, op] of ops) {
      const d = document.createElement("details");
      const s = document.createElement("summary");
      s.innerHTML = `<code class="m"></code><code class="p"></code> — <span></span>`;
      s.querySelector(".m").textContent = method.toUpperCase();
      s.querySelector(".p").textContent = path;
      s.querySelector("span").textContent = op.summary;
      const pre = document.createElement("pre"); pre.textContent = JSON.stringify(op, null, 2);
      d.append(s, pre); root.append(d);
    }
  }
});
</script></body></html>
"""
