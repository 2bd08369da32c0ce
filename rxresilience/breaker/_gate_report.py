"""What a breaker tells telemetry: ``breaker.refused``, ``.succeeded``, ``.failed``,
``.state_changed``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import CircuitOpenError
from ..telemetry import _bus
from ._machine import Outcome, StateChange
from ._permit import Permit
from ._storage import BreakerStorage

__all__ = ["GateReport"]

_log = logging.getLogger("rxresilience")


class GateReport:
    """The telemetry events of one breaker, made only while someone listens.

    The gate asks ``_bus.listening`` itself before calling (the calls sit on
    the hot path). Nothing here raises into the breaker: a failure is logged
    to ``"rxresilience"``.
    """

    __slots__ = ("_clock", "_name", "_storage")

    def __init__(
        self, name: str, clock: Callable[[], float], storage: BreakerStorage
    ) -> None:
        self._name = name
        self._clock = clock
        self._storage = storage  # read for the state a call ended in

    def refused(self, refusal: CircuitOpenError) -> None:
        try:
            _bus.emit(
                "breaker.refused",
                self._name,
                self._clock(),
                error=refusal,
                attributes={
                    "state": refusal.state,
                    "retry_after": refusal.retry_after,
                },
                context=_bus.trace_context(),
            )
        except Exception:
            _log.exception("reporting breaker %r's refusal failed", self._name)

    def settled(
        self,
        permit: Permit,
        outcome: Outcome,
        now: float,
        error: BaseException | None,
    ) -> None:
        """A call ended as a success or a failure (``TIMED_OUT`` is a failure)."""
        try:
            _bus.emit(
                "breaker.succeeded" if outcome is Outcome.SUCCESS else "breaker.failed",
                self._name,
                now,
                duration=now - permit.started_at,
                error=error,
                attributes={
                    "state": self._storage.state.value,
                    "timed_out": outcome is Outcome.TIMED_OUT,
                },
            )
        except Exception:
            _log.exception("reporting breaker %r's call failed", self._name)

    def changed(self, change: StateChange) -> None:
        try:
            _bus.emit(
                "breaker.state_changed",
                self._name,
                change.at,
                attributes={
                    "previous": change.previous.value,
                    "state": change.current.value,
                    "reason": change.reason,
                    "local": change.local,
                },
            )
        except Exception:
            _log.exception("reporting breaker %r's transition failed", self._name)
