"""rxr.pace: every item delayed to its permit; lossless, in order, ends behind items."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

import rxresilience as rxr
from rxresilience.testing import assert_no_pending, run
from rxresilience.testing._rate_limit_laws import (
    pace_delivers_every_item_in_order_within_the_rate,
    rate_limiter_configs,
)

from ..test_docstrings import marble_events, marble_source, sketch

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error


class ServiceDown(Exception):
    pass


def test_four_items_at_zero_come_out_at_their_permits() -> None:
    """The issue's example: RateLimiter(rate=2, per=1.0)."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler)
    trace = run(lambda: rx.of(1, 2, 3, 4).pipe(rxr.pace(limiter)), scheduler=scheduler)
    assert [(e.time, e.kind, e.payload) for e in trace.events] == [
        (0.0, "next", 1),
        (0.5, "next", 2),
        (1.0, "next", 3),
        (1.5, "next", 4),
        (1.5, "completed", None),
    ]
    assert_no_pending(scheduler)


def test_the_marble_sketch_matches_the_operator() -> None:
    lines = sketch(rxr.pace)
    (source_column, source_line), (result_column, result_line) = (
        lines["source"],
        lines["result"],
    )
    assert source_column == result_column
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=2.0, scheduler=scheduler)
    trace = run(
        lambda: marble_source(scheduler, source_line).pipe(rxr.pace(limiter)),
        scheduler=scheduler,
    )
    assert [tuple(e) for e in trace.events] == marble_events(result_line)


def test_an_error_waits_behind_the_items_before_it_unlike_ops_delay() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler)
    error = ServiceDown()
    source = scheduler.create_cold_observable(
        on_next(0, "a"), on_next(0, "b"), on_error(0, error)
    )
    trace = run(lambda: source.pipe(rxr.pace(limiter)), scheduler=scheduler)
    assert [(e.time, e.kind) for e in trace.events] == [
        (0.0, "next"),
        (0.5, "next"),
        (0.5, "error"),
    ]
    assert trace.error is error
    # ops.delay passes the error on at once and drops what it holds.
    other = TestScheduler()
    again = other.create_cold_observable(
        on_next(0, "a"), on_next(0, "b"), on_error(0, error)
    )
    delayed = run(lambda: again.pipe(ops.delay(0.5)), scheduler=other)
    assert [(e.time, e.kind) for e in delayed.events] == [(0.0, "error")]


def test_completion_waits_behind_the_items_before_it() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, burst=2, scheduler=scheduler)
    source = scheduler.create_cold_observable(
        on_next(0, 1), on_next(0, 2), on_next(0, 3), on_completed(0)
    )
    trace = run(lambda: source.pipe(rxr.pace(limiter)), scheduler=scheduler)
    assert [(e.time, e.kind) for e in trace.events] == [
        (0.0, "next"),
        (0.0, "next"),
        (1.0, "next"),
        (1.0, "completed"),
    ]


def test_an_item_arriving_after_a_gap_goes_at_once() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    source = scheduler.create_cold_observable(
        on_next(0, 1), on_next(5, 2), on_completed(5)
    )
    trace = run(lambda: source.pipe(rxr.pace(limiter)), scheduler=scheduler)
    assert [(e.time, e.kind) for e in trace.events] == [
        (0.0, "next"),
        (5.0, "next"),
        (5.0, "completed"),
    ]


def test_an_overflow_stops_the_source_delivers_the_waiting_items_then_fails() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    source = scheduler.create_cold_observable(
        *(on_next(0, i) for i in range(6)), on_completed(0)
    )
    # From t=1: RxPY records a disposal at t=0 as "never" (0 is falsy).
    trace = run(
        lambda: source.pipe(rxr.pace(limiter, max_buffer=2)),
        scheduler=scheduler,
        subscribe_at=1.0,
    )
    # 0 at once, 1 and 2 wait (the buffer's two), 3 overflows: the source is
    # disposed there, 1 and 2 still come, then the error.
    assert [(e.time, e.kind, e.payload) for e in trace.events[:3]] == [
        (1.0, "next", 0),
        (2.0, "next", 1),
        (3.0, "next", 2),
    ]
    (at, kind, error) = trace.events[3]
    assert (at, kind) == (3.0, "error")
    assert isinstance(error, rxr.BufferOverflowError)
    assert error.capacity == 2
    [subscription] = source.subscriptions
    assert subscription.unsubscribe == 1  # disposed at the overflow, at once


def test_max_buffer_zero_lets_through_only_items_whose_permit_is_free() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, burst=2, scheduler=scheduler)
    trace = run(
        lambda: rx.of(1, 2, 3, 4).pipe(rxr.pace(limiter, max_buffer=0)),
        scheduler=scheduler,
    )
    assert trace.values == [1, 2]
    assert isinstance(trace.error, rxr.BufferOverflowError)
    assert limiter.time_to_permit() == 1.0  # the refused item took nothing


@pytest.mark.parametrize(
    ("max_buffer", "error"),
    [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)],
)
def test_a_bad_max_buffer_is_refused_when_built(
    max_buffer: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_buffer"):
        rxr.pace(rxr.RateLimiter(1), max_buffer=max_buffer)


def test_a_bad_limiter_or_scheduler_is_refused_when_built() -> None:
    with pytest.raises(TypeError, match="limiter"):
        rxr.pace(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheduler"):
        rxr.pace(rxr.RateLimiter(1), scheduler="x")  # type: ignore[arg-type]


@given(
    config=rate_limiter_configs(),
    arrivals=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.5, 4.0]), max_size=12),
)
def test_the_law_holds_for_pace(
    config: rxr.RateLimiterConfig, arrivals: list[float]
) -> None:
    pace_delivers_every_item_in_order_within_the_rate(config, arrivals)


@given(
    config=rate_limiter_configs(),
    count=st.integers(0, 8),
    dispose_at=st.one_of(
        st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), st.floats(0.0, 10.0)
    ),
)
def test_disposal_at_any_instant_leaves_nothing_behind(
    config: rxr.RateLimiterConfig, count: int, dispose_at: float
) -> None:
    """Nothing is emitted after disposal, no timer is left, and the permit of
    the item that was waiting is given back: the limiter is as if only the
    emitted items had taken permits."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(
        config.rate, config.per, config.burst, scheduler=scheduler
    )
    source = scheduler.create_cold_observable(
        *(on_next(0, i) for i in range(count)), on_completed(0)
    )
    trace = run(
        lambda: source.pipe(rxr.pace(limiter)),
        scheduler=scheduler,
        dispose_at=dispose_at,
    )
    scheduler.advance_to(dispose_at + 100.0)
    emitted = [e.time for e in trace.events if e.kind == "next"]
    assert trace.values == list(range(len(emitted)))
    assert all(at <= dispose_at for at in emitted)
    assert_no_pending(scheduler)
    twin_clock = TestScheduler()
    twin = rxr.RateLimiter(config.rate, config.per, config.burst, scheduler=twin_clock)
    for at in emitted:
        twin_clock.advance_to(at)
        assert twin.try_acquire()
    # (the scheduler keeps time to the microsecond)
    assert limiter.storage.time_to_permit(dispose_at) == pytest.approx(
        twin.storage.time_to_permit(dispose_at), abs=1e-6
    )


# --- subscribers that misbehave ------------------------------------------------------


class SubscriberBug(Exception):
    pass


def test_a_subscriber_raising_on_a_paced_item_gets_it_once_and_pacing_stops() -> None:
    """From a timer the bug is the subscriber's: it gets it as on_error, once;
    the source is disposed, the timer cancelled, nothing reaches a thread."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    seen: list[tuple[float, Any]] = []
    bug = SubscriberBug()

    def on_item(value: int) -> None:
        seen.append((float(scheduler.clock), value))
        if value == 1:
            raise bug

    rx.of(0, 1, 2).pipe(rxr.pace(limiter)).subscribe(
        on_item,
        lambda error: seen.append((float(scheduler.clock), error)),
        lambda: seen.append((float(scheduler.clock), "done")),
        scheduler=scheduler,
    )
    scheduler.advance_to(10.0)  # nothing escapes to the scheduler
    assert seen == [(0.0, 0), (1.0, 1), (1.0, bug)]
    assert_no_pending(scheduler)
    assert limiter.time_to_permit() == 0.0  # no permit held for item 2


def test_a_raw_observer_that_raises_gets_its_exception_once_and_no_more_items() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    seen: list[tuple[float, Any]] = []
    bug = SubscriberBug()

    class Raw(rx.abc.ObserverBase[int]):
        def on_next(self, value: int) -> None:
            seen.append((float(scheduler.clock), value))
            if value in (0, 1):
                raise bug

        def on_error(self, error: Exception) -> None:
            seen.append((float(scheduler.clock), error))

        def on_completed(self) -> None:
            seen.append((float(scheduler.clock), "done"))

    rx.of(0, 1, 2).pipe(rxr.pace(limiter)).subscribe(Raw(), scheduler=scheduler)
    scheduler.advance_to(10.0)
    assert seen == [(0.0, 0), (0.0, bug)]
    assert_no_pending(scheduler)


def test_a_subscriber_raising_gives_back_the_permit_of_the_item_behind() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    subject: rx.subject.Subject[str] = rx.subject.Subject()
    errors: list[Exception] = []

    def on_item(value: str) -> None:
        if value == "b":
            subject.on_next("c")  # reserves c's permit (t=2), then fails
            raise SubscriberBug()

    subject.pipe(rxr.pace(limiter)).subscribe(
        on_item, errors.append, scheduler=scheduler
    )
    subject.on_next("a")
    subject.on_next("b")
    scheduler.advance_to(1.0)
    assert [type(e) for e in errors] == [SubscriberBug]
    assert not subject.observers  # the source is disposed
    assert_no_pending(scheduler)
    assert limiter.time_to_permit() == 1.0  # b spent its permit; c gave its back


def test_an_item_fed_from_inside_on_next_takes_one_permit_only() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    subject: rx.subject.Subject[str] = rx.subject.Subject()
    out: list[tuple[str, float]] = []

    def on_item(value: str) -> None:
        out.append((value, float(scheduler.clock)))
        if value == "b":  # handling b discovers c
            subject.on_next("c")

    subject.pipe(rxr.pace(limiter)).subscribe(on_item, scheduler=scheduler)
    subject.on_next("a")
    subject.on_next("b")
    scheduler.advance_to(10.0)
    assert out == [("a", 0.0), ("b", 1.0), ("c", 2.0)]
    assert limiter.time_to_permit() == 0.0
    assert_no_pending(scheduler)


class RefusingScheduler(TestScheduler):
    """A scheduler shut down: it refuses every timer (an AsyncIOScheduler on a
    closed loop does)."""

    def schedule_relative(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("scheduler shut down")


def test_a_refused_timer_ends_with_the_scheduler_s_error_and_gives_the_permit_back() -> (
    None
):
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=10.0, scheduler=clock)
    seen: list[Any] = []
    subject: rx.subject.Subject[int] = rx.subject.Subject()

    def on_error(error: Exception) -> None:
        seen.append((str(error), limiter.time_to_permit()))

    subject.pipe(rxr.pace(limiter, scheduler=RefusingScheduler())).subscribe(
        seen.append, on_error, lambda: seen.append("done")
    )
    subject.on_next(1)  # the permit is free: at once
    subject.on_next(2)  # its permit is 10 s away: the timer is refused
    assert seen == [1, ("scheduler shut down", 10.0)]
    assert not subject.observers
    subject.on_next(3)
    subject.on_completed()
    assert seen == [1, ("scheduler shut down", 10.0)]


class RefusingStorage(rxr.InMemoryRateLimiterStorage):
    """A storage that refuses (as Redis with ``when_unreachable="refuse"``
    does while unreachable) for its first ``refusals`` reservations."""

    def __init__(self, refusals: int, retry_after: float) -> None:
        super().__init__()
        self.refusals = refusals
        self.retry_after = retry_after

    def reserve(self, now: float, max_wait: float) -> Any:
        if self.refusals:
            self.refusals -= 1
            return self.retry_after
        return super().reserve(now, max_wait)


def test_a_refusing_storage_makes_the_waiting_items_wait_never_drops_them() -> None:
    scheduler = TestScheduler()
    storage = RefusingStorage(0, 0.5)
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler, storage=storage)
    subject: rx.subject.Subject[int] = rx.subject.Subject()
    seen: list[tuple[float, Any]] = []
    subject.pipe(rxr.pace(limiter)).subscribe(
        lambda v: seen.append((float(scheduler.clock), v)),
        lambda e: seen.append((float(scheduler.clock), e)),
        lambda: seen.append((float(scheduler.clock), "done")),
        scheduler=scheduler,
    )
    subject.on_next(0)  # at once
    subject.on_next(1)  # waits for t=1
    subject.on_next(2)
    subject.on_completed()
    storage.refusals = 3  # unreachable from now: 2 is refused at t=1, 1.5, 2
    scheduler.advance_to(10.0)
    assert seen == [(0.0, 0), (1.0, 1), (2.5, 2), (2.5, "done")]
    assert_no_pending(scheduler)


def test_a_refusing_storage_makes_an_arriving_item_wait() -> None:
    scheduler = TestScheduler()
    storage = RefusingStorage(2, 0.5)
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler, storage=storage)
    seen: list[tuple[float, Any]] = []
    rx.of(0, 1).pipe(rxr.pace(limiter)).subscribe(
        lambda v: seen.append((float(scheduler.clock), v)),
        lambda e: seen.append((float(scheduler.clock), e)),
        lambda: seen.append((float(scheduler.clock), "done")),
        scheduler=scheduler,
    )
    scheduler.advance_to(10.0)
    assert seen == [(1.0, 0), (2.0, 1), (2.0, "done")]
    assert_no_pending(scheduler)


def test_a_subscriber_disposing_from_inside_on_next_stops_everything() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    seen: list[int] = []
    holder: list[Any] = []

    def on_item(value: int) -> None:
        seen.append(value)
        if value == 1:
            holder[0].dispose()

    holder.append(
        rx.of(0, 1, 2, 3)
        .pipe(rxr.pace(limiter))
        .subscribe(on_item, scheduler=scheduler)
    )
    scheduler.advance_to(10.0)
    assert seen == [0, 1]
    assert_no_pending(scheduler)


def test_eight_threads_pacing_through_one_limiter_take_exactly_the_free_permits() -> (
    None
):
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, burst=30, scheduler=clock)
    emitted: list[int] = []
    overflowed: list[Exception] = []
    lock = threading.Lock()

    def on_item(value: int) -> None:
        with lock:
            emitted.append(value)

    def on_overflow(error: Exception) -> None:
        with lock:
            overflowed.append(error)

    start = threading.Barrier(8)

    def body() -> None:
        start.wait()
        for _ in range(20):
            rx.of(1).pipe(rxr.pace(limiter, max_buffer=0, scheduler=clock)).subscribe(
                on_item, on_overflow
            )

    workers = [threading.Thread(target=body) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert len(emitted) == 30
    assert len(overflowed) == 160 - 30
    assert all(isinstance(e, rxr.BufferOverflowError) for e in overflowed)


@pytest.mark.parametrize("ending", ["completed", "error"])
def test_a_subscribers_end_that_raises_on_the_timer_stays_off_the_timer(
    ending: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The end a timer passes on raises in the subscriber: logged, as the saga's
    subscriber does, never raised into the scheduler (a timer thread)."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler)
    source = (
        rx.of(1, 2)
        if ending == "completed"
        else rx.concat(rx.of(1, 2), rx.throw(ValueError("end")))
    )
    seen: list[int] = []

    def bad_end(*_: Any) -> None:
        raise RuntimeError("the subscriber's own bug")

    source.pipe(rxr.pace(limiter)).subscribe(
        seen.append, bad_end, bad_end, scheduler=scheduler
    )
    with caplog.at_level("ERROR", logger="rxresilience"):
        scheduler.advance_to(2.0)  # the end comes from the timer at 0.5
    assert seen == [1, 2]
    assert any(
        "the subscriber's own bug" in r.getMessage() or r.exc_info
        for r in caplog.records
    )


class BrokenStorage(rxr.InMemoryRateLimiterStorage):
    """A storage whose ``reserve`` raises from its ``reserve_fails``-th call
    on, and whose ``cancel`` raises when ``cancel_fails``."""

    def __init__(self, reserve_fails: int = 0, cancel_fails: bool = False) -> None:
        super().__init__()
        self.reserves = 0
        self.reserve_fails = reserve_fails
        self.cancel_fails = cancel_fails

    def reserve(self, now: float, max_wait: float) -> Any:
        self.reserves += 1
        if self.reserve_fails and self.reserves >= self.reserve_fails:
            raise ConnectionError("the backend is gone")
        return super().reserve(now, max_wait)

    def cancel(self, reservation: Any, now: float) -> bool:
        if self.cancel_fails:
            raise ConnectionError("the backend is gone")
        return super().cancel(reservation, now)


@pytest.mark.parametrize("fails_at", [1, 2, 3])
def test_a_storage_that_fails_ends_the_pacing_with_its_error(fails_at: int) -> None:
    """On the subscribe path (the first item) or a timer's (a later one): the
    subscriber hears the storage's error, the source is let go, no timer is
    left (on a timer it used to be swallowed: the subscription hung)."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(
        rate=1,
        per=1.0,
        storage=BrokenStorage(reserve_fails=fails_at),
        scheduler=scheduler,
    )
    source: Subject[int] = Subject()
    seen: list[Any] = []
    source.pipe(rxr.pace(limiter)).subscribe(
        seen.append, seen.append, lambda: seen.append("completed"), scheduler=scheduler
    )
    for value in (1, 2, 3):
        source.on_next(value)
    scheduler.advance_to(100.0)
    assert seen[: fails_at - 1] == list(range(1, fails_at))
    assert isinstance(seen[-1], ConnectionError)
    assert len(seen) == fails_at
    assert not source.observers
    assert not scheduler._queue


def test_a_storage_whose_cancel_fails_still_lets_the_source_go() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(
        rate=1, per=1.0, storage=BrokenStorage(cancel_fails=True), scheduler=scheduler
    )
    source: Subject[int] = Subject()
    subscription = source.pipe(rxr.pace(limiter)).subscribe(scheduler=scheduler)
    source.on_next(1)
    source.on_next(2)  # waits for its permit: a reservation to give back
    subscription.dispose()
    assert not source.observers
    scheduler.advance_to(100.0)  # the timer, disposed, goes without running
    assert not scheduler._queue


def test_a_subscriber_bug_with_a_failing_cancel_is_still_told() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(
        rate=1, per=1.0, storage=BrokenStorage(cancel_fails=True), scheduler=scheduler
    )
    source: Subject[int] = Subject()
    errors: list[Exception] = []

    def on_next(value: int) -> None:
        source.on_next(value + 1)  # its permit is a second away: reserved
        raise RuntimeError("subscriber bug")

    source.pipe(rxr.pace(limiter)).subscribe(
        on_next, errors.append, scheduler=scheduler
    )
    source.on_next(1)
    assert [str(error) for error in errors] == ["subscriber bug"]
    assert not source.observers
