"""One ``rxr.timeout`` subscription: one timer aimed at the earliest live deadline.

The deadlines themselves (where each budget ends, which one ran out) are
:class:`~rxresilience._timeout_deadlines.TimeoutDeadlines`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from ._clock import LONGEST_WAIT, clock_of, deadline_clock
from ._fallback import Replacement
from ._timeout_deadlines import Expiry, TimeoutBudgets, TimeoutDeadlines
from .errors import TimeoutError as ResilienceTimeoutError
from .telemetry import _bus

__all__ = ["TimeoutBudgets", "TimeoutRun"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")


class TimeoutRun(abc.DisposableBase, Generic[_T]):
    """One subscription: one timer aimed at the earliest live deadline."""

    __slots__ = (
        "_armed_count",
        "_clock",
        "_context",
        "_count",
        "_deadlines",
        "_done",
        "_each_s",
        "_event_clock",
        "_last",
        "_lock",
        "_name",
        "_observer",
        "_replacement",
        "_scheduler",
        "_subscribe_scheduler",
        "_suspended",
        "_switched",
        "_timer",
        "_total_due",
        "_upstream",
    )

    def __init__(
        self,
        budgets: TimeoutBudgets,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase,
        subscribe_scheduler: abc.SchedulerBase | None,
        replacement: Replacement | None,
        name: str = "timeout",
    ) -> None:
        self._observer = observer
        self._name = name
        # Telemetry only: the subscriber's tracing context, while someone listens.
        self._context = _bus.trace_context() if _bus.listening else None
        self._scheduler = scheduler
        self._subscribe_scheduler = subscribe_scheduler
        self._replacement = replacement
        # Deadlines on a monotonic clock where the scheduler's is the wall
        # clock (a step of the system clock moves none); events on its own.
        self._event_clock = clock_of(scheduler)
        self._clock = deadline_clock(self._event_clock)
        self._lock = threading.RLock()
        self._done = False
        self._count = 0
        self._armed_count = 0
        self._last = 0.0
        self._timer = SerialDisposable()
        self._upstream = SingleAssignmentDisposable()
        self._switched = SerialDisposable()
        # The subscriber raised from on_next: as ops.timeout, no item deadline
        # runs until the next item (the total budget still does).
        self._suspended = False
        self._deadlines = deadlines = TimeoutDeadlines(
            budgets, scheduler, self._clock(), self._on_deadline_clock
        )
        # Read per item: kept here too, one lookup less on the hot path.
        self._each_s = deadlines.each_s
        self._total_due = deadlines.total_due

    def _on_deadline_clock(self, seconds: float) -> float:
        """An absolute time read on the scheduler's clock, on the deadlines'."""
        if self._clock is self._event_clock:
            return seconds
        return self._clock() + (seconds - self._event_clock())

    def start(self, source: Observable[_T]) -> None:
        self._arm(self._deadlines.start)  # before subscribing, as ops.timeout does
        self._upstream.disposable = source.subscribe(
            self._on_next,
            self._on_error,
            self._on_completed,
            scheduler=self._subscribe_scheduler,
        )

    # -- the timer ------------------------------------------------------------------

    def _arm(self, now: float) -> None:
        deadlines = self._deadlines
        item = None if self._suspended else deadlines.item(self._count, self._last)
        deadline = deadlines.earliest(item)
        self._armed_count = self._count
        # A deadline further away than a timer can wait (an absolute one in
        # the year 9999) is never reached: it arms nothing.
        if deadline is None or deadline - now > LONGEST_WAIT:
            self._timer.disposable = SingleAssignmentDisposable()
            return
        self._timer.disposable = self._scheduler.schedule_relative(
            max(0.0, deadline - now), self._on_timer
        )

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        with self._lock:
            if self._done:
                return
            now = self._clock()
            expired = self._deadlines.expiry(
                now,
                self._count,
                self._last,
                not self._suspended and self._count == self._armed_count,
            )
            if expired is not None:
                self._expire(expired)
                return
            # Items arrived since this timer was armed: aim at the new deadline.
            # A deadline due now is re-armed at zero delay, behind whatever the
            # scheduler already holds for this instant (as ops.timeout would be).
            self._arm(now)

    def _expire(self, expired: Expiry) -> None:
        """Called under the lock: stop the source, then fail or switch."""
        budget, seconds = expired
        self._done = True
        try:
            self._upstream.dispose()
        except Exception:  # the source's cleanup failed: the timeout still stands
            _log.exception("disposing a timed-out source raised")
        error = ResilienceTimeoutError(budget, seconds)
        if _bus.listening:
            self._report(error, budget, seconds)
        replacement = self._replacement
        if replacement is None:
            self._observer.on_error(error)
            return
        try:
            next_source = replacement(error)
        except Exception as failure:
            self._observer.on_error(failure)
            return
        # On the timeout's scheduler, as ops.timeout subscribes its ``other``.
        self._switched.disposable = next_source.subscribe(
            self._observer, scheduler=self._scheduler
        )

    def _report(self, error: Exception, budget: str, seconds: float) -> None:
        """Emit ``timeout.expired``; never fails the timeout."""
        try:
            _bus.emit(
                "timeout.expired",
                self._name,
                self._event_clock(),
                duration=seconds,
                error=error,
                attributes={"budget": budget},
                context=self._context,
            )
        except Exception:
            _log.exception("reporting a timeout's telemetry event failed")

    def _past_total(self) -> bool:
        """At or past the total deadline (checked as notifications arrive)."""
        due = self._total_due
        if due is not None and self._clock() >= due:
            self._expire(self._deadlines.total_expired())
            return True
        return False

    # -- the source's notifications ------------------------------------------------

    def _on_next(self, value: _T) -> None:
        with self._lock:
            if self._done:
                return
            if self._total_due is not None and self._past_total():
                return
            self._count += 1
            if self._each_s is not None:
                self._last = self._clock()
            elif self._count == 1 and self._deadlines.first_only:
                self._timer.dispose()  # only `first` was set: no budget is left
            if self._suspended:
                self._suspended = False
                self._arm(self._clock())
            try:
                self._observer.on_next(value)
            except Exception:
                # The subscriber's own bug travels on as RxPY lets it; it is not
                # the source's failure, and it stops the item deadline for now.
                self._suspended = True
                self._arm(self._clock())
                raise

    def _on_error(self, error: Exception) -> None:
        self._terminate(lambda: self._observer.on_error(error))

    def _on_completed(self) -> None:
        self._terminate(self._observer.on_completed)

    def _terminate(self, notify: Callable[[], None]) -> None:
        """Pass the source's end on, unless a budget ran out first (or at that instant)."""
        with self._lock:
            if self._done:
                return
            if self._total_due is not None and self._past_total():
                return
            self._done = True
            self._timer.dispose()
            notify()

    def dispose(self) -> None:
        self._done = True
        self._timer.dispose()
        self._upstream.dispose()
        self._switched.dispose()
