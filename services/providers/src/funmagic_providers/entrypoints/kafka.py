"""Kafka subscriptions of providers (consumer group `providers`).

Handlers are added per event type as the service's features land; an event type without a
handler is acknowledged and recorded as skipped.
"""

from collections.abc import Sequence

from funmagic_contracts.topics import TASKS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_kit.runtime import Runtime


def subscriptions(runtime: Runtime) -> Sequence[Subscription]:
    return (Subscription(TASKS_EVENTS.name),)
