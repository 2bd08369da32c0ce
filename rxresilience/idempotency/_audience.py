"""The subscribers of one idempotent execution: what they saw, and how they end.

A subscriber that joins late is replayed the values so far; a subscriber
whose ``on_next`` raises gets its own exception as ``on_error`` and is
detached alone; one whose ``on_completed``/``on_error`` raises robs no other
of its end.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Generic, TypeVar

from reactivex import abc

__all__ = ["Audience"]

_T = TypeVar("_T")
_log = logging.getLogger("rxresilience")


class Audience(Generic[_T]):
    """Subscribers, the values so far, and the terminal notification (once)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._observers: list[abc.ObserverBase[_T]] = []
        self.values: list[_T] = []  # the values so far, replayed to latecomers
        self._terminal: tuple[str, Exception | None] | None = None
        # A subscriber raised: the source must run on to its end, recorded.
        self._must_finish = False

    def attach(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            for value in self.values:
                try:
                    observer.on_next(value)
                except Exception as error:
                    self._must_finish = True
                    _tell(observer, error)
                    return
            terminal = self._terminal
            if terminal is None:
                self._observers.append(observer)
                return
        self._deliver([observer], terminal)

    def _emit(self, value: _T) -> None:
        """Called under the execution lock: a subscriber that raises is told alone."""
        self.values.append(value)
        for observer in list(self._observers):
            try:
                observer.on_next(value)
            except Exception as error:
                self._observers.remove(observer)
                self._must_finish = True
                _tell(observer, error)

    def _announce(
        self, kind: str, error: Exception | None, cause: Exception | None = None
    ) -> None:
        """Give the subscribers their terminal notification (once)."""
        if error is not None and cause is not None and error.__cause__ is None:
            error.__cause__ = cause
        with self._lock:
            if self._terminal is not None:
                return
            terminal = self._terminal = (kind, error)
            observers, self._observers = self._observers, []
        self._deliver(observers, terminal)

    @staticmethod
    def _deliver(
        observers: list[abc.ObserverBase[_T]], terminal: tuple[str, Exception | None]
    ) -> None:
        kind, error = terminal
        for observer in observers:
            if kind == "completed":
                _quietly(observer.on_completed)
            else:
                assert error is not None
                _quietly(observer.on_error, error)


def _quietly(notify: Any, *args: Any) -> None:
    """Notify a subscriber; what it raises is its own, logged, never the others'."""
    try:
        notify(*args)
    except Exception:
        _log.exception("an idempotent subscriber raised from on_completed/on_error")


def _tell(observer: abc.ObserverBase[Any], error: Exception) -> None:
    """Give a subscriber that raised its own exception, and only to it."""
    try:
        observer.on_error(error)
    except Exception:  # its on_error raised too: nobody else may pay for it
        _log.exception("an idempotent subscriber's on_next and on_error both raised")
