"""Where a rate limiter's theoretical arrival time lives: the interface, and in memory.

The in-memory storage runs :class:`~._gcra.Gcra` under a lock held for its
few sums only. A storage shared by a fleet of processes (Redis) does the
same three operations atomically on its side.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from ._config import RateLimiterConfig
from ._gcra import Gcra, RateLimiterReservation

__all__ = ["InMemoryRateLimiterStorage", "RateLimiterStorage"]


class RateLimiterStorage(ABC):
    """The storage interface of a rate limiter's state (GCRA's one number).

    Implement it to keep the state elsewhere (the in-memory and Redis
    storages are the two shipped). It speaks
    :class:`~rxresilience.RateLimiterConfig` (the settings it is bound with)
    and :class:`~rxresilience.RateLimiterReservation` (what ``reserve``
    hands out, and ``cancel`` takes back). The rules are those of
    ``rxresilience/rate_limit/_gcra.py``: ``tests/rate_limit/test_storage.py``
    is a contract test to run against a new storage. Times (``now``) are
    seconds on the limiter's clock.

    Every operation must be atomic and safe to call from any thread: a
    limiter is shared by many pipelines.
    """

    @abstractmethod
    def bind(self, config: RateLimiterConfig) -> None:
        """Attach to a limiter with its settings; a storage is bound only once."""

    @abstractmethod
    def reserve(self, now: float, max_wait: float) -> RateLimiterReservation | float:
        """Take the next permit if it is free within ``max_wait`` seconds of ``now``.

        Returns the reservation, or (nothing taken) the seconds until a
        permit would be free.
        """

    @abstractmethod
    def cancel(self, reservation: RateLimiterReservation, now: float) -> bool:
        """Give ``reservation`` back if the TAT is still the one it set.

        Returns True if it was given back, False if a later permit was taken
        since (then it stays spent).
        """

    @abstractmethod
    def time_to_permit(self, now: float) -> float:
        """Seconds from ``now`` until a permit is free (0: now); nothing taken."""


class InMemoryRateLimiterStorage(RateLimiterStorage):
    """The default storage: the limiter's state in this process, under a lock."""

    __slots__ = ("_gcra", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gcra: Gcra | None = None

    def bind(self, config: RateLimiterConfig) -> None:
        with self._lock:
            if self._gcra is not None:
                raise ValueError("storage is already bound to a rate limiter")
            self._gcra = Gcra(config.interval, config.tolerance)

    def _bound(self) -> Gcra:
        gcra = self._gcra
        if gcra is None:
            raise RuntimeError("storage is not bound to a rate limiter")
        return gcra

    def reserve(self, now: float, max_wait: float) -> RateLimiterReservation | float:
        gcra = self._gcra or self._bound()
        with self._lock:
            return gcra.reserve(now, max_wait)

    def cancel(self, reservation: RateLimiterReservation, now: float) -> bool:
        gcra = self._bound()
        with self._lock:
            return gcra.cancel(reservation)

    def time_to_permit(self, now: float) -> float:
        gcra = self._bound()
        with self._lock:
            return gcra.time_to_permit(now)
