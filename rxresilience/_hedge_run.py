"""One subscription to a hedged source: its attempts, the hedge timer, one winner."""

from __future__ import annotations

import logging
import random
import threading
from functools import partial
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc

from ._clock import LONGEST_WAIT, choose_scheduler
from ._hedge_attempts import HedgeAttempts
from ._hedge_policy import HedgePolicy
from ._hedge_report import HedgeReport
from ._hedge_timer import HedgeTimer
from .errors import CallRefusedError
from .telemetry import _bus

__all__ = ["HedgeRun"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")


class HedgeRun(abc.DisposableBase, Generic[_T]):
    """The state of one subscription to a hedged source.

    The lock guards the bookkeeping only (a :class:`HedgeAttempts`), never a
    call into the source, the subscriber or a timer: an attempt that answers
    inside its own ``subscribe`` comes back into this object on the same
    thread.

    Attempts are started by one launch loop at a time, which alone asks the
    :class:`HedgeTimer` for the policy's waits. An attempt that fails while
    the loop is subscribing it only asks the running loop for the next one,
    so attempts failing synchronously use constant stack; a timer or a
    failure on another thread runs the loop itself when none is running.

    The timer for hedge n is armed once attempt n's ``subscribe`` returned
    without an answer, aimed at that instant plus the wait, and kept only
    while it belongs to the newest attempt: one armed late for an older
    attempt is dropped at once.
    """

    __slots__ = (
        "_attempts",
        "_lock",
        "_observer",
        "_own_scheduler",
        "_policy",
        "_report",
        "_rng",
        "_source",
        "_subscribe_scheduler",
        "_timer",
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
        self._policy = policy
        self._lock = threading.Lock()
        self._attempts: HedgeAttempts[_Attempt[_T]] = HedgeAttempts(
            1 + policy.max_hedges
        )
        self._own_scheduler = own_scheduler
        self._rng = rng
        self._timer: HedgeTimer | None = None  # made when a hedge is first armed
        self._report: HedgeReport | None = None  # made only while someone listens

    def start(self) -> None:
        attempts = self._attempts
        attempt = _Attempt(self, 1)
        attempts.first(attempt)  # no lock: nothing else knows this run yet
        if _bus.listening:
            self._reporter(subscribed=True).first_started()
        self._subscribe(attempt)
        if attempts.decided:
            return  # answered at once (the hot path): nothing may start any more
        timer = None
        if attempts.limit > 1 and not attempts.to_start:
            timer = self._arm(1)
        self._launch(1, timer)

    # -- starting attempts -------------------------------------------------------

    def _launch(self, number: int = 0, timer: abc.DisposableBase | None = None) -> None:
        """Start the attempts asked for, one after another (the launch loop),
        after keeping ``timer``, armed for the hedge after attempt ``number``."""
        attempts = self._attempts
        while True:
            with self._lock:
                stale = None if timer is None else attempts.keep_timer(number, timer)
                number = attempts.next_number()
                if number:
                    attempt = _Attempt(self, number)
                    attempts.live[attempt] = None
            if stale is not None:
                stale.dispose()
            if not number:
                return
            report = self._report
            if _bus.listening:
                report = self._reporter()
                report.started(number)
            if report is None or report.context is None:
                self._subscribe(attempt)
            else:  # maybe on a timer thread: the parts inside report to the
                # subscriber's span too
                _bus.in_context(report.context, partial(self._subscribe, attempt))
            # No timer when it answered or failed already (a pending attempt
            # arms its own), nor after the last attempt.
            timer = None
            if number < attempts.limit and attempts.awaits_hedge(number):
                timer = self._arm(number)

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
                self._attempts.to_start = 0
                self._attempts.launching = False
            raise
        # Without the lock: whoever cancels the attempt (under the lock) and
        # this thread each look at what the other wrote, so at least one of
        # them disposes it (twice does no harm: RxPY's subscriptions are
        # idempotent).
        attempt.subscription = subscription
        if attempt.cancelled:  # it lost while it was being subscribed
            subscription.dispose()

    def _arm(self, number: int) -> abc.DisposableBase | None:
        """Arm the timer for hedge ``number``, for the launch loop to keep."""
        timers = self._timer
        if timers is None:
            timers = self._timer = HedgeTimer(
                self._policy, self._rng, self._own_scheduler, self._subscribe_scheduler
            )
        wait = timers.wait_before(number)
        if wait > LONGEST_WAIT:  # a backoff's sum beyond any timer: never
            return None
        if wait <= 0.0:  # hedge at once: the running loop starts it
            with self._lock:
                if self._attempts.awaits_hedge(number):
                    self._attempts.ask()
            return None
        try:
            return timers.arm(wait, self._on_timer, number)
        except Exception as error:  # a scheduler that refuses (a closed loop)
            self._end(error)
            return None

    def _on_timer(self, _scheduler: abc.SchedulerBase, number: int | None) -> None:
        attempts = self._attempts
        with self._lock:
            # Stale when a failure started (or asked for) a newer attempt.
            if number is None or not attempts.awaits_hedge(number):
                return
            attempts.timer = None
            if not attempts.ask():
                return
        self._launch()

    # -- the attempts' notifications ------------------------------------------------

    def _win(self, attempt: _Attempt[_T]) -> bool:
        """Make ``attempt`` the winner if nothing was decided; stop all the others."""
        attempts = self._attempts
        with self._lock:
            if attempts.decided:
                return False
            attempts.winner = attempt
            attempts.decided = True
            live = attempts.live
            live.pop(attempt, None)
            timer = attempts.take_timer()
            losers = attempts.cancel_all() if live else None
        if losers is not None:
            _stop(timer, losers)
        elif timer is not None:  # the usual case, answered after the timer was armed
            timer.dispose()
        # Once decided, no attempt starts: ``started`` is final without the lock.
        if _bus.listening and attempts.started > 1:
            self._reporter().won(attempt.number)
        return True

    def _failed(self, attempt: _Attempt[_T], error: Exception) -> None:
        """An attempt failed before any answer: hedge on, wait, or end."""
        ending = _ending(self._policy, error)  # what the hedge ends with at once
        launch = False
        timer: abc.DisposableBase | None = None
        losers: list[_Attempt[_T]] = []
        attempts = self._attempts
        with self._lock:
            if attempts.decided:
                return
            if ending is None:
                launch, ending, timer = attempts.fail(attempt, error)
            else:
                attempts.live.pop(attempt, None)
            if ending is not None:
                timer, losers = attempts.close()
        _stop(timer, losers)
        if ending is not None:
            self._observer.on_error(ending)
        elif launch:
            self._launch()

    def _end(self, error: Exception) -> None:
        """End the hedge with ``error`` (ours, not an attempt's)."""
        attempts = self._attempts
        with self._lock:
            if attempts.decided:
                return
            timer, losers = attempts.close()
        _stop(timer, losers)
        self._observer.on_error(error)

    def _reporter(self, *, subscribed: bool = False) -> HedgeReport:
        """The telemetry of this run, made on first use (only while someone
        listens): at subscribe time, or later if listening began since (two
        threads may then each make one: a duration may be lost, no event)."""
        report = self._report
        if report is None:
            report = self._report = HedgeReport(
                self._policy.name,
                choose_scheduler(self._own_scheduler, self._subscribe_scheduler),
                subscribed=subscribed,
            )
        return report

    def dispose(self) -> None:
        attempts = self._attempts
        if attempts.finished:  # the winner has ended and stopped the rest
            return
        with self._lock:
            timer, losers = attempts.close()
        _stop(timer, losers)


class _Attempt(Generic[_T]):
    """One subscription to the source. Until a winner is chosen, its first
    answer (an item or completion) makes it the winner, and its error is a
    failure to hedge on; after that, only the winner's notifications pass,
    an error included (the winner's own end, or the subscriber's exception
    that a synchronous source hands back: never a reason to hedge)."""

    __slots__ = ("_run", "cancelled", "number", "subscription")

    def __init__(self, run: HedgeRun[_T], number: int) -> None:
        self._run = run
        self.number = number  # 1 for the first attempt, n for hedge n - 1
        self.subscription: abc.DisposableBase | None = None  # once subscribe returned
        self.cancelled = False  # lost, or the run was disposed: dispose on sight

    def on_next(self, value: _T) -> None:
        run = self._run
        if run._attempts.winner is self or run._win(self):
            run._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        run = self._run
        if run._attempts.winner is self:
            run._attempts.finished = True
            run._observer.on_error(error)
        else:
            run._failed(self, error)

    def on_completed(self) -> None:
        run = self._run
        if run._attempts.winner is self or run._win(self):
            # The winner's own subscription ends itself once this returns.
            run._attempts.finished = True
            run._observer.on_completed()


def _ending(policy: HedgePolicy, error: Exception) -> Exception | None:
    """The error that ends the hedge at once when an attempt fails with
    ``error`` (one ``should_hedge`` rejects, or what it raised); None: hedge on.
    A refusal is never asked about: nothing was called."""
    predicate = policy.hedge_predicate
    if predicate is None or isinstance(error, CallRefusedError):
        return None
    try:
        return None if predicate(error) else error
    except Exception as failure:  # should_hedge itself failed
        return failure


def _stop(timer: abc.DisposableBase | None, attempts: list[_Attempt[Any]]) -> None:
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
