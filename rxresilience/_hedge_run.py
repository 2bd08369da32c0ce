"""One subscription to a hedged source: its attempts, the hedge timer, one winner."""

from __future__ import annotations

import random
import threading
from functools import partial
from typing import Generic, TypeVar

from reactivex import Observable, abc

from ._clock import LONGEST_WAIT, choose_scheduler
from ._hedge_attempt import HedgeAttempt, stop_attempts
from ._hedge_ledger import HedgeLedger
from ._hedge_policy import HedgePolicy
from ._hedge_report import HedgeReport
from ._hedge_timer import HedgeTimer
from .errors import CallRefusedError
from .telemetry import _bus

__all__ = ["HedgeRun"]

_T = TypeVar("_T")


class HedgeRun(abc.DisposableBase, Generic[_T]):
    """The state of one subscription to a hedged source.

    The lock guards the bookkeeping only (a :class:`HedgeLedger`), never a
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
        "_lock",
        "_own_scheduler",
        "_policy",
        "_report",
        "_rng",
        "_source",
        "_subscribe_scheduler",
        "_timer",
        "attempts",
        "observer",
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
        self.observer = observer
        self._subscribe_scheduler = subscribe_scheduler
        self._policy = policy
        self._lock = threading.Lock()
        self.attempts: HedgeLedger[HedgeAttempt[_T]] = HedgeLedger(
            1 + policy.max_hedges
        )
        self._own_scheduler = own_scheduler
        self._rng = rng
        self._timer: HedgeTimer | None = None  # made when a hedge is first armed
        self._report: HedgeReport | None = None  # made only while someone listens

    def start(self) -> None:
        attempts = self.attempts
        attempt = HedgeAttempt(self, 1)
        attempts.first(attempt)  # no lock: nothing else knows this run yet
        if _bus.listening:
            self._reporter(subscribed=True).first_started()
        attempt.subscribe(self._source, self._subscribe_scheduler)
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
        attempts = self.attempts
        while True:
            with self._lock:
                stale = None if timer is None else attempts.keep_timer(number, timer)
                number = attempts.next_number()
                if number:
                    attempt = HedgeAttempt(self, number)
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
                attempt.subscribe(self._source, self._subscribe_scheduler)
            else:  # maybe on a timer thread: the parts inside report to the
                # subscriber's span too
                _bus.in_context(
                    report.context,
                    partial(attempt.subscribe, self._source, self._subscribe_scheduler),
                )
            # No timer when it answered or failed already (a pending attempt
            # arms its own), nor after the last attempt.
            timer = None
            if number < attempts.limit and attempts.awaits_hedge(number):
                timer = self._arm(number)

    def stop_launching(self) -> None:
        """An attempt's ``subscribe`` raised: let a later failure run the loop."""
        with self._lock:
            self.attempts.to_start = 0
            self.attempts.launching = False

    def _arm(self, number: int) -> abc.DisposableBase | None:
        """Arm the timer for hedge ``number``, for the launch loop to keep."""
        timers = self._timer
        if timers is None:
            timers = self._timer = HedgeTimer(
                self._policy, self._rng, self._own_scheduler, self._subscribe_scheduler
            )
        try:
            wait = timers.wait_before(number)
        except Exception as error:  # a user's Backoff that runs out or errs
            self._end(error)
            return None
        if wait > LONGEST_WAIT:  # a backoff's sum beyond any timer: never
            return None
        if wait <= 0.0:  # hedge at once: the running loop starts it
            with self._lock:
                if self.attempts.awaits_hedge(number):
                    self.attempts.ask()
            return None
        try:
            return timers.arm(wait, self._on_timer, number)
        except Exception as error:  # a scheduler that refuses (a closed loop)
            self._end(error)
            return None

    def _on_timer(self, _scheduler: abc.SchedulerBase, number: int | None) -> None:
        attempts = self.attempts
        with self._lock:
            # Stale when a failure started (or asked for) a newer attempt.
            if number is None or not attempts.awaits_hedge(number):
                return
            attempts.timer = None
            if not attempts.ask():
                return
        self._launch()

    # -- the attempts' notifications ------------------------------------------------

    def win(self, attempt: HedgeAttempt[_T]) -> bool:
        """Make ``attempt`` the winner if nothing was decided; stop all the others."""
        attempts = self.attempts
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
            stop_attempts(timer, losers)
        elif timer is not None:  # the usual case, answered after the timer was armed
            timer.dispose()
        # Once decided, no attempt starts: ``started`` is final without the lock.
        if _bus.listening and attempts.started > 1:
            self._reporter().won(attempt.number)
        return True

    def failed(self, attempt: HedgeAttempt[_T], error: Exception) -> None:
        """An attempt failed before any answer: hedge on, wait, or end."""
        ending = _ending(self._policy, error)  # what the hedge ends with at once
        launch = False
        timer: abc.DisposableBase | None = None
        losers: list[HedgeAttempt[_T]] = []
        attempts = self.attempts
        with self._lock:
            if attempts.decided:
                return
            if ending is None:
                launch, ending, timer = attempts.fail(attempt, error)
            else:
                attempts.live.pop(attempt, None)
            if ending is not None:
                timer, losers = attempts.close()
        stop_attempts(timer, losers)
        if ending is not None:
            self.observer.on_error(ending)
        elif launch:
            self._launch()

    def _end(self, error: Exception) -> None:
        """End the hedge with ``error`` (ours, not an attempt's)."""
        attempts = self.attempts
        with self._lock:
            if attempts.decided:
                return
            timer, losers = attempts.close()
        stop_attempts(timer, losers)
        self.observer.on_error(error)

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
        attempts = self.attempts
        if attempts.finished:  # the winner has ended and stopped the rest
            return
        with self._lock:
            timer, losers = attempts.close()
        stop_attempts(timer, losers)


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
