"""One attempt of a hedged subscription: one subscription to the source."""

from __future__ import annotations

import logging
from typing import Any, Generic, Protocol, TypeVar

from reactivex import Observable, abc

__all__ = ["HedgeAttempt", "HedgedRun", "stop_attempts"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")
_T_contra = TypeVar("_T_contra", contravariant=True)


class _Standing(Protocol):
    """What an attempt reads (the winner) and writes (finished) of the run's
    bookkeeping."""

    @property
    def winner(self) -> object: ...

    finished: bool


class HedgedRun(Protocol[_T_contra]):
    """What an attempt needs of the run that made it (a ``HedgeRun``): the run
    imports its attempts, not the other way round."""

    @property
    def attempts(self) -> _Standing: ...

    @property
    def observer(self) -> abc.ObserverBase[_T_contra]: ...

    def win(self, attempt: HedgeAttempt[Any]) -> bool: ...

    def failed(self, attempt: HedgeAttempt[Any], error: Exception) -> None: ...

    def stop_launching(self) -> None: ...


class HedgeAttempt(Generic[_T]):
    """One subscription to the source. Until a winner is chosen, its first
    answer (an item or completion) makes it the winner, and its error is a
    failure to hedge on; after that, only the winner's notifications pass,
    an error included (the winner's own end, or the subscriber's exception
    that a synchronous source hands back: never a reason to hedge)."""

    __slots__ = ("_run", "cancelled", "number", "subscription")

    def __init__(self, run: HedgedRun[_T], number: int) -> None:
        self._run = run
        self.number = number  # 1 for the first attempt, n for hedge n - 1
        self.subscription: abc.DisposableBase | None = None  # once subscribe returned
        self.cancelled = False  # lost, or the run was disposed: dispose on sight

    def subscribe(
        self, source: Observable[_T], scheduler: abc.SchedulerBase | None
    ) -> None:
        """Subscribe to ``source``; dispose at once if it lost meanwhile."""
        try:
            subscription = source.subscribe(
                self.on_next, self.on_error, self.on_completed, scheduler=scheduler
            )
        except BaseException:
            # Only what RxPY re-raises gets here (our subscriber's on_error
            # raised): let a later failure run the loop, and pass it on.
            self._run.stop_launching()
            raise
        # Without the lock: whoever cancels the attempt (under the lock) and
        # this thread each look at what the other wrote, so at least one of
        # them disposes it (twice does no harm: RxPY's subscriptions are
        # idempotent).
        self.subscription = subscription
        if self.cancelled:  # it lost while it was being subscribed
            subscription.dispose()

    def on_next(self, value: _T) -> None:
        run = self._run
        if run.attempts.winner is self or run.win(self):
            run.observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        run = self._run
        if run.attempts.winner is self:
            run.attempts.finished = True
            run.observer.on_error(error)
        else:
            run.failed(self, error)

    def on_completed(self) -> None:
        run = self._run
        if run.attempts.winner is self or run.win(self):
            # The winner's own subscription ends itself once this returns.
            run.attempts.finished = True
            run.observer.on_completed()


def stop_attempts(
    timer: abc.DisposableBase | None, attempts: list[HedgeAttempt[Any]]
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
