"""The queue monitor: consumer lag and its trend, the dead-letter topics, the replay of dead letters, and the
step jobs, rate limiter and circuit breakers of providers — what an operator watches the platform with.

Lag is read from Kafka's admin API on every request (never estimated) and sampled into a short trend, by a
background round (`sample_lag`, wired as a `Periodic` worker) and by reads, at most one sample per spacing
across the replicas. Dead letters are read from their topics; a replay publishes the original message
again through this service's outbox, once per event (see `replay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from funmagic_contracts.api.queue import DEAD_LETTER_KEYS, dead_letter_key
from funmagic_contracts.topics import DEAD_LETTER_TOPICS, EVENT_TOPICS, origin_topic
from funmagic_kit.audit import AdminAction, bind_actor
from funmagic_kit.clock import Clock
from funmagic_kit.logs import get_logger
from funmagic_kit.ports import UnitOfWorkFactory
from funmagic_providers.application.ports import (
    KafkaQueue,
    LagTrend,
    LimiterGauge,
    ProvidersUnitOfWork,
    QueueMetrics,
)
from funmagic_providers.application.steps import StepRunner
from funmagic_providers.domain import queue
from funmagic_providers.domain.circuit import CircuitBreaker
from funmagic_providers.domain.providers import LOCAL_PROVIDER, SCOPES
from funmagic_providers.domain.queue import (
    QUEUE_STATES,
    DeadLetter,
    GroupLag,
    LagSample,
    LimiterUsage,
    NoSuchDeadLetterTopic,
    NotReplayable,
    PartitionOffsets,
    ReplayRecord,
    StepJobCount,
)
from funmagic_providers.domain.rate_limit import RateLimitConfig

__all__ = [
    "REPLAY_ACTION",
    "CircuitReport",
    "DeadLetterPage",
    "DeadLetterTopicReport",
    "GroupReport",
    "LagReport",
    "LimiterReport",
    "QueueMonitor",
    "ReplayOutcome",
    "StepJobReport",
    "TopicReport",
]

log = get_logger(__name__)

REPLAY_ACTION = "dead_letter.replayed"
_ALL_TOPICS = tuple(t.name for t in (*EVENT_TOPICS, *DEAD_LETTER_TOPICS))
_EVENT_TOPIC_NAMES = tuple(t.name for t in EVENT_TOPICS)
_EMPTY_READS = 5


@dataclass(frozen=True)
class GroupReport:
    lag: GroupLag
    state: str | None
    members: int | None
    trend: list[LagSample]


@dataclass(frozen=True)
class TopicReport:
    topic: str
    dead_letters: bool
    partitions: list[PartitionOffsets] | None  # None: the topic does not exist
    consumer_groups: list[str]


@dataclass(frozen=True)
class LagReport:
    sampled_at: datetime
    groups: list[GroupReport]
    topics: list[TopicReport]


@dataclass(frozen=True)
class DeadLetterTopicReport:
    topic: str
    key: str
    origin_topic: str
    partitions: list[PartitionOffsets] | None


@dataclass(frozen=True)
class DeadLetterPage:
    topic: str
    items: list[tuple[DeadLetter, ReplayRecord | None]]
    next_cursor: str | None


@dataclass(frozen=True)
class ReplayOutcome:
    partition: int
    offset: int
    status: str  # replayed | already_replayed | not_found | not_replayable
    event_id: str | None = None
    origin_topic: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class StepJobReport:
    items: list[StepJobCount]
    totals: dict[str, int]


@dataclass(frozen=True)
class LimiterReport:
    scope: str
    provider: str
    config: RateLimitConfig
    usage: LimiterUsage


@dataclass(frozen=True)
class CircuitReport:
    scope: str
    provider: str
    breaker: CircuitBreaker


@dataclass(kw_only=True, eq=False)
class QueueMonitor:
    uow: UnitOfWorkFactory[ProvidersUnitOfWork]
    kafka: KafkaQueue
    trend: LagTrend
    limiter: LimiterGauge
    runner: StepRunner
    clock: Clock
    sample_spacing_seconds: float
    metrics: QueueMetrics

    # --- lag ---------------------------------------------------------------------------------------

    async def lag(self) -> LagReport:
        """Every consumer group's lag per topic and partition, now, with its recent trend."""
        at, offsets, lags = await self._measure()
        # A read is a sample too (when none was taken within the spacing): the trend starts at once.
        await self._sample(lags, at)
        trends = await self.trend.recent([(g.lag.group, g.lag.topic) for g in lags])
        reports = [replace(g, trend=trends.get((g.lag.group, g.lag.topic), [])) for g in lags]
        topics = [
            TopicReport(
                topic=topic,
                dead_letters=topic not in _EVENT_TOPIC_NAMES,
                partitions=offsets[topic],
                consumer_groups=sorted(g.lag.group for g in lags if g.lag.topic == topic),
            )
            for topic in _ALL_TOPICS
        ]
        return LagReport(sampled_at=at, groups=reports, topics=topics)

    async def sample_lag(self) -> bool:
        """One background sample of every group's lag; False when another replica sampled just now.

        Every replica's round also sets its metrics (lag and dead letters), sampled or not: each replica
        reports what it measured, and the alerts take the highest."""
        at, offsets, lags = await self._measure()
        self.metrics.queue_sampled(
            {(g.lag.group, g.lag.topic): g.lag.lag for g in lags},
            {
                topic.name: sum(p.end for p in partitions)
                for topic in DEAD_LETTER_TOPICS
                if (partitions := offsets.get(topic.name)) is not None
            },
        )
        return await self._sample(lags, at)

    async def _measure(
        self,
    ) -> tuple[datetime, dict[str, list[PartitionOffsets] | None], list[GroupReport]]:
        """Now, every topic's partitions, and every group's lag on each topic it committed on."""
        at = self.clock.now()
        offsets = await self.kafka.offsets(_ALL_TOPICS)
        groups = await self.kafka.consumer_groups(_ALL_TOPICS)
        return at, offsets, self._group_lags(offsets, groups)

    async def _sample(self, lags: list[GroupReport], at: datetime) -> bool:
        return await self.trend.record(
            {(g.lag.group, g.lag.topic): g.lag.lag for g in lags},
            at,
            spacing_seconds=self.sample_spacing_seconds,
        )

    @staticmethod
    def _group_lags(
        offsets: dict[str, list[PartitionOffsets] | None], groups: list[queue.ConsumerGroupOffsets]
    ) -> list[GroupReport]:
        lags = []
        for group in groups:
            for topic, committed in sorted(group.committed.items()):
                partitions = offsets.get(topic)
                if partitions is None:
                    continue
                lag = queue.group_lag(group.group, topic, partitions, committed)
                lags.append(GroupReport(lag=lag, state=group.state, members=group.members, trend=[]))
        return lags

    # --- dead letters ------------------------------------------------------------------------------

    async def dead_letter_topics(self) -> list[DeadLetterTopicReport]:
        names = [t.name for t in DEAD_LETTER_TOPICS]
        offsets = await self.kafka.offsets(names)
        return [
            DeadLetterTopicReport(
                topic=name,
                key=dead_letter_key(name),
                origin_topic=origin_topic(name),
                partitions=offsets[name],
            )
            for name in names
        ]

    async def dead_letters(
        self, key: str, *, limit: int, partition: int | None = None, cursor: str | None = None
    ) -> DeadLetterPage:
        """A page of a dead-letter topic's messages, newest first, each with its replay if it had one."""
        topic = _topic_of(key)
        after = queue.decode_cursor(cursor) if cursor else None
        partitions = (await self.kafka.offsets([topic]))[topic] or []
        if partition is not None:
            partitions = [p for p in partitions if p.partition == partition]
        for _ in range(_EMPTY_READS):
            ranges = queue.page_ranges(partitions, after, limit)
            records = {p: await self.kafka.read(topic, p, start, stop) for p, (start, stop) in ranges.items()}
            taken = queue.newest_first(records, limit)
            empty = {p: start for p, (start, _) in ranges.items() if not records[p]}
            following = queue.next_cursor(partitions, after, taken, empty=empty)
            # Offsets a log skipped make a read come back empty: go on below them rather than answer an
            # empty page with a cursor (a few times at most; the next page goes on from there).
            if taken or following is None:
                break
            after = following
        letters = [queue.read_dead_letter(record) for record in taken]
        async with self.uow() as uow:
            replays = await uow.replays.of_events([d.event_id for d in letters if d.event_id])
        return DeadLetterPage(
            topic=topic,
            items=[(d, replays.get(d.event_id) if d.event_id else None) for d in letters],
            next_cursor=None if following is None else queue.encode_cursor(following),
        )

    async def replay(
        self, key: str, positions: Sequence[tuple[int, int]], *, actor_id: str, reason: str | None = None
    ) -> list[ReplayOutcome]:
        """Publish chosen dead letters again to their origin topic, each event once.

        For each message: read it from the dead-letter topic, then in one transaction record the replay
        under its event id (ON CONFLICT DO NOTHING) and, only if that was new, put the original message in
        the outbox and record the admin action. An event replayed before — from this message, or from
        another dead letter of the same event — is `already_replayed` and not published again. Consumers
        that handled the event already skip it by their inbox; the one that dead-lettered it rolled back
        and handles it now.
        """
        topic = _topic_of(key)
        partitions = {p.partition: p for p in (await self.kafka.offsets([topic]))[topic] or []}
        outcomes: dict[tuple[int, int], ReplayOutcome] = {}
        for partition, offset in positions:
            if (partition, offset) not in outcomes:
                outcomes[(partition, offset)] = await self._replay_one(
                    topic, partitions.get(partition), partition, offset, actor_id=actor_id, reason=reason
                )
        return [outcomes[position] for position in positions]

    async def _replay_one(
        self,
        topic: str,
        offsets: PartitionOffsets | None,
        partition: int,
        offset: int,
        *,
        actor_id: str,
        reason: str | None,
    ) -> ReplayOutcome:
        if offsets is None or not offsets.beginning <= offset < offsets.end:
            return ReplayOutcome(partition, offset, "not_found")
        found = [r for r in await self.kafka.read(topic, partition, offset, offset + 1) if r.offset == offset]
        if not found:
            return ReplayOutcome(partition, offset, "not_found")
        replay = queue.replay_of(found[0])
        if isinstance(replay, NotReplayable):
            return ReplayOutcome(partition, offset, "not_replayable", detail=replay.reason)
        event_id = str(replay.event_id)
        async with self.uow() as uow:
            if not await uow.replays.add(replay, replayed_by=actor_id, replayed_at=self.clock.now()):
                return ReplayOutcome(partition, offset, "already_replayed", event_id, replay.origin_topic)
            await uow.replays.publish_again(replay)
            changes = {
                "origin_topic": replay.origin_topic,
                "dead_letter": {"topic": topic, "partition": partition, "offset": offset},
            }
            # Bound here too, not only by the caller middleware: the replay is recorded as `actor_id`'s
            # whoever calls the use case.
            with bind_actor(actor_id):
                uow.record(AdminAction(REPLAY_ACTION, "event", event_id, changes, reason))
        log.info(
            "dead letter replayed",
            extra={"event_id": event_id, "origin_topic": replay.origin_topic, "actor_id": actor_id},
        )
        return ReplayOutcome(partition, offset, "replayed", event_id, replay.origin_topic)

    # --- step jobs, limiter, circuits --------------------------------------------------------------

    async def step_jobs(self) -> StepJobReport:
        async with self.uow() as uow:
            counts = await uow.jobs.queue_counts()
        totals = {state: 0 for state in QUEUE_STATES}
        for count in counts:
            totals[count.state] += count.count
        return StepJobReport(items=counts, totals=totals)

    async def limiter_states(self) -> list[LimiterReport]:
        """The limiter of every provider steps can name (the live ones of both scopes and `local`)."""
        reports = []
        for scope, name in await self._providers():
            config = await self.limiter.config(scope, name)
            reports.append(LimiterReport(scope, name, config, await self.limiter.usage(scope, name)))
        return reports

    async def circuits(self) -> tuple[str, list[CircuitReport]]:
        """This replica's circuit breakers (each replica keeps its own): the runner's name, and a breaker per
        provider steps can name — closed for one this runner has not called yet."""
        breakers = self.runner.circuits(await self._providers())
        reports = [CircuitReport(scope, provider, breaker) for (scope, provider), breaker in breakers.items()]
        return self.runner.owner or "", reports

    async def _providers(self) -> list[tuple[str, str]]:
        names: set[tuple[str, str]] = set()
        async with self.uow() as uow:
            for scope in SCOPES:
                names |= {(scope, p.name) for p in await uow.providers[scope].all_live()}
        names |= {(scope, LOCAL_PROVIDER) for scope in SCOPES}
        return sorted(names)


def _topic_of(key: str) -> str:
    topic = DEAD_LETTER_KEYS.get(key)
    if topic is None:
        raise NoSuchDeadLetterTopic(f"no dead-letter topic {key!r}")
    return topic
