"""A hot observable whose subscribers cannot hurt the publisher or each other."""

from __future__ import annotations

import logging
import threading
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

__all__ = ["Broadcast"]

_T = TypeVar("_T")

_log = logging.getLogger("rxresilience")

#: In a queue of values to deliver: the end, for the subscribers given with it.
_END: Any = object()

Observers = tuple[abc.ObserverBase[Any], ...]


class _Delivering(threading.local):
    """What a thread delivering a broadcast's value was handed meanwhile, in
    order, each with the subscribers present when it came (None: the thread
    is delivering nothing)."""

    waiting: list[tuple[Any, Observers]] | None = None


class Broadcast(Observable[_T], Generic[_T]):
    """Emits each value to the subscribers present at that moment; no replay.

    A subscriber whose ``on_next`` raises is detached and receives that
    exception as its ``on_error``; the publisher and the other subscribers
    carry on. Disposing a subscription detaches it.

    A value emitted, or the end, from inside a delivery (a subscriber that
    reacts by changing what it watches) goes out once the value being
    delivered has reached every subscriber, to those present when it was
    emitted: every subscriber sees one order, and none a value older than
    its replay. Each thread delivers what it emits itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._observers: Observers = ()
        self._completed = False
        self._delivering = _Delivering()

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        with self._lock:
            if self._completed:
                completed = True
            else:
                completed = False
                self._observers = (*self._observers, observer)
        if completed:
            observer.on_completed()
            return Disposable()
        return Disposable(lambda: self._detach(observer))

    def _detach(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    @property
    def has_observers(self) -> bool:
        return bool(self._observers)

    def emit(self, value: _T) -> None:
        self._hand_out(value, self._observers)

    def subscribe_replaying(
        self, observer: abc.ObserverBase[_T], value: _T
    ) -> abc.DisposableBase:
        """Subscribe ``observer``, and give it ``value`` first, as a delivery:
        what is emitted meanwhile (from its own ``on_next``, say) reaches it
        after ``value``, never before nor not at all (the caller holds off
        other threads' emits while this runs)."""
        subscription = self._subscribe_core(observer)
        self._hand_out(value, (observer,))
        return subscription

    def complete(self) -> None:
        """Complete every subscriber; later subscribers complete at once."""
        with self._lock:
            self._completed = True
            observers, self._observers = self._observers, ()
        self._hand_out(_END, observers)

    def _hand_out(self, value: Any, observers: Observers) -> None:
        delivering = self._delivering
        waiting = delivering.waiting
        if waiting is not None:  # inside a delivery on this thread: after it
            waiting.append((value, observers))
            return
        if not observers:
            return
        try:
            delivering.waiting = waiting = []
            self._deliver(value, observers)
            done = 0
            while done < len(waiting):
                value, observers = waiting[done]
                done += 1
                self._deliver(value, observers)
        finally:
            delivering.waiting = None

    def _deliver(self, value: Any, observers: Observers) -> None:
        if value is _END:
            for observer in observers:
                try:
                    observer.on_completed()
                except Exception:
                    _log.exception("a subscriber's on_completed raised")
            return
        for observer in observers:
            try:
                observer.on_next(value)
            except Exception as error:
                self._detach(observer)
                try:
                    observer.on_error(error)
                except Exception:
                    _log.exception("a subscriber's on_next and on_error both raised")
