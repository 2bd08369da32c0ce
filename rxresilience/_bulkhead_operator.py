"""``rxr.bulkhead``: hold one of a shared ``Bulkhead``'s slots for each subscription."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from ._arguments import require_scheduler
from ._bulkhead import Bulkhead
from ._clock import choose_scheduler, clock_of
from .errors import BulkheadFullError
from .telemetry import _bus

__all__ = ["bulkhead"]

_log = logging.getLogger("rxresilience")

_T = TypeVar("_T")

_NOTHING = Disposable()  # what a refused subscription returns: nothing to undo


def bulkhead(
    bulkhead: Bulkhead, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Run the source in one of ``bulkhead``'s slots: one subscription is one call.

    Below, each call is drawn from the tick it subscribes, one tick per
    character, through ``Bulkhead(max_concurrent=2, max_queue=1)``; every
    call subscribes at tick 0 to a source that emits after one tick and
    completes after two::

        call 1:  -a|      a slot at once
        call 2:  -b|      the other slot
        call 3:  ---c|    queued: its source starts at tick 2, as call 1 ends
        call 4:  #        refused at once: BulkheadFullError("queue full")

    A call holds its slot from its subscription to the source until the
    source completes, errors or is disposed; the slot is given back before
    the end is passed on, so a subscriber that resubscribes from
    ``on_completed`` finds it free (or handed to the first waiter). A call
    that finds every slot taken waits, unsubscribed, in the bulkhead's
    first-in, first-out queue, without blocking any thread, and its source is
    subscribed on the thread that frees a slot. When the queue is full, or
    the wait exceeds the bulkhead's ``max_wait`` (timed on ``scheduler``,
    else the subscribe-time scheduler, else ``TimeoutScheduler``), the
    subscriber gets :class:`~rxresilience.BulkheadFullError`, whose
    ``retry_after`` is ``None``: a retry outside gives up at once.

    Disposing a waiting call leaves the queue; disposing an active one
    disposes its source, then frees its slot at once. An exception raised by
    the subscriber's own ``on_next`` ends the call as a disposal does, then
    reaches that subscriber once as ``on_error`` (never the source): the
    slot is freed exactly once either way. An exception a queued call's subscriber raises as its
    source is started late (a source that fails at once, to a subscriber
    whose ``on_error`` raises) is logged to the ``"rxresilience"`` logger:
    it is never given to the call whose end freed the slot.

    While someone listens (:func:`rxresilience.telemetry.events`), a call
    that waits reports ``bulkhead.queued`` (``attributes["depth"]``: the
    calls waiting then), and a refused one ``bulkhead.rejected`` (its
    ``error`` the refusal, ``attributes["reason"]`` its reason), under the
    bulkhead's ``name``, timed on the scheduler that times ``max_wait``.

    With ``rxr.idempotent(..., finish_on_dispose=True)`` inside the
    bulkhead, a disposed call frees its slot at once while its execution goes
    on to its end (so it can be recorded): the bulkhead then bounds the
    subscribed calls, not the work still running. Put the bulkhead inside
    ``idempotent`` to bound the executions instead.

    Examples:
        >>> import reactivex as rx
        >>> shared = Bulkhead(max_concurrent=2)
        >>> rx.of(1, 2).pipe(bulkhead(shared)).run()
        2
        >>> shared.metrics().admitted
        1

    Args:
        bulkhead: the bulkhead to share; any number of pipelines may use it.
        scheduler: where the ``max_wait`` timers run, and whose clock times
            the telemetry events.

    Returns:
        An operator function for ``Observable.pipe``.
    """
    if not isinstance(bulkhead, Bulkhead):
        raise TypeError(f"bulkhead must be a Bulkhead, got {type(bulkhead).__name__}")
    require_scheduler("scheduler", scheduler)
    max_wait = bulkhead.max_wait

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            call = _BulkheadCall(bulkhead, source, observer, scheduler_)
            entry = bulkhead.enter(call)
            if entry is True:
                call.start()
                return call
            if entry is False:
                if _bus.listening:
                    call.report_queued(choose_scheduler(scheduler, scheduler_))
                if max_wait is not None:
                    call.wait_at_most(max_wait, choose_scheduler(scheduler, scheduler_))
                return call
            if _bus.listening:
                _report(
                    bulkhead,
                    choose_scheduler(scheduler, scheduler_),
                    entry,
                    _bus.trace_context(),
                )
            observer.on_error(entry)
            return _NOTHING

        return Observable(subscribe)

    return apply


class _BulkheadCall(abc.DisposableBase, Generic[_T]):
    """One subscription: waits for a slot, runs the source in it, gives it back once.

    The bulkhead's own bookkeeping (under its lock) makes giving the slot back
    idempotent, so every path that ends the call simply calls ``leave``.
    """

    __slots__ = (
        "_bulkhead",
        "_context",
        "_disposed",
        "_observer",
        "_scheduler",
        "_source",
        "_started",
        "_starting",
        "_timer",
        "_upstream",
    )

    def __init__(
        self,
        bulkhead: Bulkhead,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._bulkhead = bulkhead
        self._source = source
        self._observer = observer
        self._scheduler = scheduler
        self._disposed = False
        self._started = False
        self._starting = False
        self._timer: SingleAssignmentDisposable | None = None
        self._upstream: abc.DisposableBase | None = None
        self._context: object = None  # telemetry's, captured only while listening

    def start(self) -> None:
        """Subscribe to the source: at once when admitted, else when handed a slot.

        A disposal on another thread while the source is being subscribed
        leaves the slot to us, given back once the source's subscription
        exists and is disposed: the slot is never reused while this source
        may still be starting. (Each side sets its flag before reading the
        other's, so at least one of them sees both and gives the slot back;
        giving it back twice is harmless.)
        """
        self._started = self._starting = True
        timer = self._timer
        if timer is not None:
            timer.dispose()
        if self._disposed:  # disposed as a slot was handed to it
            self._starting = False
            self._bulkhead.leave(self)
            return
        try:
            context = self._context
            if context is None:
                upstream = self._upstream = self._subscribe()
            else:  # started late, on another thread: the parts inside report
                # to the subscriber's span too
                upstream = self._upstream = _bus.in_context(context, self._subscribe)
        except BaseException:
            self._starting = False
            self._bulkhead.leave(self)
            raise
        self._starting = False
        if self._disposed_meanwhile():  # maybe before _upstream was set
            upstream.dispose()
            self._bulkhead.leave(self)

    def _subscribe(self) -> abc.DisposableBase:
        return self._source.subscribe(
            self._on_next,
            self._on_error,
            self._on_completed,
            scheduler=self._scheduler,
        )

    def _disposed_meanwhile(self) -> bool:
        """``_disposed`` read afresh: another thread may have set it since."""
        return self._disposed

    def wait_at_most(self, seconds: float, scheduler: abc.SchedulerBase) -> None:
        """Refuse the call if it still waits after ``seconds``."""
        timer = self._timer = SingleAssignmentDisposable()
        # Started or disposed on another thread before the timer existed: the
        # timer is disposed as it is assigned. (start and dispose set their
        # flag before they read _timer; we set _timer before reading the flags.)
        if self._started or self._disposed:
            timer.dispose()
        try:
            timer.disposable = scheduler.schedule_relative(
                seconds, self._on_wait_exceeded
            )
        except Exception as error:  # a scheduler shut down refuses the timer
            # The call must not stay queued (holding a place, started later
            # for a subscriber already told it failed): it leaves first.
            self.dispose()
            self._observer.on_error(error)

    def report_queued(self, scheduler: abc.SchedulerBase) -> None:
        """Emit ``bulkhead.queued`` (called only while someone listens), and keep
        the subscriber's tracing context for a refusal when the wait runs out."""
        self._context = _bus.trace_context()
        _report(self._bulkhead, scheduler, None, self._context)

    def _on_wait_exceeded(
        self, scheduler: abc.SchedulerBase, _state: Any = None
    ) -> None:
        refusal = self._bulkhead.expire(self)
        if refusal is not None:  # else a slot was handed to it first, or it left
            if _bus.listening:
                _report(self._bulkhead, scheduler, refusal, self._context)
            self._observer.on_error(refusal)

    def _on_next(self, value: _T) -> None:
        try:
            self._observer.on_next(value)
        except Exception as error:
            # The subscriber's own bug ends the call as a disposal does: the
            # source (an asynchronous one would go on emitting) is disposed,
            # then the slot freed (by start, if the source is still being
            # subscribed). The exception is the subscriber's: it gets it
            # once as on_error, and the source never sees it (a disposed
            # source could not hand it back).
            self.dispose()
            self._observer.on_error(error)
        except BaseException:
            self.dispose()
            raise

    def _on_error(self, error: Exception) -> None:
        self._bulkhead.leave(self)
        self._observer.on_error(error)

    def _on_completed(self) -> None:
        self._bulkhead.leave(self)
        self._observer.on_completed()

    def dispose(self) -> None:
        self._disposed = True
        timer = self._timer
        if timer is not None:
            timer.dispose()
        upstream = self._upstream
        try:
            if upstream is not None:  # else start disposes it (see start)
                upstream.dispose()  # the source stops before its slot is reused
        finally:
            if not self._starting:  # else start gives the slot back (see start)
                self._bulkhead.leave(self)


def _report(
    bulkhead: Bulkhead,
    scheduler: abc.SchedulerBase,
    refusal: BulkheadFullError | None,
    context: object,
) -> None:
    """Emit ``bulkhead.rejected`` (``refusal``) or, without one,
    ``bulkhead.queued`` with the queue's depth, timed on ``scheduler``'s clock
    (a bulkhead keeps none); never raises into the operator."""
    try:
        if refusal is None:
            _bus.emit(
                "bulkhead.queued",
                bulkhead.name,
                clock_of(scheduler)(),
                attributes={"depth": bulkhead.metrics().queued},
                context=context,
            )
        else:
            _bus.emit(
                "bulkhead.rejected",
                bulkhead.name,
                clock_of(scheduler)(),
                error=refusal,
                attributes={"reason": refusal.reason},
                context=context,
            )
    except Exception:
        _log.exception("reporting bulkhead %r's event failed", bulkhead.name)
