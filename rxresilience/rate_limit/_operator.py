"""``rxr.rate_limit``: one subscription is one call, and waits for its permit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from .._arguments import require_duration, require_scheduler
from .._clock import LONGEST_WAIT, choose_scheduler
from ..errors import RateLimitedError
from ._gcra import RateLimiterReservation
from ._limiter import RateLimiter, warn_of_two_clocks

__all__ = ["rate_limit"]

_T = TypeVar("_T")

_NOTHING = Disposable()  # what a refused subscription returns: nothing to undo


def rate_limit(
    limiter: RateLimiter,
    *,
    max_wait: float | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Subscribe to the source when ``limiter`` has a permit: one subscription, one call.

    The permit is taken at subscribe time (as a breaker decides at subscribe
    time); when it is not free yet, the subscription waits for it on a timer
    (no thread is blocked) and then subscribes to the source. Below, five
    calls subscribe at tick 0 through ``RateLimiter(rate=1, per=2.0)``, a
    permit every two ticks; each call's source is ``-a|``::

        call 1:  -a|
        call 2:    -a|
        call 3:      -a|
        call 4:  #          max_wait=5: its permit is 6 ticks away, refused
        call 5:        -a|  the refusal took nothing: the next permit is its

    With ``max_wait`` (seconds), a permit further away than that is not
    taken: the subscriber gets :class:`~rxresilience.RateLimitedError` at
    once, whose ``retry_after`` is the seconds until a permit is free, so an
    ``rxr.retry`` outside waits it out without spending an attempt;
    ``max_wait=0`` refuses whenever no permit is free now. Disposing a
    subscription that is still waiting cancels its timer and gives its
    permit back if no later permit was taken since (the limiter's
    theoretical arrival time is still the one this permit set); otherwise
    the permit stays spent, so nobody else's slot is handed out twice. Once
    the source is subscribed the permit is spent: the call was made.

    The wait runs on ``scheduler``, else the subscribe-time scheduler, else
    ``TimeoutScheduler``; the limiter measures it on its own clock (give it
    the same scheduler in virtual-time tests).

    Examples:
        >>> import reactivex as rx
        >>> limiter = RateLimiter(rate=100, per=1.0, burst=10)
        >>> rx.of(1).pipe(rate_limit(limiter)).run()
        1

    Args:
        limiter: the limiter to share; any number of pipelines may use it.
        max_wait: the longest wait for a permit, in seconds (None: as long
            as needed).
        scheduler: where the wait's timer runs.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        TypeError: ``limiter`` is not a ``RateLimiter``; a ``scheduler``
            that is not one.
        ValueError: ``max_wait`` negative, not finite, or beyond
            ``LONGEST_WAIT``.
    """
    if not isinstance(limiter, RateLimiter):
        raise TypeError(f"limiter must be a RateLimiter, got {type(limiter).__name__}")
    bound = LONGEST_WAIT if max_wait is None else require_duration("max_wait", max_wait)
    require_scheduler("scheduler", scheduler)

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            # The limiter and the pipeline's timers should keep the same time.
            warn_of_two_clocks(limiter, choose_scheduler(scheduler, scheduler_))
            reservation = limiter.try_reserve(bound)
            if isinstance(reservation, RateLimitedError):
                observer.on_error(reservation)
                return _NOTHING
            if not reservation.wait:
                return source.subscribe(observer, scheduler=scheduler_)
            call = _WaitingCall(limiter, reservation, source, observer, scheduler_)
            try:
                call.timer.disposable = choose_scheduler(
                    scheduler, scheduler_
                ).schedule_relative(reservation.wait, call.start)
            except Exception as error:  # a scheduler shut down refuses the timer
                # The source was never subscribed: the permit goes back (if
                # still the latest) before the subscriber hears of it.
                call.dispose()
                observer.on_error(error)
                return _NOTHING
            return call

        return Observable(subscribe)

    return apply


class _WaitingCall(abc.DisposableBase, Generic[_T]):
    """A call waiting for its permit: subscribes on time, or gives the permit back."""

    __slots__ = (
        "_limiter",
        "_lock",
        "_observer",
        "_reservation",
        "_scheduler",
        "_source",
        "_state",
        "timer",
        "upstream",
    )

    _WAITING, _STARTED, _DISPOSED = 0, 1, 2

    def __init__(
        self,
        limiter: RateLimiter,
        reservation: RateLimiterReservation,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._limiter = limiter
        self._reservation = reservation
        self._source = source
        self._observer = observer
        self._scheduler = scheduler
        # One decision between the timer and disposal, whichever comes first.
        self._lock = threading.Lock()
        self._state = self._WAITING
        self.timer = SingleAssignmentDisposable()
        self.upstream = SingleAssignmentDisposable()

    def start(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        with self._lock:
            if self._state != self._WAITING:
                return
            self._state = self._STARTED
        self.upstream.disposable = self._source.subscribe(
            self._observer, scheduler=self._scheduler
        )

    def dispose(self) -> None:
        with self._lock:
            waiting = self._state == self._WAITING
            self._state = self._DISPOSED
        if waiting:
            self.timer.dispose()
            self._limiter.cancel(self._reservation)
        self.upstream.dispose()
