"""A refusal is not a call: retry waits it out without spending attempts."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import no_delays

from ._support import pending, record


class ServiceDown(Exception):
    pass


class Script:
    """A source that answers each subscription from a script, logging when."""

    def __init__(self, scheduler: TestScheduler, *answers: Exception | str) -> None:
        self.scheduler = scheduler
        self.answers = list(answers)
        self.starts: list[float] = []

    def observable(self) -> rx.Observable[str]:
        def subscribe(_: Any) -> rx.Observable[str]:
            self.starts.append(float(self.scheduler.clock))
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if isinstance(answer, Exception):
                return rx.throw(answer)
            return rx.of(answer)

        return rx.defer(subscribe)


def refused(retry_after: float | None) -> rxr.CallRefusedError:
    return rxr.CallRefusedError("no permit", retry_after=retry_after)


# --- the error ---------------------------------------------------------------------------


def test_a_circuit_open_error_is_a_refusal() -> None:
    error = rxr.CircuitOpenError("payments", "open", 4.0)
    assert isinstance(error, rxr.CallRefusedError)
    assert isinstance(error, rxr.ResilienceError)
    assert error.retry_after == 4.0
    assert str(error) == "circuit breaker 'payments' is open; retry after 4.000s"


# --- retry and refusals -------------------------------------------------------------------


def test_a_refusal_is_waited_exactly_and_spends_no_attempt_nor_backoff_step() -> None:
    scheduler = TestScheduler()
    source = Script(scheduler, refused(5.0), refused(5.0), ServiceDown(), "ok")
    events = record(
        scheduler,
        lambda: source.observable().pipe(
            rxr.retry(2, backoff=rxr.LinearBackoff(initial=1.0, step=10.0))
        ),
        subscribe_at=0,
    )
    # Two refusals (5 s each), then attempt 1 fails and the *first* backoff
    # step (1 s, not 21 s) leads to attempt 2: both attempts were calls.
    assert source.starts == [0.0, 5.0, 10.0, 11.0]
    assert events == [(11.0, "next", "ok"), (11.0, "completed", None)]


def test_refusal_waits_add_up_to_at_most_max_refusal_wait() -> None:
    scheduler = TestScheduler()
    refusal = refused(25.0)
    source = Script(scheduler, refusal)
    events = record(
        scheduler,
        lambda: source.observable().pipe(rxr.retry(3, max_refusal_wait=60.0)),
        subscribe_at=0,
    )
    assert source.starts == [0.0, 25.0, 50.0]  # a third wait would reach 75 s
    assert events == [(50.0, "error", refusal)]


def test_refusal_waits_stay_within_max_elapsed() -> None:
    scheduler = TestScheduler()
    refusal = refused(25.0)
    source = Script(scheduler, refusal)
    events = record(
        scheduler,
        lambda: source.observable().pipe(rxr.retry(3, max_elapsed=30.0)),
        subscribe_at=0,
    )
    assert source.starts == [0.0, 25.0]
    assert events == [(25.0, "error", refusal)]


def test_max_refusal_wait_zero_fails_at_the_first_refusal() -> None:
    scheduler = TestScheduler()
    refusal = refused(1.0)
    source = Script(scheduler, refusal, "ok")
    events = record(
        scheduler,
        lambda: source.observable().pipe(rxr.retry(3, max_refusal_wait=0)),
        subscribe_at=0,
    )
    assert events == [(0.0, "error", refusal)]


@pytest.mark.parametrize("retry_after", [None, math.inf, math.nan, 1e10])
def test_a_refusal_that_cannot_be_waited_out_ends_the_retry_at_once(
    retry_after: float | None,
) -> None:
    scheduler = TestScheduler()
    refusal = refused(retry_after)
    source = Script(scheduler, refusal, "ok")
    events = record(
        scheduler, lambda: source.observable().pipe(rxr.retry(5)), subscribe_at=0
    )
    assert source.starts == [0.0]
    assert events == [(0.0, "error", refusal)]


def test_a_refusal_saying_come_back_now_cannot_spin_the_retry() -> None:
    scheduler = TestScheduler()
    source = Script(scheduler, refused(0.0), refused(-3.0), "ok")
    events = record(
        scheduler, lambda: source.observable().pipe(rxr.retry(1)), subscribe_at=0
    )
    assert source.starts == [0.0, 0.001, 0.002]
    assert events[0][1:] == ("next", "ok")


def test_should_retry_is_not_asked_about_refusals() -> None:
    scheduler = TestScheduler()
    source = Script(scheduler, refused(2.0), "ok")
    asked: list[Exception] = []

    def only_network(error: Exception) -> bool:
        asked.append(error)
        return isinstance(error, ConnectionError)

    events = record(
        scheduler,
        lambda: source.observable().pipe(rxr.retry(3, should_retry=only_network)),
        subscribe_at=0,
    )
    assert asked == []
    assert events == [(2.0, "next", "ok"), (2.0, "completed", None)]


def test_on_retry_hears_of_refusal_waits() -> None:
    scheduler = TestScheduler()
    refusal, failure = refused(2.0), ServiceDown()
    source = Script(scheduler, refusal, failure, "ok")
    heard: list[rxr.RetryEvent] = []
    record(
        scheduler,
        lambda: source.observable().pipe(
            rxr.retry(3, backoff=1.0, on_retry=heard.append)
        ),
        subscribe_at=0,
    )
    assert heard == [
        rxr.RetryEvent(1, 2.0, refusal, refused=True),
        rxr.RetryEvent(1, 1.0, failure),
    ]


def test_reset_on_success_refills_the_refusal_budget() -> None:
    scheduler = TestScheduler()
    answers: list[rx.Observable[str]] = [
        rx.throw(refused(40.0)),
        rx.concat(rx.of("tick"), rx.throw(refused(40.0))),
        rx.of("done"),
    ]
    starts: list[float] = []

    def subscribe(_: Any) -> rx.Observable[str]:
        starts.append(float(scheduler.clock))
        return answers.pop(0)

    events = record(
        scheduler,
        lambda: rx.defer(subscribe).pipe(
            rxr.retry(1, reset_on_success=True, max_refusal_wait=60.0)
        ),
        subscribe_at=0,
    )
    assert starts == [0.0, 40.0, 80.0]
    assert [kind for _, kind, _ in events] == ["next", "next", "completed"]


def test_under_no_delays_a_refusal_ends_the_retry_at_once() -> None:
    scheduler = TestScheduler()
    refusal = refused(5.0)
    source = Script(scheduler, refusal, "ok")
    with no_delays():
        events = record(
            scheduler, lambda: source.observable().pipe(rxr.retry(3)), subscribe_at=0
        )
    assert events == [(0.0, "error", refusal)]


# --- retry around a breaker ----------------------------------------------------------------


def test_a_retry_around_an_open_breaker_waits_for_the_trial_instead_of_giving_up(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(failure_threshold=1, reset_timeout=10.0, scheduler=scheduler)
    source = Script(scheduler, ServiceDown(), "ok")
    events = record(
        scheduler,
        lambda: source.observable().pipe(
            rxr.circuit_breaker(breaker), rxr.retry(2, backoff=1.0)
        ),
        subscribe_at=0,
    )
    # t=0 fails and opens; t=1 is refused (retry_after 9), not an attempt;
    # t=10 is the trial, attempt 2, which closes the breaker.
    assert source.starts == [0.0, 10.0]
    assert events == [(10.0, "next", "ok"), (10.0, "completed", None)]
    assert breaker.state is rxr.CircuitState.CLOSED


def test_a_forced_open_breaker_ends_a_retry_at_once(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(scheduler=scheduler)
    breaker.force_open()
    source = Script(scheduler, "ok")
    events = record(
        scheduler,
        lambda: source.observable().pipe(
            rxr.circuit_breaker(breaker), rxr.retry(5, backoff=1.0)
        ),
        subscribe_at=0,
    )
    [(time, kind, error)] = events
    assert (time, kind) == (0.0, "error")
    assert isinstance(error, rxr.CircuitOpenError)
    assert error.state == "forced-open"
    assert source.starts == []


def test_two_hundred_callers_wait_out_a_half_open_trial_and_all_succeed(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    """The shape a new user hit: callers arriving while one 3.3 s trial runs."""
    scheduler = TestScheduler()
    breaker = breaker_on(
        failure_threshold=1,
        reset_timeout=30.0,
        max_half_open_wait=20.0,
        scheduler=scheduler,
    )
    with pytest.raises(ServiceDown):
        breaker.call(_fail)
    calls: list[float] = []

    def service(seconds: float) -> rx.Observable[str]:
        def subscribe(_: Any) -> rx.Observable[str]:
            calls.append(float(scheduler.clock))
            return rx.timer(seconds, scheduler=scheduler).pipe(ops.map(lambda _: "ok"))

        return rx.defer(subscribe)

    guarded = rxr.resilient(
        retry=rxr.RetryPolicy(
            max_attempts=4, backoff=rxr.ExponentialBackoff(base=0.2, jitter=0.0)
        ),
        breaker=breaker,
        scheduler=scheduler,
    )
    outcomes: list[Any] = []
    # The trial: admitted at t=30 (the reset timeout is over), takes 3.3 s.
    scheduler.schedule_absolute(
        30.0, lambda *_: service(3.3).pipe(guarded).subscribe(outcomes.append)
    )
    for index in range(200):  # 200 orders arriving while the trial runs
        at = 30.01 + index * 3.28 / 200
        scheduler.schedule_absolute(
            at,
            lambda *_: (
                service(0.1).pipe(guarded).subscribe(outcomes.append, outcomes.append)
            ),
        )
    scheduler.advance_to(120.0)
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert failures == []
    assert outcomes == ["ok"] * 201
    assert calls[0] == 30.0
    assert min(calls[1:]) >= 33.3  # nobody reached the service during the trial
    assert breaker.state is rxr.CircuitState.CLOSED


def _fail() -> None:
    raise ServiceDown("down")


def test_a_half_open_refusal_waits_until_the_earliest_trial_may_be_abandoned(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(
        failure_threshold=1,
        reset_timeout=30.0,
        max_half_open_wait=2.0,
        scheduler=scheduler,
    )
    with pytest.raises(ServiceDown):
        breaker.call(_fail)
    scheduler.advance_to(30.0)
    rx.never().pipe(rxr.circuit_breaker(breaker)).subscribe()  # the trial
    scheduler.advance_to(30.5)
    errors: list[Exception] = []
    rx.of(1).pipe(rxr.circuit_breaker(breaker)).subscribe(on_error=errors.append)
    [error] = errors
    assert isinstance(error, rxr.CircuitOpenError)
    assert error.state == "half-open"
    assert error.retry_after == pytest.approx(1.5)  # the trial ends by t=32


def test_resilient_total_timeout_bounds_the_refusal_waits(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(failure_threshold=1, reset_timeout=30.0, scheduler=scheduler)
    with pytest.raises(ServiceDown):
        breaker.call(_fail)
    source = Script(scheduler, "ok")
    events = record(
        scheduler,
        lambda: source.observable().pipe(
            rxr.resilient(
                timeout=1.0,
                retry=rxr.RetryPolicy(max_attempts=3),
                breaker=breaker,
                total_timeout=5.0,
                scheduler=scheduler,
            )
        ),
        subscribe_at=0,
    )
    [(time, kind, error)] = events
    assert (time, kind) == (5.0, "error")
    assert isinstance(error, rxr.TimeoutError)
    assert error.budget == "total"
    assert source.starts == []  # the breaker never let a call through


def test_resilient_falls_back_on_a_refusal_that_ends_the_retry(
    breaker_on: Callable[..., rxr.CircuitBreaker],
) -> None:
    scheduler = TestScheduler()
    breaker = breaker_on(scheduler=scheduler)
    breaker.force_open()
    source = Script(scheduler, "fresh")
    seen: list[Exception] = []

    def cached(error: Exception) -> rx.Observable[str]:
        seen.append(error)
        return rx.of("cached")

    events = record(
        scheduler,
        lambda: source.observable().pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(max_attempts=3),
                breaker=breaker,
                fallback=cached,
                scheduler=scheduler,
            )
        ),
        subscribe_at=0,
    )
    assert events == [(0.0, "next", "cached"), (0.0, "completed", None)]
    [refusal] = seen
    assert isinstance(refusal, rxr.CircuitOpenError)
    assert source.starts == []


# --- runtime waits beyond what a timer can hold -------------------------------------------


class WatchedScheduler(TimeoutScheduler):
    """The real default scheduler, refusing (instead of arming) absurd waits."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        seconds = self.to_seconds(duetime)
        self.waits.append(seconds)
        if seconds > threading.TIMEOUT_MAX:
            raise AssertionError(f"a timer armed for {seconds} s would overflow")
        return super().schedule_relative(duetime, action, state)


def test_a_retry_after_of_centuries_gives_up_at_once_with_the_servers_error() -> None:
    scheduler = WatchedScheduler()
    error = rxr.RetryAfterError(503, 99999999999.0, None)
    errors: list[Exception] = []
    rx.throw(error).pipe(rxr.retry(3, scheduler=scheduler)).subscribe(
        on_error=errors.append
    )
    assert errors == [error]  # delivered at once, in the caller's thread
    assert scheduler.waits == []


class ComeBackLater(Exception):
    def __init__(self, retry_after: Any) -> None:
        super().__init__(f"come back after {retry_after!r}")
        self.retry_after = retry_after


@pytest.mark.parametrize("retry_after", [10**400, math.inf, 1e10])
def test_a_huge_retry_after_of_any_number_type_gives_up_with_the_error(
    retry_after: Any,
) -> None:
    scheduler = WatchedScheduler()
    error = ComeBackLater(retry_after)
    errors: list[Exception] = []
    rx.throw(error).pipe(rxr.retry(3, scheduler=scheduler)).subscribe(
        on_error=errors.append
    )
    assert errors == [error]
    assert scheduler.waits == []


def test_a_function_backoff_of_centuries_gives_up_at_once() -> None:
    scheduler = WatchedScheduler()
    error = ServiceDown()
    errors: list[Exception] = []
    rx.throw(error).pipe(
        rxr.retry(3, backoff=lambda attempt: 1e12, scheduler=scheduler)
    ).subscribe(on_error=errors.append)
    assert errors == [error]
    assert scheduler.waits == []


def test_an_absolute_deadline_beyond_any_timer_arms_none() -> None:
    scheduler = WatchedScheduler()
    far = datetime(9999, 1, 1, tzinfo=UTC)
    subscription = (
        rx.never().pipe(rxr.timeout(far, total=far, scheduler=scheduler)).subscribe()
    )
    subscription.dispose()
    assert scheduler.waits == []


# --- two clocks meeting ----------------------------------------------------------------------


def test_resilient_refuses_a_virtual_pipeline_around_a_breaker_on_the_real_clock() -> (
    None
):
    breaker = rxr.CircuitBreaker(name="payments")
    with pytest.raises(ValueError, match=r"TestScheduler.*'payments'.*real clock"):
        rxr.resilient(breaker=breaker, scheduler=TestScheduler())
    virtual = rxr.CircuitBreaker(name="virtual", scheduler=TestScheduler())
    with pytest.raises(ValueError, match=r"TimeoutScheduler.*'virtual'.*virtual time"):
        rxr.resilient(breaker=virtual, scheduler=TimeoutScheduler.singleton())
    rxr.resilient(breaker=virtual, scheduler=TestScheduler())  # both virtual: fine
    rxr.resilient(breaker=breaker)  # decided at subscription


def test_a_breaker_on_the_real_clock_in_virtual_time_warns_once() -> None:
    breaker = rxr.CircuitBreaker(name="payments")
    scheduler = TestScheduler()
    with pytest.warns(RuntimeWarning, match="'payments' keeps the real clock"):
        rx.of(1).pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rx.of(1).pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
        rx.of(1).pipe(rxr.circuit_breaker(breaker)).subscribe()
        on_time = rxr.CircuitBreaker(scheduler=scheduler)
        rx.of(1).pipe(rxr.circuit_breaker(on_time)).subscribe(scheduler=scheduler)


def test_the_trap_inside_testing_run_is_announced() -> None:
    breaker = rxr.CircuitBreaker(name="shared")
    with pytest.warns(RuntimeWarning, match="'shared'"):
        rxr.testing.run(lambda: rx.of(1).pipe(rxr.circuit_breaker(breaker)))


def test_resilient_lets_a_retry_policys_own_scheduler_win() -> None:
    own, given = TestScheduler(), TestScheduler()
    source = Script(own, ServiceDown(), "ok")
    results: list[Any] = []
    source.observable().pipe(
        rxr.resilient(
            retry=rxr.RetryPolicy(backoff=2.0, scheduler=own), scheduler=given
        )
    ).subscribe(results.append)
    given.advance_to(10.0)
    assert results == []
    own.advance_to(2.0)
    assert results == ["ok"]


# --- odd numbers and odd callers -------------------------------------------------------------


def test_a_call_refused_error_takes_only_seconds_and_prints_any_of_them() -> None:
    with pytest.raises(TypeError, match="retry_after"):
        rxr.CallRefusedError("no", retry_after="soon")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry_after"):
        rxr.CallRefusedError("no", retry_after=True)
    huge = rxr.CallRefusedError("quota", retry_after=10**400)
    assert str(huge).startswith("quota; retry after 1000")
    assert str(rxr.CallRefusedError("quota")) == "quota"


def test_a_policy_of_your_own_may_set_retry_after_as_an_attribute() -> None:
    class QuotaExceeded(rxr.CallRefusedError):
        def __init__(self, wait: float) -> None:
            super().__init__("quota exceeded")
            self.retry_after = wait

    error = QuotaExceeded(2.5)
    assert error.retry_after == 2.5
    assert str(error) == "quota exceeded; retry after 2.500s"
    scheduler = TestScheduler()
    source = Script(scheduler, error, "ok")
    record(scheduler, lambda: source.observable().pipe(rxr.retry(1)), subscribe_at=0)
    assert source.starts == [0.0, 2.5]


def test_a_hugely_negative_refusal_waits_the_shortest_wait() -> None:
    scheduler = TestScheduler()
    source = Script(scheduler, refused(-(10**400)), "ok")
    events = record(
        scheduler, lambda: source.observable().pipe(rxr.retry(1)), subscribe_at=0
    )
    assert source.starts == [0.0, 0.001]
    assert events[0][1:] == ("next", "ok")


@pytest.mark.parametrize("answer", [math.inf, 10**400])
def test_a_function_backoff_answering_never_gives_up_with_the_error(
    answer: Any,
) -> None:
    error = ServiceDown()
    errors: list[Exception] = []
    rx.throw(error).pipe(
        rxr.retry(3, backoff=lambda attempt: answer, scheduler=WatchedScheduler())
    ).subscribe(on_error=errors.append)
    assert errors == [error]


@pytest.mark.parametrize("value", [10**400, math.inf, math.nan, -1, 1e10])
def test_max_refusal_wait_is_a_duration(value: Any) -> None:
    with pytest.raises(ValueError, match="max_refusal_wait"):
        rxr.RetryPolicy(max_refusal_wait=value)
    with pytest.raises(TypeError, match="max_refusal_wait"):
        rxr.RetryPolicy(max_refusal_wait=True)


def test_resilient_checks_the_retry_policys_own_scheduler_against_the_breaker() -> None:
    breaker = rxr.CircuitBreaker(name="payments")
    policy = rxr.RetryPolicy(backoff=1.0, scheduler=TestScheduler())
    with pytest.raises(ValueError, match=r"retry\.scheduler=TestScheduler"):
        rxr.resilient(breaker=breaker, retry=policy)


def test_a_virtual_breaker_run_with_run_does_not_warn() -> None:
    """``.run()`` subscribes on a real scheduler: that is no second clock."""
    breaker = rxr.CircuitBreaker(name="virtual", scheduler=TestScheduler())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rx.of(1).pipe(rxr.circuit_breaker(breaker)).run() == 1


# --- disposal at every instant of a refusal wait --------------------------------------------


@given(
    failures=st.integers(0, 3),
    call_seconds=st.sampled_from([0.0, 0.5, 3.3]),
    callers=st.integers(1, 4),
    dispose_at=st.floats(0.0, 40.0, allow_nan=False).map(lambda t: round(t, 1)),
)
def test_disposal_at_any_instant_of_a_refusal_wait_leaves_nothing_behind(
    failures: int, call_seconds: float, callers: int, dispose_at: float
) -> None:
    """Nothing starts after disposal, no permit leaks, no timer stays queued."""
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1, reset_timeout=10.0, scheduler=scheduler
    )
    starts: list[tuple[int, float]] = []
    script = ["fail"] * failures + ["ok"]

    def make(caller: int) -> rx.Observable[str]:
        def subscribe(_: Any) -> rx.Observable[str]:
            starts.append((caller, float(scheduler.clock)))
            answer = script.pop(0) if len(script) > 1 else script[0]
            later = rx.timer(call_seconds, scheduler=scheduler)
            if answer == "fail":
                return later.pipe(ops.flat_map(lambda _: rx.throw(ServiceDown())))
            return later.pipe(ops.map(lambda _: "ok"))

        return rx.defer(subscribe).pipe(
            rxr.circuit_breaker(breaker),
            rxr.retry(3, backoff=1.0, max_refusal_wait=30.0),
        )

    subscriptions = [
        make(caller).subscribe(on_error=lambda _: None, scheduler=scheduler)
        for caller in range(callers)
    ]
    scheduler.advance_to(dispose_at)
    for subscription in subscriptions:
        subscription.dispose()
    started = len(starts)
    scheduler.advance_to(200.0)
    assert len(starts) == started  # nothing started after disposal
    assert pending(scheduler) == []  # every timer was cancelled
    # Every admitted call was settled or given back: a trial now gets through.
    scheduler.advance_to(300.0)
    assert rx.of(1).pipe(rxr.circuit_breaker(breaker)).run() == 1
