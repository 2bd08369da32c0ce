"""A run's mailbox: its handlers one at a time, on a flat stack, whatever
thread a step or a compensation notifies on."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

__all__ = ["Mailbox"]

_log = logging.getLogger("rxresilience")


class Mailbox:
    """Runs posted handlers one after the other: never two at once, never nested.

    The thread that posts into an idle mailbox runs the handlers, its own and
    those other threads post meanwhile, until none is left. A handler that
    raises (a KeyboardInterrupt out of a subscriber, say) leaves its run
    half-way: ``on_abandon`` is called, then the exception goes on.
    """

    __slots__ = ("_busy", "_lock", "_queue", "on_abandon")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._busy = False
        self.on_abandon: Callable[[], None] = _nothing

    def post(self, handler: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(handler)
            if self._busy:
                return
            self._busy = True
        while True:
            with self._lock:
                if not self._queue:
                    self._busy = False
                    return
                handler = self._queue.popleft()
            try:
                handler()
            except BaseException:
                with self._lock:
                    self._busy = False
                try:
                    self.on_abandon()
                except Exception:
                    _log.exception("abandoning a saga run failed")
                raise


def _nothing() -> None:
    return None
