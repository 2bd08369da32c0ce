"""``rxr.CircuitBreaker`` and ``rxr.circuit_breaker`` in virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxresilience as rxr
from rxresilience import CircuitState as S

from .._support import POSITIVE_DURATIONS_OUT_OF_RANGE, pending, record

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


class Calls:
    """A controllable service: each subscription is a call the test ends by hand."""

    def __init__(self) -> None:
        self.subscribed = 0
        self.open: list[abc.ObserverBase[Any]] = []
        self.disposed = 0
        self.observable: rx.Observable[Any] = rx.create(self._subscribe)

    def _subscribe(self, observer: abc.ObserverBase[Any], _: Any = None) -> Any:
        self.subscribed += 1
        self.open.append(observer)

        def dispose() -> None:
            self.disposed += 1

        return rx.disposable.Disposable(dispose)


def guarded(breaker: rxr.CircuitBreaker, source: rx.Observable[Any]) -> list[Any]:
    """Subscribe once through the breaker; return the notifications as they come."""
    seen: list[Any] = []
    source.pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_next=lambda v: seen.append(("next", v)),
        on_error=lambda e: seen.append(("error", e)),
        on_completed=lambda: seen.append(("completed", None)),
    )
    return seen


def fail(breaker: rxr.CircuitBreaker, error: Exception | None = None) -> list[Any]:
    return guarded(breaker, rx.throw(error or Boom()))


def succeed(breaker: rxr.CircuitBreaker, value: Any = 1) -> list[Any]:
    return guarded(breaker, rx.of(value))


def changes_of(breaker: rxr.CircuitBreaker) -> list[rxr.StateChange]:
    seen: list[rxr.StateChange] = []
    breaker.state_changes.subscribe(seen.append)
    return seen


def transitions(changes: list[rxr.StateChange]) -> list[tuple[str, str, float]]:
    return [(c.previous.value, c.current.value, c.at) for c in changes]


# --- the classic rule ---------------------------------------------------------------


def test_consecutive_failures_open_the_breaker_at_the_threshold() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(3, 30.0, scheduler=scheduler)
    changes = changes_of(breaker)
    fail(breaker)
    fail(breaker)
    assert breaker.state is S.CLOSED
    scheduler.advance_to(7)
    fail(breaker)
    assert breaker.state is S.OPEN
    assert transitions(changes) == [("closed", "open", 7.0)]
    assert changes[0].reason == "3 consecutive failures"


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = rxr.CircuitBreaker(2, 30.0, scheduler=TestScheduler())
    fail(breaker)
    succeed(breaker)
    fail(breaker)
    assert breaker.state is S.CLOSED
    fail(breaker)
    assert breaker.state is S.OPEN


def test_an_open_breaker_never_subscribes_to_the_source() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 30.0, scheduler=scheduler)
    fail(breaker)
    calls = Calls()
    seen = guarded(breaker, calls.observable)
    assert calls.subscribed == 0
    assert len(seen) == 1
    error = seen[0][1]
    assert isinstance(error, rxr.CircuitOpenError)
    assert isinstance(error, rxr.ResilienceError)
    assert error.retry_after == 30.0
    assert error.state == "open"
    assert breaker.metrics().rejected == 1


def test_retry_after_counts_down_on_the_breaker_clock() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 30.0, scheduler=scheduler)
    scheduler.advance_to(100)
    fail(breaker)
    scheduler.advance_to(112)
    [(_, error)] = succeed(breaker)
    assert error.retry_after == pytest.approx(18.0)


def test_the_first_call_after_the_reset_timeout_is_a_trial() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 30.0, half_open_max_calls=1, scheduler=scheduler)
    changes = changes_of(breaker)
    fail(breaker)
    scheduler.advance_to(29.999)
    assert isinstance(succeed(breaker)[0][1], rxr.CircuitOpenError)
    assert breaker.state is S.OPEN  # no timer moves it by itself
    scheduler.advance_to(30)
    assert breaker.state is S.OPEN
    assert succeed(breaker) == [("next", 1), ("completed", None)]
    assert transitions(changes) == [
        ("closed", "open", 0.0),
        ("open", "half-open", 30.0),
        ("half-open", "closed", 30.0),
    ]


def test_half_open_admits_exactly_the_permitted_trials() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=3, scheduler=scheduler)
    fail(breaker)
    scheduler.advance_to(10)
    calls = Calls()
    results = [guarded(breaker, calls.observable) for _ in range(4)]
    assert calls.subscribed == 3
    assert results[:3] == [[], [], []]
    [(_, refused)] = results[3]
    assert isinstance(refused, rxr.CircuitOpenError)
    assert refused.retry_after == 1.0  # a tenth of the reset timeout
    assert refused.state == "half-open"
    for observer in calls.open[:2]:
        observer.on_completed()
    assert breaker.state is S.HALF_OPEN  # two of three trials so far
    calls.open[2].on_completed()
    assert breaker.state is S.CLOSED


def test_a_failed_trial_reopens_and_restarts_the_timeout() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=2, scheduler=scheduler)
    changes = changes_of(breaker)
    fail(breaker)
    scheduler.advance_to(15)
    calls = Calls()
    guarded(breaker, calls.observable)
    guarded(breaker, calls.observable)
    calls.open[0].on_completed()
    scheduler.advance_to(16)
    calls.open[1].on_error(Boom())
    assert breaker.state is S.OPEN
    assert transitions(changes)[-1] == ("half-open", "open", 16.0)
    scheduler.advance_to(25.5)
    [(_, error)] = succeed(breaker)
    assert error.retry_after == pytest.approx(0.5)


def test_auto_half_open_moves_on_a_timer_at_the_exact_virtual_time() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1, 30.0, scheduler=scheduler, auto_half_open=True, half_open_max_calls=1
    )
    changes = changes_of(breaker)
    scheduler.advance_to(5)
    fail(breaker)
    scheduler.advance_to(34.9)
    assert breaker.state is S.OPEN
    scheduler.advance_to(35)
    assert breaker.state is S.HALF_OPEN
    assert transitions(changes)[-1] == ("open", "half-open", 35.0)


def test_auto_half_open_timer_of_an_earlier_opening_does_nothing() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1, 10.0, scheduler=scheduler, auto_half_open=True, half_open_max_calls=1
    )
    fail(breaker)  # opens at 0: timer for 10
    breaker.reset()
    assert pending(scheduler) == []  # leaving OPEN cancels the timer
    scheduler.advance_to(4)
    fail(breaker)  # opens at 4: timer for 14
    scheduler.advance_to(10)
    assert breaker.state is S.OPEN
    scheduler.advance_to(14)
    assert breaker.state is S.HALF_OPEN
    assert pending(scheduler) == []


# --- the rate rules ----------------------------------------------------------------


def test_count_window_failure_rate_opens_at_the_threshold_once_full() -> None:
    breaker = rxr.CircuitBreaker(
        None,
        30.0,
        window=rxr.CountWindow(4),
        failure_rate_threshold=0.5,
        scheduler=TestScheduler(),
    )
    changes = changes_of(breaker)
    fail(breaker)
    fail(breaker)
    succeed(breaker)
    assert breaker.state is S.CLOSED  # 3 calls < minimum 4 (the window size)
    assert breaker.metrics().failure_rate is None
    succeed(breaker)
    # 2 failures of 4 = 50 % >= 50 %
    assert breaker.state is S.OPEN
    assert changes[-1].reason == "failure rate 2/4 reached 50%"


def test_count_window_slides_over_the_last_n_calls() -> None:
    breaker = rxr.CircuitBreaker(
        None,
        30.0,
        window=rxr.CountWindow(4),
        failure_rate_threshold=0.75,
        scheduler=TestScheduler(),
    )
    changes = changes_of(breaker)
    for outcome in ["f", "f", "s", "s", "s", "f", "f"]:
        (fail if outcome == "f" else succeed)(breaker)
    assert breaker.state is S.CLOSED  # window s,s,f,f = 50 %
    fail(breaker)  # window s,f,f,f = 75 %
    assert breaker.state is S.OPEN
    assert changes[-1].reason == "failure rate 3/4 reached 75%"


def test_minimum_calls_below_the_window_size() -> None:
    breaker = rxr.CircuitBreaker(
        None,
        30.0,
        window=rxr.CountWindow(100),
        failure_rate_threshold=0.5,
        minimum_calls=2,
        scheduler=TestScheduler(),
    )
    succeed(breaker)
    fail(breaker)
    assert breaker.state is S.OPEN


def test_minimum_calls_above_a_count_windows_size_is_refused_not_lowered() -> None:
    """resilience4j lowers it to the window's size in silence; we say so."""
    with pytest.raises(ValueError, match="minimum_calls"):
        rxr.CircuitBreaker(
            None,
            30.0,
            window=rxr.CountWindow(10),
            failure_rate_threshold=0.5,
            minimum_calls=11,
        )


def test_time_window_forgets_calls_older_than_the_window() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        None,
        30.0,
        window=rxr.TimeWindow(10.0),
        failure_rate_threshold=0.5,
        minimum_calls=3,
        scheduler=scheduler,
    )
    fail(breaker)
    fail(breaker)
    scheduler.advance_to(10.0)  # the two failures' bucket [0, 1) has left the window
    succeed(breaker)
    assert breaker.metrics().window_calls == 1
    fail(breaker)
    succeed(breaker)
    assert breaker.state is S.CLOSED  # 1 of 3
    fail(breaker)
    assert breaker.state is S.OPEN  # 2 of 4
    assert breaker.metrics().window_calls == 4


def test_time_window_counts_calls_within_the_window() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        None,
        30.0,
        window=rxr.TimeWindow(10.0),
        failure_rate_threshold=0.5,
        minimum_calls=4,
        scheduler=scheduler,
    )
    fail(breaker)
    scheduler.advance_to(5)
    succeed(breaker)
    succeed(breaker)
    scheduler.advance_to(9.5)
    fail(breaker)  # 2 of 4 within [0, 10)
    assert breaker.state is S.OPEN


def test_slow_calls_are_measured_on_the_breaker_clock() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        None,
        30.0,
        window=rxr.CountWindow(2),
        slow_call_duration=5.0,
        slow_call_rate_threshold=1.0,
        scheduler=scheduler,
    )
    changes = changes_of(breaker)

    def call_lasting(seconds: float) -> None:
        source = scheduler.create_cold_observable(
            on_next(seconds, "v"), on_completed(seconds)
        )
        record(
            scheduler,
            lambda: source.pipe(rxr.circuit_breaker(breaker)),
            subscribe_at=scheduler.clock,
            until=scheduler.clock + seconds,
        )

    call_lasting(4.999)
    call_lasting(5.0)
    assert breaker.state is S.CLOSED  # 1 of 2 slow
    call_lasting(6.0)
    assert breaker.state is S.OPEN  # 2 of 2 slow
    assert changes[-1].reason == "slow call rate 2/2 reached 100%"
    metrics = breaker.metrics()
    assert (metrics.slow_calls, metrics.successes, metrics.failures) == (2, 3, 0)


def test_a_slow_trial_reopens_the_breaker() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1,
        10.0,
        window=rxr.CountWindow(10),
        slow_call_duration=2.0,
        slow_call_rate_threshold=0.5,
        scheduler=scheduler,
    )
    fail(breaker)
    scheduler.advance_to(10)
    calls = Calls()
    guarded(breaker, calls.observable)
    scheduler.advance_to(13)
    calls.open[0].on_completed()
    assert breaker.state is S.OPEN


# --- classification ------------------------------------------------------------------


def test_errors_record_does_not_match_count_as_neither() -> None:
    breaker = rxr.CircuitBreaker(1, 10.0, record=Boom, scheduler=TestScheduler())
    fail(breaker, ValueError("not recorded"))
    assert breaker.state is S.CLOSED
    assert breaker.metrics().ignored == 1
    fail(breaker, Boom())
    assert breaker.state is S.OPEN


def test_record_accepts_a_predicate() -> None:
    breaker = rxr.CircuitBreaker(
        1, 10.0, record=lambda e: "503" in str(e), scheduler=TestScheduler()
    )
    fail(breaker, Boom("404"))
    assert breaker.state is S.CLOSED
    fail(breaker, Boom("503"))
    assert breaker.state is S.OPEN


def test_ignored_errors_never_count_and_give_back_a_half_open_permit() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1, 10.0, half_open_max_calls=1, ignore=Ignored, scheduler=scheduler
    )
    fail(breaker, Ignored())
    assert breaker.state is S.CLOSED
    fail(breaker)
    scheduler.advance_to(10)
    fail(breaker, Ignored())  # the trial is given back
    assert breaker.state is S.HALF_OPEN
    assert succeed(breaker) == [("next", 1), ("completed", None)]
    assert breaker.state is S.CLOSED


def test_a_failing_predicate_is_delivered_and_counts_as_neither() -> None:
    broken = RuntimeError("predicate broke")

    def predicate(_: Exception) -> bool:
        raise broken

    breaker = rxr.CircuitBreaker(1, 10.0, record=predicate, scheduler=TestScheduler())
    assert fail(breaker) == [("error", broken)]
    assert breaker.state is S.CLOSED


def test_failure_if_flags_a_value_which_still_passes_through() -> None:
    breaker = rxr.CircuitBreaker(
        2, 10.0, failure_if=lambda r: r == 503, scheduler=TestScheduler()
    )
    assert succeed(breaker, 503) == [("next", 503), ("completed", None)]
    assert succeed(breaker, 503) == [("next", 503), ("completed", None)]
    assert breaker.state is S.OPEN
    assert breaker.metrics().failures == 2


def test_a_failing_failure_if_errors_the_call_and_unsubscribes() -> None:
    broken = RuntimeError("failure_if broke")

    def flag(_: Any) -> bool:
        raise broken

    breaker = rxr.CircuitBreaker(1, 10.0, failure_if=flag, scheduler=TestScheduler())
    assert succeed(breaker) == [("error", broken)]
    assert breaker.metrics().ignored == 1


# --- disposal -------------------------------------------------------------------------


def test_first_after_the_breaker_counts_as_a_success() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, scheduler=scheduler)
    fail(breaker)
    scheduler.advance_to(10)
    source = scheduler.create_cold_observable(on_next(1, "a"), on_next(50, "b"))
    events = record(
        scheduler,
        lambda: source.pipe(rxr.circuit_breaker(breaker), ops.first()),
        subscribe_at=10,
        until=20,
    )
    assert [kind for _, kind, _ in events] == ["next", "completed"]
    assert breaker.state is S.CLOSED
    assert breaker.metrics().successes == 1


def test_disposal_before_any_value_counts_as_neither_and_frees_the_permit() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=1, scheduler=scheduler)
    fail(breaker)
    scheduler.advance_to(10)
    calls = Calls()
    subscription = calls.observable.pipe(rxr.circuit_breaker(breaker)).subscribe()
    assert isinstance(succeed(breaker)[0][1], rxr.CircuitOpenError)
    subscription.dispose()
    assert calls.disposed == 1
    assert breaker.metrics().ignored == 1
    assert succeed(breaker) == [("next", 1), ("completed", None)]


def test_max_half_open_wait_fails_a_stuck_trial() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1, 10.0, half_open_max_calls=1, max_half_open_wait=5.0, scheduler=scheduler
    )
    changes = changes_of(breaker)
    fail(breaker)
    scheduler.advance_to(10)
    calls = Calls()
    guarded(breaker, calls.observable)
    scheduler.advance_to(14.9)
    assert breaker.state is S.HALF_OPEN
    scheduler.advance_to(15)
    assert breaker.state is S.OPEN
    assert changes[-1].reason == "trial call outlasted max_half_open_wait"
    calls.open[0].on_completed()  # too late: changes nothing
    assert breaker.state is S.OPEN
    assert breaker.metrics().failures == 2


def test_a_trial_that_ends_in_time_cancels_its_timer() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1, 10.0, half_open_max_calls=1, max_half_open_wait=5.0, scheduler=scheduler
    )
    fail(breaker)
    scheduler.advance_to(10)
    succeed(breaker)
    assert breaker.state is S.CLOSED
    assert pending(scheduler) == []


def test_a_late_outcome_from_an_earlier_state_changes_nothing() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=1, scheduler=scheduler)
    slow = Calls()
    guarded(breaker, slow.observable)  # admitted while CLOSED
    fail(breaker)
    scheduler.advance_to(10)
    trial = Calls()
    guarded(breaker, trial.observable)  # HALF_OPEN's one trial
    slow.open[0].on_completed()  # the old call's success must not close the breaker
    assert breaker.state is S.HALF_OPEN
    slow_metrics = breaker.metrics()
    assert slow_metrics.successes == 1
    trial.open[0].on_completed()
    assert breaker.state is S.CLOSED


def test_a_trial_from_an_earlier_half_open_spell_cannot_close_a_later_one() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=2, scheduler=scheduler)
    fail(breaker)
    scheduler.advance_to(10)
    old = Calls()
    guarded(breaker, old.observable)  # a trial of the first half-open spell
    fail(breaker)  # the other trial fails: open again at 10
    scheduler.advance_to(20)
    new = Calls()
    guarded(breaker, new.observable)  # first trial of the second spell
    old.open[0].on_completed()  # must not count as the second spell's trial
    new.open[0].on_completed()
    assert breaker.state is S.HALF_OPEN  # one of two trials so far
    succeed(breaker)
    assert breaker.state is S.CLOSED


def test_a_call_from_before_an_opening_does_not_count_after_closing() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(2, 10.0, half_open_max_calls=1, scheduler=scheduler)
    old = Calls()
    guarded(breaker, old.observable)
    fail(breaker)
    fail(breaker)
    scheduler.advance_to(10)
    succeed(breaker)  # closed again
    fail(breaker)
    old.open[0].on_error(Boom())  # admitted two generations ago
    assert breaker.state is S.CLOSED
    assert breaker.metrics().consecutive_failures == 1


def test_a_permit_given_back_can_be_taken_again() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        1, 10.0, half_open_max_calls=2, ignore=Ignored, scheduler=scheduler
    )
    fail(breaker)
    scheduler.advance_to(10)
    fail(breaker, Ignored())
    calls = Calls()
    guarded(breaker, calls.observable)
    guarded(breaker, calls.observable)
    assert calls.subscribed == 2


# --- manual control --------------------------------------------------------------------


def test_force_open_refuses_with_unknown_retry_after_until_reset() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(5, 10.0, scheduler=scheduler)
    changes = changes_of(breaker)
    breaker.force_open()
    assert breaker.state is S.FORCED_OPEN
    scheduler.advance_to(1000)
    [(_, error)] = succeed(breaker)
    assert error.retry_after is None
    assert error.state == "forced-open"
    breaker.reset()
    assert succeed(breaker) == [("next", 1), ("completed", None)]
    assert transitions(changes) == [
        ("closed", "forced-open", 0.0),
        ("forced-open", "closed", 1000.0),
    ]


def test_disable_lets_everything_through_and_never_opens() -> None:
    breaker = rxr.CircuitBreaker(1, 10.0, scheduler=TestScheduler())
    breaker.disable()
    for _ in range(5):
        fail(breaker)
    assert breaker.state is S.DISABLED
    assert breaker.metrics().failures == 5
    breaker.reset()
    assert breaker.state is S.CLOSED
    assert breaker.metrics().failures == 0


def test_reset_clears_counters_and_closes() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(2, 10.0, scheduler=scheduler)
    fail(breaker)
    breaker.reset()
    fail(breaker)
    assert breaker.state is S.CLOSED  # the count started over
    fail(breaker)
    breaker.reset()
    assert breaker.state is S.CLOSED
    assert breaker.metrics().calls == 0


# --- state_changes ----------------------------------------------------------------------


def test_state_changes_reach_every_subscriber_in_order_without_replay() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, scheduler=scheduler)
    first = changes_of(breaker)
    fail(breaker)
    late = changes_of(breaker)
    scheduler.advance_to(10)
    succeed(breaker)
    assert [c.current for c in first] == [S.OPEN, S.HALF_OPEN, S.CLOSED]
    assert [c.current for c in late] == [S.HALF_OPEN, S.CLOSED]


def test_disposing_a_subscriber_detaches_it() -> None:
    breaker = rxr.CircuitBreaker(1, 10.0, scheduler=TestScheduler())
    seen: list[rxr.StateChange] = []
    subscription = breaker.state_changes.subscribe(seen.append)
    subscription.dispose()
    fail(breaker)
    assert seen == []


def test_a_raising_subscriber_breaks_neither_the_breaker_nor_the_others() -> None:
    breaker = rxr.CircuitBreaker(1, 10.0, scheduler=TestScheduler())
    broken = RuntimeError("subscriber broke")
    errors: list[Exception] = []

    def explode(_: rxr.StateChange) -> None:
        raise broken

    breaker.state_changes.subscribe(on_next=explode, on_error=errors.append)
    others = changes_of(breaker)
    assert fail(breaker) == [("error", _any_boom)]
    assert breaker.state is S.OPEN
    assert errors == [broken]
    assert [c.current for c in others] == [S.OPEN]
    breaker.reset()
    assert [c.current for c in others] == [S.OPEN, S.CLOSED]
    assert errors == [broken]  # detached after it raised


class _AnyBoom:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Boom)


_any_boom = _AnyBoom()


# --- breaker.call --------------------------------------------------------------------------


def test_call_guards_a_plain_function() -> None:
    breaker = rxr.CircuitBreaker(2, 10.0, scheduler=TestScheduler())
    assert breaker.call(lambda a, b: a + b, 2, b=3) == 5

    def broken() -> None:
        raise Boom()

    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(broken)
    invoked: list[int] = []
    with pytest.raises(rxr.CircuitOpenError) as refused:
        breaker.call(invoked.append, 1)
    assert invoked == []
    assert refused.value.retry_after == 10.0
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures, metrics.rejected) == (1, 2, 1)


def test_call_applies_failure_if_to_the_result() -> None:
    breaker = rxr.CircuitBreaker(
        1, 10.0, failure_if=lambda r: r is None, scheduler=TestScheduler()
    )
    assert breaker.call(lambda: None) is None
    assert breaker.state is S.OPEN


def test_metrics_are_a_frozen_snapshot() -> None:
    breaker = rxr.CircuitBreaker(3, 10.0, scheduler=TestScheduler())
    snapshot = breaker.metrics()
    fail(breaker)
    assert snapshot.failures == 0
    with pytest.raises(AttributeError):
        snapshot.failures = 3  # type: ignore[misc]
    assert breaker.metrics().consecutive_failures == 1


# --- with retry ----------------------------------------------------------------------------


def test_retry_waits_for_the_breakers_retry_after() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(2, 20.0, half_open_max_calls=1, scheduler=scheduler)
    attempts: list[float] = []

    def call(_: Any) -> rx.Observable[str]:
        attempts.append(scheduler.clock)
        return rx.throw(Boom()) if len(attempts) <= 2 else rx.of("ok")

    events = record(
        scheduler,
        lambda: rx.defer(call).pipe(
            rxr.circuit_breaker(breaker),
            rxr.retry(5, backoff=rxr.ConstantBackoff(1.0)),
        ),
        subscribe_at=0,
    )
    # attempts at 0 and 1 fail and open the breaker at 1; the attempt at 2 is
    # refused with retry_after=19, so the next one waits until 21 and is the trial
    assert attempts == [0.0, 1.0, 21.0]
    assert events == [(21.0, "next", "ok"), (21.0, "completed", None)]
    assert breaker.state is S.CLOSED


# --- bad configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"failure_threshold": 0}, ValueError, "failure_threshold"),
        ({"failure_threshold": 2.5}, TypeError, "failure_threshold"),
        ({"reset_timeout": 0}, ValueError, "reset_timeout"),
        ({"reset_timeout": -1.0}, ValueError, "reset_timeout"),
        ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls"),
        (
            {"window": rxr.CountWindow(10), "failure_rate_threshold": 1.5},
            ValueError,
            "failure_rate_threshold",
        ),
        (
            {"window": rxr.CountWindow(10), "failure_rate_threshold": 0.0},
            ValueError,
            "failure_rate_threshold",
        ),
        ({"window": rxr.CountWindow(10)}, ValueError, "window"),
        ({"failure_rate_threshold": 0.5}, ValueError, "window"),
        (
            {"window": rxr.CountWindow(10), "slow_call_duration": 1.0},
            ValueError,
            "slow_call_rate_threshold",
        ),
        (
            {
                "window": rxr.CountWindow(10),
                "slow_call_duration": -1.0,
                "slow_call_rate_threshold": 0.5,
            },
            ValueError,
            "slow_call_duration",
        ),
        (
            {
                "window": rxr.CountWindow(10),
                "failure_rate_threshold": 0.5,
                "minimum_calls": 11,
            },
            ValueError,
            "minimum_calls",
        ),
        ({"failure_threshold": None}, ValueError, "failure_threshold"),
        ({"window": 10, "failure_rate_threshold": 0.5}, TypeError, "window"),
        ({"record": "errors"}, TypeError, "record"),
        ({"ignore": 3}, TypeError, "ignore"),
        ({"failure_if": "503"}, TypeError, "failure_if"),
        ({"max_half_open_wait": 0}, ValueError, "max_half_open_wait"),
        ({"auto_half_open": "yes"}, TypeError, "auto_half_open"),
        ({"scheduler": "now"}, TypeError, "scheduler"),
        ({"storage": {}}, TypeError, "storage"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_bad_configuration_raises_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.CircuitBreaker(**kwargs)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: rxr.CountWindow(0), "size"),
        (lambda: rxr.TimeWindow(0.0), "seconds"),
        (lambda: rxr.TimeWindow(-5.0), "seconds"),
        (lambda: rxr.TimeWindow(10.0, buckets=0), "buckets"),
    ],
)
def test_bad_windows_raise_naming_the_argument(build: Any, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        build()


_SLOW_RULE: dict[str, Any] = {
    "window": rxr.CountWindow(10),
    "slow_call_rate_threshold": 0.5,
}


@pytest.mark.parametrize(
    ("argument", "others"),
    [
        ("reset_timeout", {}),
        ("max_half_open_wait", {}),
        ("slow_call_duration", _SLOW_RULE),
    ],
)
@pytest.mark.parametrize(
    ("value", "error"),
    POSITIVE_DURATIONS_OUT_OF_RANGE,
)
def test_a_duration_out_of_range_is_refused_naming_it(
    argument: str, others: dict[str, Any], value: object, error: type[Exception]
) -> None:
    """Above LONGEST_WAIT a timer would die on its own thread: refused when built."""
    options: dict[str, Any] = {**others, argument: value}
    with pytest.raises(error, match=rf"^{argument} "):
        rxr.CircuitBreaker(**options)


@pytest.mark.parametrize(
    ("argument", "others"),
    [
        ("reset_timeout", {}),
        ("max_half_open_wait", {}),
        ("slow_call_duration", _SLOW_RULE),
    ],
)
def test_a_duration_in_range_is_kept_as_seconds(
    argument: str, others: dict[str, Any]
) -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (5, 0.5, LONGEST_WAIT):
        options: dict[str, Any] = {**others, argument: value}
        breaker = rxr.CircuitBreaker(**options)
        kept = getattr(breaker.config, argument)
        assert type(kept) is float
        assert kept == value


def test_a_reset_timeout_of_longest_wait_opens_and_stays_open() -> None:
    from rxresilience._clock import LONGEST_WAIT

    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1,
        reset_timeout=LONGEST_WAIT,
        auto_half_open=True,
        scheduler=scheduler,
    )
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert breaker.state is S.OPEN
    scheduler.advance_by(1e9)
    assert breaker.state is S.OPEN


def test_the_operator_wants_a_breaker() -> None:
    with pytest.raises(TypeError, match="breaker"):
        rxr.circuit_breaker("payments")  # type: ignore[arg-type]


def test_a_storage_serves_one_breaker() -> None:
    storage = rxr.InMemoryBreakerStorage()
    rxr.CircuitBreaker(storage=storage)
    with pytest.raises(ValueError, match="already bound"):
        rxr.CircuitBreaker(storage=storage)
