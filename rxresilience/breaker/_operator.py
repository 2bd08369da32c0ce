"""``rxr.circuit_breaker``: guard an observable with a shared ``CircuitBreaker``."""

from __future__ import annotations

import logging
import warnings
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from .._child_safe_lock import ChildSafeLock
from .._clock import is_virtual
from ..errors import CircuitOpenError
from ._breaker import CircuitBreaker
from ._permit import Permit

__all__ = ["circuit_breaker"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")

_NOTHING = Disposable()  # what a refused subscription returns: nothing to undo

# Breakers already warned about running on the real clock in virtual time.
_warned: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
_warned_lock = ChildSafeLock()


def _warn_of_two_clocks(breaker: CircuitBreaker, scheduler: abc.SchedulerBase) -> None:
    """Warn, once per breaker, that virtual time meets a breaker on the real clock."""
    with _warned_lock:
        if breaker in _warned:
            return
        _warned.add(breaker)
    warnings.warn(
        f"circuit breaker {breaker.name!r} keeps the real clock, but this pipeline "
        f"runs in virtual time ({type(scheduler).__name__}): its reset_timeout "
        f"and retry_after are in real seconds and will not pass as the virtual "
        f"clock moves; give the breaker the pipeline's scheduler",
        RuntimeWarning,
        stacklevel=2,
    )


def circuit_breaker(
    breaker: CircuitBreaker,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Guard the source with ``breaker``: one subscription is one call.

    Permission is decided at subscribe time. While the breaker refuses, the
    subscriber gets :class:`~rxresilience.CircuitOpenError` (with
    ``retry_after``) and the source is never subscribed. Below, each call is
    drawn from the tick it subscribes, one tick per character, through
    ``CircuitBreaker(failure_threshold=2, reset_timeout=5)``::

        call 1:  -#           fails
        call 2:    -#         fails: the breaker opens at tick 3
        call 3:      #        refused at once (retry_after=4): no subscription
        call 4:          -a|  the first call from tick 8 is a trial: it closes

    The call succeeds when the source completes and fails when it errors with
    an error the breaker records; its duration runs from subscription to the
    terminal notification on the breaker's clock. The outcome is recorded
    before the notification is passed on, so a ``retry`` downstream already
    sees the new state. Disposal before the end counts as a success if the
    call emitted a value that ``failure_if`` did not flag (so
    ``call.pipe(rxr.circuit_breaker(b), ops.first())`` counts), and otherwise
    as neither, giving back a half-open permit.

    Examples:
        >>> import reactivex as rx
        >>> breaker = CircuitBreaker(failure_threshold=5, reset_timeout=30.0)
        >>> rx.of(1).pipe(circuit_breaker(breaker)).run()
        1

    Args:
        breaker: the breaker to share; any number of pipelines may use it.

    Returns:
        An operator function for ``Observable.pipe``.
    """
    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(
            f"breaker must be a CircuitBreaker, got {type(breaker).__name__}"
        )

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            # Only this direction: a real scheduler_ is also what .run() and
            # to_async pass, around breakers that tests put in virtual time.
            if (
                scheduler_ is not None
                and is_virtual(scheduler_)
                and not is_virtual(breaker.scheduler)
            ):
                _warn_of_two_clocks(breaker, scheduler_)
            permit = breaker.try_admit()
            if isinstance(permit, CircuitOpenError):
                observer.on_error(permit)
                return _NOTHING
            call = _GuardedCall(permit, observer)
            call.upstream.disposable = source.subscribe(
                call.on_next_unchecked if breaker.failure_if is None else call.on_next,
                call.on_error,
                call.on_completed,
                scheduler=scheduler_,
            )
            return call

        return Observable(subscribe)

    return apply


class _GuardedCall(abc.DisposableBase, Generic[_T]):
    """One admitted call: settles its permit once, then passes notifications on."""

    __slots__ = ("_emitted", "_observer", "_permit", "_raised", "_stopped", "upstream")

    def __init__(self, permit: Permit, observer: abc.ObserverBase[_T]) -> None:
        self._permit = permit
        self._observer = observer
        self._emitted = False
        self._stopped = False
        self._raised: Exception | None = None
        self.upstream = SingleAssignmentDisposable()

    def _end_early(self) -> None:
        """Settle as disposal does: a success if a good value was seen, else
        neither. Nobody waits for this outcome (a disposer, a subscriber whose
        own exception travels on): a storage that fails to record it is logged."""
        try:
            if self._emitted:
                self._permit.success()
            else:
                self._permit.release()
        except Exception:
            _log.exception("a circuit breaker's storage failed to settle a call")

    def on_next_unchecked(self, value: _T) -> None:
        self._emitted = True
        try:
            self._observer.on_next(value)
        except Exception as error:
            self._subscriber_raised(error)
            raise

    def _subscriber_raised(self, error: Exception) -> None:
        """Our subscriber's own bug is not the service's: settle as disposal does.

        The exception then travels on as RxPY lets it: up to a timer-driven
        source's scheduler, or back to us as ``on_error`` from a synchronous
        source, which we pass on untouched.
        """
        self._raised = error
        self._end_early()

    def on_next(self, value: _T) -> None:
        if self._stopped:
            return
        try:
            flagged = self._permit.check(value)
        except Exception as error:  # failure_if itself failed: not the call's fault
            self._stopped = True
            self.upstream.dispose()
            self._observer.on_error(error)
            return
        if not flagged:
            self._emitted = True
        try:
            self._observer.on_next(value)
        except Exception as error:
            self._subscriber_raised(error)
            raise

    def on_error(self, error: Exception) -> None:
        if self._stopped:
            return
        self._stopped = True
        if error is self._raised:  # settled when it was raised
            self._observer.on_error(error)
            return
        try:
            self._permit.failure(error)
        except Exception as failure:  # record/ignore predicate failed
            self._observer.on_error(failure)
            return
        self._observer.on_error(error)

    def on_completed(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._permit.success()
        except Exception as failure:  # the storage's: as ``call`` raises it
            self._observer.on_error(failure)
            return
        self._observer.on_completed()

    def dispose(self) -> None:
        if not self._permit.settled:
            self._end_early()
        self.upstream.dispose()
