"""One subscription to a hedged source: its attempts, the hedge timer, one winner."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler import CurrentThreadScheduler

from ._backoff import Backoff
from ._clock import LONGEST_WAIT, choose_scheduler, clock_of, timers_cost_a_thread
from ._hedge_policy import HedgePolicy
from .errors import CallRefusedError

__all__ = ["HedgeRun"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")


class HedgeRun(abc.DisposableBase, Generic[_T]):
    """The state of one subscription to a hedged source.

    The lock guards the bookkeeping only (which attempts are live, who won,
    how many started, the armed timer), never a call into the source or the
    subscriber: an attempt that answers inside its own ``subscribe`` comes
    back into this object on the same thread.

    Attempts are started by one launch loop at a time, which alone reads the
    policy's delays. An attempt that fails while the loop is subscribing it
    only asks the running loop for the next one, so attempts failing
    synchronously use constant stack; a timer or a failure on another thread
    runs the loop itself when none is running.

    The timer for hedge n is armed once attempt n's ``subscribe`` returned
    without an answer, aimed at attempt n's start plus the delay. On a
    scheduler whose every timer is a thread (``TimeoutScheduler``, the
    default), arming waits for the current thread's trampoline to run what
    is queued on it: ``rx.of`` and friends answer from there, just after
    ``subscribe`` returns, and such an answer then costs no thread. (RxPY
    clears a trampoline's queue when an action on it raises: an arming lost
    that way leaves the attempt without a hedge by timer; a failure still
    starts the next.) A timer is kept only while it belongs to the newest
    attempt: one armed late for an older attempt is dropped at once.
    """

    __slots__ = (
        "_delay",
        "_delay_index",
        "_delays",
        "_done",
        "_failure",
        "_launching",
        "_limit",
        "_live",
        "_lock",
        "_observer",
        "_own_scheduler",
        "_policy",
        "_rng",
        "_scheduler",
        "_source",
        "_started",
        "_subscribe_scheduler",
        "_timer",
        "_to_start",
        "_winner",
    )

    def __init__(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        subscribe_scheduler: abc.SchedulerBase | None,
        policy: HedgePolicy,
        own_scheduler: abc.SchedulerBase | None,
        rng: random.Random,
    ) -> None:
        self._source = source
        self._observer = observer
        self._subscribe_scheduler = subscribe_scheduler
        self._own_scheduler = own_scheduler
        self._scheduler: abc.SchedulerBase | None = None
        self._policy = policy
        self._rng = rng
        self._lock = threading.Lock()
        # Attempts subscribed (or being subscribed) that have not ended, in start
        # order: a dict, so removing one is O(1) and disposal keeps the order.
        self._live: dict[_Attempt[_T], None] = {}
        self._winner: _Attempt[_T] | None = None
        self._done = False  # disposed, or the outcome is decided and delivered
        self._limit = 1 + policy.max_hedges
        self._started = 0
        self._to_start = 1  # attempts asked for that the loop has not started
        self._launching = True  # a launch loop is running (start() runs the first)
        # The newest error an attempt that ran failed with; else the newest refusal.
        self._failure: Exception | None = None
        self._timer: abc.DisposableBase | None = None  # the newest attempt's
        self._delays: Iterator[float] | None = None
        self._delay_index = 0
        self._delay = 0.0

    def start(self) -> None:
        # The first attempt needs no lock: nothing else knows this run yet.
        self._to_start = 0
        self._started = 1
        attempt = _Attempt(self)
        self._live[attempt] = None
        self._subscribe(attempt)
        if self._winner is not None or self._done:
            return  # answered at once (the hot path): nothing may start any more
        if self._limit > 1 and not self._to_start:
            self._arm(1)
        self._launch()

    # -- starting attempts -------------------------------------------------------

    def _launch(self) -> None:
        """Start the attempts asked for, one after another (the launch loop)."""
        while True:
            with self._lock:
                if not self._to_start or self._done or self._winner is not None:
                    self._to_start = 0
                    self._launching = False
                    return
                self._to_start -= 1
                self._started += 1
                number = self._started
                attempt = _Attempt(self)
                self._live[attempt] = None
            self._subscribe(attempt)
            # No timer when it answered or failed already (a pending attempt
            # arms its own), nor after the last attempt.
            if (
                number < self._limit
                and self._winner is None
                and not self._done
                and not self._to_start
            ):
                self._arm(number)

    def _subscribe(self, attempt: _Attempt[_T]) -> None:
        try:
            subscription = self._source.subscribe(
                attempt.on_next,
                attempt.on_error,
                attempt.on_completed,
                scheduler=self._subscribe_scheduler,
            )
        except BaseException:
            # Only what RxPY re-raises gets here (our subscriber's on_error
            # raised): let a later failure run the loop, and pass it on.
            with self._lock:
                self._to_start = 0
                self._launching = False
            raise
        # Without the lock: whoever cancels the attempt (under the lock) and
        # this thread each look at what the other wrote, so at least one of
        # them disposes it (twice does no harm: RxPY's subscriptions are
        # idempotent).
        attempt.subscription = subscription
        if attempt.cancelled:  # it lost while it was being subscribed
            subscription.dispose()

    def _ask_locked(self) -> bool:
        """Ask for one more attempt, under the lock; True: run the launch loop."""
        if (
            self._done
            or self._winner is not None
            or self._started + self._to_start >= self._limit
        ):
            return False
        self._to_start += 1
        if self._launching:  # the running loop picks it up
            return False
        self._launching = True
        return True

    def _arm(self, number: int) -> None:
        """Aim the wait for hedge ``number`` (only the launch loop calls this)."""
        delay = self._delay_before(number)
        if delay > LONGEST_WAIT:  # a backoff's sum beyond any timer: never
            return
        if delay <= 0.0:  # hedge at once: the running loop starts it
            with self._lock:
                if self._started == number and not self._to_start:
                    self._ask_locked()
            return
        scheduler = self._time_scheduler()
        try:
            if timers_cost_a_thread(scheduler):
                due = clock_of(scheduler)() + delay
                CurrentThreadScheduler.singleton().schedule(
                    self._arm_queued, (number, due)
                )
            else:
                self._keep_timer(
                    number, scheduler.schedule_relative(delay, self._on_timer, number)
                )
        except Exception as error:  # a scheduler that refuses (a closed loop)
            self._end(error)

    def _arm_queued(
        self, _trampoline: abc.SchedulerBase, state: tuple[int, float] | None
    ) -> None:
        assert state is not None
        number, due = state
        if self._winner is not None or self._done or self._started != number:
            return  # answered (the usual case), or a newer attempt took over
        scheduler = self._time_scheduler()
        try:
            wait = max(0.0, due - clock_of(scheduler)())
            timer = scheduler.schedule_relative(wait, self._on_timer, number)
        except Exception as error:
            self._end(error)
            return
        self._keep_timer(number, timer)

    def _keep_timer(self, number: int, timer: abc.DisposableBase) -> None:
        """Keep ``timer`` if attempt ``number`` is still the newest and undecided."""
        old: abc.DisposableBase | None
        with self._lock:
            if (
                self._done
                or self._winner is not None
                or self._started != number
                or self._to_start
            ):
                old = timer  # decided, or superseded, on another thread
            else:
                old, self._timer = self._timer, timer
        if old is not None:
            old.dispose()

    def _delay_before(self, number: int) -> float:
        """The policy's wait before hedge ``number`` (only the loop asks)."""
        delay = self._policy.delay
        if not isinstance(delay, Backoff):
            return delay
        delays = self._delays
        if delays is None:
            delays = self._delays = delay.delays(self._rng)
        while self._delay_index < number:
            self._delay = next(delays)
            self._delay_index += 1
        return self._delay

    def _time_scheduler(self) -> abc.SchedulerBase:
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = self._scheduler = choose_scheduler(
                self._own_scheduler, self._subscribe_scheduler
            )
        return scheduler

    def _on_timer(self, _scheduler: abc.SchedulerBase, number: int | None) -> None:
        with self._lock:
            # Stale when a failure started (or asked for) a newer attempt.
            if self._started != number or self._to_start or not self._ask_locked():
                return
            self._timer = None
        self._launch()

    # -- the attempts' notifications ------------------------------------------------

    def _win(self, attempt: _Attempt[_T]) -> bool:
        """Make ``attempt`` the winner if nothing was decided; stop all the others."""
        with self._lock:
            if self._done or self._winner is not None:
                return False
            self._winner = attempt
            live = self._live
            live.pop(attempt, None)
            timer, self._timer = self._timer, None
            if not live and timer is None:  # the usual case: nothing to stop
                return True
            losers = self._cancel_locked()
        self._stop(timer, losers)
        return True

    def _failed(self, attempt: _Attempt[_T], error: Exception) -> None:
        """An attempt failed before any answer: hedge on, wait, or end."""
        ending: Exception | None = None  # what the hedge ends with at once
        refused = isinstance(error, CallRefusedError)
        predicate = self._policy.hedge_predicate
        if predicate is not None and not refused:
            try:
                if not predicate(error):
                    ending = error
            except Exception as failure:  # should_hedge itself failed
                ending = failure
        launch = False
        timer: abc.DisposableBase | None = None
        losers: list[_Attempt[_T]] = []
        with self._lock:
            if self._done or self._winner is not None:
                return
            self._live.pop(attempt, None)
            if ending is None:
                # The newest error, but a refusal never hides the error of an
                # attempt that ran (a retry outside then counts a call).
                if not refused or isinstance(self._failure, CallRefusedError | None):
                    self._failure = error
                before = self._to_start
                launch = self._ask_locked()
                if self._to_start != before:
                    # The next attempt starts now and arms its own wait.
                    timer, self._timer = self._timer, None
                elif not self._live and not self._to_start:  # every attempt failed
                    ending = self._failure
            if ending is not None:
                self._done = True
                timer, self._timer = self._timer, None
                losers = self._cancel_locked()
        self._stop(timer, losers)
        if ending is not None:
            self._observer.on_error(ending)
        elif launch:
            self._launch()

    def _end(self, error: Exception) -> None:
        """End the hedge with ``error`` (ours, not an attempt's)."""
        with self._lock:
            if self._done or self._winner is not None:
                return
            self._done = True
            timer, self._timer = self._timer, None
            losers = self._cancel_locked()
        self._stop(timer, losers)
        self._observer.on_error(error)

    def _cancel_locked(self) -> list[_Attempt[_T]]:
        """Mark every live attempt lost; return them, to dispose (unlocked)."""
        attempts = list(self._live)
        for attempt in attempts:
            attempt.cancelled = True
        self._live.clear()
        return attempts

    def _stop(
        self, timer: abc.DisposableBase | None, attempts: list[_Attempt[_T]]
    ) -> None:
        """Cancel ``timer`` and dispose cancelled ``attempts``, each whatever the
        others do (one still being subscribed is disposed once it returns)."""
        if timer is not None:
            timer.dispose()
        for attempt in attempts:
            subscription = attempt.subscription
            if subscription is None:
                continue
            try:
                subscription.dispose()
            except Exception:  # one source's cleanup failed: stop the rest
                _log.exception("disposing a hedged attempt raised")

    def dispose(self) -> None:
        with self._lock:
            self._done = True
            timer, self._timer = self._timer, None
            winner = self._winner
            if winner is not None:
                self._live[winner] = None
            attempts = self._cancel_locked()
        self._stop(timer, attempts)


class _Attempt(Generic[_T]):
    """One subscription to the source. Until a winner is chosen, its first
    answer (an item or completion) makes it the winner, and its error is a
    failure to hedge on; after that, only the winner's notifications pass,
    an error included (the winner's own end, or the subscriber's exception
    that a synchronous source hands back: never a reason to hedge)."""

    __slots__ = ("_run", "cancelled", "subscription")

    def __init__(self, run: HedgeRun[_T]) -> None:
        self._run = run
        self.subscription: abc.DisposableBase | None = None  # once subscribe returned
        self.cancelled = False  # lost, or the run was disposed: dispose on sight

    def on_next(self, value: _T) -> None:
        run = self._run
        if run._winner is self or run._win(self):
            run._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        run = self._run
        if run._winner is self:
            run._observer.on_error(error)
        else:
            run._failed(self, error)

    def on_completed(self) -> None:
        run = self._run
        if run._winner is self or run._win(self):
            run._observer.on_completed()
