"""A hot observable whose subscribers cannot hurt the publisher or each other."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

__all__ = ["Broadcast"]

_T = TypeVar("_T")

_log = logging.getLogger("rxresilience")


class Broadcast(Observable[_T], Generic[_T]):
    """Emits each value to the subscribers present at that moment; no replay.

    A subscriber whose ``on_next`` raises is detached and receives that
    exception as its ``on_error``; the publisher and the other subscribers
    carry on. Disposing a subscription detaches it.

    Every subscriber sees the values in one order: a value emitted while
    another is being delivered (a subscriber that reacts by changing what it
    watches, another thread) waits until that one has reached everyone, and
    goes out after it, from the thread delivering.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._observers: tuple[abc.ObserverBase[_T], ...] = ()
        self._completed = False
        self._waiting: collections.deque[_T] = collections.deque()
        self._delivering = False

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
        with self._lock:
            self._waiting.append(value)
            if self._delivering:
                return
            self._delivering = True
        try:
            while True:
                with self._lock:
                    if not self._waiting:
                        self._delivering = False
                        return
                    value = self._waiting.popleft()
                self._deliver(value)
        except BaseException:
            with self._lock:
                self._delivering = False
            raise

    def _deliver(self, value: _T) -> None:
        for observer in self._observers:
            try:
                observer.on_next(value)
            except Exception as error:
                self._detach(observer)
                try:
                    observer.on_error(error)
                except Exception:
                    _log.exception("a subscriber's on_next and on_error both raised")

    def complete(self) -> None:
        """Complete every subscriber; later subscribers complete at once."""
        with self._lock:
            self._completed = True
            observers, self._observers = self._observers, ()
        for observer in observers:
            try:
                observer.on_completed()
            except Exception:
                _log.exception("a subscriber's on_completed raised")
