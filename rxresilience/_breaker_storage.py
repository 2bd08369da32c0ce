"""Where a circuit breaker's state lives: a thin interface over the machine.

The in-memory storage runs :class:`~rxresilience._breaker_machine.CircuitMachine`
under a lock, which is held only for the machine's own arithmetic, never
while a protected call runs. A storage shared by a fleet of processes (Redis)
implements the same five operations atomically on its side.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple

from ._breaker_machine import (
    BreakerConfig,
    BreakerMetrics,
    CircuitMachine,
    CircuitState,
    Outcome,
    StateChange,
    Ticket,
)

__all__ = ["Admission", "BreakerStorage", "InMemoryBreakerStorage"]

ChangeSink = Callable[[list[StateChange]], None]


class Admission(NamedTuple):
    """The answer to one request for a permit."""

    ticket: Ticket | None
    retry_after: float | None
    state: CircuitState


class BreakerStorage(ABC):
    """The storage interface of a circuit breaker's state.

    A storage belongs to one breaker, which binds it once with its settings
    and a sink for transitions. Implementations call the sink with every
    transition, in order, *while* their update is still atomic (the sink
    only queues them), so transitions are published in the order they
    happened, whichever threads made them.
    """

    @abstractmethod
    def bind(self, config: BreakerConfig, sink: ChangeSink) -> None:
        """Attach to a breaker; a storage can be bound only once."""

    @property
    @abstractmethod
    def state(self) -> CircuitState:
        """The current state, as last known."""

    @abstractmethod
    def acquire(self, now: float) -> Admission:
        """Admit a call (a ticket) or refuse it."""

    @abstractmethod
    def record(self, ticket: Ticket, outcome: Outcome, now: float) -> None:
        """Settle a ticket with the call's outcome (a second settle is a no-op)."""

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

    __slots__ = ("_lock", "_machine", "_sink")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._machine: CircuitMachine | None = None
        self._sink: ChangeSink | None = None

    def bind(self, config: BreakerConfig, sink: ChangeSink) -> None:
        with self._lock:
            if self._machine is not None:
                raise ValueError("storage is already bound to a circuit breaker")
            self._machine = CircuitMachine(config)
            self._sink = sink

    def _bound(self) -> tuple[CircuitMachine, ChangeSink]:
        machine, sink = self._machine, self._sink
        if machine is None or sink is None:
            raise RuntimeError("storage is not bound to a circuit breaker")
        return machine, sink

    @property
    def state(self) -> CircuitState:
        return self._bound()[0].state

    def acquire(self, now: float) -> Admission:
        machine, sink = self._bound()
        with self._lock:
            ticket, retry_after, changes = machine.acquire(now)
            if changes:
                sink(changes)
            return Admission(ticket, retry_after, machine.state)

    def record(self, ticket: Ticket, outcome: Outcome, now: float) -> None:
        machine, sink = self._bound()
        with self._lock:
            changes = machine.record(ticket, outcome, now)
            if changes:
                sink(changes)

    def half_open_if_due(self, now: float) -> None:
        machine, sink = self._bound()
        with self._lock:
            changes = machine.half_open_if_due(now)
            if changes:
                sink(changes)

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        machine, sink = self._bound()
        with self._lock:
            changes = machine.force(target, now, reason)
            if changes:
                sink(changes)

    def retry_after(self, now: float) -> float | None:
        machine, _ = self._bound()
        with self._lock:
            return machine.retry_after(now)

    def metrics(self, now: float) -> BreakerMetrics:
        machine, _ = self._bound()
        with self._lock:
            return machine.metrics(now)
