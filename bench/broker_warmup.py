"""Bring the Kafka broker to its steady speed before anything is measured.

A broker just started runs its JVM's code interpreted until the JIT has compiled it. Right after
`make stack-up`, roundtrip's raw aiokafka baseline measured 26,800 events/s, and 73,600 a minute later: the
ratios to it (roundtrip's 0.28 against 0.11 for the same platform path) said more about the broker's age than
about the platform. Here roundtrip's raw baseline itself — a fresh topic, one event at a time, then a burst,
the code paths every benchmark takes — runs until three in a row agree within `STEADY_SPREAD`, or for at most
`MAX_SECONDS`. (Bursts alone on one topic were steady at ~50,000 events/s while the next fresh topic's
baseline still ran at half that.)
"""

from __future__ import annotations

import time

import roundtrip

STEADY_ROUNDS = 3
STEADY_SPREAD = 1.15  # the fastest of the last rounds at most this many times the slowest
MAX_SECONDS = 120.0


def steady(rates: list[float]) -> bool:
    """Whether the last `STEADY_ROUNDS` rounds ran at nearly the same speed."""
    last = rates[-STEADY_ROUNDS:]
    return len(last) == STEADY_ROUNDS and max(last) <= STEADY_SPREAD * min(last)


async def warm_broker(kafka: str) -> list[float]:
    """Raw baselines until the broker's speed is steady; the burst events/s of each, printed as they go."""
    rates: list[float] = []
    deadline = time.monotonic() + MAX_SECONDS
    while not steady(rates):
        if time.monotonic() > deadline:
            print(f"  broker not steady after {MAX_SECONDS:g} s; measuring anyway", flush=True)
            break
        raw = await roundtrip.baseline(kafka)
        rates.append(raw["events_per_s"])
        print(
            f"  broker warm-up, round {len(rates)}: {raw['events_per_s']:,.0f} events/s, "
            f"p50 {raw['p50_ms']} ms",
            flush=True,
        )
    return rates
