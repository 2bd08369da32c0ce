"""``rxr.recover``: compensate the sagas a crash left unfinished in a journal."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._arguments import require_duration
from .._clock import choose_scheduler, clock_of
from ..errors import SagaError
from ._events import SagaEvent
from ._journal import (
    COMPENSATED,
    STEP_FAILED,
    STEP_STARTED,
    STEP_SUCCEEDED,
    SagaJournal,
    SagaRecord,
)
from ._saga import Saga, _SagaRun
from ._step import SagaStep

__all__ = ["recover"]


def recover(
    journal: SagaJournal,
    sagas: Mapping[str, Saga[Any]],
    *,
    stale_after: float = 60.0,
    scheduler: abc.SchedulerBase | None = None,
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
        scheduler: the clock (default: the subscribe-time scheduler, else the
            real clock).

    Returns:
        A cold observable: each subscription recovers what is unfinished then.

    Raises:
        ValueError: a ``stale_after`` not above 0, not finite, or above
            ``LONGEST_WAIT``.
        TypeError: a journal, sagas or ``stale_after`` of the wrong type (a
            ``bool`` included).
    """
    if not isinstance(journal, SagaJournal):
        raise TypeError(f"journal must be a SagaJournal, got {type(journal).__name__}")
    if not isinstance(sagas, Mapping) or not all(
        isinstance(s, Saga) for s in sagas.values()
    ):
        raise TypeError("sagas must map saga names to Saga objects")
    stale = require_duration("stale_after", stale_after, positive=True)

    def subscribe(
        observer: abc.ObserverBase[SagaEvent],
        scheduler_: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        time_scheduler = choose_scheduler(scheduler, scheduler_)
        clock = clock_of(time_scheduler)
        pending = collections.deque(journal.unfinished())
        detached = [False]

        def forward(event: SagaEvent) -> None:
            if not detached[0]:
                observer.on_next(event)

        def next_saga(_: BaseException | None = None) -> None:
            while pending:
                saga_id = pending.popleft()
                record = journal.load(saga_id)
                if record is None:
                    continue
                saga = sagas.get(record.saga_name)
                now = clock()
                if saga is None or not journal.claim_stale(saga_id, now, now - stale):
                    continue
                relay = _Relay(forward)
                run = _SagaRun(
                    saga, journal, saga_id, scheduler_, time_scheduler, relay, next_saga
                )
                failed_step, queue = _compensation_plan(saga, record, run)
                run.compensate(
                    failed_step,
                    SagaError(f"saga {saga_id!r} recovered from its journal"),
                    queue,
                )
                return
            if not detached[0]:
                observer.on_completed()

        next_saga()

        def dispose() -> None:
            detached[0] = True

        return Disposable(dispose)

    return Observable(subscribe)


class _Relay(abc.ObserverBase[SagaEvent]):
    """Passes a recovered saga's events on; its end moves on to the next saga."""

    def __init__(self, forward: Any) -> None:
        self._forward = forward

    def on_next(self, value: SagaEvent) -> None:
        self._forward(value)

    def on_error(self, error: Exception) -> None:
        return None  # reported as events; the recovery goes on

    def on_completed(self) -> None:
        return None


def _compensation_plan(
    saga: Saga[Any], record: SagaRecord, run: _SagaRun
) -> tuple[str, list[tuple[SagaStep, Any]]]:
    codec = saga.codec()
    steps = saga.steps
    inputs: dict[str, bytes | None] = {}
    succeeded: list[tuple[str, bytes | None]] = []
    compensated: set[str] = set()
    failed = ""
    for entry in record.entries:
        if entry.kind == STEP_STARTED:
            inputs[entry.step] = entry.context
        elif entry.kind == STEP_SUCCEEDED:
            succeeded.append((entry.step, entry.context))
        elif entry.kind == STEP_FAILED:
            failed = entry.step
        elif entry.kind == COMPENSATED:
            compensated.add(entry.step)
    done = {name for name, _ in succeeded}
    queue: list[tuple[SagaStep, Any]] = []
    unfinished = [name for name in inputs if name not in done]
    for name in reversed(unfinished):
        step = steps.get(name)
        if step is not None and step.compensate_on_failure and name not in compensated:
            queue.append((step, _decode(codec, inputs[name])))
    for name, context in reversed(succeeded):
        step = steps.get(name)
        if step is not None and name not in compensated:
            queue.append((step, _decode(codec, context)))
    return failed or (unfinished[-1] if unfinished else ""), queue


def _decode(codec: Any, data: bytes | None) -> Any:
    return None if data is None else codec.decode(data)
