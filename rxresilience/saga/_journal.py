"""Saga journals: what a saga did, step by step, so that a crash can be undone."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import SagaError
from ._history import EntryKind, History, SagaStatus, status_of

__all__ = [
    "JournalEntry",
    "JournalWrite",
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
RECOVERY_FAILED = EntryKind.RECOVERY_FAILED


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of a saga's journal.

    ``kind`` is one of :class:`EntryKind` (plain strings such as
    ``"step_started"`` work too); ``context`` is the encoded context a step
    was given (``step_started``) or produced (``step_succeeded``); ``error``
    describes a failure (for ``recovery_failed``, written by ``rxr.recover``
    when it cannot finish the saga: the reason, with an empty ``step``).
    """

    kind: str
    step: str
    context: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JournalWrite:
    """One saga's share of a batch of journal writes (:meth:`SagaJournal.write_owned`).

    Applied in this order, all or nothing, and only while ``owner`` holds the
    saga: with ``begin`` (the saga's name), first create the saga, running
    and held by ``owner`` until ``lease_until`` (refused if the id is in the
    journal already); then append ``entries``; then, with ``status``, mark
    the saga's end. ``now`` is when it happens (the saga's ``touched``).

    Examples:
        >>> journal = InMemorySagaJournal()
        >>> started = JournalEntry("step_started", "reserve", b'"o-1"')
        >>> journal.write_owned([
        ...     JournalWrite("s-1", "me", 0.0, (started,), begin="order", lease_until=30.0)
        ... ])
        [True]
        >>> journal.write_owned([JournalWrite("s-1", "someone else", 1.0, status="failed")])
        [False]
    """

    saga_id: str
    owner: str
    now: float
    entries: tuple[JournalEntry, ...] = ()
    begin: str | None = None
    lease_until: float | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class SagaRecord:
    """Everything a journal holds about one saga.

    ``owner`` and ``lease_until`` say who holds a running saga and until
    when; both are None for a saga written by 0.1 (or by ``begin``).
    """

    saga_id: str
    saga_name: str
    status: str
    touched: float
    entries: tuple[JournalEntry, ...] = field(default_factory=tuple)
    owner: str | None = None
    lease_until: float | None = None

    def state(self) -> SagaState:
        """The saga's state: its entries folded as a run folds its events."""
        history = History.fold(self.entries)
        status = status_of(self.status)
        return SagaState(
            saga_id=self.saga_id,
            saga_name=self.saga_name,
            status=status,
            completed_steps=tuple(history.succeeded),
            compensated_steps=tuple(history.compensated),
            failed_step=history.failed_step,
            touched=self.touched,
            problem=history.problem if status == SagaStatus.RUNNING else None,
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
        problem: why the last recovery could not finish this running saga
            (its ``recovery_failed`` entry); None once a later recovery got
            further, and for a saga that ended.
    """

    saga_id: str
    saga_name: str
    status: str
    completed_steps: tuple[str, ...]
    compensated_steps: tuple[str, ...]
    failed_step: str | None
    touched: float
    problem: str | None = None


#: What a journal must implement for a saga to be owned and fenced in it.
OWNERSHIP_METHODS = ("begin_owned", "append_owned", "finish_owned", "take", "renew")


class SagaJournal(ABC):
    """Where sagas record their progress. Every method is atomic.

    A public base class. The abstract methods are those of 0.1. The methods
    of ownership (new in 0.2: :meth:`begin_owned`, :meth:`append_owned`,
    :meth:`finish_owned`, :meth:`take`, :meth:`renew`) have defaults that
    raise ``NotImplementedError``: a journal written against 0.1 keeps
    working as it did in 0.1 (unfenced; ``Saga.execute`` and ``rxr.recover``
    warn of it with a ``DeprecationWarning`` naming the methods it lacks).

    Ownership: the owner of a running saga (a run, or a recoverer) is a
    token written with the saga, beside ``lease_until``, the time its lease
    ends. Every ``*_owned`` write and :meth:`renew` is a compare-and-set on
    the token: it writes only while the saga is held by ``owner``, and
    answers False (writing nothing) otherwise. Raising means the journal
    could not be reached (the write did not happen, or its outcome is
    unknown).
    """

    #: Whether a write may wait (on a disk, a network, another process's
    #: lock). Under asyncio such a journal is written off the event loop, by
    #: a group commit; one whose writes never wait (``InMemorySagaJournal``)
    #: is written in place, on the loop.
    writes_may_block: bool = True

    @abstractmethod
    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        """Record a new running saga, owned by nobody; an id already in the
        journal is an error."""

    @abstractmethod
    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        """Add an entry and touch the saga (whoever holds it)."""

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

        Two recoverers racing for one saga: exactly one gets True. The claim
        of 0.1: it sets no owner, so it fences nobody; ``rxr.recover`` uses
        :meth:`take`.
        """

    # -- ownership (0.2) ---------------------------------------------------------------

    def begin_owned(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
    ) -> None:
        """Record a new running saga held by ``owner`` until ``lease_until``; an
        id already in the journal is an error."""
        raise NotImplementedError(self._lacks("begin_owned"))

    def append_owned(
        self, saga_id: str, entry: JournalEntry, now: float, *, owner: str
    ) -> bool:
        """Add an entry and touch the saga if ``owner`` holds it; else write
        nothing and return False."""
        raise NotImplementedError(self._lacks("append_owned"))

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        """Mark the saga's end if ``owner`` holds it; else write nothing and
        return False."""
        raise NotImplementedError(self._lacks("finish_owned"))

    def take(
        self,
        saga_id: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
        stale_before: float,
        gone_owner: str | None = None,
    ) -> bool:
        """Take a running saga whose owner is gone: True if ``owner`` now holds it.

        A saga is gone when its ``lease_until`` is before ``stale_before``;
        one without a lease (written by 0.1) when it was last touched before
        ``stale_before``; and, when ``gone_owner`` is given, while it is still
        held by ``gone_owner`` (an owner whose process ``rxr.recover`` knows
        to be gone), whatever its lease. Two recoverers racing for one saga:
        exactly one gets True; the former owner's writes are refused from
        then on.
        """
        raise NotImplementedError(self._lacks("take"))

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        """Extend ``owner``'s lease of a running saga to ``lease_until`` (and touch
        it); False, writing nothing, when ``owner`` no longer holds it."""
        raise NotImplementedError(self._lacks("renew"))

    def write_owned(self, writes: Sequence[JournalWrite]) -> list[bool]:
        """Apply several sagas' writes, each fenced on its own; one answer per write.

        A run batches what it writes between two waits (a step's success with
        the next step's start, the last one with the saga's end), and under
        asyncio several runs' batches go into one call (group commit): a
        journal that can should apply them in one transaction. Each write is
        checked on its own: True when it was applied, False (nothing of it
        written) when ``owner`` does not hold that saga, or, for a ``begin``,
        when the id is in the journal already; one saga's False never fails
        another's write. Raising means none of the outcomes is known.

        The default applies each write with :meth:`begin_owned`,
        :meth:`append_owned` and :meth:`finish_owned`, one call after the
        other (each write is then not atomic: a crash may keep its first
        entries only, which recovery reads as it reads any crash).
        """
        done: list[bool] = []
        for write in writes:
            done.append(self._write_one(write))
        return done

    def _write_one(self, write: JournalWrite) -> bool:
        if write.begin is not None:
            try:
                self.begin_owned(
                    write.saga_id,
                    write.begin,
                    write.now,
                    owner=write.owner,
                    lease_until=lease_of(write),
                )
            except SagaError:
                return False  # the id is in the journal already
        for entry in write.entries:
            if not self.append_owned(
                write.saga_id, entry, write.now, owner=write.owner
            ):
                return False
        if write.status is not None:
            return self.finish_owned(
                write.saga_id, write.status, write.now, owner=write.owner
            )
        return True

    def _lacks(self, method: str) -> str:
        return f"{type(self).__name__} does not implement {method}() (saga ownership)"

    def state(self, saga_id: str) -> SagaState | None:
        """What the saga is doing, or None if the journal never heard of it."""
        record = self.load(saga_id)
        return None if record is None else record.state()

    def close(self) -> None:  # noqa: B027 - optional for journals without resources
        """Release resources; the default does nothing."""


def lease_of(write: JournalWrite) -> float:
    """The lease a write that begins a saga gives its owner."""
    if write.lease_until is None:
        raise ValueError(
            f"a write that begins saga {write.saga_id!r} needs lease_until"
        )
    return write.lease_until


def missing_ownership(journal: SagaJournal) -> list[str]:
    """The ownership methods ``journal``'s class leaves to the base class."""
    return list(_missing(type(journal)))


@functools.lru_cache(maxsize=64)
def _missing(kind: type[SagaJournal]) -> tuple[str, ...]:
    # Per class, once: every run of a saga checks its journal.
    return tuple(
        name
        for name in OWNERSHIP_METHODS
        if getattr(kind, name) is getattr(SagaJournal, name)
    )


def check_ownership(journal: SagaJournal) -> bool:
    """True when ``journal`` supports ownership; else a ``TypeError`` naming
    what it lacks.

    Without ownership a saga cannot be fenced: a recoverer could compensate
    it while its owner runs on (0.1's flaw), so such a journal is refused by
    ``Saga.execute`` and ``recover``. A journal class written for 0.1 still
    loads, reads and lists sagas (``load``, ``state``, ``unfinished``).
    """
    missing = missing_ownership(journal)
    if missing:
        names = ", ".join(f"{name}()" for name in missing)
        raise TypeError(
            f"journal {type(journal).__name__} does not support saga ownership: it "
            f"lacks {names} (see SagaJournal); implement them so that a saga has "
            f"one owner at a time"
        )
    return True
