"""A breaker's state changes, published after the storage's atomic update."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable, SerialDisposable

from .._broadcast import Broadcast
from .._clock import choose_scheduler
from ..telemetry import _bus
from ._gate_report import GateReport
from ._machine import CircuitState, StateChange
from ._storage import BreakerStorage

__all__ = ["Transitions"]

_log = logging.getLogger("rxresilience")


class Transitions:
    """The queue of transitions a storage made, and their publication.

    The storage appends to :attr:`outbox` while its update is atomic (so no
    subscriber runs under its lock); :meth:`publish` then emits them in order,
    from one thread at a time, with no lock held while a subscriber runs. With
    ``auto_half_open`` each opening arms a timer that moves the breaker to
    HALF_OPEN when ``reset_timeout`` has passed.
    """

    __slots__ = (
        "_auto_half_open",
        "_clock",
        "_half_open_timer",
        "_lock",
        "_name",
        "_publishing",
        "_report",
        "_reset_timeout",
        "_scheduler",
        "_storage",
        "changes",
        "outbox",
    )

    def __init__(
        self,
        *,
        name: str,
        storage: BreakerStorage,
        clock: Callable[[], float],
        scheduler: abc.SchedulerBase | None,
        reset_timeout: float,
        auto_half_open: bool,
        report: GateReport,
    ) -> None:
        self._name = name
        self._storage = storage
        self._clock = clock
        self._scheduler = scheduler
        self._reset_timeout = reset_timeout
        self._auto_half_open = auto_half_open
        self._report = report
        self.changes: Broadcast[StateChange] = Broadcast()
        self.outbox: collections.deque[StateChange] = collections.deque()
        self._lock = threading.Lock()
        self._publishing = False
        self._half_open_timer = SerialDisposable()

    def publish(self) -> None:
        """Emit queued transitions in order, from one thread at a time, lock-free."""
        with self._lock:
            if self._publishing:
                return  # the thread publishing now will emit ours too
            self._publishing = True
        try:
            while True:
                with self._lock:
                    if not self.outbox:
                        self._publishing = False
                        return
                    change = self.outbox.popleft()
                if self._auto_half_open:
                    self._arm_half_open(change)
                if _bus.listening:
                    self._report.changed(change)
                self.changes.emit(change)
        except BaseException:
            # Whatever failed, the next publish must not find the flag stuck.
            with self._lock:
                self._publishing = False
            raise

    def _arm_half_open(self, change: StateChange) -> None:
        """Half-open on time after an opening; a timer that cannot be armed
        (a closed loop) leaves the move to the next call, which finds it due."""
        try:
            if change.current is CircuitState.OPEN:
                self._half_open_timer.disposable = choose_scheduler(
                    self._scheduler, None
                ).schedule_relative(self._reset_timeout, self._on_half_open_timer)
            elif change.previous is CircuitState.OPEN:
                self._half_open_timer.disposable = Disposable()
        except Exception:
            _log.exception("breaker %r could not arm its half-open timer", self._name)

    def _on_half_open_timer(self, _scheduler: abc.SchedulerBase, _state: Any) -> None:
        try:
            self._storage.half_open_if_due(self._clock())
        except Exception:  # the next call finds the move due and makes it
            _log.exception("breaker %r could not move to half-open", self._name)
        self.publish()
