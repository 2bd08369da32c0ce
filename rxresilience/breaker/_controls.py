"""What a ``CircuitBreaker`` offers besides admitting calls: reading, manual control."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from . import _reasons as reasons
from ._gate import Gate
from ._storage import BreakerStorage
from ._types import BreakerConfig, BreakerMetrics, CircuitState, StateChange

__all__ = ["BreakerControls"]


class BreakerControls:
    """A breaker's state, counters and settings to read, and its manual control.

    The base of :class:`~rxresilience.CircuitBreaker`, which adds the calls.
    """

    def __init__(
        self,
        *,
        name: str,
        config: BreakerConfig,
        scheduler: abc.SchedulerBase | None,
        clock: Callable[[], float],
        failure_if: Callable[[Any], bool] | None,
        storage: BreakerStorage,
        gate: Gate,
    ) -> None:
        self._name = name
        self._config = config
        self._scheduler = scheduler
        self._clock = clock
        self._failure_if = failure_if
        self._storage = storage
        self._gate = gate

    # -- what users read ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        """The breaker's clock and where its own timers run; None for the real clock."""
        return self._scheduler

    @property
    def config(self) -> BreakerConfig:
        """The validated settings, as the storage was bound with them."""
        return self._config

    def retry_after(self) -> float | None:
        """Seconds until a call would be let through as a trial, if OPEN.

        None in any other state (FORCED_OPEN included: not known)."""
        wait = self._storage.retry_after(self._clock())
        self._gate.publish_pending()
        return wait

    @property
    def failure_if(self) -> Callable[[Any], bool] | None:
        """The predicate that marks emitted values or results as failures, if any."""
        return self._failure_if

    @property
    def state(self) -> CircuitState:
        """The current state. An OPEN breaker whose timeout has passed stays OPEN
        until the next call arrives (unless ``auto_half_open``).

        With a shared storage this asks it (one round trip to Redis), and any
        transition made elsewhere since this process last looked is
        published on :attr:`state_changes`."""
        state = self._storage.observe(self._clock())
        self._gate.publish_pending()
        return state

    @property
    def state_changes(self) -> Observable[StateChange]:
        """Every transition from now on, once each, in order (no replay)."""
        return self._gate.changes

    def metrics(self) -> BreakerMetrics:
        """A frozen snapshot: totals, window rates and the state."""
        metrics = self._storage.metrics(self._clock())
        self._gate.publish_pending()
        return metrics

    def __repr__(self) -> str:
        # The state as last known: a repr never waits for a shared storage.
        state = self._storage.state.value
        return f"CircuitBreaker(name={self._name!r}, state={state!r})"

    # -- manual control --------------------------------------------------------------

    def force_open(self) -> None:
        """Refuse every call (``retry_after`` unknown) until :meth:`reset`."""
        self._force(CircuitState.FORCED_OPEN, reasons.FORCED_OPEN)

    def disable(self) -> None:
        """Let every call through, counting but never opening, until :meth:`reset`."""
        self._force(CircuitState.DISABLED, reasons.DISABLED)

    def reset(self) -> None:
        """Back to CLOSED with every counter and the window cleared; calls
        admitted before it no longer count towards opening."""
        self._force(CircuitState.CLOSED, reasons.RESET)

    def _force(self, target: CircuitState, reason: str) -> None:
        self._storage.force(target, self._clock(), reason)
        self._gate.publish()
