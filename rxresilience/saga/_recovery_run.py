"""One subscription of ``rxr.recover``: the unfinished sagas, taken and undone one by one.

Every journal call of a recovery (listing, loading, taking a saga, giving it
up) goes through :class:`JournalCalls`: under asyncio, with a journal whose
calls may block, on the journal writers' threads, the recovery going on, on
the loop, with the answer; elsewhere in place. The compensations themselves
run as a saga run's do, their writes batched off the loop the same way.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from reactivex import abc
from reactivex.disposable import Disposable

from .._clock import LONGEST_WAIT, clock_of
from .._timeout import AttemptBudget
from ..telemetry import _bus
from ._compensation import Compensation, CompensationErrors
from ._events import RecoveryFailed, SagaEvent
from ._group_commit import JournalCalls, group_commit_for
from ._history import EntryKind, History, SagaStatus, describe
from ._journal import JournalEntry, SagaJournal, SagaRecord
from ._mailbox import Mailbox
from ._ownership import Ownership
from ._plan import SagaPlan
from ._process_identity import owner_is_gone
from ._recorder import Recorder
from ._saga import Saga
from ._step import SagaStep
from ._subscriber import Subscriber

__all__ = ["RecoveryRun"]

_log = logging.getLogger("rxresilience")

#: The lease a recoverer leaves on a saga it gives up: ended before any
#: ``stale_after`` grace, so that the next recoverer may take it at once.
_GIVEN_UP = -float(LONGEST_WAIT) - 1.0

#: The lease held, for an instant, on a saga whose name is missing from ``sagas``.
_MISSING_LEASE = 30.0

#: What is said on the loop once a journal call made off it is answered.
Notes = list[Callable[[], None]]


class _Taken(NamedTuple):
    """A saga this recovery holds, and what is left to undo."""

    plan: SagaPlan
    recorder: Recorder
    ownership: Ownership
    queue: collections.deque[tuple[SagaStep, Any]]


class RecoveryRun:
    """Recovers, for one subscriber, what the journal lists as unfinished."""

    def __init__(
        self,
        journal: SagaJournal,
        sagas: Mapping[str, Saga[Any]],
        stale_after: float,
        budget: AttemptBudget | None,
        schedulers: tuple[abc.SchedulerBase | None, abc.SchedulerBase],
        observer: abc.ObserverBase[SagaEvent],
    ) -> None:
        self._journal = journal
        self._sagas = sagas
        self._stale = stale_after
        self._budget = budget
        self._schedulers = schedulers
        self._mailbox = Mailbox()
        self._subscriber = Subscriber(observer)
        self._clock = clock_of(schedulers[1])
        self._pending: collections.deque[str] = collections.deque()
        self._calls = JournalCalls(journal, schedulers[0], self._post_guarded)
        # The saga being compensated: should an exception tear through a
        # handler, its lease is renewed no more (it lapses, for the next
        # recoverer), as a saga run's is.
        self._holding: Ownership | None = None
        self._disposed = False
        self._mailbox.on_abandon = self._let_go_of_current

    def _let_go_of_current(self) -> None:
        if self._holding is not None:
            self._holding.stop()

    def _post_guarded(self, action: Callable[[], None]) -> None:
        """Post ``action`` (an answer from the journal) to the mailbox; an
        exception it raises ends the recovery with it (on a loop's callback
        it would reach asyncio's handler alone, the subscriber waiting for
        good)."""

        def guarded() -> None:
            try:
                action()
            except Exception as error:
                _log.exception("recovery failed")
                self._let_go_of_current()
                self._subscriber.end(error)

        self._mailbox.post(guarded)

    def start(self) -> abc.DisposableBase:
        self._mailbox.post(
            lambda: self._calls.run(self._journal.unfinished, self._listed)
        )
        return Disposable(self._dispose)

    def _dispose(self) -> None:
        """Take no further saga; one being compensated is undone to its end
        (a half-undone saga would wait a whole lease for the next recoverer)."""
        self._disposed = True
        self._subscriber.detach()

    def _listed(self, found: list[str] | Exception) -> None:
        if isinstance(found, Exception):
            self._subscriber.end(found)
            return
        if not isinstance(found, list) or not all(isinstance(i, str) for i in found):
            raise TypeError(
                f"{type(self._journal).__name__}.unfinished() must answer a list "
                f"of saga ids, got {found!r}"
            )
        self._pending.extend(found)
        self._next_saga()

    def _next_saga(self) -> None:
        if self._disposed:
            self._pending.clear()
        if not self._pending:
            self._subscriber.end(None)
            return
        saga_id = self._pending.popleft()
        self._calls.run(
            lambda: self._take(saga_id),
            lambda outcome: self._proceed(saga_id, outcome),
            dropped=_let_go,
        )

    def _proceed(
        self, saga_id: str, outcome: tuple[_Taken | None, Notes] | Exception
    ) -> None:
        """On the loop (in the mailbox): go on with what ``_take`` found."""
        if isinstance(outcome, Exception):
            # The journal cannot be reached, say: this saga stays running, its
            # lease ends on its own; the others are not held up by it.
            _log.error("could not recover saga %r", saga_id, exc_info=outcome)
            reason = f"the journal failed: {describe(outcome)}"
            self._report("saga.recovery_failed", "recover", saga_id, reason)
            self._subscriber.on_next(RecoveryFailed(saga_id, reason))
            self._next_saga()
            return
        taken, notes = outcome
        for note in notes:
            note()
        if taken is None:
            self._next_saga()
            return
        self._compensate(saga_id, taken)

    def _report(self, kind: str, name: str, saga_id: str, reason: str) -> None:
        """A telemetry event the saga's own ``events`` do not carry."""
        if not _bus.listening:
            return
        try:
            _bus.emit(
                kind,
                name,
                self._clock(),
                attributes={"saga_id": saga_id, "reason": reason},
            )
        except Exception:
            _log.exception("reporting saga %r's telemetry event failed", saga_id)

    # -- off the loop ----------------------------------------------------------------

    def _take(self, saga_id: str) -> tuple[_Taken | None, Notes]:
        """Load the saga and take it if its owner is gone; None when it is done
        with at once. Blocking: off the loop under asyncio."""
        journal = self._journal
        notes: Notes = []
        record = journal.load(saga_id)
        if record is None:
            return None, notes
        # An owner that ran here and whose process is gone is not waited for.
        gone = record.owner if owner_is_gone(record.owner) else None
        saga = self._sagas.get(record.saga_name)
        if saga is None:
            # Taken (and fenced) before the journal is written to.
            holder = Ownership(
                journal,
                saga_id,
                _MISSING_LEASE,
                self._schedulers[1],
                lambda: None,
                self._schedulers[0],
            )
            if holder.take(self._stale, gone):
                reason = f"no saga named {record.saga_name!r} in sagas"
                notes.append(
                    self._give_up(holder, saga_id, reason, name=record.saga_name)
                )
            return None, notes
        if not saga.steps:
            return None, notes
        plan = saga.plan()
        recorder = Recorder(
            plan,
            journal,
            saga_id,
            self._schedulers[1],
            self._subscriber,
            self._mailbox,
            group_commit_for(journal, self._schedulers[0]),
        )
        post = self._mailbox.post
        ownership = Ownership(
            journal,
            saga_id,
            plan.lease,
            self._schedulers[1],
            lambda: post(recorder.taken_over),
            self._schedulers[0],
        )
        if not ownership.take(self._stale, gone):
            return None, notes
        try:  # what the former owner wrote up to the moment we took it
            taken = journal.load(saga_id)
        except Exception:
            ownership.stop()  # it stays running: another try once its lease ends
            raise
        try:
            queue = collections.deque(_to_compensate(saga, taken or record))
        except _UnreadableError as error:
            notes.append(
                self._give_up(ownership, saga_id, str(error), recorder.publish)
            )
            return None, notes
        return _Taken(plan, recorder, ownership, queue), notes

    def _give_up(
        self,
        ownership: Ownership,
        saga_id: str,
        reason: str,
        publish: Callable[[SagaEvent], None] | None = None,
        name: str = "recover",
    ) -> Callable[[], None]:
        """Leave the saga running, say why in its journal and give up its lease
        (so the next recoverer may take it at once); return how to tell the
        stream (and, through ``publish``, the saga's ``events``), on the loop.
        Blocking: off the loop under asyncio."""
        ownership.stop()
        _log.warning("could not recover saga %r: %s", saga_id, reason)
        journal, now = self._journal, self._clock()
        try:
            entry = JournalEntry(EntryKind.RECOVERY_FAILED.value, "", None, reason)
            if not journal.append_owned(saga_id, entry, now, owner=ownership.owner):
                _log.warning("saga %r was taken over while being recovered", saga_id)
                return lambda: None
            journal.renew(saga_id, now, owner=ownership.owner, lease_until=_GIVEN_UP)
        except Exception:
            _log.exception("could not record why saga %r was not recovered", saga_id)

        def tell() -> None:
            said = publish
            if said is None:  # no saga to publish on: the stream alone
                self._report("saga.recovery_failed", name, saga_id, reason)
                said = self._subscriber.on_next
            said(RecoveryFailed(saga_id, reason))

        return tell

    # -- on the loop -------------------------------------------------------------------

    def _compensate(self, saga_id: str, taken: _Taken) -> None:
        plan, recorder, ownership, queue = taken
        recorder.owner = ownership.owner
        self._holding = ownership

        def lost() -> None:
            ownership.stop()
            _log.warning("saga %r was taken over while being recovered", saga_id)
            self._report("saga.ownership_lost", plan.name, saga_id, "taken over")
            self._mailbox.post(self._next_saga)

        recorder.on_lost = lost

        def ended(errors: CompensationErrors, not_compensated: tuple[str, ...]) -> None:
            failed = bool(errors or not_compensated)

            def written(journal_error: Exception | None) -> None:
                if recorder.lost:  # ``lost`` goes on with the next saga
                    return
                if failed:
                    why = _why(errors, not_compensated)
                    self._calls.run(
                        lambda: self._give_up(
                            ownership, saga_id, why, recorder.publish
                        ),
                        self._told,
                    )
                    return
                if journal_error is not None:  # it stays running
                    reason = f"the journal failed: {describe(journal_error)}"
                    recorder.publish(RecoveryFailed(saga_id, reason))
                # Through the mailbox: a thousand sagas that end at once must
                # not nest a thousand calls deep.
                self._mailbox.post(self._next_saga)

            if failed:  # what it recorded goes first, then why it gave up
                recorder.commit(written)
            else:
                ownership.stop()
                recorder.commit(written, SagaStatus.COMPENSATED)

        Compensation(
            plan,
            recorder,
            self._mailbox,
            self._schedulers,
            lambda: queue.popleft() if queue else None,
            lambda: [step.name for step, _ in queue],
            ended,
            self._budget,
        ).start()

    def _told(self, tell: Callable[[], None] | Exception) -> None:
        if not isinstance(tell, Exception):
            tell()
        self._next_saga()


def _let_go(outcome: object) -> None:
    """A saga taken for a recovery whose loop closed meanwhile: its lease is
    renewed no more (it lapses, and the next recoverer takes it)."""
    if isinstance(outcome, tuple) and isinstance(outcome[0], _Taken):
        outcome[0].ownership.stop()


class _UnreadableError(Exception):
    """A context in the journal that the saga's codec no longer decodes."""


def _to_compensate(saga: Saga[Any], record: SagaRecord) -> list[tuple[SagaStep, Any]]:
    """What a crash left to undo, as the journal's history tells it: a
    compensation that started and never ended is run again."""
    history = History.fold(record.entries)
    codec = saga.plan().codec
    queue: list[tuple[SagaStep, Any]] = []
    for step, context in history.to_compensate(saga.plan().steps, history.compensated):
        why = history.unjournaled.get(step.name)
        if why is not None and step.name in history.succeeded:
            raise _UnreadableError(
                f"step {step.name!r} succeeded, but {why}: its compensation "
                "cannot be run from the journal"
            )
        try:
            queue.append((step, None if context is None else codec.decode(context)))
        except Exception as error:
            raise _UnreadableError(
                f"the context of step {step.name!r} does not decode: {describe(error)}"
            ) from error
    return queue


def _why(errors: CompensationErrors, not_compensated: tuple[str, ...]) -> str:
    """The reason a recovery's compensations did not all succeed."""
    reasons = [
        f"compensation of {step!r} failed: {describe(error)}" for step, error in errors
    ]
    if not_compensated:
        names = ", ".join(repr(name) for name in not_compensated)
        reasons.append(f"not compensated: {names}")
    return "; ".join(reasons)
