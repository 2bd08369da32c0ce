"""Bulkheads under test: strategies for bulkheads and their load, and the
law "a bulkhead never exceeds its concurrency", for ours and for a user's
pipeline.

The law needs only the library; the strategies import Hypothesis when they
are called (the ``testing`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import reactivex as rx
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.testing import TestScheduler

from .._bulkhead import Bulkhead, BulkheadMetrics
from .._bulkhead_operator import bulkhead as bulkhead_operator
from ..errors import BulkheadFullError
from ._trace import run_until_idle

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "BulkheadCall",
    "bulkhead_loads",
    "bulkhead_never_exceeds_its_concurrency",
    "bulkheads",
]

Operator = Callable[[rx.Observable[Any]], rx.Observable[Any]]


@dataclass(frozen=True, slots=True)
class BulkheadCall:
    """One call of a load: subscribed at ``at``; its source answers
    ``duration`` seconds after it is subscribed (a value and completion, or
    an error with ``fails``); the subscription is disposed at ``dispose_at``
    (an absolute time) if given."""

    at: float
    duration: float
    fails: bool = False
    dispose_at: float | None = None


_TIMES = [0.0, 0.5, 1.0, 2.0, 3.0]


def bulkheads(
    *, max_concurrent: int = 4, max_queue: int = 6, waits: bool = True
) -> SearchStrategy[Bulkhead]:
    """Fresh bulkheads: small limits and queues (0 included), and a
    ``max_wait`` of ``None`` or a round number of seconds (0 included) unless
    ``waits`` is False."""
    from hypothesis import strategies as st

    max_waits = (
        st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]))
        if waits
        else st.none()
    )
    return st.builds(
        lambda limit, queue, wait: Bulkhead(limit, queue, wait),
        st.integers(1, max_concurrent),
        st.integers(0, max_queue),
        max_waits,
    )


def bulkhead_loads(
    *, max_calls: int = 12, disposals: bool = True
) -> SearchStrategy[list[BulkheadCall]]:
    """Calls at round instants (many at once, to fill the queue), lasting round
    durations (0 included: a source that ends inside its subscription),
    some failing and, with ``disposals``, some disposed at a round instant
    (while waiting, while running, or at the instant they start)."""
    from hypothesis import strategies as st

    def call(at: float, duration: float, fails: bool, dispose: float | None) -> Any:
        return BulkheadCall(
            at, duration, fails, None if dispose is None else at + dispose
        )

    disposal = (
        st.one_of(st.none(), st.sampled_from([0.0, *_TIMES]))
        if disposals
        else st.none()
    )
    return st.lists(
        st.builds(
            call,
            st.sampled_from(_TIMES),
            st.sampled_from([0.0, 1.0, 1.0, 2.0]),
            st.booleans(),
            disposal,
        ),
        max_size=max_calls,
    )


class _Load:
    """The sources of a load, counting how many run at once."""

    def __init__(self, scheduler: TestScheduler) -> None:
        self.scheduler = scheduler
        self.running = 0
        self.peak = 0
        self.subscribed: list[int] = []

    def source(self, index: int, call: BulkheadCall) -> rx.Observable[int]:
        def subscribe(
            observer: abc.ObserverBase[int], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.subscribed.append(index)
            self.running += 1
            self.peak = max(self.peak, self.running)
            live = [True]

            def stop() -> None:
                if live[0]:
                    live[0] = False
                    self.running -= 1

            def end(*_: Any) -> None:
                if not live[0]:
                    return
                stop()  # not running any more once it has answered
                if call.fails:
                    observer.on_error(RuntimeError(f"call {index} failed"))
                else:
                    observer.on_next(index)
                    observer.on_completed()

            if call.duration == 0.0:
                end()
                return Disposable(stop)
            timer = self.scheduler.schedule_relative(call.duration, end)
            return CompositeDisposable(timer, Disposable(stop))

        return rx.create(subscribe)


def bulkhead_never_exceeds_its_concurrency(
    bulkhead: Bulkhead,
    calls: Sequence[BulkheadCall],
    *,
    operator: Callable[[], Operator] | None = None,
) -> None:
    """At no instant do more sources run than ``bulkhead.max_concurrent``,
    every call that is not disposed ends, and afterwards the bulkhead holds no
    slot and no waiter.

    Each call subscribes (in virtual time) at its ``at`` to a source of its
    own, through the pipeline ``operator()`` makes: your own, such as
    ``lambda: rxr.resilient(..., bulkhead=b)`` with the same bulkhead ``b``
    given here, or by default ``rxr.bulkhead(bulkhead)`` alone, for which the
    law also checks that the sources were subscribed in the order the calls
    were admitted and that the counters add up (admitted, rejected, left the
    queue). A source runs from its subscription until it answers (``duration``
    later) or is disposed. Give any timed part of your pipeline the
    subscription's scheduler (the default), not a real one. The bulkhead
    must be idle when the law starts.
    """
    before = bulkhead.metrics()
    if before.active or before.queued:
        raise ValueError(f"the bulkhead must be idle when the law starts: {before}")
    scheduler = TestScheduler()
    load = _Load(scheduler)
    make = operator if operator is not None else (lambda: bulkhead_operator(bulkhead))
    ended: list[int] = []
    refused: list[int] = []
    subscriptions: dict[int, abc.DisposableBase] = {}
    entered: list[int] = []
    disposed: set[int] = set()

    def subscribe_call(index: int, call: BulkheadCall) -> None:
        def on_error(error: Exception) -> None:
            ended.append(index)
            if isinstance(error, BulkheadFullError):
                refused.append(index)

        entered.append(index)
        subscriptions[index] = (
            load.source(index, call)
            .pipe(make())
            .subscribe(
                on_error=on_error,
                on_completed=lambda: ended.append(index),
                scheduler=scheduler,
            )
        )

    def dispose_call(index: int) -> None:
        if index in subscriptions:
            disposed.add(index)
            subscriptions[index].dispose()

    for index in sorted(range(len(calls)), key=lambda i: calls[i].at):
        call = calls[index]
        scheduler.schedule_absolute(
            call.at, lambda *_, i=index, c=call: subscribe_call(i, c)
        )
        if call.dispose_at is not None:
            scheduler.schedule_absolute(
                call.dispose_at, lambda *_, i=index: dispose_call(i)
            )
    run_until_idle(scheduler)

    limit = bulkhead.max_concurrent
    assert load.peak <= limit, f"{load.peak} sources ran at once, limit {limit}"
    assert load.running == 0, f"{load.running} sources still run at the end"
    kept = {i for i, call in enumerate(calls) if call.dispose_at is None}
    assert kept <= set(ended), f"calls {sorted(kept - set(ended))} never ended"
    metrics = bulkhead.metrics()
    assert metrics.active == 0, f"{metrics.active} slot(s) still taken at the end"
    assert metrics.queued == 0, f"{metrics.queued} call(s) still queued at the end"
    if operator is None:
        _check_our_operator(
            bulkhead, before, load.subscribed, entered, refused, disposed
        )


def _check_our_operator(
    bulkhead: Bulkhead,
    before: BulkheadMetrics,
    subscribed: list[int],
    entered: list[int],
    refused: list[int],
    disposed: set[int],
) -> None:
    """First in, first out, and every call counted once."""
    position = {index: at for at, index in enumerate(entered)}
    starts = [position[index] for index in subscribed]
    assert starts == sorted(starts), f"sources started out of order: {subscribed}"
    now = bulkhead.metrics()
    metrics = BulkheadMetrics(
        now.active,
        now.queued,
        now.admitted - before.admitted,
        now.rejected - before.rejected,
        now.max_concurrent,
    )
    assert metrics.admitted == len(subscribed), (
        f"{metrics.admitted} admitted, {len(subscribed)} sources subscribed"
    )
    assert metrics.rejected == len(refused), (
        f"{metrics.rejected} rejected, {len(refused)} refusals delivered"
    )
    left = disposed - set(subscribed) - set(refused)
    total = metrics.admitted + metrics.rejected + len(left)
    assert total == len(entered), (
        f"{metrics.admitted} admitted + {metrics.rejected} rejected + {len(left)} "
        f"left the queue != {len(entered)} calls"
    )
