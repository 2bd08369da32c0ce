"""A lease kept alive by its owner: renewed every third of its length, on a scheduler.

A lease measures how fast a *dead* owner is detected, not how long the work
may take: a live owner renews it while it works. A renewal answered "not
yours" means the lease is lost at once; a renewal that cannot reach the store
is tried again at the next tick, and the lease counts as lost only once it
has run out on the owner's own clock (by then another owner may hold it).
Used by ``rxr.idempotent`` for its claims.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.disposable import SerialDisposable

from ._clock import RESOLUTION

__all__ = ["Lease"]


class Lease:
    """Renews a lease until stopped; calls ``on_lost`` once if it is lost.

    Args:
        length: seconds a lease lasts from each renewal.
        until: when the lease taken now ends, on ``clock``.
        scheduler: where the renewal timer runs.
        clock: the owner's clock, in seconds.
        renew: ``renew(new_until) -> bool``: True while we hold it, False
            for "not yours"; raising means the store could not be reached.
        on_lost: called with ``"taken"`` (answered "not yours") or
            ``"lapsed"`` (renewals failed until the lease ran out).
    """

    __slots__ = (
        "_clock",
        "_length",
        "_lock",
        "_on_lost",
        "_renew",
        "_scheduler",
        "_stopped",
        "_timer",
        "until",
    )

    def __init__(
        self,
        length: float,
        until: float,
        scheduler: abc.SchedulerBase,
        clock: Callable[[], float],
        renew: Callable[[float], bool],
        on_lost: Callable[[str], None],
    ) -> None:
        self._length = length
        self.until = until
        self._scheduler = scheduler
        self._clock = clock
        self._renew = renew
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._stopped = False
        self._timer = SerialDisposable()
        self._arm()

    def _arm(self, delay: float | None = None) -> None:
        self._timer.disposable = self._scheduler.schedule_relative(
            self._length / 3 if delay is None else delay, self._tick
        )

    def _tick(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        if self._stopped:
            return
        now = self._clock()
        until = now + self._length
        try:
            held = self._renew(until)
        except Exception:  # the store could not be reached: try at the next tick
            if now >= self.until - RESOLUTION:
                self._lose("lapsed")
            else:  # the last try lands on the lease's end, not past it
                self._arm(min(self._length / 3, self.until - now))
            return
        if not held:
            self._lose("taken")
            return
        self.until = until
        self._arm()

    def _lose(self, why: str) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.dispose()
        self._on_lost(why)

    def stop(self) -> None:
        """Renew no more; cancels the pending timer (the lease itself stays)."""
        with self._lock:
            self._stopped = True
        self._timer.dispose()
