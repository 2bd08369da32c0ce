"""Saga journals: what a saga did, step by step, so that a crash can be undone."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..errors import SagaError
from ._history import EntryKind, History, SagaStatus, status_of

__all__ = [
    "InMemorySagaJournal",
    "JournalEntry",
    "SagaJournal",
    "SagaRecord",
    "SagaState",
    "SagaStatus",
]

# The kinds of 0.1, by their old names.
STEP_STARTED = EntryKind.STEP_STARTED
STEP_SUCCEEDED = EntryKind.STEP_SUCCEEDED
STEP_FAILED = EntryKind.STEP_FAILED
COMPENSATION_STARTED = EntryKind.COMPENSATION_STARTED
COMPENSATED = EntryKind.COMPENSATED
COMPENSATION_FAILED = EntryKind.COMPENSATION_FAILED


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of a saga's journal.

    ``kind`` is one of :class:`EntryKind` (plain strings such as
    ``"step_started"`` work too); ``context`` is the encoded context a step
    was given (``step_started``) or produced (``step_succeeded``); ``error``
    describes a failure.
    """

    kind: str
    step: str
    context: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SagaRecord:
    """Everything a journal holds about one saga."""

    saga_id: str
    saga_name: str
    status: str
    touched: float
    entries: tuple[JournalEntry, ...] = field(default_factory=tuple)

    def state(self) -> SagaState:
        """The saga's state: its entries folded as a run folds its events."""
        history = History.fold(self.entries)
        return SagaState(
            saga_id=self.saga_id,
            saga_name=self.saga_name,
            status=status_of(self.status),
            completed_steps=tuple(history.succeeded),
            compensated_steps=tuple(history.compensated),
            failed_step=history.failed_step,
            touched=self.touched,
        )


@dataclass(frozen=True, slots=True)
class SagaState:
    """What a saga is doing, as its journal tells it.

    Attributes:
        status: a :class:`SagaStatus`, equal to its string: ``"running"``,
            ``"completed"``, ``"compensated"`` (a step failed and every needed
            compensation succeeded) or ``"failed"`` (a compensation failed or
            never ran). A status this version does not know stays a string.
        completed_steps: steps that succeeded, in order of completion.
        compensated_steps: steps compensated, in order.
        failed_step: the step that failed, if one did.
        touched: when the journal last heard of the saga (epoch seconds).
    """

    saga_id: str
    saga_name: str
    status: str
    completed_steps: tuple[str, ...]
    compensated_steps: tuple[str, ...]
    failed_step: str | None
    touched: float


class SagaJournal(ABC):
    """Where sagas record their progress. Every method is atomic."""

    @abstractmethod
    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        """Record a new running saga; an id already in the journal is an error."""

    @abstractmethod
    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        """Add an entry and touch the saga."""

    @abstractmethod
    def finish(self, saga_id: str, status: str, now: float) -> None:
        """Mark the saga ``completed``, ``compensated`` or ``failed`` (given as a
        :class:`SagaStatus`, a ``str``)."""

    @abstractmethod
    def load(self, saga_id: str) -> SagaRecord | None:
        """The saga's record, or None."""

    @abstractmethod
    def unfinished(self) -> list[str]:
        """Ids of the sagas still marked running, oldest first."""

    @abstractmethod
    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        """Touch a running saga untouched since ``stale_before``: True if we won it.

        Two recoverers racing for one saga: exactly one gets True.
        """

    def state(self, saga_id: str) -> SagaState | None:
        """What the saga is doing, or None if the journal never heard of it."""
        record = self.load(saga_id)
        return None if record is None else record.state()

    def close(self) -> None:  # noqa: B027 - optional for journals without resources
        """Release resources; the default does nothing."""


class InMemorySagaJournal(SagaJournal):
    """A journal in this process's memory (for tests and for sagas that need no
    recovery across restarts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sagas: dict[str, tuple[str, str, float]] = {}
        self._entries: dict[str, list[JournalEntry]] = {}

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        with self._lock:
            if saga_id in self._sagas:
                raise SagaError(f"saga id {saga_id!r} is already in the journal")
            self._sagas[saga_id] = (saga_name, "running", now)
            self._entries[saga_id] = []

    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        with self._lock:
            name, status, _ = self._sagas[saga_id]
            self._sagas[saga_id] = (name, status, now)
            self._entries[saga_id].append(entry)

    def finish(self, saga_id: str, status: str, now: float) -> None:
        with self._lock:
            name, _, _ = self._sagas[saga_id]
            self._sagas[saga_id] = (name, status, now)

    def load(self, saga_id: str) -> SagaRecord | None:
        with self._lock:
            found = self._sagas.get(saga_id)
            if found is None:
                return None
            name, status, touched = found
            return SagaRecord(
                saga_id, name, status, touched, tuple(self._entries[saga_id])
            )

    def unfinished(self) -> list[str]:
        with self._lock:
            running = [
                (touched, saga_id)
                for saga_id, (_, status, touched) in self._sagas.items()
                if status == "running"
            ]
        return [saga_id for _, saga_id in sorted(running)]

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        with self._lock:
            found = self._sagas.get(saga_id)
            if found is None:
                return False
            name, status, touched = found
            if status != "running" or touched >= stale_before:
                return False
            self._sagas[saga_id] = (name, status, now)
            return True
