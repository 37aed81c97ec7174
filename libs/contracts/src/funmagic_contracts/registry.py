"""Every integration event, by ``(type, version)``: the table consumers parse envelopes with.

Built from the explicit ``__all__`` of each service's ``events`` module; a test checks that every
``IntegrationEvent`` subclass is registered.
"""

from __future__ import annotations

from types import ModuleType

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.credits import events as credits_events
from funmagic_contracts.errors import ContractError
from funmagic_contracts.identity import events as identity_events
from funmagic_contracts.providers import events as providers_events
from funmagic_contracts.storage import events as storage_events
from funmagic_contracts.tasks import events as tasks_events

__all__ = ["EVENT_MODULES", "EVENT_TYPES", "EventKey", "event_model"]

EventKey = tuple[str, int]

EVENT_MODULES: tuple[ModuleType, ...] = (
    identity_events,
    tasks_events,
    credits_events,
    storage_events,
    providers_events,
)


def _events_of(module: ModuleType) -> list[type[IntegrationEvent]]:
    found = []
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, IntegrationEvent):
            found.append(obj)
    return found


def _build(modules: tuple[ModuleType, ...]) -> dict[EventKey, type[IntegrationEvent]]:
    table: dict[EventKey, type[IntegrationEvent]] = {}
    for module in modules:
        for model in _events_of(module):
            key = (model.EVENT_TYPE, model.EVENT_VERSION)
            if key in table:
                raise ContractError(f"event {key} is defined twice: {table[key]!r} and {model!r}")
            table[key] = model
    return table


EVENT_TYPES: dict[EventKey, type[IntegrationEvent]] = _build(EVENT_MODULES)
"""``(EVENT_TYPE, EVENT_VERSION) -> model`` for every published event version."""


def event_model(event_type: str, version: int) -> type[IntegrationEvent]:
    """The model of one event version; ``ContractError`` when this package does not know it."""
    try:
        return EVENT_TYPES[(event_type, version)]
    except KeyError:
        known = sorted(v for t, v in EVENT_TYPES if t == event_type)
        hint = f"; known versions: {known}" if known else ""
        raise ContractError(f"unknown event {event_type!r} version {version}{hint}") from None
