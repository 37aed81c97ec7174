"""The two base classes of the public API's models: what a caller sends, and what a service answers.

Pydantic only, no I/O. The gateway validates at the edge with these models and /openapi.json is generated
from them; a service may take the same `Request` models as its body or query models, so the public
contract and the service's are one definition.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Reply", "Request"]


class Request(BaseModel):
    """Unknown fields are refused, so a typo is an error instead of a silently ignored value."""

    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class Reply(BaseModel):
    # Ignored, not refused: a service may answer more than the public contract shows (the catalog's admin
    # fields, for one). That a field a client needs is not dropped by mistake is checked by the contract
    # tests (tests/e2e/test_gateway_reply_contracts.py), which compare these models with real answers.
    model_config = ConfigDict(extra="ignore")
