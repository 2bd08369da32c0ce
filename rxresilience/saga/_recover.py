"""``rxr.recover``: compensate the sagas a crash left unfinished in a journal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from reactivex import Observable, abc

from .._arguments import require_duration, require_scheduler
from .._clock import choose_scheduler
from .._timeout import TimeoutPolicy
from ._events import SagaEvent
from ._journal import SagaJournal, check_ownership
from ._recovery_run import RecoveryRun
from ._saga import Saga
from ._step import check_budget

__all__ = ["recover"]


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

    Disposing the subscription takes no further saga; a saga whose
    compensations are under way is compensated to its end (journaled, and
    published on its ``Saga.events``), as a cancelled run's are.

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
            set none: seconds for the whole attempt, or a ``TimeoutPolicy``;
            None for no budget.

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
        return RecoveryRun(journal, sagas, stale, budget, schedulers, observer).start()

    return Observable(subscribe)
