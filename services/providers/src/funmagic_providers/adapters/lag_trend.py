"""Recent consumer-lag samples in Redis (the `LagTrend` port), so every replica shows the same trend.

    queue:lag:{<group>}:<topic>   list of {"at": ISO time, "lag": n}, newest first, capped to TREND_LENGTH,
                                  gone a day after its last sample (a group that stopped reading leaves)
    queue:lag:sampled             set for the spacing after a sample, NX: one sample per spacing across
                                  every replica and reader

The group is a Redis Cluster hash tag only to keep one group's topics together; nothing here needs one
slot (the writes are a pipeline, not a script).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from funmagic_kit.errors import TransientError
from funmagic_providers.domain.queue import TREND_LENGTH, LagSample

__all__ = ["RedisLagTrend"]

_SAMPLED = "queue:lag:sampled"
_KEEP_SECONDS = 86_400


def _key(group: str, topic: str) -> str:
    return f"queue:lag:{{{group}}}:{topic}"


class RedisLagTrend:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(
        self, lags: Mapping[tuple[str, str], int], at: datetime, *, spacing_seconds: float
    ) -> bool:
        with _unavailable("record a lag sample"):
            if not await self._redis.set(
                _SAMPLED, at.isoformat(), nx=True, px=max(1, int(spacing_seconds * 1000))
            ):
                return False
            pipe = self._redis.pipeline(transaction=False)
            for (group, topic), lag in lags.items():
                key = _key(group, topic)
                pipe.lpush(key, json.dumps({"at": at.isoformat(), "lag": lag}))
                pipe.ltrim(key, 0, TREND_LENGTH - 1)
                pipe.expire(key, _KEEP_SECONDS)
            await pipe.execute()
        return True

    async def recent(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[LagSample]]:
        if not keys:
            return {}
        with _unavailable("read the lag trend"):
            pipe = self._redis.pipeline(transaction=False)
            for group, topic in keys:
                pipe.lrange(_key(group, topic), 0, TREND_LENGTH - 1)
            lists = await pipe.execute()
        return {key: _samples(raw) for key, raw in zip(keys, lists, strict=True)}


def _samples(raw: list[bytes | str]) -> list[LagSample]:
    samples = []
    for item in reversed(raw):  # stored newest first
        try:
            document = json.loads(item)
            samples.append(LagSample(at=datetime.fromisoformat(document["at"]), lag=int(document["lag"])))
        except (ValueError, KeyError, TypeError):
            continue  # a sample that is not ours is skipped, not an error for the whole page
    return samples


@contextlib.contextmanager
def _unavailable(action: str) -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as error:
        raise TransientError(f"cannot {action}: {error}") from error
