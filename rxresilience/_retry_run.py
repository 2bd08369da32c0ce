"""One subscription to a retried source: its attempts, timers and disposal.

What each failure means (wait how long, or give up) is decided by
:class:`~rxresilience._retry_decisions.RetryDecisions`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import CurrentThreadScheduler

from ._clock import choose_scheduler, clock_of, deadline_clock, seconds_now
from ._delay_mode import delays_disabled
from ._retry_decisions import RetryDecisions
from ._retry_policy import RetryPolicy
from .errors import ResultRejectedError
from .telemetry import _bus

__all__ = ["RetryRun"]

_T = TypeVar("_T")


class RetryRun(abc.DisposableBase, Generic[_T]):
    """The state of one subscription to a retried source.

    Resubscription goes through a drain loop: an attempt that fails while its
    own ``subscribe`` call is still on the stack only bumps ``_pending``, and
    the loop that is already running subscribes again. So a source failing
    synchronously a million times uses constant stack and memory. Only the
    first attempt's synchronous failure hands the loop to the current
    thread's trampoline, so that our subscriber holds our disposable (and can
    stop us) before the loop goes on.
    """

    __slots__ = (
        "_attempt_started",
        "_context",
        "_decisions",
        "_disposed",
        "_episode_start",
        "_inner",
        "_lock",
        "_no_delays",
        "_observer",
        "_on_next",
        "_pending",
        "_policy",
        "_raised",
        "_rng",
        "_scheduler",
        "_source",
        "_subscribe_scheduler",
        "_timer",
    )

    def __init__(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        subscribe_scheduler: abc.SchedulerBase | None,
        policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self._source = source
        self._observer = observer
        self._subscribe_scheduler = subscribe_scheduler
        self._policy = policy
        self._rng = rng
        self._scheduler: abc.SchedulerBase | None = None
        # Made at an episode's first failure: a source that succeeds never needs it.
        self._decisions: RetryDecisions | None = None
        self._episode_start: float = 0.0
        self._inner = SerialDisposable()
        self._timer: SerialDisposable | None = None
        self._disposed = False
        self._pending = 1
        self._lock = threading.Lock()
        self._no_delays = delays_disabled()
        self._on_next: Callable[[_T], None] = (
            self._on_next_resetting if policy.reset_on_success else self._forward
        )
        self._raised: Exception | None = None
        # Telemetry only: set while someone listens, else left None.
        self._attempt_started: float | None = None
        self._context: object = None

    def start(self) -> None:
        if self._policy.max_elapsed is not None:
            self._episode_start = self._elapsed_now()
        if _bus.listening:
            self._context = _bus.trace_context()
        self._drain(first=True)

    # The scheduler for delays and the clock for the time budget.
    def _time_scheduler(self) -> abc.SchedulerBase:
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = choose_scheduler(
                self._policy.scheduler, self._subscribe_scheduler
            )
            self._scheduler = scheduler
        return scheduler

    def _now(self) -> float:
        return seconds_now(self._time_scheduler())

    def _elapsed_now(self) -> float:
        """The clock ``max_elapsed`` is counted on: the scheduler's, but a
        monotonic one for the wall clock (a step of it moves no budget)."""
        return deadline_clock(clock_of(self._time_scheduler()))()

    def _drain(self, first: bool = False) -> None:
        source, observer = self._source, self._observer
        checks_values = self._policy.retry_if_result is not None
        while True:
            if self._disposed:
                return
            if _bus.listening:
                self._attempt_started = self._now()
            if self._context is None:
                self._subscribe_attempt(source, observer, checks_values)
            else:  # the parts inside report to the subscriber's span too
                _bus.in_context(
                    self._context,
                    lambda: self._subscribe_attempt(source, observer, checks_values),
                )
            with self._lock:
                self._pending -= 1
                if not self._pending:
                    return
            if first:
                # The first attempt failed synchronously, inside our own subscribe
                # call: our caller does not hold our disposable yet, so a downstream
                # take(n) could not stop an endless loop here. Loop on once the
                # subscribe call has returned, from the current thread's trampoline.
                CurrentThreadScheduler.singleton().schedule(self._on_trampoline)
                return

    def _subscribe_attempt(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        checks_values: bool,
    ) -> None:
        if checks_values:
            attempt = _CheckedAttempt(self)
            self._inner.disposable = attempt.subscription
            attempt.subscription.disposable = source.subscribe(
                attempt.on_next,
                attempt.on_error,
                attempt.on_completed,
                scheduler=self._subscribe_scheduler,
            )
        else:
            self._inner.disposable = source.subscribe(
                self._on_next,
                self._on_error,
                observer.on_completed,
                scheduler=self._subscribe_scheduler,
            )

    def _on_trampoline(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._drain()

    def _resubscribe(self) -> None:
        with self._lock:
            self._pending += 1
            if self._pending != 1:
                return
        self._drain()

    def _forward(self, value: _T) -> None:
        try:
            self._observer.on_next(value)
        except Exception as error:
            # Our subscriber's own bug: a synchronous source hands it back to
            # us as on_error (RxPY's rule), and it must not be retried.
            self._raised = error
            raise

    def _on_next_resetting(self, value: _T) -> None:
        self._decisions = None  # a new episode: attempts, backoff, waits afresh
        if self._policy.max_elapsed is not None:
            self._episode_start = self._elapsed_now()
        self._forward(value)

    def _on_error(self, error: Exception) -> None:
        if self._disposed:
            return
        if error is self._raised:  # the subscriber's exception belongs to it
            self._observer.on_error(error)
            return
        decisions = self._decisions
        if decisions is None:
            decisions = self._decisions = RetryDecisions(
                self._policy,
                self._rng,
                no_delays=self._no_delays,
                episode_start=self._episode_start,
                now=self._now,
                elapsed_now=self._elapsed_now,
                context=self._context,
            )
        try:
            delay = decisions.delay_after(error, self._attempt_started)
        except Exception as failure:  # a user callback or policy failed
            self._observer.on_error(failure)
            return
        if delay is None:
            self._observer.on_error(error)
        elif delay > 0.0:
            self._schedule_retry(delay)
        else:
            self._resubscribe()

    def _schedule_retry(self, delay: float) -> None:
        timer = self._timer
        if timer is None:
            timer = self._timer = SerialDisposable()
        timer.disposable = self._time_scheduler().schedule_relative(
            delay, self._on_timer
        )
        if self._disposed:  # disposed on another thread before the timer existed
            timer.dispose()

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._resubscribe()

    def dispose(self) -> None:
        self._disposed = True
        self._inner.dispose()
        timer = self._timer
        if timer is not None:
            timer.dispose()


class _CheckedAttempt(Generic[_T]):
    """One attempt under ``retry_if_result``: a flagged value ends it as a failure."""

    __slots__ = ("_live", "_run", "subscription")

    def __init__(self, run: RetryRun[_T]) -> None:
        self._run = run
        self._live = True
        self.subscription = SingleAssignmentDisposable()

    def on_next(self, value: _T) -> None:
        if not self._live:
            return
        run = self._run
        predicate = run._policy.retry_if_result
        assert predicate is not None
        try:
            rejected = predicate(value)
        except Exception as error:
            self._end()
            run._observer.on_error(error)
            return
        if rejected:
            self._end()
            run._on_error(ResultRejectedError(value))
        else:
            run._on_next(value)

    def on_error(self, error: Exception) -> None:
        if self._live:
            self._live = False
            self._run._on_error(error)

    def on_completed(self) -> None:
        if self._live:
            self._live = False
            self._run._observer.on_completed()

    def _end(self) -> None:
        self._live = False
        self.subscription.dispose()
