"""Where a circuit breaker's state lives: a thin interface over the machine.

The in-memory storage runs :class:`~rxresilience.breaker._machine.CircuitMachine`
under a lock, which is held only for the machine's own arithmetic, never
while a protected call runs. A storage shared by a fleet of processes (Redis)
implements the same five operations atomically on its side.
"""

from __future__ import annotations

import dataclasses
import threading
from abc import ABC, abstractmethod
from typing import Any

from .._clock import RESOLUTION
from ._machine import (
    BreakerConfig,
    BreakerMetrics,
    ChangeSink,
    CircuitMachine,
    CircuitState,
    Outcome,
    Refusal,
)
from ._permit import Permit

__all__ = ["BreakerStorage", "InMemoryBreakerStorage"]


class BreakerStorage(ABC):
    """The storage interface of a circuit breaker's state.

    Implement it to keep the state elsewhere (the in-memory and Redis
    storages are the two shipped): every type it speaks is public —
    :class:`BreakerConfig` (the settings it is bound with),
    :class:`ChangeSink` (where transitions go), :class:`Permit` (what
    ``acquire`` hands out for an admitted call, and ``record`` settles),
    :class:`Refusal` (what ``acquire`` answers instead),
    :class:`Outcome` (how a call ended), :class:`StateChange` (what the sink
    is given) and :class:`BreakerMetrics` (what ``metrics`` answers), with
    ``CountWindow.accumulator()`` / ``TimeWindow.accumulator()`` for the
    rates. The rules it must follow are those
    of the in-memory :class:`~rxresilience.breaker._machine.CircuitMachine`;
    ``tests/breaker/test_storage.py`` is a contract test to run against a
    new storage. Times (``now``) are seconds on the breaker's clock.

    A storage that can lose its state (a shared store deleted, flushed or
    restarted empty) must not let a permit admitted before the loss change
    the state after it, even when its generation comes round again: the
    Redis storage's permits carry the *epoch* of the state that admitted
    them (a ``Permit`` subclass may carry what it needs).

    A storage belongs to one breaker, which binds it once with its settings
    and a sink for transitions. Implementations pass every transition to the
    sink, in order, *while* their update is still atomic (the sink only
    queues them), so transitions are published in the order they happened,
    whichever threads made them.
    """

    @abstractmethod
    def bind(self, config: BreakerConfig, sink: ChangeSink) -> None:
        """Attach to a breaker; a storage can be bound only once."""

    @property
    @abstractmethod
    def state(self) -> CircuitState:
        """The current state, as last known."""

    def observe(self, now: float) -> CircuitState:
        """The current state, asking the shared store if there is one."""
        return self.state

    @abstractmethod
    def acquire(self, now: float) -> Permit | Refusal:
        """Admit a call (a permit) or refuse it."""

    @abstractmethod
    def record(self, permit: Permit, outcome: Outcome, now: float) -> None:
        """Settle a permit with the call's outcome (a second settle is a no-op)."""

    @abstractmethod
    def half_open_if_due(self, now: float) -> None:
        """Move OPEN to HALF_OPEN if the reset timeout has elapsed."""

    @abstractmethod
    def force(self, target: CircuitState, now: float, reason: str) -> None:
        """Move to FORCED_OPEN, DISABLED, or (a reset) CLOSED."""

    @abstractmethod
    def retry_after(self, now: float) -> float | None:
        """Seconds until a trial is allowed, if the breaker is OPEN."""

    @abstractmethod
    def metrics(self, now: float) -> BreakerMetrics:
        """A frozen snapshot of the counters."""


class InMemoryBreakerStorage(BreakerStorage):
    """The default storage: the state machine in this process, under a lock."""

    __slots__ = ("_lock", "_machine", "_refusal_lock", "_refused")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._machine: CircuitMachine = _UNBOUND
        # Refusals while OPEN are counted under a lock of their own, so that
        # refusing never waits for the machine's lock.
        self._refusal_lock = threading.Lock()
        self._refused = 0

    def bind(self, config: BreakerConfig, sink: ChangeSink) -> None:
        with self._lock:
            if self._machine is not _UNBOUND:
                raise ValueError("storage is already bound to a circuit breaker")
            self._machine = CircuitMachine(config, sink)

    @property
    def state(self) -> CircuitState:
        return self._machine.state

    def acquire(self, now: float) -> Permit | Refusal:
        machine = self._machine
        # Admission while CLOSED or DISABLED changes nothing, so it needs no lock.
        # The generation is read before the state: if a transition slips in
        # between, either the state read sees it (and we take the lock) or the
        # permit carries an older generation, whose outcome then only counts in
        # the totals. Either way the call was admitted when the breaker was closed.
        generation = machine.generation
        state = machine.state
        if state is _CLOSED or state is _DISABLED:
            return Permit(generation, False, now)
        if state is _OPEN:
            # A refusal while OPEN changes nothing either but a count, kept
            # under a lock of its own. opened_at is read after the state, so
            # it belongs to this opening or a later one.
            wait = machine.opened_at + machine.reset_timeout - now
            if wait > RESOLUTION:
                with self._refusal_lock:
                    self._refused += 1
                return Refusal(wait, _OPEN)
        with self._lock:
            return machine.acquire(now)

    def record(self, permit: Permit, outcome: Outcome, now: float) -> None:
        with self._lock:
            self._machine.record(permit, outcome, now)

    def half_open_if_due(self, now: float) -> None:
        with self._lock:
            self._machine.half_open_if_due(now)

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        with self._lock:
            if target is _CLOSED:
                with self._refusal_lock:
                    self._refused = 0
            self._machine.force(target, now, reason)

    def retry_after(self, now: float) -> float | None:
        with self._lock:
            return self._machine.retry_after(now)

    def metrics(self, now: float) -> BreakerMetrics:
        with self._lock:
            metrics = self._machine.metrics(now)
            with self._refusal_lock:
                refused = self._refused
        return dataclasses.replace(metrics, rejected=metrics.rejected + refused)


_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_DISABLED = CircuitState.DISABLED


class _UnboundMachine(CircuitMachine):
    """Stands in until ``bind``: every use says the storage is not bound."""

    def __init__(self) -> None:
        pass

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (doctest, inspect) may look
            return object.__getattribute__(self, name)
        raise RuntimeError("storage is not bound to a circuit breaker")


_UNBOUND: CircuitMachine = _UnboundMachine()
