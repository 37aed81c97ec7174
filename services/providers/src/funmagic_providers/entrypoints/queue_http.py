"""Internal HTTP API of the queue monitor (`/v1/admin/queue/*`, admins): what the use cases report, answered
as the public reply models of `funmagic_contracts.api.queue` (the gateway forwards them as they are).

Lag, dead-letter topics and pages, replays, step jobs, the limiter and this replica's circuit breakers. A
dead-letter topic is named in the path by its key (`identity-events-dlq`); an unknown one is 404. Kafka or
Redis being away is a 503 (the kit's problem middleware), never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from funmagic_contracts.api import queue as api
from funmagic_kit.api import json_body, read_body, read_query, require_role
from funmagic_providers.application.queue_monitor import (
    CircuitReport,
    DeadLetterTopicReport,
    GroupReport,
    LagReport,
    LimiterReport,
    QueueMonitor,
    ReplayOutcome,
    StepJobReport,
    TopicReport,
)
from funmagic_providers.domain.queue import DeadLetter, PartitionOffsets, ReplayRecord

__all__ = ["QueueMonitorApp"]

PREFIX = "/v1/admin/queue"


class QueueMonitorApp:
    def __init__(self, monitor: QueueMonitor) -> None:
        self._monitor = monitor

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get(PREFIX + "/lag", self.lag),
            web.get(PREFIX + "/dead-letters", self.dead_letter_topics),
            web.get(PREFIX + "/dead-letters/{topic}/messages", self.dead_letters),
            web.post(PREFIX + "/dead-letters/{topic}/replay", self.replay),
            web.get(PREFIX + "/step-jobs", self.step_jobs),
            web.get(PREFIX + "/limiter", self.limiter),
            web.get(PREFIX + "/circuits", self.circuits),
        ]

    async def lag(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return json_body(_lag(await self._monitor.lag()))

    async def dead_letter_topics(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        topics = [_dead_letter_topic(t) for t in await self._monitor.dead_letter_topics()]
        return json_body(api.DeadLetterTopicList(items=topics, total=sum(t.messages for t in topics)))

    async def dead_letters(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, api.DeadLetterQuery)
        page = await self._monitor.dead_letters(
            request.match_info["topic"], limit=query.limit, partition=query.partition, cursor=query.cursor
        )
        items = [_dead_letter(letter, replay) for letter, replay in page.items]
        return json_body(api.DeadLetterPage(topic=page.topic, items=items, next_cursor=page.next_cursor))

    async def replay(self, request: web.Request) -> web.Response:
        principal = require_role(request, "admin")
        body = await read_body(request, api.ReplayRequest)
        topic = request.match_info["topic"]
        outcomes = await self._monitor.replay(
            topic,
            [(m.partition, m.offset) for m in body.messages],
            actor_id=principal.user_id,
            reason=body.reason,
        )
        return json_body(
            api.ReplayResult(
                topic=api.DEAD_LETTER_KEYS[topic], items=[_replay_outcome(outcome) for outcome in outcomes]
            )
        )

    async def step_jobs(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return json_body(_step_jobs(await self._monitor.step_jobs()))

    async def limiter(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return json_body(api.LimiterStates(items=[_limiter(r) for r in await self._monitor.limiter_states()]))

    async def circuits(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        replica, reports = await self._monitor.circuits()
        return json_body(api.CircuitStates(replica=replica, items=[_circuit(r) for r in reports]))


# --- the use cases' reports as the public models -----------------------------------------------------------


def _lag(report: LagReport) -> api.QueueLag:
    groups = [_group(g) for g in report.groups]
    return api.QueueLag(
        sampled_at=report.sampled_at,
        total_lag=sum(g.lag for g in groups),
        groups=groups,
        topics=[_topic(t) for t in report.topics],
    )


def _group(report: GroupReport) -> api.ConsumerGroupLag:
    return api.ConsumerGroupLag(
        group=report.lag.group,
        topic=report.lag.topic,
        state=report.state,
        members=report.members,
        lag=report.lag.lag,
        partitions=[
            api.PartitionLag(partition=p.partition, committed_offset=p.committed, end_offset=p.end, lag=p.lag)
            for p in report.lag.partitions
        ],
        trend=[api.LagSample(at=s.at, lag=s.lag) for s in report.trend],
    )


def _topic(report: TopicReport) -> api.TopicOffsets:
    partitions = report.partitions or []
    return api.TopicOffsets(
        topic=report.topic,
        kind="dead_letters" if report.dead_letters else "events",
        exists=report.partitions is not None,
        partitions=len(partitions),
        messages=sum(p.messages for p in partitions),
        consumer_groups=report.consumer_groups,
    )


def _dead_letter_topic(report: DeadLetterTopicReport) -> api.DeadLetterTopic:
    partitions = report.partitions or []
    return api.DeadLetterTopic(
        topic=report.topic,
        key=report.key,
        origin_topic=report.origin_topic,
        exists=report.partitions is not None,
        messages=sum(p.messages for p in partitions),
        partitions=[_dead_letter_partition(p) for p in partitions],
    )


def _dead_letter_partition(p: PartitionOffsets) -> api.DeadLetterPartition:
    return api.DeadLetterPartition(
        partition=p.partition, beginning_offset=p.beginning, end_offset=p.end, messages=p.messages
    )


def _dead_letter(letter: DeadLetter, replay: ReplayRecord | None) -> api.DeadLetterMessage:
    return api.DeadLetterMessage(
        partition=letter.record.partition,
        offset=letter.record.offset,
        timestamp=letter.record.timestamp,
        key=letter.key,
        event_id=letter.event_id,
        event_type=letter.event_type,
        error=letter.error,
        consumer=letter.consumer,
        origin_topic=letter.origin_topic,
        origin_partition=letter.origin_partition,
        origin_offset=letter.origin_offset,
        attempts=letter.attempts,
        headers=letter.headers,
        value_preview=letter.value_preview,
        value_size=letter.value_size,
        value_truncated=letter.value_truncated,
        replayed=replay is not None,
        replayed_at=replay.replayed_at if replay else None,
        replayed_by=replay.replayed_by if replay else None,
    )


def _replay_outcome(outcome: ReplayOutcome) -> api.ReplayOutcome:
    return api.ReplayOutcome.model_validate(outcome, from_attributes=True)


def _step_jobs(report: StepJobReport) -> api.StepJobStats:
    return api.StepJobStats(
        items=[api.StepJobCount.model_validate(count, from_attributes=True) for count in report.items],
        totals=report.totals,
    )


def _limiter(report: LimiterReport) -> api.LimiterState:
    return api.LimiterState(
        scope=report.scope,
        provider=report.provider,
        in_flight=report.usage.in_flight,
        max_concurrency=report.config.max_concurrency,
        used_per_minute=report.usage.used_per_minute,
        max_per_minute=report.config.max_per_minute,
        minute_resets_in_seconds=report.usage.minute_resets_in_seconds,
        used_per_day=report.usage.used_per_day,
        max_per_day=report.config.max_per_day,
        day=report.usage.day,
    )


def _circuit(report: CircuitReport) -> api.CircuitState:
    breaker = report.breaker
    opened = breaker.opened_at if breaker.state != "closed" else None
    return api.CircuitState(
        scope=report.scope,
        provider=report.provider,
        state=breaker.state,
        consecutive_failures=breaker.consecutive_failures,
        failure_threshold=breaker.failure_threshold,
        opened_at=opened,
        retry_at=opened + breaker.cooldown if opened is not None else None,
    )
