"""A creation a client may retry happens once per `Idempotency-Key`.

The entrypoint makes a `RequestKey` of the header, the kind of request, the caller and a fingerprint of the
body (`request_key`); the application claims it in the transaction that creates (`UnitOfWork.claim`): the
first time it answers None and the application creates, saying what (`UnitOfWork.created`); a retry gets the
id of what the first request created and answers with that; the key with another body is refused
(`IdempotencyKeyReused`, 409). Two requests with one key at once: the second's claim waits for the first's
transaction (the key's row is being inserted) and then finds its answer — or claims it, if the first rolled
back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from funmagic_kit.audit import redacted
from funmagic_kit.errors import IdempotencyKeyReused

__all__ = ["IdempotencyKeyReused", "RequestKey", "request_fingerprint"]


@dataclass(frozen=True)
class RequestKey:
    """A client's Idempotency-Key for one kind of request by one caller, with what that request asked."""

    scope: str  # the kind of request and the caller: "packages.create:<admin id>"
    key: str
    fingerprint: str


def request_fingerprint(body: object) -> str:
    """What a request asked, as a digest of its JSON (keys sorted: the same body, however it was sent).
    Secret-named fields count by their presence only: nothing derived from a secret (a provider's API key)
    is kept at rest, not even its digest."""
    return hashlib.sha256(orjson.dumps(redacted(body), option=orjson.OPT_SORT_KEYS)).hexdigest()
