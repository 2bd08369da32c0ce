"""The events of a saga run: frozen values, each carrying its ``saga_id``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "CompensationFailed",
    "CompensationStarted",
    "RecoveryFailed",
    "SagaCompleted",
    "SagaEvent",
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
