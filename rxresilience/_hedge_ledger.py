"""The bookkeeping of one hedged subscription: its attempts, its winner, its timer."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from reactivex import abc

from .errors import CallRefusedError

__all__ = ["HedgeLedger"]


class _Cancellable(Protocol):
    cancelled: bool


_A = TypeVar("_A", bound=_Cancellable)


class HedgeLedger(Generic[_A]):
    """Which attempts are live, which one won, how many started or are asked
    for, the pending hedge timer and the failure to report.

    Plain data and the rules that change it: not thread-safe by itself, the
    run calls every method under its lock, and never calls out (into a source,
    a subscriber or a timer) from here.

    Attributes:
        limit: attempts allowed in all (``1 + max_hedges``).
        live: attempts subscribed (or being subscribed) that have not ended,
            in start order: a dict, so removing one is O(1) and disposal keeps
            the order.
        winner: the attempt whose notifications pass, once one answered.
        decided: a winner is chosen, the hedge ended with an error, or it was
            disposed: no attempt starts any more.
        finished: the winner has ended: nothing is left to stop.
        started: attempts started so far (attempt n is the n-th).
        to_start: attempts asked for that the launch loop has not started.
        launching: a launch loop is running (the run's start runs the first).
        failure: the newest error of an attempt that ran; else the newest
            refusal.
        timer: the pending hedge timer, the newest attempt's.
    """

    __slots__ = (
        "decided",
        "failure",
        "finished",
        "launching",
        "limit",
        "live",
        "started",
        "timer",
        "to_start",
        "winner",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.live: dict[_A, None] = {}
        self.winner: _A | None = None
        self.decided = False
        self.finished = False
        self.started = 0
        self.to_start = 1
        self.launching = True
        self.failure: Exception | None = None
        self.timer: abc.DisposableBase | None = None

    def first(self, attempt: _A) -> None:
        """Attempt 1 starts (before any other thread knows the run)."""
        self.to_start = 0
        self.started = 1
        self.live[attempt] = None

    def next_number(self) -> int:
        """For the launch loop: the number of the attempt to start now, counted
        as started; 0 when there is none (the loop then ends)."""
        if not self.to_start or self.decided:
            self.to_start = 0
            self.launching = False
            return 0
        self.to_start -= 1
        self.started += 1
        return self.started

    def ask(self) -> bool:
        """Ask for one more attempt; True: the caller runs the launch loop."""
        if self.decided or self.started + self.to_start >= self.limit:
            return False
        self.to_start += 1
        if self.launching:  # the running loop picks it up
            return False
        self.launching = True
        return True

    def awaits_hedge(self, number: int) -> bool:
        """Attempt ``number`` is the newest, nothing is decided and no newer
        attempt is asked for: the hedge after it is still to come."""
        return not self.decided and self.started == number and not self.to_start

    def keep_timer(
        self, number: int, timer: abc.DisposableBase
    ) -> abc.DisposableBase | None:
        """Keep ``timer`` (armed for the hedge after attempt ``number``) if that
        hedge is still to come; return the timer to dispose, if any."""
        if not self.awaits_hedge(number):
            return timer  # decided, or superseded, on another thread
        old, self.timer = self.timer, timer
        return old

    def take_timer(self) -> abc.DisposableBase | None:
        """The pending timer, no longer kept (the caller disposes it)."""
        timer, self.timer = self.timer, None
        return timer

    def fail(
        self, attempt: _A, error: Exception
    ) -> tuple[bool, Exception | None, abc.DisposableBase | None]:
        """Attempt ``attempt`` failed before any answer (the caller checked
        that nothing is decided): ask for the next attempt, or end.

        Returns:
            (run the launch loop, the error to end with now if every attempt
            has failed, the timer to dispose: the next attempt arms its own).
        """
        self.live.pop(attempt, None)
        # The newest error, but a refusal never hides the error of an attempt
        # that ran (a retry outside then counts a call).
        if not isinstance(error, CallRefusedError) or isinstance(
            self.failure, CallRefusedError | None
        ):
            self.failure = error
        before = self.to_start
        launch = self.ask()
        if self.to_start != before:  # the next attempt starts now
            return launch, None, self.take_timer()
        if not self.live and not self.to_start:  # every attempt has failed
            return False, self.failure, None
        return False, None, None

    def close(self) -> tuple[abc.DisposableBase | None, list[_A]]:
        """Decide (no attempt starts any more); return the pending timer and
        every live attempt, the winner included, marked lost: for the caller
        to stop (without the lock)."""
        self.decided = True
        if self.winner is not None:
            self.live[self.winner] = None
        return self.take_timer(), self.cancel_all()

    def cancel_all(self) -> list[_A]:
        """Mark every live attempt lost and forget them; return them, for the
        caller to dispose (without the lock)."""
        attempts = list(self.live)
        for attempt in attempts:
            attempt.cancelled = True
        self.live.clear()
        return attempts
