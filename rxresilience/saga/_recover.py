"""``rxr.recover``: compensate the sagas a crash left unfinished in a journal."""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._arguments import require_duration, require_scheduler
from .._clock import choose_scheduler, clock_of
from .._timeout import TimeoutPolicy
from ._compensation import Compensation, CompensationErrors
from ._events import SagaEvent
from ._history import History, SagaStatus
from ._journal import SagaJournal, SagaRecord
from ._recorder import Mailbox, Recorder, Subscriber
from ._saga import Saga
from ._step import SagaStep, check_budget

__all__ = ["recover"]

_log = logging.getLogger("rxresilience")


def recover(
    journal: SagaJournal,
    sagas: Mapping[str, Saga[Any]],
    *,
    stale_after: float = 60.0,
    scheduler: abc.SchedulerBase | None = None,
    compensation_timeout: float | timedelta | TimeoutPolicy | None = 300.0,
) -> Observable[SagaEvent]:
    """Compensate every unfinished saga in ``journal``, as a stream of their events.

    A saga is taken only if its journal has not been touched for
    ``stale_after`` seconds (a running saga touches it at every step), and
    only by one recoverer: taking it is an atomic compare-and-touch in the
    journal, so two processes recovering at once never compensate the same
    saga twice. Compensations run in reverse order of the steps' success; a
    step that started but never recorded success may have happened, so it is
    compensated first if it is marked ``compensate_on_failure``, with the
    context it was given. Steps already compensated are skipped. Every
    compensation gets the same idempotency key as in the original run
    (``f"{saga_id}:{step}:compensate"``), so participants can deduplicate.
    A compensation with no budget of its own (``SagaStep(compensation_timeout=)``,
    else ``Saga(compensation_timeout=)``) gets ``compensation_timeout``: a hung
    one ends as ``CompensationFailed`` and the saga still reaches its end.

    Examples:
        >>> journal = InMemorySagaJournal()
        >>> recover(journal, {}).pipe(ops.to_list()).run()
        []

    Args:
        journal: where the sagas were recorded.
        sagas: the saga definitions, by name.
        stale_after: seconds without a journal entry after which a running saga
            counts as abandoned: above 0, at most ``LONGEST_WAIT`` (about 292
            years).
        scheduler: the clock of every claim and journal write, and where
            compensation budgets wait (default: the subscribe-time scheduler,
            else the real clock).
        compensation_timeout: the per-attempt budget of compensations that
            set none, as ``SagaStep(timeout=)`` takes; None for no budget.

    Returns:
        A cold observable: each subscription recovers what is unfinished then.

    Raises:
        ValueError: a ``stale_after`` or ``compensation_timeout`` not above 0,
            not finite, or above ``LONGEST_WAIT``.
        TypeError: a journal, sagas, scheduler, ``stale_after`` or
            ``compensation_timeout`` of the wrong type (a ``bool`` included).
    """
    if not isinstance(journal, SagaJournal):
        raise TypeError(f"journal must be a SagaJournal, got {type(journal).__name__}")
    if not isinstance(sagas, Mapping) or not all(
        isinstance(s, Saga) for s in sagas.values()
    ):
        raise TypeError("sagas must map saga names to Saga objects")
    stale = require_duration("stale_after", stale_after, positive=True)
    require_scheduler("scheduler", scheduler)
    budget = check_budget("compensation_timeout", compensation_timeout)

    def subscribe(
        observer: abc.ObserverBase[SagaEvent],
        scheduler_: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        schedulers = (scheduler_, choose_scheduler(scheduler, scheduler_))
        clock = clock_of(schedulers[1])
        pending = collections.deque(journal.unfinished())
        mailbox = Mailbox()
        subscriber = Subscriber(observer)

        def next_saga() -> None:
            while pending:
                saga_id = pending.popleft()
                try:
                    if recover_one(saga_id):
                        return
                except Exception:
                    # This saga stays running, to be recovered once the code or
                    # the journal is fixed; the others are not held up by it.
                    _log.exception("could not recover saga %r", saga_id)
            subscriber.end(None)

        def recover_one(saga_id: str) -> bool:
            """Start recovering one saga; False when there is nothing to do."""
            record = journal.load(saga_id)
            if record is None:
                return False
            saga = sagas.get(record.saga_name)
            if saga is None or not saga.steps:
                return False
            now = clock()
            if not journal.claim_stale(saga_id, now, now - stale):
                return False
            plan = saga.plan()
            queue = collections.deque(_to_compensate(saga, record))
            recorder = Recorder(plan, journal, saga_id, schedulers[1], subscriber)

            def ended(
                errors: CompensationErrors,
                not_compensated: tuple[str, ...],
                recorder: Recorder = recorder,
            ) -> None:
                failed = bool(errors or not_compensated)
                recorder.finish(SagaStatus.FAILED if failed else SagaStatus.COMPENSATED)
                # Through the mailbox: a thousand sagas that end at once
                # must not nest a thousand calls deep.
                mailbox.post(next_saga)

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


def _to_compensate(saga: Saga[Any], record: SagaRecord) -> list[tuple[SagaStep, Any]]:
    """What a crash left to undo, as the journal's history tells it: a
    compensation that started and never ended is run again."""
    history = History.fold(record.entries)
    codec = saga.plan().codec
    return [
        (step, None if context is None else codec.decode(context))
        for step, context in history.to_compensate(
            saga.plan().steps, history.compensated
        )
    ]
