"""``rxr.recover``: compensate the sagas a crash left unfinished in a journal."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._arguments import require_duration, require_scheduler
from .._clock import LONGEST_WAIT, choose_scheduler, clock_of
from .._timeout import TimeoutPolicy
from ..telemetry import _bus
from ._compensation import Compensation, CompensationErrors
from ._events import RecoveryFailed, SagaEvent
from ._group_commit import group_commit_for
from ._history import EntryKind, History, SagaStatus, describe
from ._journal import JournalEntry, SagaJournal, SagaRecord, check_ownership
from ._ownership import Ownership
from ._process_identity import owner_is_gone
from ._recorder import Mailbox, Recorder, Subscriber
from ._saga import Saga
from ._step import SagaStep, check_budget

__all__ = ["recover"]

_log = logging.getLogger("rxresilience")

#: The lease a recoverer leaves on a saga it gives up: ended before any
#: ``stale_after`` grace, so that the next recoverer may take it at once.
_GIVEN_UP = -float(LONGEST_WAIT) - 1.0

#: The lease held, for an instant, on a saga whose name is missing from ``sagas``.
_MISSING_LEASE = 30.0


def recover(
    journal: SagaJournal,
    sagas: Mapping[str, Saga[Any]],
    *,
    stale_after: float = 0.0,
    scheduler: abc.SchedulerBase | None = None,
    compensation_timeout: float | timedelta | TimeoutPolicy | None = 300.0,
) -> Observable[SagaEvent]:
    """Compensate every unfinished saga in ``journal``, as a stream of their events.

    A saga is taken only once its owner's lease has run out (plus
    ``stale_after``): a live owner renews its lease every third of
    ``Saga(lease=)`` while a step or a compensation runs, so a slow step is
    never mistaken for a dead process. An owner that ran on this machine,
    in this PID namespace, and whose process is gone (killed, crashed,
    restarted; on Linux, where its token names its boot, PID namespace, pid
    and start time) is not waited for: its sagas are taken at once. An
    owner on another machine, in another container's namespace, on another
    system, or whose process cannot be read, is waited for as above. A saga
    written by 0.1 has no lease:
    it is taken once untouched for ``stale_after`` seconds (during a rolling
    upgrade from 0.1, pass 0.1's 60). Only one recoverer takes a saga:
    taking it is an atomic compare-and-set of its owner token in the
    journal, and the recoverer then holds it as a run does (its lease
    renewed, its writes fenced), so two processes recovering at once never
    compensate the same saga twice, and a run that lost its saga to a
    recoverer writes nothing more. Compensations run in reverse order of the steps' success; a
    step that started but never recorded success may have happened, so it is
    compensated first if it is marked ``compensate_on_failure``, with the
    context it was given. Steps already compensated are skipped. Every
    compensation gets the same idempotency key as in the original run
    (``f"{saga_id}:{step}:compensate"``), so participants can deduplicate.
    A compensation with no budget of its own (``SagaStep(compensation_timeout=)``,
    else ``Saga(compensation_timeout=)``) gets ``compensation_timeout``: a hung
    one ends as ``CompensationFailed``.

    Recovery never stops early: when it cannot finish one saga (a context
    that no longer decodes, a saga name missing from ``sagas``, a
    compensation that fails or hangs until its budget), that saga stays
    ``running`` (to be recovered once the code is fixed), gets a
    ``recovery_failed`` journal entry with the reason (shown by
    ``journal.state(saga_id).problem``), its lease is given up so that the
    next recoverer may take it at once, :class:`RecoveryFailed` is emitted,
    and recovery goes on with the other sagas. Compensations that did
    succeed are journaled and are not run again. A journal that fails while
    one saga is read or taken is announced the same way (the saga stays
    running; its lease ends on its own). ``RecoveryFailed`` also goes to the
    saga's ``Saga.events`` when the saga is known.

    Examples:
        >>> journal = InMemorySagaJournal()
        >>> recover(journal, {}).pipe(ops.to_list()).run()
        []

    Args:
        journal: where the sagas were recorded.
        sagas: the saga definitions, by name.
        stale_after: extra grace, in seconds, after a saga's lease ends (for a
            saga without a lease, written by 0.1: after its last journal
            entry) before it counts as abandoned: from 0 (the default) to
            ``LONGEST_WAIT`` (about 292 years).
        scheduler: the clock of every claim and journal write, and where
            compensation budgets wait (default: the subscribe-time scheduler,
            else the real clock).
        compensation_timeout: the per-attempt budget of compensations that
            set none, as ``SagaStep(timeout=)`` takes; None for no budget.

    Returns:
        A cold observable: each subscription recovers what is unfinished then.

    Raises:
        ValueError: a ``stale_after`` below 0, or a ``compensation_timeout``
            not above 0; either not finite, or above ``LONGEST_WAIT``.
        TypeError: a journal, sagas, scheduler, ``stale_after`` or
            ``compensation_timeout`` of the wrong type (a ``bool`` included).

    Warns:
        DeprecationWarning: for a journal that does not support ownership
            (a ``SagaJournal`` written against 0.1), naming what it lacks:
            its sagas are taken as in 0.1, once untouched for
            ``stale_after`` seconds, unfenced.
    """
    if not isinstance(journal, SagaJournal):
        raise TypeError(f"journal must be a SagaJournal, got {type(journal).__name__}")
    if not isinstance(sagas, Mapping) or not all(
        isinstance(s, Saga) for s in sagas.values()
    ):
        raise TypeError("sagas must map saga names to Saga objects")
    stale = require_duration("stale_after", stale_after)
    require_scheduler("scheduler", scheduler)
    budget = check_budget("compensation_timeout", compensation_timeout)
    check_ownership(journal)

    def subscribe(
        observer: abc.ObserverBase[SagaEvent],
        scheduler_: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        schedulers = (scheduler_, choose_scheduler(scheduler, scheduler_))
        pending = collections.deque(journal.unfinished())
        mailbox = Mailbox()
        subscriber = Subscriber(observer)

        clock = clock_of(schedulers[1])

        def next_saga() -> None:
            while pending:
                saga_id = pending.popleft()
                try:
                    if recover_one(saga_id):
                        return
                except Exception as error:
                    # The journal cannot be reached, say: this saga stays
                    # running, its lease ends on its own; the others are not
                    # held up by it.
                    _log.exception("could not recover saga %r", saga_id)
                    reason = f"the journal failed: {describe(error)}"
                    report("saga.recovery_failed", "recover", saga_id, reason)
                    subscriber.on_next(RecoveryFailed(saga_id, reason))
            subscriber.end(None)

        def report(kind: str, name: str, saga_id: str, reason: str) -> None:
            """A telemetry event the saga's own ``events`` do not carry."""
            if not _bus.listening:
                return
            try:
                _bus.emit(
                    kind,
                    name,
                    clock(),
                    attributes={"saga_id": saga_id, "reason": reason},
                )
            except Exception:
                _log.exception("reporting saga %r's telemetry event failed", saga_id)

        def give_up(
            ownership: Ownership,
            saga_id: str,
            reason: str,
            publish: Callable[[SagaEvent], None] | None = None,
            name: str = "recover",
        ) -> None:
            """Leave the saga running, say why in its journal, give up its lease
            (so the next recoverer may take it at once) and tell the stream
            (and, through ``publish``, the saga's ``events``)."""
            ownership.stop()
            _log.warning("could not recover saga %r: %s", saga_id, reason)
            now = clock()
            try:
                entry = JournalEntry(EntryKind.RECOVERY_FAILED.value, "", None, reason)
                if not journal.append_owned(saga_id, entry, now, owner=ownership.owner):
                    _log.warning(
                        "saga %r was taken over while being recovered", saga_id
                    )
                    return
                journal.renew(
                    saga_id, now, owner=ownership.owner, lease_until=_GIVEN_UP
                )
            except Exception:
                _log.exception(
                    "could not record why saga %r was not recovered", saga_id
                )
            if publish is None:  # no saga to publish on: the stream alone
                report("saga.recovery_failed", name, saga_id, reason)
                publish = subscriber.on_next
            publish(RecoveryFailed(saga_id, reason))

        def recover_one(saga_id: str) -> bool:
            """Start recovering one saga; False when it is done with at once."""
            record = journal.load(saga_id)
            if record is None:
                return False
            # An owner that ran here and whose process is gone is not waited for.
            gone = record.owner if owner_is_gone(record.owner) else None
            saga = sagas.get(record.saga_name)
            if saga is None:
                # Taken (and fenced) before the journal is written to.
                holder = Ownership(
                    journal, saga_id, _MISSING_LEASE, schedulers[1], lambda: None
                )
                if holder.take(stale, gone):
                    give_up(
                        holder,
                        saga_id,
                        f"no saga named {record.saga_name!r} in sagas",
                        name=record.saga_name,
                    )
                return False
            if not saga.steps:
                return False
            plan = saga.plan()
            recorder = Recorder(
                plan,
                journal,
                saga_id,
                schedulers[1],
                subscriber,
                mailbox,
                group_commit_for(journal, schedulers[0]),
            )
            ownership = Ownership(
                journal,
                saga_id,
                plan.lease,
                schedulers[1],
                lambda: mailbox.post(recorder.taken_over),
            )
            if not ownership.take(stale, gone):
                return False
            try:  # what the former owner wrote up to the moment we took it
                taken = journal.load(saga_id)
            except Exception:
                ownership.stop()  # it stays running: another try once its lease ends
                raise
            try:
                queue = collections.deque(_to_compensate(saga, taken or record))
            except _UnreadableError as error:
                give_up(ownership, saga_id, str(error), recorder.publish)
                return False
            recorder.owner = ownership.owner

            def lost(ownership: Ownership = ownership, name: str = plan.name) -> None:
                ownership.stop()
                _log.warning("saga %r was taken over while being recovered", saga_id)
                report("saga.ownership_lost", name, saga_id, "taken over")
                mailbox.post(next_saga)

            recorder.on_lost = lost

            def ended(
                errors: CompensationErrors,
                not_compensated: tuple[str, ...],
                recorder: Recorder = recorder,
                ownership: Ownership = ownership,
            ) -> None:
                failed = bool(errors or not_compensated)

                def written(journal_error: Exception | None) -> None:
                    if recorder.lost:  # ``lost`` goes on with the next saga
                        return
                    if failed:
                        why = _why(errors, not_compensated)
                        give_up(ownership, saga_id, why, recorder.publish)
                    elif journal_error is not None:  # it stays running
                        reason = f"the journal failed: {describe(journal_error)}"
                        recorder.publish(RecoveryFailed(saga_id, reason))
                    # Through the mailbox: a thousand sagas that end at once
                    # must not nest a thousand calls deep.
                    mailbox.post(next_saga)

                if failed:  # what it recorded goes first, then why it gave up
                    recorder.commit(written)
                else:
                    ownership.stop()
                    recorder.commit(written, SagaStatus.COMPENSATED)

            def next_item(
                queue: collections.deque[tuple[SagaStep, Any]] = queue,
            ) -> tuple[SagaStep, Any] | None:
                return queue.popleft() if queue else None

            def remaining(
                queue: collections.deque[tuple[SagaStep, Any]] = queue,
            ) -> list[str]:
                return [step.name for step, _ in queue]

            Compensation(
                plan,
                recorder,
                mailbox,
                schedulers,
                next_item,
                remaining,
                ended,
                budget,
            ).start()
            return True

        mailbox.post(next_saga)
        return Disposable(subscriber.detach)

    return Observable(subscribe)


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
