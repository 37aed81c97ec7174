"""The base of every integration event, and the small value types events share.

Conventions every event follows:

* frozen pydantic models, snake_case fields; ``extra="ignore"`` so a consumer built against an older
  version of this package tolerates optional fields added by a newer producer;
* ids are ``str`` (non-empty), money is integer credits, times are tz-aware and normalised to UTC;
* a field marked ``?`` in the catalog is ``X | None = None`` (optional: absent or ``null``); every other
  field is required;
* class variables ``EVENT_TYPE`` (past tense), ``EVENT_VERSION``, ``TOPIC`` and ``SUBJECT_FIELD`` (the
  field whose value is the envelope ``subject`` and the Kafka key) describe where the event travels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "ContractModel",
    "Credits",
    "Id",
    "IntegrationEvent",
    "Metadata",
    "OutputAsset",
    "ProviderScope",
    "SignedCredits",
    "UtcDatetime",
]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A tz-aware datetime (naive ones are rejected), normalised to UTC; serialised as ISO 8601 with ``Z``."""

Id = Annotated[str, Field(min_length=1)]
"""An identifier: a UUID as text for our own aggregates, or an external reference."""

Credits = Annotated[int, Field(ge=0)]
"""A non-negative amount of integer credits."""

SignedCredits = int
"""An amount of integer credits that may be negative (admin adjustments)."""

ProviderScope = Literal["web", "admin"]
"""Which provider table a step runs against: user tasks (``web``) or the admin studio (``admin``)."""

Metadata = dict[str, JsonValue]
"""Small free-form JSON metadata (sizes, counts, provider flags). Never URLs a user typed, never secrets."""


class ContractModel(BaseModel):
    """Frozen, tolerant of unknown fields: the config of every model that crosses a service boundary."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class IntegrationEvent(ContractModel):
    """An event another service may consume. Subclasses set the four class variables."""

    EVENT_TYPE: ClassVar[str]
    EVENT_VERSION: ClassVar[int]
    TOPIC: ClassVar[str]
    SUBJECT_FIELD: ClassVar[str]

    def get_subject(self) -> str:
        """The aggregate id this event is about: the envelope ``subject`` and the Kafka key."""
        return str(getattr(self, self.SUBJECT_FIELD))


class OutputAsset(ContractModel):
    """An asset a step or task produced, with the part it plays in the output."""

    asset_id: Id
    role: str = Field(
        min_length=1,
        description='What the asset is in this output, e.g. "image", "model", "preview", "point_cloud".',
    )
