"""A subscriber's exception belongs to the subscriber, never to the source.

With a synchronous source RxPY hands an exception raised in a downstream
``on_next`` back into the source's own chain as ``on_error``; with a
timer-driven source it travels up to the scheduler. Either way no operator
may take it for the source's failure: a breaker does not count it, a retry
does not retry it, a fallback does not replace it, a timeout does not turn it
into a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxresilience as rxr

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error

Operator = Callable[[rx.Observable[Any]], rx.Observable[Any]]


class SubscriberBug(Exception):
    """Raised by the subscriber's own code."""


class ServiceDown(Exception):
    """Raised by the source: the service's failure."""


class Counted:
    """A cold source that counts its subscriptions."""

    def __init__(self, make: Callable[[], rx.Observable[Any]]) -> None:
        self.subscriptions = 0
        self._make = make

    def observable(self) -> rx.Observable[Any]:
        def subscribe(_: Any) -> rx.Observable[Any]:
            self.subscriptions += 1
            return self._make()

        return rx.defer(subscribe)


class Subscriber:
    """Raises on its first value; records what it receives, and when."""

    def __init__(self, scheduler: TestScheduler | None = None) -> None:
        self.scheduler = scheduler
        self.seen: list[tuple[float, str, Any]] = []

    def _now(self) -> float:
        return float(self.scheduler.clock) if self.scheduler is not None else 0.0

    def on_next(self, value: Any) -> None:
        self.seen.append((self._now(), "next", value))
        if len([kind for _, kind, _ in self.seen if kind == "next"]) == 1:
            raise SubscriberBug(f"bug on {value!r}")

    def on_error(self, error: Exception) -> None:
        self.seen.append((self._now(), "error", type(error)))

    def on_completed(self) -> None:
        self.seen.append((self._now(), "completed", None))


def drive(scheduler: TestScheduler, until: float) -> list[float]:
    """Advance to ``until``; the instants a subscriber's exception reached the
    scheduler (it does, from a timer-driven source, as with plain RxPY)."""
    raised: list[float] = []
    while True:
        try:
            scheduler.advance_to(until)
            return raised
        except SubscriberBug:
            raised.append(float(scheduler.clock))
            scheduler.stop()  # a raising action leaves a TestScheduler running


# --- circuit breaker -----------------------------------------------------------------


def test_a_subscriber_bug_on_a_synchronous_source_is_no_failure_of_the_service(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    breaker = breaker_on(failure_threshold=1, reset_timeout=30.0)
    subscriber = Subscriber()
    rx.of(1, 2).pipe(rxr.circuit_breaker(breaker)).subscribe(
        subscriber.on_next, subscriber.on_error, subscriber.on_completed
    )
    # As RxPY: the bug comes back to its subscriber as on_error, 2 never comes.
    assert subscriber.seen == [(0.0, "next", 1), (0.0, "error", SubscriberBug)]
    metrics = breaker.metrics()
    assert breaker.state is rxr.CircuitState.CLOSED
    assert (metrics.successes, metrics.failures) == (1, 0)


def test_a_subscriber_bug_on_a_timer_driven_source_settles_the_call_at_once(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(failure_threshold=1, reset_timeout=30.0, scheduler=scheduler)
    source = scheduler.create_cold_observable(on_next(2, "a"), on_next(5, "b"))
    subscriber = Subscriber(scheduler)
    source.pipe(rxr.circuit_breaker(breaker)).subscribe(
        subscriber.on_next, subscriber.on_error, subscriber.on_completed
    )
    assert drive(scheduler, 10.0) == [2.0]  # it travelled on to the scheduler
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures, metrics.ignored) == (1, 0, 0)
    assert breaker.state is rxr.CircuitState.CLOSED


def test_a_trial_whose_subscriber_raises_before_any_value_gives_its_permit_back(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    """No good value was seen (failure_if flagged it): settled as neither."""
    scheduler = TestScheduler()
    breaker = breaker_on(
        failure_threshold=1,
        reset_timeout=10.0,
        failure_if=lambda value: value == "503",
        scheduler=scheduler,
    )
    with pytest.raises(ServiceDown):
        breaker.call(_raise_service_down)
    scheduler.advance_to(10.0)
    subscriber = Subscriber(scheduler)
    rx.of("503").pipe(rxr.circuit_breaker(breaker)).subscribe(
        subscriber.on_next, subscriber.on_error
    )
    # The flagged value failed the trial before the subscriber ever saw it.
    assert breaker.state is rxr.CircuitState.OPEN
    assert subscriber.seen == [(10.0, "next", "503"), (10.0, "error", SubscriberBug)]


def _raise_service_down() -> None:
    raise ServiceDown("down")


# --- retry ------------------------------------------------------------------------------


def test_retry_never_retries_a_subscriber_bug_unlike_ops_retry() -> None:
    ours, theirs = Counted(lambda: rx.of(1, 2)), Counted(lambda: rx.of(1, 2))
    mine, plain = Subscriber(), Subscriber()
    ours.observable().pipe(rxr.retry(3, backoff=None)).subscribe(
        mine.on_next, mine.on_error, mine.on_completed
    )
    theirs.observable().pipe(ops.retry(3)).subscribe(
        plain.on_next, plain.on_error, plain.on_completed
    )
    assert ours.subscriptions == 1
    assert mine.seen == [(0.0, "next", 1), (0.0, "error", SubscriberBug)]
    assert theirs.subscriptions > 1  # the documented difference


def test_retry_with_a_backoff_does_not_retry_a_subscriber_bug_either() -> None:
    scheduler = TestScheduler()
    source = Counted(lambda: rx.of(1, 2))
    subscriber = Subscriber(scheduler)
    source.observable().pipe(rxr.retry(5, backoff=1.0)).subscribe(
        subscriber.on_next, subscriber.on_error, scheduler=scheduler
    )
    drive(scheduler, 100.0)
    assert source.subscriptions == 1
    assert [kind for _, kind, _ in subscriber.seen] == ["next", "error"]


def test_retry_on_a_timer_driven_source_lets_the_bug_travel_and_retries_nothing() -> (
    None
):
    scheduler = TestScheduler()
    source = Counted(
        lambda: scheduler.create_cold_observable(
            on_next(2, "a"), on_error(3, ServiceDown())
        )
    )
    subscriber = Subscriber(scheduler)
    source.observable().pipe(rxr.retry(3, backoff=1.0)).subscribe(
        subscriber.on_next, subscriber.on_error, scheduler=scheduler
    )
    assert drive(scheduler, 100.0) == [2.0]
    # The source's own later error is still the source's: it is retried.
    assert source.subscriptions == 3
    assert subscriber.seen[-1] == (11.0, "error", ServiceDown)


def test_retry_if_result_does_not_retry_a_subscriber_bug() -> None:
    source = Counted(lambda: rx.of(1, 2))
    subscriber = Subscriber()
    source.observable().pipe(
        rxr.retry(3, backoff=None, retry_if_result=lambda value: False)
    ).subscribe(subscriber.on_next, subscriber.on_error)
    assert source.subscriptions == 1
    assert subscriber.seen == [(0.0, "next", 1), (0.0, "error", SubscriberBug)]


def test_reset_on_success_does_not_retry_a_subscriber_bug() -> None:
    source = Counted(lambda: rx.of(1, 2))
    subscriber = Subscriber()
    source.observable().pipe(
        rxr.retry(3, backoff=None, reset_on_success=True)
    ).subscribe(subscriber.on_next, subscriber.on_error)
    assert source.subscriptions == 1


# --- fallback -----------------------------------------------------------------------------


def test_fallback_never_replaces_a_subscriber_bug() -> None:
    subscriber = Subscriber()
    rx.of(1, 2).pipe(rxr.fallback("cached")).subscribe(
        subscriber.on_next, subscriber.on_error, subscriber.on_completed
    )
    assert subscriber.seen == [(0.0, "next", 1), (0.0, "error", SubscriberBug)]


def test_fallback_still_replaces_the_sources_error_after_a_subscriber_bug() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(2, "a"), on_next(3, "b"), on_error(5, ServiceDown())
    )
    subscriber = Subscriber(scheduler)
    source.pipe(rxr.fallback("cached")).subscribe(
        subscriber.on_next, subscriber.on_error, subscriber.on_completed
    )
    assert drive(scheduler, 10.0) == [2.0]
    assert subscriber.seen[1:] == [
        (3.0, "next", "b"),
        (5.0, "next", "cached"),
        (5.0, "completed", None),
    ]


# --- timeout: the same notifications as ops.timeout ---------------------------------------


def test_timeout_passes_a_synchronous_subscriber_bug_on_and_never_times_out() -> None:
    scheduler = TestScheduler()
    subscriber = Subscriber(scheduler)
    rx.of(1, 2).pipe(rxr.timeout(5.0, fallback="cached")).subscribe(
        subscriber.on_next,
        subscriber.on_error,
        subscriber.on_completed,
        scheduler=scheduler,
    )
    drive(scheduler, 100.0)
    assert subscriber.seen == [(0.0, "next", 1), (0.0, "error", SubscriberBug)]


@given(
    times=st.lists(st.integers(1, 30), min_size=1, max_size=6, unique=True).map(sorted),
    end=st.one_of(st.none(), st.integers(1, 40)),
    duetime=st.integers(1, 12),
    raising=st.sets(st.integers(0, 5), min_size=1),
)
def test_timeout_matches_ops_timeout_when_the_subscriber_raises(
    times: list[int], end: int | None, duetime: int, raising: set[int]
) -> None:
    def run(operator: Operator) -> tuple[list[tuple[float, str, Any]], list[float]]:
        scheduler = TestScheduler()
        messages = [on_next(t, f"v{t}") for t in times]
        if end is not None and end > times[-1]:
            messages.append(on_completed(end))
        source = scheduler.create_cold_observable(*messages)
        seen: list[tuple[float, str, Any]] = []

        def next_(value: Any) -> None:
            seen.append((scheduler.clock, "next", value))
            if len(seen) - 1 in raising:
                raise SubscriberBug(value)

        source.pipe(operator(scheduler)).subscribe(
            next_,
            lambda e: seen.append((scheduler.clock, "error", type(e))),
            lambda: seen.append((scheduler.clock, "completed", None)),
            scheduler=scheduler,
        )
        return seen, drive(scheduler, 100.0)

    ours = run(lambda s: rxr.timeout(float(duetime), scheduler=s))
    theirs = run(lambda s: ops.timeout(float(duetime), scheduler=s))
    errors = {rxr.TimeoutError: "timeout", Exception: "timeout"}
    assert [_plain(event, errors) for event in ours[0]] == [
        _plain(event, errors) for event in theirs[0]
    ]
    assert ours[1] == theirs[1]


def _plain(event: tuple[float, str, Any], errors: dict[type, str]) -> tuple[Any, ...]:
    time, kind, value = event
    if kind == "error":
        return (time, kind, errors.get(value, value))
    return event


# --- resilient: every part at once ------------------------------------------------------


@pytest.mark.parametrize("timer_driven", [False, True])
def test_resilient_takes_a_subscriber_bug_for_nothing_but_the_subscribers(
    breaker_on: Callable[..., rxr.CircuitBreaker], timer_driven: bool
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(failure_threshold=1, reset_timeout=30.0, scheduler=scheduler)
    if timer_driven:
        source = Counted(
            lambda: scheduler.create_cold_observable(
                on_next(2, "fresh"), on_next(3, "more"), on_completed(4)
            )
        )
    else:
        source = Counted(lambda: rx.of("fresh", "more"))
    subscriber = Subscriber(scheduler)
    source.observable().pipe(
        rxr.resilient(
            timeout=5.0,
            retry=rxr.RetryPolicy(max_attempts=3, backoff=1.0),
            breaker=breaker,
            fallback="cached",
            total_timeout=60.0,
            scheduler=scheduler,
        )
    ).subscribe(
        subscriber.on_next,
        subscriber.on_error,
        subscriber.on_completed,
        scheduler=scheduler,
    )
    raised = drive(scheduler, 100.0)
    assert source.subscriptions == 1
    assert "cached" not in [value for _, _, value in subscriber.seen]
    assert breaker.state is rxr.CircuitState.CLOSED
    assert breaker.metrics().failures == 0
    if timer_driven:
        assert raised == [2.0]
        assert subscriber.seen == [
            (2.0, "next", "fresh"),
            (3.0, "next", "more"),
            (4.0, "completed", None),
        ]
    else:
        assert subscriber.seen == [
            (0.0, "next", "fresh"),
            (0.0, "error", SubscriberBug),
        ]
