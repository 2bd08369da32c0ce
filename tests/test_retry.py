"""``rxr.retry``: marble tests in virtual time, differential tests against RxPY."""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

import rxresilience as rxr

from ._support import Event, pending, record

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

NO_JITTER = rxr.ExponentialBackoff(base=1.0, factor=2.0, max_delay=30.0, jitter=0.0)


class Boom(Exception):
    """A test failure."""


def failing_then(scheduler: TestScheduler, error: Exception) -> Any:
    """A cold source: ``a`` at +3, then ``error`` at +5."""
    return scheduler.create_cold_observable(on_next(3, "a"), on_error(5, error))


# --- virtual-time schedule -------------------------------------------------


def test_attempts_start_after_each_backoff_in_virtual_time() -> None:
    scheduler = TestScheduler()
    error = Boom()
    source = failing_then(scheduler, error)
    started = time.perf_counter()
    events = record(scheduler, lambda: source.pipe(rxr.retry(3, backoff=NO_JITTER)))
    # attempt k starts at t0 + sum(durations + delays so far): 200, 200+5+1, 206+5+2
    assert source.subscriptions == [
        Subscription(200, 205),
        Subscription(206, 211),
        Subscription(213, 218),
    ]
    assert events == [
        (203.0, "next", "a"),
        (209.0, "next", "a"),
        (216.0, "next", "a"),
        (218.0, "error", error),
    ]
    assert time.perf_counter() - started < 5.0  # virtual seconds, not real ones


def test_a_thirty_second_backoff_takes_no_wall_time() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Boom()))
    started = time.perf_counter()
    record(
        scheduler,
        lambda: source.pipe(rxr.retry(4, backoff=rxr.ConstantBackoff(30.0))),
        subscribe_at=0.0,
    )
    assert [s.subscribe for s in source.subscriptions] == [0, 31, 62, 93]
    assert time.perf_counter() - started < 5.0


def test_success_on_a_later_attempt_completes_without_error() -> None:
    scheduler = TestScheduler()
    calls = 0

    def factory(_: abc.SchedulerBase) -> rx.Observable[str]:
        nonlocal calls
        calls += 1
        if calls < 3:
            return rx.throw(Boom(f"call {calls}"))
        return rx.of("ok")

    events = record(
        scheduler, lambda: rx.defer(factory).pipe(rxr.retry(5, backoff=NO_JITTER))
    )
    assert events == [(203.0, "next", "ok"), (203.0, "completed", None)]
    assert calls == 3


def test_exhaustion_delivers_the_last_attempts_own_exception() -> None:
    scheduler = TestScheduler()
    errors = [Boom("first"), Boom("second"), Boom("third")]
    source = rx.defer(lambda _: rx.throw(errors.pop(0)))
    events = record(scheduler, lambda: source.pipe(rxr.retry(3, backoff=None)))
    assert len(events) == 1
    assert events[0][1] == "error"
    assert str(events[0][2]) == "third"
    assert type(events[0][2]) is Boom


def test_the_default_policy_is_three_attempts_with_exponential_jitter() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(0, Boom()))
    record(
        scheduler,
        lambda: source.pipe(rxr.retry(rng=random.Random(9))),
        subscribe_at=0.0,
    )
    first, second = rxr.ExponentialBackoff().sample(2, random.Random(9))
    starts = [s.subscribe for s in source.subscriptions]
    assert len(starts) == 3
    assert starts[1] == pytest.approx(first, abs=1e-5)  # the clock keeps microseconds
    assert starts[2] == pytest.approx(first + second, abs=1e-5)
    assert 1.0 <= first < 1.3
    assert 2.0 <= second < 2.6


def test_a_seeded_rng_gives_the_same_schedule_every_run() -> None:
    def schedule(seed: int) -> list[float]:
        scheduler = TestScheduler()
        starts: list[float] = []

        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> None:
            starts.append(scheduler.clock)
            observer.on_error(Boom())

        record(
            scheduler,
            lambda: rx.create(subscribe).pipe(rxr.retry(6, rng=random.Random(seed))),
            subscribe_at=0.0,
        )
        return starts

    assert schedule(42) == schedule(42)
    assert schedule(42) != schedule(43)


# --- scheduler selection ----------------------------------------------------


def test_operator_scheduler_wins_over_subscribe_scheduler() -> None:
    subscribe_time = TestScheduler()
    operator_time = TestScheduler()
    source = rx.throw(Boom())
    subscriptions: list[float] = []
    observable = rx.defer(
        lambda _: (subscriptions.append(operator_time.clock), source)[1]
    ).pipe(rxr.retry(2, backoff=5.0, scheduler=operator_time))
    observable.subscribe(on_error=lambda _: None, scheduler=subscribe_time)
    assert subscriptions == [0.0]
    subscribe_time.advance_by(10)
    assert subscriptions == [0.0]  # the subscribe-time scheduler is not used
    operator_time.advance_by(5)
    assert subscriptions == [0.0, 5.0]


def test_default_scheduler_is_the_timeout_scheduler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = threading.Event()
    delays: list[float] = []
    attempts = 0
    original = TimeoutScheduler.schedule_relative

    def recording(
        self: TimeoutScheduler, duetime: Any, action: Any, state: Any = None
    ) -> Any:
        delays.append(float(duetime))
        return original(self, duetime, action, state)

    monkeypatch.setattr(TimeoutScheduler, "schedule_relative", recording)

    def factory(_: abc.SchedulerBase) -> rx.Observable[int]:
        nonlocal attempts
        attempts += 1
        return rx.throw(Boom()) if attempts == 1 else rx.of(1)

    # The second attempt may run on the timer's thread or, if the timer fires
    # before the first subscribe call has unwound, on the thread that still
    # runs the drain loop: either way the delay was a TimeoutScheduler timer.
    rx.defer(factory).pipe(rxr.retry(2, backoff=0.001)).subscribe(on_completed=done.set)
    assert done.wait(5.0)
    assert delays == [0.001]
    assert attempts == 2


# --- differential: backoff=None is reactivex.operators.retry ----------------

_KIND = st.sampled_from(["next", "error", "completed", "silent"])


@st.composite
def cold_messages(draw: st.DrawFn) -> list[Any]:
    """A cold observable's messages: values at increasing offsets, then a terminal."""
    count = draw(st.integers(min_value=0, max_value=4))
    offsets = sorted(
        draw(st.lists(st.integers(0, 20), min_size=count + 1, max_size=count + 1))
    )
    messages: list[Any] = [
        on_next(offset, value)
        for offset, value in zip(offsets[:-1], range(count), strict=True)
    ]
    ending = draw(_KIND)
    if ending == "error":
        # at least 1 tick: an instant failure retried forever never leaves its tick
        messages.append(on_error(max(offsets[-1], 1), _SHARED_ERROR))
    elif ending == "completed":
        messages.append(on_completed(offsets[-1]))
    return messages


_SHARED_ERROR = Boom("shared")


def _run_with(operator: Any, messages: list[Any], dispose_at: float) -> Any:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(messages)
    events = record(
        scheduler, lambda: source.pipe(operator), dispose_at=dispose_at, until=2000.0
    )
    return events, source.subscriptions


# Disposal times start after the subscription instant: see
# test_subscribing_happens_at_once_not_through_the_queue for the one difference.
@given(
    messages=cold_messages(),
    attempts=st.integers(min_value=1, max_value=6),
    dispose_at=st.integers(min_value=201, max_value=320),
)
def test_retry_without_backoff_matches_rxpy_retry(
    messages: list[Any], attempts: int, dispose_at: int
) -> None:
    ours = _run_with(rxr.retry(attempts, backoff=None), messages, dispose_at)
    theirs = _run_with(ops.retry(attempts), messages, dispose_at)
    assert ours == theirs  # errors are the same object, so == is identity here


@given(messages=cold_messages(), dispose_at=st.integers(min_value=201, max_value=320))
def test_unlimited_retry_matches_rxpy_unlimited_retry(
    messages: list[Any], dispose_at: int
) -> None:
    ours = _run_with(rxr.retry(None, backoff=None), messages, dispose_at)
    theirs = _run_with(ops.retry(), messages, dispose_at)
    assert ours == theirs


def test_subscribing_happens_at_once_not_through_the_queue() -> None:
    """The documented difference: RxPY's retry queues its first subscription.

    A disposal queued for the very instant of subscription therefore finds
    RxPY's retry not yet subscribed, while ours has subscribed (and now
    unsubscribes): a zero-length subscription. The notifications are the same.
    """
    ours = _run_with(rxr.retry(2, backoff=None), [on_completed(5)], 200)
    theirs = _run_with(ops.retry(2), [on_completed(5)], 200)
    assert ours[0] == theirs[0] == []
    assert ours[1] == [Subscription(200, 200)]
    assert theirs[1] == []


def test_differential_on_synchronous_sources() -> None:
    def attempt_log(operator: Any) -> tuple[list[str], list[Event]]:
        log: list[str] = []
        calls = 0

        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> None:
            nonlocal calls
            calls += 1
            log.append(f"call {calls}")
            observer.on_next(calls)
            if calls < 3:
                observer.on_error(_SHARED_ERROR)
            else:
                observer.on_completed()

        scheduler = TestScheduler()
        return log, record(scheduler, lambda: rx.create(subscribe).pipe(operator))

    assert attempt_log(rxr.retry(5, backoff=None)) == attempt_log(ops.retry(5))
    assert attempt_log(rxr.retry(2, backoff=None)) == attempt_log(ops.retry(2))


# --- disposal ----------------------------------------------------------------


def test_disposing_during_backoff_cancels_the_pending_timer() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(5, Boom()))
    events = record(
        scheduler,
        lambda: source.pipe(rxr.retry(3, backoff=10.0)),
        dispose_at=210.0,
        until=210.0,
    )
    assert events == []
    assert pending(scheduler) == []
    scheduler.advance_to(1000.0)
    assert source.subscriptions == [Subscription(200, 205)]


def test_disposing_mid_attempt_unsubscribes_the_source() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(50, 1), on_completed(60))
    record(
        scheduler,
        lambda: source.pipe(rxr.retry(3, backoff=NO_JITTER)),
        dispose_at=220.0,
    )
    assert source.subscriptions == [Subscription(200, 220)]


def test_disposal_from_inside_on_next_stops_resubscription() -> None:
    calls = 0

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> None:
        nonlocal calls
        calls += 1
        observer.on_next(calls)
        observer.on_error(Boom())

    values: list[int] = []
    rx.create(subscribe).pipe(rxr.retry(None, backoff=None), ops.take(3)).subscribe(
        values.append
    )
    assert values == [1, 2, 3]
    assert calls == 3


# --- stack and memory ----------------------------------------------------------


def test_a_hundred_thousand_synchronous_failures_use_constant_stack() -> None:
    calls = 0
    depths: list[int] = []
    live: list[int] = []

    def subscribe(observer: abc.ObserverBase[str], _: Any = None) -> None:
        nonlocal calls
        calls += 1
        if calls % 10_000 == 0:
            depths.append(len(_stack()))
            gc.collect()
            live.append(len(gc.get_objects()))
        if calls < 100_000:
            observer.on_error(Boom())
        else:
            observer.on_next("finally")
            observer.on_completed()

    values: list[str] = []
    rx.create(subscribe).pipe(rxr.retry(None, backoff=None)).subscribe(values.append)
    assert values == ["finally"]
    assert calls == 100_000
    assert max(depths) == min(depths)  # no growth in stack depth
    assert live[-1] - live[0] < 50  # nothing accumulates per attempt


def _stack() -> list[Any]:
    frames = []
    frame = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back  # type: ignore[assignment]
    return frames


def test_failures_that_arrive_on_another_thread_are_retried() -> None:
    done = threading.Event()
    attempts = 0
    result: list[int] = []

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> None:
        nonlocal attempts
        attempts += 1
        current = attempts

        def work() -> None:
            if current < 50:
                observer.on_error(Boom())
            else:
                observer.on_next(current)
                observer.on_completed()

        threading.Thread(target=work).start()

    rx.create(subscribe).pipe(rxr.retry(None, backoff=None)).subscribe(
        on_next=result.append, on_completed=done.set
    )
    assert done.wait(10.0)
    assert result == [50]


# --- should_retry, budgets, callbacks ------------------------------------------


class Retryable(Exception):
    pass


class Fatal(Exception):
    pass


def test_should_retry_false_ends_the_stream_at_once() -> None:
    scheduler = TestScheduler()
    fatal = Fatal()
    errors: list[Exception] = [Retryable(), fatal, Retryable()]
    calls = 0

    def factory(_: abc.SchedulerBase) -> rx.Observable[int]:
        nonlocal calls
        calls += 1
        return rx.throw(errors[calls - 1])

    events = record(
        scheduler,
        lambda: rx.defer(factory).pipe(
            rxr.retry(5, backoff=1.0, should_retry=lambda e: isinstance(e, Retryable))
        ),
    )
    assert events == [(201.0, "error", fatal)]
    assert calls == 2


def test_should_retry_accepts_exception_types() -> None:
    scheduler = TestScheduler()
    fatal = Fatal()
    source = rx.throw(fatal)
    events = record(
        scheduler, lambda: source.pipe(rxr.retry(5, should_retry=(Retryable, OSError)))
    )
    assert events == [(200.0, "error", fatal)]


def test_an_exception_from_should_retry_is_the_streams_error() -> None:
    scheduler = TestScheduler()
    broken = RuntimeError("predicate broke")

    def predicate(_: Exception) -> bool:
        raise broken

    events = record(
        scheduler, lambda: rx.throw(Boom()).pipe(rxr.retry(3, should_retry=predicate))
    )
    assert events == [(200.0, "error", broken)]


def test_on_retry_receives_each_scheduled_retry() -> None:
    scheduler = TestScheduler()
    error = Boom()
    seen: list[rxr.RetryEvent] = []
    record(
        scheduler,
        lambda: rx.throw(error).pipe(
            rxr.retry(3, backoff=NO_JITTER, on_retry=seen.append)
        ),
    )
    assert seen == [
        rxr.RetryEvent(attempt=1, delay=1.0, error=error),
        rxr.RetryEvent(attempt=2, delay=2.0, error=error),
    ]


def test_an_exception_from_on_retry_is_the_streams_error() -> None:
    scheduler = TestScheduler()
    broken = RuntimeError("hook broke")

    def hook(_: rxr.RetryEvent) -> None:
        raise broken

    calls = 0

    def factory(_: abc.SchedulerBase) -> rx.Observable[int]:
        nonlocal calls
        calls += 1
        return rx.throw(Boom())

    events = record(
        scheduler, lambda: rx.defer(factory).pipe(rxr.retry(3, on_retry=hook))
    )
    assert events == [(200.0, "error", broken)]
    assert calls == 1


def test_max_elapsed_stops_scheduling_attempts_past_the_budget() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Boom()))
    # attempts at 0, 2 (1+1), 5 (3+2), 10 (6+4) would follow; budget 6 allows 0, 2, 5
    record(
        scheduler,
        lambda: source.pipe(rxr.retry(None, backoff=NO_JITTER, max_elapsed=6.0)),
        subscribe_at=0.0,
    )
    assert [s.subscribe for s in source.subscriptions] == [0, 2, 5]


def test_an_attempt_exactly_at_the_budget_is_allowed() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Boom()))
    record(
        scheduler,
        lambda: source.pipe(rxr.retry(None, backoff=NO_JITTER, max_elapsed=5.0)),
        subscribe_at=0.0,
    )
    assert [s.subscribe for s in source.subscriptions] == [0, 2, 5]


def test_reset_on_success_restarts_attempts_and_backoff() -> None:
    scheduler = TestScheduler()
    calls = 0

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> Any:
        nonlocal calls
        calls += 1
        call = calls

        def act(*_: Any) -> None:
            if call in (1, 3, 5, 7):  # odd calls emit before failing
                observer.on_next(call)
            observer.on_error(Boom(f"call {call}"))

        return scheduler.schedule_relative(1.0, act)

    starts: list[float] = []

    def factory(_: abc.SchedulerBase) -> rx.Observable[int]:
        starts.append(scheduler.clock)
        return rx.create(subscribe)

    events = record(
        scheduler,
        lambda: rx.defer(factory).pipe(
            rxr.retry(3, backoff=NO_JITTER, reset_on_success=True)
        ),
        subscribe_at=0.0,
    )
    # Odd calls emit before failing, which resets the count and the delays: the
    # delays go 1, 2, 1, 2, ... and only call 9 (after two silent failures in a
    # row following call 7's reset... and call 8) exhausts the 3 attempts.
    assert starts == [0.0, 2.0, 5.0, 7.0, 10.0, 12.0, 15.0, 17.0, 20.0]
    assert [e[2] for e in events if e[1] == "next"] == [1, 3, 5, 7]
    assert events[-1][1] == "error"
    assert str(events[-1][2]) == "call 9"


def test_without_reset_on_success_values_do_not_refill_the_budget() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, "v"), on_error(2, Boom()))
    events = record(
        scheduler, lambda: source.pipe(rxr.retry(3, backoff=NO_JITTER)), subscribe_at=0
    )
    assert len(source.subscriptions) == 3
    assert events[-1][1] == "error"


class RateLimited(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("429")
        self.retry_after = retry_after


def test_retry_after_lengthens_the_next_delay_beyond_the_cap() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, RateLimited(45.0)))
    record(
        scheduler,
        lambda: source.pipe(
            rxr.retry(2, backoff=rxr.ExponentialBackoff(max_delay=30.0, jitter=0.0))
        ),
        subscribe_at=0.0,
    )
    assert [s.subscribe for s in source.subscriptions] == [0, 46]


def test_retry_after_applies_without_backoff() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, RateLimited(3)))
    record(scheduler, lambda: source.pipe(rxr.retry(2, backoff=None)), subscribe_at=0)
    assert [s.subscribe for s in source.subscriptions] == [0, 4]


def test_retry_after_shorter_than_the_backoff_changes_nothing() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, RateLimited(0.5)))
    record(scheduler, lambda: source.pipe(rxr.retry(2, backoff=5.0)), subscribe_at=0)
    assert [s.subscribe for s in source.subscriptions] == [0, 6]


@pytest.mark.parametrize("value", ["3", True, None, float("nan"), -4.0])
def test_non_numeric_or_negative_retry_after_is_ignored(value: object) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, RateLimited(value)))
    record(scheduler, lambda: source.pipe(rxr.retry(2, backoff=2.0)), subscribe_at=0)
    assert [s.subscribe for s in source.subscriptions] == [0, 3]


def test_retry_after_past_the_time_budget_delivers_the_error_at_once() -> None:
    scheduler = TestScheduler()
    error = RateLimited(100.0)
    source = scheduler.create_cold_observable(on_error(1, error))
    events = record(
        scheduler,
        lambda: source.pipe(rxr.retry(5, backoff=1.0, max_elapsed=60.0)),
        subscribe_at=0,
    )
    assert events == [(1.0, "error", error)]
    assert len(source.subscriptions) == 1


def test_backoff_accepts_a_function_of_the_attempt_number() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(0, Boom()))
    record(
        scheduler,
        lambda: source.pipe(rxr.retry(4, backoff=lambda attempt: 10.0 * attempt)),
        subscribe_at=0,
    )
    assert [s.subscribe for s in source.subscriptions] == [0, 10, 30, 60]


def test_a_backoff_function_returning_garbage_fails_the_stream() -> None:
    scheduler = TestScheduler()
    events = record(
        scheduler,
        lambda: rx.throw(Boom()).pipe(rxr.retry(3, backoff=lambda _: -1.0)),
    )
    assert len(events) == 1
    assert isinstance(events[0][2], ValueError)
    assert "backoff" in str(events[0][2])


# --- per-subscription state -------------------------------------------------------


def test_each_subscription_keeps_its_own_attempt_count() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Boom()))
    retried = source.pipe(rxr.retry(2, backoff=NO_JITTER))
    record(scheduler, lambda: retried, subscribe_at=0, until=0.5)
    record(scheduler, lambda: retried, subscribe_at=1, until=1000)
    assert [s.subscribe for s in source.subscriptions] == [0, 1, 2, 3]


def test_repeat_after_retry_gets_a_fresh_budget_each_time() -> None:
    calls = 0

    def factory(_: abc.SchedulerBase) -> rx.Observable[int]:
        nonlocal calls
        calls += 1
        # every repeat round fails twice then succeeds
        return rx.of(calls) if calls % 3 == 0 else rx.throw(Boom())

    values: list[int] = []
    rx.defer(factory).pipe(rxr.retry(3, backoff=None), ops.repeat(3)).subscribe(
        values.append
    )
    assert values == [3, 6, 9]


def test_a_retried_observable_can_be_subscribed_concurrently() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(2, Boom()))
    retried = source.pipe(rxr.retry(3, backoff=NO_JITTER))
    a = record(scheduler, lambda: retried, subscribe_at=0, until=0)
    b = record(scheduler, lambda: retried, subscribe_at=1, until=100)
    assert [(time, kind) for time, kind, _ in a] == [(9.0, "error")]
    assert [(time, kind) for time, kind, _ in b] == [(10.0, "error")]
    assert sorted(s.subscribe for s in source.subscriptions) == [0, 1, 3, 4, 7, 8]


# --- policies ------------------------------------------------------------------


def test_retry_accepts_a_policy_object() -> None:
    scheduler = TestScheduler()
    policy = rxr.RetryPolicy(max_attempts=4, backoff=2.0)
    source = scheduler.create_cold_observable(on_error(1, Boom()))
    record(scheduler, lambda: source.pipe(rxr.retry(policy)), subscribe_at=0)
    assert [s.subscribe for s in source.subscriptions] == [0, 3, 6, 9]


def test_policy_with_scheduler_override() -> None:
    other = TestScheduler()
    policy = rxr.RetryPolicy(max_attempts=2, backoff=1.0)
    calls: list[float] = []

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> None:
        calls.append(other.clock)
        observer.on_error(Boom())

    rx.create(subscribe).pipe(rxr.retry(policy, scheduler=other)).subscribe(
        on_error=lambda _: None, scheduler=TestScheduler()
    )
    other.advance_by(1)
    assert calls == [0.0, 1.0]


def test_a_policy_with_keyword_options_is_refused() -> None:
    with pytest.raises(TypeError, match="either a RetryPolicy"):
        rxr.retry(rxr.RetryPolicy(), max_elapsed=3.0)  # type: ignore[call-overload]


# --- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"max_attempts": -2}, ValueError, "max_attempts"),
        ({"max_attempts": 2.5}, TypeError, "max_attempts"),
        ({"max_attempts": True}, TypeError, "max_attempts"),
        ({"backoff": -1.0}, ValueError, "backoff"),
        ({"backoff": "soon"}, TypeError, "backoff"),
        ({"should_retry": 3}, TypeError, "should_retry"),
        ({"should_retry": "yes"}, TypeError, "should_retry"),
        ({"max_elapsed": 0}, ValueError, "max_elapsed"),
        ({"max_elapsed": -5.0}, ValueError, "max_elapsed"),
        ({"reset_on_success": 1}, TypeError, "reset_on_success"),
        ({"rng": 42}, TypeError, "rng"),
        ({"scheduler": "now"}, TypeError, "scheduler"),
        ({"on_retry": "log"}, TypeError, "on_retry"),
    ],
)
def test_bad_input_raises_at_construction_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.retry(**kwargs)


def test_bad_backoff_policies_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="jitter"):
        rxr.retry(3, backoff=rxr.ExponentialBackoff(jitter=2.0))
    with pytest.raises(ValueError, match="factor"):
        rxr.retry(3, backoff=rxr.ExponentialBackoff(factor=0.5))


def test_retry_if_result_retries_a_flagged_value_and_delivers_it_when_exhausted() -> (
    None
):
    source = rxr.testing.flaky([503], failures=0)
    trace = rxr.testing.run(
        lambda: source.pipe(
            rxr.retry(3, backoff=1.0, retry_if_result=lambda v: v >= 500)
        )
    )
    assert source.calls == 3
    error = trace.error
    assert isinstance(error, rxr.ResultRejectedError)
    assert error.value == 503
    assert trace.values == []


def test_retry_if_result_passes_good_values_through() -> None:
    answers = iter([503, 200])
    source = rx.defer(lambda _: rx.of(next(answers)))
    trace = rxr.testing.run(
        lambda: source.pipe(
            rxr.retry(3, backoff=None, retry_if_result=lambda v: v >= 500)
        )
    )
    trace.assert_values(200).assert_completed()


def test_a_raising_retry_if_result_is_the_streams_error() -> None:
    broken = RuntimeError("predicate broke")

    def predicate(_: Any) -> bool:
        raise broken

    trace = rxr.testing.run(
        lambda: rx.of(1).pipe(rxr.retry(3, retry_if_result=predicate))
    )
    assert trace.error is broken
