"""``rxr.timeout``: budgets in time for the first item, each gap, and the whole."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeAlias, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from ._arguments import is_number, require_scheduler
from ._clock import LONGEST_WAIT, RESOLUTION, choose_scheduler, clock_of
from ._fallback import FallbackLike, Replacement, to_fallback
from .errors import TimeoutError as ResilienceTimeoutError

__all__ = ["Budget", "TimeoutPolicy", "timeout"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")

Budget: TypeAlias = float | timedelta | datetime
"""Seconds, a ``timedelta``, or an absolute, timezone-aware ``datetime``."""


def _relative(name: str, value: Any) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif is_number(value):
        # An int beyond any float (10**400) is as out of range as infinity.
        seconds = math.inf if value > LONGEST_WAIT else float(value)
    else:
        raise TypeError(
            f"{name} must be seconds or a timedelta, got {type(value).__name__}"
        )
    if not math.isfinite(seconds) or seconds <= 0 or seconds > LONGEST_WAIT:
        raise ValueError(
            f"{name} must be a positive, finite duration of at most "
            f"{LONGEST_WAIT:g} seconds (the longest wait a timer can be armed "
            f"for), got {value!r}"
        )
    return seconds


def _budget(name: str, value: Any) -> float | datetime:
    """Seconds (relative) or an aware datetime (absolute)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name} must be a timezone-aware datetime; a naive one is ambiguous"
            )
        return value
    return _relative(name, value)


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """The budgets of :func:`timeout` as one frozen, reusable value.

    Examples:
        >>> TimeoutPolicy(each=5.0).each
        5.0
        >>> TimeoutPolicy(first=10.0, each=2.0, total=60.0).first
        10.0
    """

    each: Budget | None = None
    first: float | timedelta | None = None
    total: Budget | None = None

    def __post_init__(self) -> None:
        if self.each is None and self.first is None and self.total is None:
            raise ValueError("timeout needs a budget: give each, first or total")
        if self.each is not None:
            _budget("each", self.each)
        if self.first is not None:
            first: object = self.first
            if isinstance(first, datetime):
                raise TypeError("first must be relative: seconds or a timedelta")
            _relative("first", first)
        if self.total is not None:
            _budget("total", self.total)


def timeout(
    each: Budget | TimeoutPolicy | None = None,
    *,
    first: float | timedelta | None = None,
    total: Budget | None = None,
    fallback: FallbackLike = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Fail with ``rxr.TimeoutError`` (or switch to ``fallback``) when a budget runs out.

    With ``each=3`` (the first item and every gap within 3 ticks)::

        source:  -a--b------c|
        timeout(3)
        result:  -a--b--#          # TimeoutError(budget="each", seconds=3)

    ``each`` means what ``reactivex.operators.timeout``'s ``duetime`` means:
    a relative budget for the first item and every gap, or an absolute,
    aware ``datetime`` deadline. ``first`` overrides the budget of the first
    item; ``total`` bounds the whole subscription, terminal notification
    included.

    Ties: an item that arrives exactly at a first-item or gap deadline is
    treated as ``ops.timeout`` treats it: whichever of the item and the
    deadline was scheduled first wins (the first deadline is scheduled
    before the source is subscribed, so it beats a cold source's item at
    the same instant; a later gap's deadline loses to such an item). At the
    ``total`` deadline nothing more gets through: an item or terminal
    notification at that very instant is replaced by the timeout.

    On expiry the source is disposed at that instant and the subscriber gets
    :class:`rxresilience.TimeoutError` naming the budget, or is switched to
    ``fallback`` (which receives that error if it is a function). Disposing
    the subscription is never reported as a timeout. Timing runs on
    ``scheduler``, else the subscribe-time scheduler, else
    ``TimeoutScheduler``; a subscription keeps at most one pending timer,
    re-armed lazily, and each item costs one clock read.

    Examples:
        >>> import reactivex as rx
        >>> rx.of(1, 2).pipe(timeout(5.0)).run()
        2
        >>> policy = TimeoutPolicy(first=10.0, each=2.0)
        >>> rx.of(1).pipe(timeout(policy)).run()
        1

    Args:
        each: the budget of the first item and each gap, or a
            :class:`TimeoutPolicy` carrying all budgets.
        first: the first item's budget (relative), overriding ``each``.
        total: the whole subscription's budget, or an absolute deadline.
        fallback: what to continue with on timeout: a value, an
            ``Observable`` or ``function(error) -> Observable``.
        scheduler: where the timer runs and whose clock is read.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: no budget, a zero or negative budget, a naive datetime.
        TypeError: a budget or ``fallback`` of the wrong type.
    """
    if isinstance(each, TimeoutPolicy):
        if first is not None or total is not None:
            raise TypeError(
                "timeout() takes either a TimeoutPolicy or budgets, not both"
            )
        policy = each
    else:
        policy = TimeoutPolicy(each=each, first=first, total=total)
    replacement = None if fallback is None else to_fallback("fallback", fallback)
    require_scheduler("scheduler", scheduler)
    plan = _Plan(policy)

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            chosen = choose_scheduler(scheduler, scheduler_)
            run = _TimeoutRun(plan, observer, chosen, scheduler_, replacement)
            run.start(source)
            return run

        return Observable(subscribe)

    return apply


class _Plan:
    """A policy's budgets, split into relative seconds and absolute deadlines."""

    __slots__ = ("each_at", "each_s", "first_s", "total_at", "total_s")

    def __init__(self, policy: TimeoutPolicy) -> None:
        each = None if policy.each is None else _budget("each", policy.each)
        total = None if policy.total is None else _budget("total", policy.total)
        self.each_s = each if isinstance(each, float) else None
        self.each_at = each if isinstance(each, datetime) else None
        self.first_s = (
            None if policy.first is None else _relative("first", policy.first)
        )
        self.total_s = total if isinstance(total, float) else None
        self.total_at = total if isinstance(total, datetime) else None


class _TimeoutRun(abc.DisposableBase, Generic[_T]):
    """One subscription: one timer aimed at the earliest live deadline."""

    __slots__ = (
        "_armed_count",
        "_clock",
        "_count",
        "_done",
        "_each_at",
        "_each_s",
        "_first_budget",
        "_first_deadline",
        "_last",
        "_lock",
        "_observer",
        "_replacement",
        "_scheduler",
        "_start",
        "_subscribe_scheduler",
        "_suspended",
        "_switched",
        "_timer",
        "_total_deadline",
        "_upstream",
    )

    def __init__(
        self,
        plan: _Plan,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase,
        subscribe_scheduler: abc.SchedulerBase | None,
        replacement: Replacement | None,
    ) -> None:
        self._observer = observer
        self._scheduler = scheduler
        self._subscribe_scheduler = subscribe_scheduler
        self._replacement = replacement
        self._clock = clock_of(scheduler)
        self._lock = threading.RLock()
        self._done = False
        self._count = 0
        self._armed_count = 0
        self._last = 0.0
        self._each_s = plan.each_s
        self._each_at = (
            None if plan.each_at is None else scheduler.to_seconds(plan.each_at)
        )
        self._timer = SerialDisposable()
        self._upstream = SingleAssignmentDisposable()
        self._switched = SerialDisposable()
        # The subscriber raised from on_next: as ops.timeout, no item deadline
        # runs until the next item (the total budget still does).
        self._suspended = False
        now = self._start = self._clock()
        # The first item's deadline and the budget it reports.
        first_deadline: float | None
        if plan.first_s is not None:
            first_deadline, first_budget = now + plan.first_s, plan.first_s
        elif self._each_s is not None:
            first_deadline, first_budget = now + self._each_s, self._each_s
        elif self._each_at is not None:
            first_deadline, first_budget = self._each_at, self._each_at - now
        else:
            first_deadline, first_budget = None, 0.0
        self._first_deadline = first_deadline
        self._first_budget = first_budget
        if plan.total_s is not None:
            self._total_deadline: float | None = now + plan.total_s
        elif plan.total_at is not None:
            self._total_deadline = scheduler.to_seconds(plan.total_at)
        else:
            self._total_deadline = None

    def start(self, source: Observable[_T]) -> None:
        self._arm(self._start)  # before subscribing, as ops.timeout does
        self._upstream.disposable = source.subscribe(
            self._on_next,
            self._on_error,
            self._on_completed,
            scheduler=self._subscribe_scheduler,
        )

    # -- deadlines ------------------------------------------------------------------

    def _item_deadline(self) -> float | None:
        if self._suspended:
            return None
        if not self._count:
            return self._first_deadline
        if self._each_s is not None:
            return self._last + self._each_s
        return self._each_at

    def _arm(self, now: float) -> None:
        deadline = self._item_deadline()
        total = self._total_deadline
        if total is not None and (deadline is None or total < deadline):
            deadline = total
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
            total = self._total_deadline
            if total is not None and now >= total - RESOLUTION:
                self._expire("total", total - self._start)
                return
            deadline = self._item_deadline()
            if (
                deadline is not None
                and self._count == self._armed_count
                and now >= deadline - RESOLUTION
            ):
                if self._count:
                    seconds = (
                        self._each_s
                        if self._each_s is not None
                        else deadline - self._start
                    )
                    self._expire("each", seconds)
                else:
                    self._expire("first", self._first_budget)
                return
            # Items arrived since this timer was armed: aim at the new deadline.
            # A deadline due now is re-armed at zero delay, behind whatever the
            # scheduler already holds for this instant (as ops.timeout would be).
            self._arm(now)

    def _expire(self, budget: str, seconds: float) -> None:
        """Called under the lock: stop the source, then fail or switch."""
        self._done = True
        try:
            self._upstream.dispose()
        except Exception:  # the source's cleanup failed: the timeout still stands
            _log.exception("disposing a timed-out source raised")
        error = ResilienceTimeoutError(budget, seconds)
        replacement = self._replacement
        if replacement is None:
            self._observer.on_error(error)
            return
        try:
            next_source = replacement(error)
        except Exception as failure:
            self._observer.on_error(failure)
            return
        self._switched.disposable = next_source.subscribe(
            self._observer, scheduler=self._subscribe_scheduler
        )

    def _past_total(self) -> bool:
        """At or past the total deadline (checked as notifications arrive)."""
        total = self._total_deadline
        if total is not None and self._clock() >= total - RESOLUTION:
            self._expire("total", total - self._start)
            return True
        return False

    # -- the source's notifications ------------------------------------------------

    def _on_next(self, value: _T) -> None:
        with self._lock:
            if self._done:
                return
            if self._total_deadline is not None and self._past_total():
                return
            self._count += 1
            if self._each_s is not None:
                self._last = self._clock()
            elif (
                self._count == 1
                and self._each_at is None
                and self._total_deadline is None
            ):
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
            if self._total_deadline is not None and self._past_total():
                return
            self._done = True
            self._timer.dispose()
            notify()

    def dispose(self) -> None:
        self._done = True
        self._timer.dispose()
        self._upstream.dispose()
        self._switched.dispose()
