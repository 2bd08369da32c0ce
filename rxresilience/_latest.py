"""Hot streams that replay what they hold to each new subscriber.

``Latest`` holds a current value (an optimistic state's display, its
``is_updating``); ``Outcome`` holds one answer, then completion (the result
of an update or a refresh). Values reach the subscribers present through a
:class:`~rxresilience._broadcast.Broadcast`, so a subscriber that raises is
detached alone and the producer never sees its exception.
"""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._broadcast import Broadcast

__all__ = ["Latest", "Outcome"]

_T = TypeVar("_T")


class Latest(Observable[_T], Generic[_T]):
    """A hot stream that replays its current value to each new subscriber."""

    def __init__(self, value: _T, lock: threading.RLock) -> None:
        super().__init__()
        self._value = value
        self._lock = lock
        self._broadcast: Broadcast[_T] = Broadcast()
        self._completed = False

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        with self._lock:
            if self._completed:
                observer.on_next(self._value)
                observer.on_completed()
                return Disposable()
            # Its replay as a delivery: a change it makes from inside it
            # reaches it too, after the replay (it used to miss it).
            return self._broadcast.subscribe_replaying(observer, self._value)

    def set(self, value: _T, *, always: bool = False) -> None:
        """Called under the lock: emit ``value`` if it differs (or ``always``)."""
        if not always and _same(self._value, value):
            return
        self._value = value
        self._broadcast.emit(value)

    def complete(self) -> None:
        self._completed = True
        self._broadcast.complete()


class Outcome(Observable[bool]):
    """The result of one update or refresh: one bool, then completion, replayed.

    Settled from the commit's (or fetch's) producer; the subscribers present
    then get it through a :class:`Broadcast`, so one that raises is detached
    and gets its own exception, and the producer never sees it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._broadcast: Broadcast[bool] = Broadcast()
        self._value: bool | None = None

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[bool],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        with self._lock:
            value = self._value
            if value is None:
                return self._broadcast.subscribe(observer)
        # A late subscriber, on its own call: RxPY's rule for what it raises.
        observer.on_next(value)
        observer.on_completed()
        return Disposable()

    def settle(self, value: bool) -> None:
        with self._lock:
            if self._value is not None:
                return
            self._value = value
        self._broadcast.emit(value)
        self._broadcast.complete()


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False
