"""One vocabulary: saga events, the journal entries that encode them, and their fold.

A run journals each event as an entry (``StepStarted`` as ``step_started``
with the context the step is given, ``StepSucceeded`` as ``step_succeeded``
with the context it produced, and so on); :class:`History` folds entries
back into what the saga did. The run folds its own events as they happen,
``SagaRecord.state()`` and ``recover`` fold a journal's entries: the same
function, so the three never disagree about which steps need compensating.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from ._events import (
    CompensationFailed,
    CompensationStarted,
    SagaEvent,
    StepCompensated,
    StepFailed,
    StepStarted,
    StepSucceeded,
)
from ._step import SagaStep

__all__ = ["EntryKind", "History", "SagaStatus", "describe", "kind_of", "status_of"]

_X = TypeVar("_X")


class EntryKind(enum.StrEnum):
    """The kinds of journal entries, equal to the strings of 0.1."""

    STEP_STARTED = "step_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    RECOVERY_FAILED = "recovery_failed"


class SagaStatus(enum.StrEnum):
    """What a saga's journal says of it, equal to the strings of 0.1.

    Examples:
        >>> SagaStatus.COMPLETED == "completed"
        True
    """

    RUNNING = "running"
    COMPLETED = "completed"
    COMPENSATED = "compensated"
    FAILED = "failed"


_KINDS: dict[type[Any], EntryKind] = {
    StepStarted: EntryKind.STEP_STARTED,
    StepSucceeded: EntryKind.STEP_SUCCEEDED,
    StepFailed: EntryKind.STEP_FAILED,
    CompensationStarted: EntryKind.COMPENSATION_STARTED,
    StepCompensated: EntryKind.COMPENSATED,
    CompensationFailed: EntryKind.COMPENSATION_FAILED,
}


def kind_of(event: SagaEvent) -> EntryKind | None:
    """The journal entry kind of an event (None for ``SagaCompleted``, which
    ends the saga instead of adding an entry)."""
    return _KINDS.get(type(event))


#: The entry kinds as the plain strings a journal writes (``EntryKind.value``
#: read through the enum costs a descriptor call per entry).
KIND_VALUES: dict[EntryKind, str] = {kind: kind.value for kind in EntryKind}


def status_of(value: str) -> str:
    """A journal's status as a :class:`SagaStatus` when it is one."""
    try:
        return SagaStatus(value)
    except ValueError:
        return value


def describe(error: BaseException) -> str:
    """How an error is written in a journal entry."""
    text = f"{type(error).__qualname__}: {error}"
    # A message may hold lone surrogates (os.fsdecode of undecodable bytes),
    # which no store can write, or NUL, which PostgreSQL text cannot hold:
    # escaped, the entry is written all the same (and one saga's odd message
    # never fails the other writes of its batch).
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00") if "\x00" in text else text


class History(Generic[_X]):
    """The fold of a saga's entries; ``_X`` is how contexts are held (objects in
    a run, encoded bytes in a journal)."""

    __slots__ = (
        "compensated",
        "compensation_failed",
        "compensation_started",
        "failed_step",
        "problem",
        "started",
        "succeeded",
        "unjournaled",
    )

    def __init__(self) -> None:
        self.started: dict[str, _X] = {}  # the context each step was given
        self.succeeded: dict[str, _X] = {}  # in order of completion
        # Steps that succeeded with a result the codec could not encode (the
        # journal holds no context for them): why, by step.
        self.unjournaled: dict[str, str] = {}
        self.failed_step: str | None = None
        self.compensation_started: set[str] = set()
        self.compensated: list[str] = []
        self.compensation_failed: list[str] = []
        # Why the last recovery could not finish the saga; cleared by any
        # later entry (a later recovery got further).
        self.problem: str | None = None

    @classmethod
    def fold(cls, entries: Iterable[Any]) -> History[Any]:
        """The history of journal entries (``JournalEntry`` values)."""
        history: History[Any] = cls()
        for entry in entries:
            history.apply(entry.kind, entry.step, entry.context, entry.error)
        return history

    def apply(
        self, kind: str, step: str, context: Any = None, error: str | None = None
    ) -> None:
        """Fold one entry in; kinds it does not know are skipped."""
        if kind == EntryKind.RECOVERY_FAILED:
            self.problem = error or "recovery failed"
            return
        self.problem = None
        if kind == EntryKind.STEP_STARTED:
            self.started[step] = context
        elif kind == EntryKind.STEP_SUCCEEDED:
            self.succeeded.pop(step, None)
            self.succeeded[step] = context
            if error is not None:
                self.unjournaled[step] = error
            elif self.unjournaled:
                self.unjournaled.pop(step, None)
        elif kind == EntryKind.STEP_FAILED:
            self.failed_step = step
        elif kind == EntryKind.COMPENSATION_STARTED:
            self.compensation_started.add(step)
        elif kind == EntryKind.COMPENSATED:
            self.compensated.append(step)
        elif kind == EntryKind.COMPENSATION_FAILED:
            self.compensation_failed.append(step)

    def unfinished(self) -> list[str]:
        """Steps that started and never succeeded (they may have had effects)."""
        return [name for name in self.started if name not in self.succeeded]

    def to_compensate(
        self, steps: Mapping[str, SagaStep], skip: Iterable[str]
    ) -> list[tuple[SagaStep, _X]]:
        """What is left to undo, in order: the unfinished steps marked
        ``compensate_on_failure`` (latest start first, with the context they
        were given), then the succeeded ones (latest completion first, with the
        context they produced); steps in ``skip`` or with no compensation left
        out."""
        skipped = set(skip)
        queue: list[tuple[SagaStep, _X]] = []
        for name in reversed(self.unfinished()):
            step = steps.get(name)
            if step is not None and step.compensate_on_failure:
                queue.append((step, self.started[name]))
        for name in reversed(self.succeeded):
            step = steps.get(name)
            if step is not None:
                queue.append((step, self.succeeded[name]))
        return [
            (step, context)
            for step, context in queue
            if step.compensate is not None and step.name not in skipped
        ]
