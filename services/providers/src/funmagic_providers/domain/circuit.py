"""A per-provider circuit breaker: stop sending to a provider that keeps failing, probe after a pause.

Closed → (N consecutive transient failures) → open for `cooldown` → half-open: one probe call goes
through; its success closes the circuit, its failure opens it again. Only transient failures count:
a provider that refuses bad input is working as it should.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["CircuitBreaker", "CircuitState"]

CircuitState = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    state: CircuitState = "closed"
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    probe_in_flight: bool = False

    def allows(self, now: datetime) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        if self.state == "closed":
            return True
        if self.state == "open":
            assert self.opened_at is not None
            if now < self.opened_at + self.cooldown:
                return False
            self.state = "half_open"
        if self.probe_in_flight:
            return False
        self.probe_in_flight = True
        return True

    def retry_at(self, now: datetime) -> datetime:
        """When a refused call should try again."""
        if self.state == "open" and self.opened_at is not None:
            return max(now, self.opened_at + self.cooldown)
        return now + timedelta(seconds=1)

    def record_success(self) -> None:
        self.state = "closed"
        self.consecutive_failures = 0
        self.opened_at = None
        self.probe_in_flight = False

    def record_failure(self, now: datetime) -> None:
        self.probe_in_flight = False
        self.consecutive_failures += 1
        if self.state == "half_open" or self.consecutive_failures >= self.failure_threshold:
            self.state = "open"
            self.opened_at = now

    def record_neutral(self) -> None:
        """The call ended without telling anything about the provider's health (refused input, cancel)."""
        self.probe_in_flight = False
        if self.state == "half_open":
            self.state = "closed"
            self.consecutive_failures = 0
