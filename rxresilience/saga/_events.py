"""The events of a saga run: frozen values, each carrying its ``saga_id``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from reactivex import abc

from .._broadcast import Broadcast
from .._clock import seconds_now
from ..telemetry import _bus

__all__ = [
    "CompensationFailed",
    "CompensationStarted",
    "RecoveryFailed",
    "SagaCompleted",
    "SagaEvent",
    "SagaEventBroadcast",
    "StepCompensated",
    "StepFailed",
    "StepStarted",
    "StepSucceeded",
]


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step is about to be subscribed (the journal already says so)."""

    step: str
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class StepSucceeded:
    """A step emitted its context and completed."""

    step: str
    context: Any
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class StepFailed:
    """A step failed (after its retries), or was cancelled by disposal."""

    step: str
    error: BaseException
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class CompensationStarted:
    """A succeeded step's compensation is about to run."""

    step: str
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class StepCompensated:
    """A compensation completed."""

    step: str
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class CompensationFailed:
    """A compensation failed (after its retries)."""

    step: str
    error: BaseException
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class SagaCompleted:
    """Every step succeeded; ``context`` is the last step's."""

    context: Any
    saga_id: str = ""


@dataclass(frozen=True, slots=True)
class RecoveryFailed:
    """Recovery could not finish a saga (its context no longer decodes, its name
    is missing from ``sagas``, a compensation failed or hung until its budget).

    The saga stays running, with a ``recovery_failed`` journal entry giving
    ``reason`` (``journal.state(saga_id).problem``), and its lease given up:
    the next recoverer may take it at once. Only ``rxr.recover`` emits it.
    """

    saga_id: str
    reason: str


SagaEvent: TypeAlias = (
    StepStarted
    | StepSucceeded
    | StepFailed
    | CompensationStarted
    | StepCompensated
    | CompensationFailed
    | SagaCompleted
    | RecoveryFailed
)


_log = logging.getLogger("rxresilience")


class SagaEventBroadcast(Broadcast[SagaEvent]):
    """``Saga.events``: a :class:`Broadcast` that also reports the failures and
    compensations it carries as telemetry events (``saga.*``), named by the
    saga, timed on its scheduler's clock; its ids only ever go in attributes."""

    def __init__(self, name: str, scheduler: abc.SchedulerBase | None) -> None:
        super().__init__()
        self._name = name
        self._scheduler = scheduler

    def emit(self, value: SagaEvent) -> None:
        self.emit_timed(value, lambda: seconds_now(self._scheduler))

    def emit_timed(self, value: SagaEvent, now: Callable[[], float]) -> None:
        """:meth:`emit`, its telemetry timed on ``now`` (a run's clock: the
        subscribe-time scheduler's when the saga has none of its own)."""
        if _bus.listening:
            self._report(value, now)
        super().emit(value)

    def _report(self, event: SagaEvent, now: Callable[[], float]) -> None:
        """One ``saga.*`` telemetry event for the saga events that are one."""
        error: BaseException | None = None
        step: str | None = None
        if isinstance(event, StepFailed):
            kind, step, error = "saga.step_failed", event.step, event.error
        elif isinstance(event, StepCompensated):
            kind, step = "saga.compensated", event.step
        elif isinstance(event, CompensationFailed):
            kind, step, error = "saga.compensation_failed", event.step, event.error
        elif isinstance(event, RecoveryFailed):
            kind = "saga.recovery_failed"
        else:
            return
        attributes: dict[str, object] = {"saga_id": event.saga_id}
        if step is not None:
            attributes["step"] = step
        if isinstance(event, RecoveryFailed):
            attributes["reason"] = event.reason
        try:
            _bus.emit(
                kind,
                self._name,
                now(),
                error=error,
                attributes=attributes,
            )
        except Exception:
            _log.exception("reporting saga %r's telemetry event failed", self._name)
