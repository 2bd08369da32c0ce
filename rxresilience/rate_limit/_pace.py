"""``rxr.pace``: delay each item to its permit; lossless, in order."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from .._arguments import require_count, require_scheduler
from .._clock import LONGEST_WAIT, choose_scheduler
from ..errors import BufferOverflowError, RateLimitedError
from ._gcra import RateLimiterReservation
from ._limiter import RateLimiter, warn_of_two_clocks

__all__ = ["pace"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")


def pace(
    limiter: RateLimiter,
    *,
    max_buffer: int | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Delay every item to a permit of ``limiter``: never drop one, keep their order.

    Each item takes one permit; an item whose permit is not free yet waits
    for it on a timer, and the items behind it wait behind it. Four items
    at tick 0 through ``RateLimiter(rate=1, per=2.0)``, a permit every two
    ticks::

        source:  (abcd|)
        result:  a-b-c-(d|)

    Completion and errors wait behind the items before them, so a failing
    source still delivers every item it emitted first: a deliberate
    difference from ``reactivex.operators.delay``, which passes an error on
    at once and drops the items it holds. A permit is reserved only for the
    item at the head of the queue, when it gets there, so a long queue does
    not hold the shared limiter's future permits, and disposing gives the
    head's permit back if no later permit was taken since.

    ``max_buffer`` bounds the items waiting: an item that would make more
    wait is not taken, the source is disposed at once, and the items already
    waiting are still delivered on their permits, then
    :class:`~rxresilience.BufferOverflowError`. Never a silent drop.
    ``max_buffer=0`` lets an item through only when its permit is free at
    once.

    A storage that refuses for now (``RedisRateLimiterStorage`` with
    ``when_unreachable="refuse"``, Redis unreachable) drops nothing either:
    the head waits the refusal's ``retry_after`` and asks for its permit
    again, for as long as the refusals last (put a timeout outside to bound
    that). A subscriber whose ``on_next`` raises gets its exception once as
    ``on_error``, and pacing stops: the source is disposed, the timer
    cancelled, and the head's permit given back if no later permit was taken
    since (as on disposal). A scheduler that refuses a timer (shut down)
    ends the subscription with its error, the same way.

    Waits run on ``scheduler``, else the subscribe-time scheduler, else
    ``TimeoutScheduler``; the limiter measures them on its own clock (give
    it the same scheduler in virtual-time tests).

    Examples:
        >>> import reactivex as rx
        >>> limiter = RateLimiter(rate=1000, per=1.0, burst=3)
        >>> rx.of(1, 2, 3).pipe(pace(limiter), ops.to_list()).run()
        [1, 2, 3]

    Args:
        limiter: the limiter to share; any number of pipelines may use it.
        max_buffer: the most items that may wait at once (None: no bound).
        scheduler: where the waits' timers run.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        TypeError: ``limiter`` is not a ``RateLimiter``; ``max_buffer`` not
            an int (a ``bool`` included); a ``scheduler`` that is not one.
        ValueError: a negative ``max_buffer``.
    """
    if not isinstance(limiter, RateLimiter):
        raise TypeError(f"limiter must be a RateLimiter, got {type(limiter).__name__}")
    if max_buffer is not None:
        require_count("max_buffer", max_buffer, minimum=0, or_none=True)
    require_scheduler("scheduler", scheduler)

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            timers = choose_scheduler(scheduler, scheduler_)
            warn_of_two_clocks(limiter, timers)
            pacer = _Pacer(limiter, observer, timers, max_buffer)
            pacer.upstream.disposable = source.subscribe(
                pacer.on_next, pacer.on_error, pacer.on_completed, scheduler=scheduler_
            )
            return pacer

        return Observable(subscribe)

    return apply


class _Pacer(abc.DisposableBase, Generic[_T]):
    """One subscription's queue: the head waits for its permit, the rest behind it."""

    __slots__ = (
        "_closed",
        "_done",
        "_end",
        "_head",
        "_limiter",
        "_lock",
        "_max_buffer",
        "_observer",
        "_queue",
        "_scheduler",
        "_timer",
        "_waiting",
        "upstream",
    )

    def __init__(
        self,
        limiter: RateLimiter,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase,
        max_buffer: int | None,
    ) -> None:
        self._limiter = limiter
        self._observer = observer
        self._scheduler = scheduler
        self._max_buffer = max_buffer
        # Reentrant: a subscriber may dispose from inside on_next.
        self._lock = threading.RLock()
        self._queue: collections.deque[_T] = collections.deque()
        self._head: RateLimiterReservation | None = None  # the head's permit
        self._end: Callable[[], None] | None = None  # the source's end, held back
        self._closed = False  # the source has ended (or was cut off): take nothing
        self._done = False  # the subscriber has had its end, or disposed
        self._waiting = False  # a timer is armed for the head
        self._timer = SerialDisposable()
        self.upstream = SingleAssignmentDisposable()

    # -- the source's notifications -------------------------------------------------

    def on_next(self, value: _T) -> None:
        with self._lock:
            if self._closed:
                return
            queue = self._queue
            bound = self._max_buffer
            if queue:
                if bound is not None and len(queue) >= bound:
                    self._overflow()
                    return
                queue.append(value)
                return
            answer = self._reserve(0.0 if bound == 0 else LONGEST_WAIT)
            if answer is None:
                return
            if isinstance(answer, RateLimitedError):
                if bound == 0:
                    self._overflow()
                elif _passing(answer):
                    queue.append(value)
                    self._arm(_retry_after(answer), None)
                else:  # no permit within the longest wait a timer can have
                    self._stop(answer)
                return
            if not answer.wait:
                self._emit(value)
                return
            queue.append(value)
            self._arm(answer.wait, answer)

    def on_error(self, error: Exception) -> None:
        self._hold_end(lambda: self._observer.on_error(error))

    def on_completed(self) -> None:
        self._hold_end(self._observer.on_completed)

    def _hold_end(self, end: Callable[[], None]) -> None:
        """The source's end goes behind the items waiting, if any."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._end = end
            if not self._queue:
                self._finish()

    def _overflow(self) -> None:
        """Called under the lock: take no more; the waiting items, then the error."""
        self._closed = True
        self.upstream.dispose()
        error = BufferOverflowError(self._max_buffer or 0)
        self._end = lambda: self._observer.on_error(error)
        if not self._queue:
            self._finish()

    def _stop(self, error: Exception) -> None:
        """Called under the lock: pacing ends now with ``error``: nothing more
        is taken or delivered, the timer is cancelled and the head's permit
        given back (if still the latest)."""
        self._let_go(self._close())
        self._observer.on_error(error)

    def _close(self) -> RateLimiterReservation | None:
        """Called under the lock: take and deliver nothing more; return the
        head's reservation, whose permit :meth:`_let_go` gives back."""
        self._closed = self._done = True
        self._waiting = False
        head, self._head = self._head, None
        self._queue.clear()
        self._end = None
        return head

    def _reserve(
        self, max_wait: float
    ) -> RateLimiterReservation | RateLimitedError | None:
        """Called under the lock: the limiter's answer; None when its storage
        failed, which ends the pacing with the storage's error."""
        try:
            return self._limiter.try_reserve(max_wait)
        except Exception as error:
            self._stop(error)
            return None

    def _let_go(self, head: RateLimiterReservation | None) -> None:
        self._timer.dispose()
        try:
            if head is not None:
                self._limiter.cancel(head)
        except Exception:  # its storage failed: the permit stays spent
            _log.warning("a paced permit could not be given back", exc_info=True)
        finally:
            self.upstream.dispose()

    def _finish(self) -> None:
        end, self._end = self._end, None
        if end is not None and not self._done:
            self._done = True
            end()

    # -- permits ----------------------------------------------------------------------

    def _arm(self, seconds: float, head: RateLimiterReservation | None) -> None:
        """Called under the lock: wake up in ``seconds``, to pass on the head on
        its permit ``head``, or (``None``) to ask for its permit again."""
        self._head = head
        self._waiting = True
        try:
            self._timer.disposable = self._scheduler.schedule_relative(
                seconds, self._on_timer
            )
        except Exception as error:  # a scheduler shut down refuses the timer
            self._stop(error)

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        try:
            with self._lock:
                if self._done:
                    return
                self._waiting = False
                head, self._head = self._head, None
                if head is not None:  # the head's permit is due
                    self._emit(self._queue.popleft())
                self._advance()
        except Exception:
            # Only the subscriber's own on_error / on_completed gets here (an
            # on_next that raises is handled in _emit): its bug is its own,
            # and on a timer's thread nobody would hear it.
            _log.exception("a paced subscriber's on_error or on_completed raised")

    def _advance(self) -> None:
        """Called under the lock: pass on every item whose permit is free, then
        wait for the next one, or pass the source's end on. An item fed from
        inside ``on_next`` into the empty queue armed its own wait: it is not
        reserved twice."""
        queue = self._queue
        while queue and not self._done and not self._waiting:
            answer = self._reserve(LONGEST_WAIT)
            if answer is None:
                return
            if isinstance(answer, RateLimitedError):
                if _passing(answer):
                    self._arm(_retry_after(answer), None)
                else:
                    self._stop(answer)
                return
            if answer.wait:
                self._arm(answer.wait, answer)
                return
            self._emit(queue.popleft())
        if not queue:
            self._finish()

    def _emit(self, value: _T) -> None:
        try:
            self._observer.on_next(value)
        except Exception as error:
            # The subscriber's own bug is its own: it gets it once, as
            # on_error, and pacing stops (from a timer it would otherwise die
            # on the timer's thread). Unless it disposed us on the way.
            if not self._done:
                self._stop(error)

    def dispose(self) -> None:
        with self._lock:
            head = self._close()
        self._let_go(head)


def _passing(refusal: RateLimitedError) -> bool:
    """A refusal that says when to ask again (a storage that cannot answer now,
    as Redis unreachable with ``when_unreachable="refuse"``), not a permit
    beyond the longest wait a timer can have."""
    retry_after = refusal.retry_after
    return retry_after is not None and retry_after <= LONGEST_WAIT


def _retry_after(refusal: RateLimitedError) -> float:
    return refusal.retry_after or 0.0
