"""Sliding windows of call outcomes for a circuit breaker's rate rules.

``CountWindow(n)`` keeps the last ``n`` calls; ``TimeWindow(seconds)`` keeps
the calls that ended within about the last ``seconds`` on the breaker's
clock, in buckets (one second wide by default), evicting whole buckets as
time moves on (so it holds between ``seconds`` less a bucket and
``seconds``). Both cost O(1) per recorded call (amortised for the time window).

The window values are frozen configuration; each breaker makes its own
accumulator from them with :meth:`CountWindow.accumulator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from .._arguments import require_count, require_duration
from .._clock import RESOLUTION

__all__ = ["CountWindow", "OutcomeWindow", "TimeWindow", "WindowTotals"]


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """What a window holds now: calls, and how many of them failed or were slow."""

    calls: int
    failures: int
    slow_calls: int


class OutcomeWindow(Protocol):
    """The running accumulator of one breaker's window."""

    def add(self, now: float, failed: bool, slow: bool) -> None: ...

    def totals(self, now: float) -> WindowTotals: ...

    def clear(self) -> None: ...


#: The longest ``CountWindow``, in calls.
MOST_CALLS = 1_000_000

#: The most buckets of a ``TimeWindow``.
MOST_BUCKETS = 100_000


@dataclass(frozen=True, slots=True)
class CountWindow:
    """The last ``size`` calls (1 to 1,000,000).

    Examples:
        >>> CountWindow(100).size
        100
    """

    size: int

    def __post_init__(self) -> None:
        require_count("size", self.size)
        if self.size > MOST_CALLS:
            # Allocated up front, a byte a call, for every breaker (and kept
            # in Redis alike): sys.maxsize died as a bare MemoryError.
            raise ValueError(
                f"size must be at most {MOST_CALLS:,} calls, got {self.size!r}"
            )

    def accumulator(self) -> OutcomeWindow:
        """A fresh, empty accumulator for one breaker."""
        return _CountAccumulator(self.size)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The calls that ended within about the last ``seconds``, per bucket.

    Eviction is per bucket (as in resilience4j): a call leaves the window
    when its whole bucket falls out of it, so the window holds between
    ``seconds - seconds / buckets`` and ``seconds`` of calls. The default is one-second buckets (``ceil(seconds)`` of
    them, at most 1000).

    Examples:
        >>> TimeWindow(60.0).bucket_count
        60

    Raises:
        ValueError: ``seconds`` not above 0, not finite, or above
            ``LONGEST_WAIT`` (about 292 years); ``buckets`` below 1 or above
            100,000; a bucket
            (``seconds / buckets``) narrower than a microsecond, the finest
            step a scheduler resolves.
        TypeError: ``seconds`` not a number (a ``bool`` included), or
            ``buckets`` not an int.
    """

    seconds: float
    buckets: int | None = None

    def __post_init__(self) -> None:
        seconds = require_duration("seconds", self.seconds, positive=True)
        object.__setattr__(self, "seconds", seconds)
        if self.buckets is not None:
            require_count("buckets", self.buckets, or_none=True)
            if self.buckets > MOST_BUCKETS:
                raise ValueError(
                    f"buckets must be at most {MOST_BUCKETS:,}, got {self.buckets!r}"
                )
        if seconds / self.bucket_count < RESOLUTION:
            raise ValueError(
                f"seconds / buckets (the width of a bucket) must be at least "
                f"{RESOLUTION:g} seconds, got seconds={self.seconds!r} and "
                f"buckets={self.bucket_count!r}"
            )

    @property
    def bucket_count(self) -> int:
        if self.buckets is not None:
            return self.buckets
        return max(1, min(math.ceil(self.seconds), 1000))

    def accumulator(self) -> OutcomeWindow:
        """A fresh, empty accumulator for one breaker."""
        return _TimeAccumulator(self.seconds, self.bucket_count)


# A count window's ring holds one byte per call, its two flags: failed is bit
# 0, slow bit 1 (redis_prelude.lua stores the same number, failed + 2 * slow).
_FAILED = 1
_SLOW = 2


class _CountAccumulator:
    """The last ``size`` calls: a ring of flags and running totals, O(1) a call.

    ``_next`` is the entry the next call overwrites; once the ring is full
    (``_calls == _size``) that entry is the oldest call, taken off the totals.
    """

    __slots__ = ("_calls", "_failures", "_next", "_ring", "_size", "_slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = bytearray(size)
        self._next = 0
        self._calls = 0
        self._failures = 0
        self._slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        index = self._next
        if self._calls == self._size:
            evicted = self._ring[index]
            self._failures -= evicted & _FAILED
            self._slow -= (evicted & _SLOW) >> 1
        else:
            self._calls += 1
        flags = (_FAILED if failed else 0) | (_SLOW if slow else 0)
        self._ring[index] = flags
        self._failures += failed
        self._slow += slow
        self._next = (index + 1) % self._size

    def totals(self, now: float) -> WindowTotals:
        return WindowTotals(self._calls, self._failures, self._slow)

    def clear(self) -> None:
        self._ring = bytearray(self._size)
        self._next = self._calls = self._failures = self._slow = 0


class _TimeAccumulator:
    """Per-bucket counts in a ring of ``count`` slots, and running totals."""

    __slots__ = (
        "_calls",
        "_count",
        "_failures",
        "_held",
        "_latest",
        "_per_calls",
        "_per_failures",
        "_per_slow",
        "_slow",
        "_width",
    )

    def __init__(self, seconds: float, buckets: int) -> None:
        self._count = buckets
        self._width = seconds / buckets
        self.clear()

    def clear(self) -> None:
        count = self._count
        self._held = [-1] * count  # the bucket number each slot holds
        self._per_calls = [0] * count
        self._per_failures = [0] * count
        self._per_slow = [0] * count
        self._calls = self._failures = self._slow = 0
        self._latest = -1

    def _advance(self, now: float) -> int:
        """Move to the bucket of ``now`` (numbered ``floor(now / width)``, kept
        in slot ``number % count``), emptying the slots the window moved past."""
        bucket = math.floor(now / self._width)
        latest = self._latest
        if bucket > latest:
            # Evict every bucket that the window has moved past: at most all of them.
            first = max(latest + 1, bucket - self._count + 1)
            for stale in range(first, bucket + 1):
                slot = stale % self._count
                if self._held[slot] != stale:
                    self._calls -= self._per_calls[slot]
                    self._failures -= self._per_failures[slot]
                    self._slow -= self._per_slow[slot]
                    self._per_calls[slot] = 0
                    self._per_failures[slot] = 0
                    self._per_slow[slot] = 0
                    self._held[slot] = stale
            self._latest = bucket
        return bucket

    def add(self, now: float, failed: bool, slow: bool) -> None:
        bucket = self._advance(now)
        if bucket < self._latest - self._count + 1:
            return  # older than the whole window (a clock that went back)
        slot = bucket % self._count
        self._per_calls[slot] += 1
        self._calls += 1
        if failed:
            self._per_failures[slot] += 1
            self._failures += 1
        if slow:
            self._per_slow[slot] += 1
            self._slow += 1

    def totals(self, now: float) -> WindowTotals:
        self._advance(now)
        return WindowTotals(self._calls, self._failures, self._slow)
