"""A run's subscriber: its exceptions are its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from reactivex import abc

__all__ = ["Subscriber"]

_log = logging.getLogger("rxresilience")


class Subscriber:
    """The run's subscriber: an exception its ``on_next`` raises is its own.

    It receives that exception once as ``on_error`` and is detached; the run
    goes on. A disposal it makes from inside ``on_next`` counts once
    ``on_next`` has returned, unless it raised (RxPY's auto-detaching observer
    disposes on the way out of a raising ``on_next``: that is not the
    subscriber's wish, and the run ignores it).
    """

    __slots__ = ("_delivering", "_dispose_asked", "_observer", "on_dispose", "raised")

    def __init__(
        self,
        observer: abc.ObserverBase[Any] | None,
        on_dispose: Callable[[], None] = lambda: None,
    ) -> None:
        self._observer = observer
        self._delivering: int | None = None
        self._dispose_asked = False
        self.raised = False
        self.on_dispose = on_dispose

    def detach(self) -> None:
        self._observer = None

    def asks_to_dispose(self) -> bool:
        """True when a disposal should be honoured now; False when it is to be
        decided after the ``on_next`` under way on this thread returns."""
        if self.raised:
            return False
        if self._delivering == threading.get_ident():
            self._dispose_asked = True
            return False
        return True

    def on_next(self, event: Any) -> None:
        observer = self._observer
        if observer is None:
            return
        self._delivering = threading.get_ident()
        try:
            observer.on_next(event)
        except Exception as error:
            self.raised = True
            self._observer = None
            self._safely(observer.on_error, error)
            return
        finally:
            self._delivering = None
        if self._dispose_asked:
            self._dispose_asked = False
            self.on_dispose()

    def end(self, error: Exception | None) -> None:
        observer, self._observer = self._observer, None
        if observer is None:
            return
        if error is None:
            self._safely(observer.on_completed)
        else:
            self._safely(observer.on_error, error)

    @staticmethod
    def _safely(call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            _log.exception("a saga subscriber's on_error or on_completed raised")
