"""The two base classes of the public API's models: what a caller sends, and what a service answers.

Pydantic only, no I/O. The gateway validates at the edge with these models and /openapi.json is generated
from them; a service may take the same `Request` models as its body or query models, so the public
contract and the service's are one definition.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = ["IsoDatetime", "Reply", "Request"]

_ISO_8601_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}")


def _written_as_iso_8601(value: Any) -> Any:
    # Pydantic also reads "0.5" or "1700000000" as seconds since 1970; the document says `date-time`. The
    # text is parsed here (to a datetime, which strict bodies then accept as it is).
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_8601_START.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError(
        "datetime_format", "Input should be an ISO 8601 date and time with its offset (2026-01-31T09:30:00Z)"
    )


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_written_as_iso_8601)]
"""A moment a caller sends: ISO 8601 text with its offset (a naive time or a number is refused)."""


class Request(BaseModel):
    """Unknown fields are refused, so a typo is an error instead of a silently ignored value."""

    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class Reply(BaseModel):
    # Ignored, not refused: a service may answer more than the public contract shows (the catalog's admin
    # fields, for one). That a field a client needs is not dropped by mistake is checked by the contract
    # tests (tests/e2e/test_gateway_reply_contracts.py), which compare these models with real answers.
    model_config = ConfigDict(extra="ignore")
