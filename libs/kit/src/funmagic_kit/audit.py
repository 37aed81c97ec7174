"""The audit log of admin writes: what an admin changed, recorded with the change itself.

Every service keeps the admin actions it performs in its own database (`admin_audit`, a kit migration),
written by the unit of work in the transaction that makes the change (`uow.record(AdminAction(...))`, which
calls `funmagic_kit.audit_log.record_admin_action` on its connection before the commit), so
an entry exists exactly when the change committed, and a retried request that changes nothing records
nothing. Who acted comes from the request: the services' auth middleware binds the verified caller
(`bind_actor`), as the correlation id is bound for events. The gateway merges the services' pages
(`GET /api/admin/audit`).

Secrets never reach the log: `redacted` replaces the value of any field that names a secret (an API key, a
password, a token…) with ``"changed"``, at any depth. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SECRET_MARKER", "AdminAction", "bind_actor", "current_actor", "redacted"]

SECRET_MARKER = "changed"
# A field whose name says it holds a secret or key material: api_key, apiKey, api_key_hint, client_secret,
# password, refresh_token, private_key, signing_key, authorization… Too wide is harmless (`max_tokens`
# reads "changed"); too narrow would keep a secret forever.
_SECRET_NAME = re.compile(
    r"(api_?key|secret|passw(or)?d|token|credential|authorization|cookie"
    r"|(private|signing|master|encryption|access|secret)_?key|key_?material)",
    re.IGNORECASE,
)

_actor: ContextVar[str | None] = ContextVar("funmagic_actor", default=None)


@dataclass(frozen=True)
class AdminAction:
    """One admin write: `action` (`tool.updated`), what it was done to, what changed, and why.

    `actor_id`: who acted, when the use case knows it; otherwise the request's caller (`bind_actor`)."""

    action: str
    subject_type: str
    subject_id: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    actor_id: str | None = None


def redacted(value: Any) -> Any:
    """`value` with every secret-named field's value replaced by SECRET_MARKER (None stays None: a secret
    removed is no secret)."""
    if isinstance(value, Mapping):
        return {
            str(k): (SECRET_MARKER if v is not None else None) if _SECRET_NAME.search(str(k)) else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


@contextmanager
def bind_actor(user_id: str | None) -> Iterator[None]:
    """Admin actions recorded inside act for `user_id` (the verified caller of the request)."""
    token = _actor.set(user_id)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str | None:
    return _actor.get()
