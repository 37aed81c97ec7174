"""UUIDv7 identifiers (RFC 9562 §5.7), stdlib only.

Layout: 48-bit Unix time in milliseconds | version 7 | 42-bit counter (12 bits in ``rand_a``, 30 in the
top of ``rand_b``) | variant ``10`` | 32 random bits. The counter follows RFC 9562 §6.2 method 1 (the
scheme CPython 3.14's ``uuid.uuid7`` uses): it starts at a random value with its top bit clear each new
millisecond and is incremented within a millisecond, so ids made by one process are strictly increasing
even when the wall clock stalls or steps back; on counter overflow the timestamp moves on one millisecond.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from uuid import UUID

__all__ = ["UUID7Generator", "uuid7", "uuid7_unix_ms"]

_COUNTER_BITS = 42
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_MS_MASK = (1 << 48) - 1


class _RandomBytes:
    """The kernel's random bytes read 4 KiB at a time: one system call for ~500 ids instead of one or two
    per id (the calls were a twentieth of an event's trip through outbox, Kafka and inbox). A forked child
    starts with none, so a parent and its child never hand out the same bytes."""

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._lock = threading.Lock()
        self._buffer = b""
        self._position = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # A new lock too: another thread of the parent may have held it at the fork.
        self._lock = threading.Lock()
        self._buffer, self._position = b"", 0

    def bits(self, bits: int) -> int:
        size = (bits + 7) // 8
        with self._lock:
            if self._position + size > len(self._buffer):
                self._buffer, self._position = os.urandom(self._chunk), 0
            start = self._position
            self._position += size
            drawn = self._buffer[start : self._position]
        return int.from_bytes(drawn, "big") >> (-bits % 8)


_random_bits = _RandomBytes().bits


class UUID7Generator:
    """A monotonic UUIDv7 source. ``clock_ns`` and ``random_bits`` are injectable for tests; thread-safe."""

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.time_ns,
        random_bits: Callable[[int], int] = _random_bits,
    ) -> None:
        self._clock_ns = clock_ns
        self._random_bits = random_bits
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def _fresh_counter(self) -> int:
        # Top bit clear leaves room for 2**41 increments within one millisecond.
        return self._random_bits(_COUNTER_BITS - 1)

    def __call__(self) -> UUID:
        with self._lock:
            ms = self._clock_ns() // 1_000_000
            if ms > self._last_ms:
                counter = self._fresh_counter()
            else:
                ms = self._last_ms
                counter = self._counter + 1
                if counter > _COUNTER_MAX:
                    ms += 1
                    counter = self._fresh_counter()
            self._last_ms, self._counter = ms, counter
        tail = self._random_bits(32)
        value = (
            (ms & _MS_MASK) << 80
            | 0x7 << 76
            | (counter >> 30) << 64
            | 0b10 << 62
            | (counter & ((1 << 30) - 1)) << 32
            | tail
        )
        return UUID(int=value)


_default = UUID7Generator()


def uuid7() -> UUID:
    """A new UUIDv7, greater than every id this process made before."""
    return _default()


def uuid7_unix_ms(value: UUID) -> int:
    """The Unix time in milliseconds embedded in a UUIDv7."""
    return value.int >> 80
