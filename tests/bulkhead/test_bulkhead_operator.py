"""``rxr.bulkhead``: one subscription is one call, holding one of the bulkhead's slots."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import advance, assert_no_pending

from .._support import record
from ..test_docstrings import marble_events, marble_source, sketch


def timed(
    scheduler: TestScheduler,
    value: Any,
    duration: float,
    starts: list[tuple[Any, float]],
    *,
    fails: bool = False,
) -> rx.Observable[Any]:
    """A cold source logging when it is subscribed, answering ``duration`` later."""

    def subscribe(observer: abc.ObserverBase[Any], _: Any = None) -> Disposable:
        starts.append((value, scheduler.clock))

        def answer(*_: Any) -> None:
            if fails:
                observer.on_error(RuntimeError(value))
            else:
                observer.on_next(value)
                observer.on_completed()

        return scheduler.schedule_relative(duration, answer)  # type: ignore[return-value]

    return rx.create(subscribe)


def guarded(
    scheduler: TestScheduler,
    bulkhead: rxr.Bulkhead,
    value: Any,
    duration: float,
    starts: list[tuple[Any, float]],
) -> rx.Observable[Any]:
    """A ``timed`` source through ``bulkhead``."""
    return timed(scheduler, value, duration, starts).pipe(rxr.bulkhead(bulkhead))


def logged(
    log: list[Any], entry: Any, source: rx.Observable[Any]
) -> rx.Observable[Any]:
    """``source``, appending ``entry`` to ``log`` as it is subscribed."""

    def subscribe(_: Any) -> rx.Observable[Any]:
        log.append(entry)
        return source

    return rx.defer(subscribe)


def later(
    scheduler: TestScheduler,
    factory: Any,
    *,
    subscribe_at: float = 0.0,
    dispose_at: float | None = None,
) -> list[Any]:
    """Schedule a subscription (and its disposal) without running time; the
    returned list fills with (time, kind, payload) as time runs."""
    events: list[Any] = []
    holder: list[abc.DisposableBase] = []

    def subscribe(*_: Any) -> None:
        holder.append(
            factory().subscribe(
                lambda v: events.append((scheduler.clock, "next", v)),
                lambda e: events.append((scheduler.clock, "error", e)),
                lambda: events.append((scheduler.clock, "completed", None)),
                scheduler=scheduler,
            )
        )

    scheduler.schedule_absolute(subscribe_at, subscribe)
    if dispose_at is not None:
        scheduler.schedule_absolute(dispose_at, lambda *_: holder[0].dispose())
    return events


def test_the_issue_example_two_start_at_0_the_third_at_1_the_fourth_is_refused() -> (
    None
):
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(max_concurrent=2, max_queue=1, name="inventory")
    starts: list[tuple[Any, float]] = []
    events = [
        record(
            scheduler,
            partial(guarded, scheduler, bulkhead, value, 1.0, starts),
            subscribe_at=0.0,
            until=0.0,
        )
        for value in "abcd"
    ]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(2, 1, 2, 1, 2)
    scheduler.advance_to(10.0)
    assert starts == [("a", 0.0), ("b", 0.0), ("c", 1.0)]
    assert events[0] == [(1.0, "next", "a"), (1.0, "completed", None)]
    assert events[1] == [(1.0, "next", "b"), (1.0, "completed", None)]
    assert events[2] == [(2.0, "next", "c"), (2.0, "completed", None)]
    [(at, kind, refusal)] = events[3]
    assert (at, kind, type(refusal)) == (0.0, "error", rxr.BulkheadFullError)
    assert (refusal.bulkhead, refusal.reason, refusal.retry_after) == (
        "inventory",
        "queue full",
        None,
    )
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 3, 1, 2)


def test_the_marble_sketch_matches_the_operator() -> None:
    lines = sketch(rxr.bulkhead)
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(max_concurrent=2, max_queue=1)
    subscribed: list[float] = []
    observed = {}
    for name in sorted(lines):
        letter = "abcd"[int(name.split()[1]) - 1]

        def factory(_: Any, letter: str = letter) -> rx.Observable[str]:
            subscribed.append(scheduler.clock)
            return marble_source(scheduler, f"-{letter}|")

        observed[name] = record(
            scheduler,
            partial(rx.defer(factory).pipe, rxr.bulkhead(bulkhead)),
            subscribe_at=0.0,
            until=0.0,
        )
    scheduler.advance_to(10.0)
    assert subscribed == [0.0, 0.0, 2.0]  # call 4 never reached its source
    for name, (_, drawn) in lines.items():
        marbles = drawn.split()[0]
        got = [
            (time, kind, type(value) if kind == "error" else value)
            for time, kind, value in observed[name]
        ]
        expected = [
            (time, kind, rxr.BulkheadFullError if kind == "error" else value)
            for time, kind, value in marble_events(marbles)
        ]
        assert got == expected, name


def test_a_wait_beyond_max_wait_is_refused_on_time_and_a_slot_in_time_cancels_it() -> (
    None
):
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 5, max_wait=2.0)
    starts: list[tuple[Any, float]] = []
    make = partial(guarded, scheduler, bulkhead)
    first = later(scheduler, partial(make, "a", 3.0, starts), subscribe_at=0.0)
    late = later(scheduler, partial(make, "b", 1.0, starts), subscribe_at=0.0)
    in_time = later(scheduler, partial(make, "c", 1.0, starts), subscribe_at=1.5)
    scheduler.advance_to(20.0)
    assert first == [(3.0, "next", "a"), (3.0, "completed", None)]
    [(at, _, refusal)] = late
    assert at == 2.0
    assert isinstance(refusal, rxr.BulkheadFullError)
    assert refusal.reason == "wait exceeded"
    assert in_time == [(4.0, "next", "c"), (4.0, "completed", None)]
    assert starts == [("a", 0.0), ("c", 3.0)]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 2, 1, 1)
    assert_no_pending(scheduler)


def test_a_slot_freed_at_the_instant_the_wait_ends_goes_to_exactly_one_outcome() -> (
    None
):
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 1, max_wait=2.0)
    starts: list[tuple[Any, float]] = []
    first = later(
        scheduler,
        lambda: timed(scheduler, "a", 2.0, starts).pipe(rxr.bulkhead(bulkhead)),
        subscribe_at=0.0,
    )
    waiting = later(
        scheduler,
        lambda: timed(scheduler, "b", 1.0, starts).pipe(rxr.bulkhead(bulkhead)),
        subscribe_at=0.0,
    )
    scheduler.advance_to(10.0)
    # The first call's end was scheduled before the wait's timer: the handover wins.
    assert first == [(2.0, "next", "a"), (2.0, "completed", None)]
    assert waiting == [(3.0, "next", "b"), (3.0, "completed", None)]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 2, 0, 1)
    assert_no_pending(scheduler)


def test_max_wait_runs_on_the_operator_s_scheduler_when_given() -> None:
    subscribed, own = TestScheduler(), TestScheduler()
    bulkhead = rxr.Bulkhead(1, 1, max_wait=1.0)
    rx.never().pipe(rxr.bulkhead(bulkhead)).subscribe(scheduler=subscribed)
    errors: list[Exception] = []
    rx.never().pipe(rxr.bulkhead(bulkhead, scheduler=own)).subscribe(
        on_error=errors.append, scheduler=subscribed
    )
    subscribed.advance_to(5.0)
    assert errors == []
    own.advance_to(1.0)
    assert [type(e) for e in errors] == [rxr.BulkheadFullError]


def test_disposing_a_waiting_call_leaves_the_queue_and_cancels_its_timer() -> None:
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 2, max_wait=5.0)
    starts: list[tuple[Any, float]] = []
    later(
        scheduler,
        lambda: timed(scheduler, "a", 2.0, starts).pipe(rxr.bulkhead(bulkhead)),
        subscribe_at=0.0,
    )
    gone = later(
        scheduler,
        lambda: timed(scheduler, "b", 1.0, starts).pipe(rxr.bulkhead(bulkhead)),
        subscribe_at=0.0,
        dispose_at=1.0,
    )
    nxt = later(
        scheduler,
        lambda: timed(scheduler, "c", 1.0, starts).pipe(rxr.bulkhead(bulkhead)),
        subscribe_at=0.5,
    )
    scheduler.advance_to(1.0)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 1, 1, 0, 1)
    scheduler.advance_to(10.0)
    assert gone == []
    assert nxt == [(3.0, "next", "c"), (3.0, "completed", None)]
    assert starts == [("a", 0.0), ("c", 2.0)]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 2, 0, 1)
    assert_no_pending(scheduler)


def test_disposing_an_active_call_disposes_its_source_then_frees_its_slot_at_once() -> (
    None
):
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 1)
    log: list[str] = []
    first = rx.never().pipe(
        ops.finally_action(lambda: log.append("first disposed")),
        rxr.bulkhead(bulkhead),
    )
    second = logged(log, "second subscribed", rx.never())
    subscription = first.subscribe(scheduler=scheduler)
    second.pipe(rxr.bulkhead(bulkhead)).subscribe(scheduler=scheduler)
    subscription.dispose()
    assert log == ["first disposed", "second subscribed"]
    subscription.dispose()  # twice: no second slot freed
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 2, 0, 1)


def test_a_waiter_disposed_as_it_is_handed_a_slot_never_starts_and_gives_it_back() -> (
    None
):
    bulkhead = rxr.Bulkhead(1, 2)
    blocker: Subject[int] = Subject()
    subscribed: list[str] = []
    blocker.pipe(rxr.bulkhead(bulkhead)).subscribe()

    def source(name: str) -> rx.Observable[int]:
        return logged(subscribed, name, rx.of(1))

    later: list[abc.DisposableBase] = []
    # The first waiter's source ends inside its own subscription; its subscriber
    # disposes the second waiter, which was just handed the freed slot.
    source("w1").pipe(rxr.bulkhead(bulkhead)).subscribe(
        on_completed=lambda: later[0].dispose()
    )
    later.append(source("w2").pipe(rxr.bulkhead(bulkhead)).subscribe())
    assert bulkhead.metrics().queued == 2
    blocker.on_completed()
    assert subscribed == ["w1"]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 3, 0, 1)
    source("w3").pipe(rxr.bulkhead(bulkhead)).subscribe()
    assert subscribed == ["w1", "w3"]


def test_ten_thousand_queued_calls_failing_synchronously_drain_without_recursion() -> (
    None
):
    bulkhead = rxr.Bulkhead(1, 10_000)
    blocker: Subject[int] = Subject()
    blocker.pipe(rxr.bulkhead(bulkhead)).subscribe()
    errors: list[Exception] = []
    for index in range(10_000):
        rx.throw(RuntimeError(index)).pipe(rxr.bulkhead(bulkhead)).subscribe(
            on_error=errors.append
        )
    assert bulkhead.metrics().queued == 10_000
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        blocker.on_completed()
    finally:
        sys.setrecursionlimit(limit)
    assert [e.args[0] for e in errors] == list(range(10_000))
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 10_001, 0, 1)


def test_queued_calls_completing_synchronously_drain_in_order() -> None:
    bulkhead = rxr.Bulkhead(2, 10_000)
    blockers: list[Subject[int]] = [Subject(), Subject()]
    for blocker in blockers:
        blocker.pipe(rxr.bulkhead(bulkhead)).subscribe()
    values: list[int] = []
    for index in range(5000):
        rx.of(index).pipe(rxr.bulkhead(bulkhead)).subscribe(values.append)
    blockers[0].on_completed()
    assert values == list(range(5000))
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 5002, 0, 2)


def test_a_subscriber_raising_from_on_next_frees_the_slot_exactly_once() -> None:
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 2)
    starts: list[tuple[Any, float]] = []

    def explode(_: Any) -> None:
        raise ValueError("the subscriber's own bug")

    errors: list[Exception] = []
    timed(scheduler, "a", 1.0, starts).pipe(rxr.bulkhead(bulkhead)).subscribe(
        explode, errors.append, scheduler=scheduler
    )
    for value in "bc":
        timed(scheduler, value, 1.0, starts).pipe(rxr.bulkhead(bulkhead)).subscribe(
            scheduler=scheduler
        )
    scheduler.advance_to(1.0)  # the subscriber's exception is its own
    assert [str(e) for e in errors] == ["the subscriber's own bug"]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 1, 2, 0, 1)
    scheduler.advance_to(5.0)
    assert starts == [("a", 0.0), ("b", 1.0), ("c", 2.0)]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 3, 0, 1)


def test_a_subscriber_raising_from_on_next_disposes_an_asynchronous_source_first() -> (
    None
):
    bulkhead = rxr.Bulkhead(max_concurrent=1, max_queue=1)
    running: list[str] = []
    log: list[Any] = []

    def tracked(name: str, subject: Subject[Any]) -> rx.Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], _: Any = None) -> Disposable:
            running.append(name)
            inner = subject.subscribe(observer)

            def dispose() -> None:
                log.append(("disposed", name, bulkhead.metrics().active))
                running.remove(name)
                inner.dispose()

            return Disposable(dispose)

        return rx.create(subscribe)

    def explode(value: Any) -> None:
        log.append(value)
        raise RuntimeError("the subscriber's own bug")

    first: Subject[Any] = Subject()
    tracked("first", first).pipe(rxr.bulkhead(bulkhead)).subscribe(
        explode, lambda e: log.append(("error", e)), lambda: log.append("completed")
    )
    first.on_next(1)  # the exception goes to the subscriber, not the emitter
    # the source is disposed while it still holds its slot, then the slot freed
    assert log[:2] == [1, ("disposed", "first", 1)]
    assert [str(e) for _, e in log[2:]] == ["the subscriber's own bug"]
    assert not first.observers
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 1, 0, 1)
    second: Subject[Any] = Subject()
    tracked("second", second).pipe(rxr.bulkhead(bulkhead)).subscribe()
    assert running == ["second"]
    first.on_next(2)
    first.on_completed()
    assert len(log) == 3
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 2, 0, 1)


def test_a_refused_max_wait_timer_leaves_the_queue_before_the_error() -> None:
    class Refusing(TestScheduler):
        def schedule_relative(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("scheduler shut down")

    bulkhead = rxr.Bulkhead(max_concurrent=1, max_queue=1, max_wait=5.0)
    holder: Subject[Any] = Subject()
    holder.pipe(rxr.bulkhead(bulkhead)).subscribe()
    started: list[str] = []
    seen: list[Any] = []

    def on_error(error: Exception) -> None:
        seen.append((error, bulkhead.metrics().queued))

    logged(started, "late", rx.of("late")).pipe(
        rxr.bulkhead(bulkhead, scheduler=Refusing())
    ).subscribe(seen.append, on_error)
    assert [(str(e), queued) for e, queued in seen] == [("scheduler shut down", 0)]
    assert bulkhead.metrics().queued == 0
    healthy: list[Any] = []
    rx.of(0).pipe(rxr.bulkhead(bulkhead)).subscribe(on_error=healthy.append)
    holder.on_completed()
    assert started == []
    assert healthy == []
    assert bulkhead.metrics().active == 0


def test_a_synchronous_source_hands_the_subscriber_s_exception_back_untouched() -> None:
    bulkhead = rxr.Bulkhead(1)
    bug = ValueError("the subscriber's own bug")
    errors: list[Exception] = []

    def explode(_: Any) -> None:
        raise bug

    rx.of(1, 2).pipe(rxr.bulkhead(bulkhead)).subscribe(explode, errors.append)
    assert errors == [bug]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 1, 0, 1)


@pytest.mark.parametrize("end", ["error", "completed"])
def test_a_subscriber_raising_from_its_end_still_frees_the_slot(end: str) -> None:
    bulkhead = rxr.Bulkhead(1, 1)
    source: Subject[int] = Subject()

    def explode(*_: Any) -> None:
        raise ValueError("the subscriber's own bug")

    if end == "error":
        source.pipe(rxr.bulkhead(bulkhead)).subscribe(on_error=explode)
    else:
        source.pipe(rxr.bulkhead(bulkhead)).subscribe(on_completed=explode)
    started: list[str] = []
    logged(started, "next", rx.never()).pipe(rxr.bulkhead(bulkhead)).subscribe()
    ending: Callable[[], None] = (
        partial(source.on_error, RuntimeError("down"))
        if end == "error"
        else source.on_completed
    )
    with pytest.raises(ValueError, match="own bug"):
        ending()
    assert started == ["next"]  # the slot went on before the subscriber heard the end
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 2, 0, 1)


def test_a_queued_subscriber_raising_as_it_starts_never_reaches_the_freeing_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bulkhead = rxr.Bulkhead(1, 1, name="inventory")
    blocker: Subject[int] = Subject()
    ended: list[str] = []
    blocker.pipe(rxr.bulkhead(bulkhead)).subscribe(
        on_completed=lambda: ended.append("blocker")
    )
    # No on_error: RxPY's default raises the error, inside the source's subscribe.
    rx.throw(RuntimeError("down")).pipe(rxr.bulkhead(bulkhead)).subscribe()
    with caplog.at_level(logging.ERROR, logger="rxresilience"):
        blocker.on_completed()
    assert ended == ["blocker"]
    assert "'inventory'" in caplog.records[0].getMessage()
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 2, 0, 1)


def test_a_subscriber_resubscribing_on_completion_finds_the_slot_free() -> None:
    bulkhead = rxr.Bulkhead(1)  # no queue: a slot still taken would refuse it
    values = rx.of(1).pipe(rxr.bulkhead(bulkhead), ops.repeat(3), ops.to_list()).run()
    assert values == [1, 1, 1]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 3, 0, 1)


def test_a_refusal_is_not_retried() -> None:
    bulkhead = rxr.Bulkhead(1)
    blocker: Subject[int] = Subject()
    blocker.pipe(rxr.bulkhead(bulkhead)).subscribe()
    subscriptions: list[int] = []
    source = logged(subscriptions, 1, rx.of(1))
    errors: list[Exception] = []
    source.pipe(rxr.bulkhead(bulkhead), rxr.retry(5)).subscribe(on_error=errors.append)
    assert subscriptions == []
    assert [type(e) for e in errors] == [rxr.BulkheadFullError]
    assert bulkhead.metrics().rejected == 1


def test_with_idempotent_finishing_on_dispose_inside_a_disposed_call_frees_its_slot() -> (
    None
):
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 1)
    store = rxr.InMemoryIdempotencyStore()
    runs: list[float] = []

    def work(_: Any) -> rx.Observable[str]:
        runs.append(scheduler.clock)
        return rx.timer(5.0, scheduler=scheduler).pipe(ops.map(lambda _: "done"))

    guarded = rx.defer(work).pipe(
        rxr.idempotent(store, key="order-1", finish_on_dispose=True),
        rxr.bulkhead(bulkhead),
    )
    later(scheduler, lambda: guarded, subscribe_at=0.0, dispose_at=1.0)
    starts: list[tuple[Any, float]] = []
    nxt = later(
        scheduler,
        lambda: timed(scheduler, "b", 1.0, starts).pipe(rxr.bulkhead(bulkhead)),
        subscribe_at=0.5,
    )
    scheduler.advance_to(10.0)
    assert starts == [("b", 1.0)]  # the slot was freed at the disposal
    assert nxt == [(2.0, "next", "b"), (2.0, "completed", None)]
    assert runs == [0.0]
    # The disposed call's work went on to its end, and was recorded.
    replayed = later(
        scheduler,
        lambda: rx.defer(work).pipe(rxr.idempotent(store, key="order-1")),
        subscribe_at=10.0,
    )
    advance(scheduler, 10.0)
    assert replayed == [(10.0, "next", "done"), (10.0, "completed", None)]
    assert runs == [0.0]


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(TypeError, match="bulkhead must be a Bulkhead"):
        rxr.bulkhead(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheduler"):
        rxr.bulkhead(rxr.Bulkhead(1), scheduler="now")  # type: ignore[arg-type]


@given(
    limit=st.integers(1, 3),
    durations=st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0]), max_size=8),
    fail_at=st.one_of(st.none(), st.integers(0, 7)),
)
def test_same_notifications_as_merge_with_max_concurrent(
    limit: int, durations: list[float], fail_at: int | None
) -> None:
    """Inner sources subscribed at once through a bulkhead with an unbounded
    queue behave as RxPY's ``merge(max_concurrent=n)``, which queues them."""

    def sources(scheduler: TestScheduler) -> list[rx.Observable[Any]]:
        return [
            timed(scheduler, index, duration, [], fails=index == fail_at)
            for index, duration in enumerate(durations)
        ]

    theirs_scheduler = TestScheduler()
    theirs = record(
        theirs_scheduler,
        lambda: rx.from_iterable(sources(theirs_scheduler)).pipe(
            ops.merge(max_concurrent=limit)
        ),
        subscribe_at=0.0,
    )
    bulkhead = rxr.Bulkhead(limit, sys.maxsize)
    ours_scheduler = TestScheduler()
    ours = record(
        ours_scheduler,
        lambda: rx.merge(
            *[s.pipe(rxr.bulkhead(bulkhead)) for s in sources(ours_scheduler)]
        ),
        subscribe_at=0.0,
    )
    normalised = [
        [(t, k, repr(v) if k == "error" else v) for t, k, v in events]
        for events in (ours, theirs)
    ]
    assert normalised[0] == normalised[1]
    assert bulkhead.metrics().active == 0
    assert bulkhead.metrics().queued == 0


@given(
    dispose_at=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
    ends_at=st.sampled_from([0.0, 1.0, 2.0, 3.0]),
    max_wait=st.sampled_from([None, 1.0, 2.0]),
)
def test_disposal_at_any_instant_leaves_no_timer_and_no_slot(
    dispose_at: float, ends_at: float, max_wait: float | None
) -> None:
    """A waiter disposed while waiting, at its wait's end, as the slot frees,
    or while running: afterwards nothing is pending and no slot is taken."""
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(1, 1, max_wait)
    starts: list[tuple[Any, float]] = []
    blocker = later(
        scheduler, partial(guarded, scheduler, bulkhead, "a", ends_at, starts)
    )
    waiter = later(
        scheduler,
        partial(guarded, scheduler, bulkhead, "b", 5.0, starts),
        dispose_at=dispose_at,
    )
    advance(scheduler, dispose_at)
    assert_no_pending_beyond(scheduler, blocker_end=ends_at)
    scheduler.advance_to(20.0)
    assert_no_pending(scheduler)
    assert blocker == [(ends_at, "next", "a"), (ends_at, "completed", None)]
    metrics = bulkhead.metrics()
    assert (metrics.active, metrics.queued) == (0, 0)
    started_b = [at for value, at in starts if value == "b"]
    refused = [e for _, kind, e in waiter if kind == "error"]
    assert waiter == [] or (refused and refused[0].reason == "wait exceeded")
    assert metrics.admitted == 1 + len(started_b)
    assert metrics.rejected == len(refused)
    assert len(started_b) + len(refused) <= 1


def assert_no_pending_beyond(scheduler: TestScheduler, *, blocker_end: float) -> None:
    """After the waiter's disposal only the blocker's answer may be pending."""
    left = [
        scheduler.to_seconds(item.duetime)
        for item, _ in scheduler._queue.items
        if not item.is_cancelled()
    ]
    assert all(at == blocker_end for at in left), left


def test_a_keyboard_interrupt_as_one_handed_over_call_starts_strands_no_other() -> None:
    """Two calls handed a slot on one thread: the first one's start raising
    KeyboardInterrupt still lets the second start (it used to hold its slot
    for good, never subscribed, never told), then goes on."""
    bulkhead = rxr.Bulkhead(max_concurrent=2, max_queue=10)
    first: Subject[int] = Subject()
    second: Subject[int] = Subject()
    first.pipe(rxr.bulkhead(bulkhead)).subscribe()
    second.pipe(rxr.bulkhead(bulkhead)).subscribe()

    def interrupted(observer: Any, scheduler: Any = None) -> Any:
        second.on_completed()  # its slot goes to the next waiter, on this thread
        raise KeyboardInterrupt

    rx.create(interrupted).pipe(rxr.bulkhead(bulkhead)).subscribe(
        on_error=lambda e: None
    )
    started: list[bool] = []
    rx.defer(lambda _: (started.append(True), rx.never())[1]).pipe(
        rxr.bulkhead(bulkhead)
    ).subscribe()
    with pytest.raises(KeyboardInterrupt):
        first.on_completed()
    assert started == [True]
    assert bulkhead.metrics().active == 1
