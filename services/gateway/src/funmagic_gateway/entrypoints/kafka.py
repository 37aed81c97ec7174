"""Kafka subscriptions of gateway (consumer group `gateway`): the SSE projector.

Step events (providers.events) and task outcomes (tasks.events) become entries of the task's and the
owner's Redis streams, which `entrypoints.sse_routes` serves (mapping: `domain.sse.project`). The gateway
has no database, hence no inbox: the appends are idempotent by themselves (see `adapters.task_streams`),
so a redelivered event changes nothing. Other event types are acknowledged and skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from funmagic_contracts.envelope import ContractError, Envelope, parse_event
from funmagic_contracts.topics import PROVIDERS_EVENTS, TASKS_EVENTS
from funmagic_gateway.adapters.task_streams import TaskStreams
from funmagic_gateway.domain.sse import PROJECTED_EVENT_TYPES, project
from funmagic_kit.consumer import Subscription
from funmagic_kit.errors import PermanentError
from funmagic_kit.runtime import Runtime

__all__ = ["TASK_STREAMS", "SseProjector", "subscriptions"]

TASK_STREAMS = "task_streams"
"""The `runtime.state` key of the `TaskStreams` the projector appends to (set by bootstrap's startup)."""


class SseProjector:
    def __init__(self, streams: TaskStreams) -> None:
        self._streams = streams

    async def project(self, envelope: Envelope, uow: object = None) -> None:
        try:
            event = parse_event(envelope)
        except ContractError as error:
            raise PermanentError(str(error)) from error  # dead-lettered at once: retrying cannot help
        projection = project(str(envelope.id), event)
        if projection is not None:
            await self._streams.append(projection)  # StreamUnavailable (Redis down): retried

    def subscriptions(self) -> Sequence[Subscription]:
        return tuple(
            Subscription(topic, dict.fromkeys(PROJECTED_EVENT_TYPES[topic], self.project))
            for topic in (TASKS_EVENTS.name, PROVIDERS_EVENTS.name)
        )


def subscriptions(runtime: Runtime) -> Sequence[Subscription]:
    return SseProjector(runtime.state[TASK_STREAMS]).subscriptions()
