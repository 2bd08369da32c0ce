"""``rxresilience.testing`` and ``rxresilience.chaos`` themselves."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given, settings
from hypothesis.stateful import rule
from reactivex import operators as ops

import rxresilience as rxr
from rxresilience.testing import strategies as rst

from ._support import DURATIONS_OUT_OF_RANGE


class Boom(Exception):
    pass


# --- the harness --------------------------------------------------------------------


def test_run_accepts_zero_as_a_time_and_records_floats() -> None:
    trace = rxr.testing.run(lambda s: rx.timer(0.5, scheduler=s), subscribe_at=0)
    trace.assert_values(0).assert_completed(at=0.5)
    assert trace.subscribed_at == 0.0


def test_run_calls_a_factory_without_arguments_too() -> None:
    assert rxr.testing.run(lambda: rx.of(1, 2)).values == [1, 2]


def test_error_assertions_are_type_aware_and_symmetric() -> None:
    trace = rxr.testing.run(lambda: rx.throw(Boom("down")))
    trace.assert_error(Boom)
    trace.assert_error(Boom("down"))
    with pytest.raises(AssertionError):
        trace.assert_error(Boom("other text"))
    with pytest.raises(AssertionError):
        trace.assert_error(ValueError)
    trace.assert_events([(0.0, "error", Boom)])


def test_failure_messages_render_the_trace_as_marbles() -> None:
    trace = rxr.testing.run(
        lambda s: rx.interval(1.0, scheduler=s).pipe(ops.take(3)), subscribe_at=0
    )
    with pytest.raises(AssertionError, match=r"trace: -ab\(c\|\)"):
        trace.assert_values(9)


def test_dispose_at_and_assert_no_pending() -> None:
    scheduler = rxr.testing.run.__globals__["TestScheduler"]()
    trace = rxr.testing.run(
        lambda s: rx.timer(10.0, scheduler=s), dispose_at=3.0, scheduler=scheduler
    )
    assert trace.events == []
    assert trace.disposed_at == 3.0
    rxr.testing.assert_no_pending(scheduler)


def test_assert_no_pending_names_what_is_left() -> None:
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    rx.timer(7.0, scheduler=scheduler).subscribe()
    with pytest.raises(AssertionError, match=r"due at \[7.0\]"):
        rxr.testing.assert_no_pending(scheduler)


# --- fault injection ----------------------------------------------------------------


def test_flaky_fails_its_first_calls_and_logs_subscriptions() -> None:
    source = rxr.testing.flaky(["user"], failures=2, latency=1.0)
    trace = rxr.testing.run(lambda: source.pipe(rxr.retry(3, backoff=1.0)))
    trace.assert_values("user").assert_completed(at=5.0)
    assert source.subscriptions == [(0.0, 1.0), (2.0, 3.0), (4.0, 5.0)]


def test_flaky_follows_a_script_and_can_hang() -> None:
    source = rxr.testing.flaky(["x"], failures=["fail", "hang", "ok"])
    rxr.testing.run(lambda: source.pipe(rxr.retry(3, backoff=None)), until=10)
    assert source.calls == 2  # the hanging call never ends


def test_inject_fault_at_a_rate_is_repeatable_with_a_seed() -> None:
    def outcomes(seed: int) -> list[str]:
        fault = rxr.chaos.inject_fault(0.5, lambda: Boom(), rng=random.Random(seed))
        result = []
        for _ in range(20):
            trace = rxr.testing.run(lambda: rx.of("ok").pipe(fault))
            result.append("fault" if trace.error else "ok")
        return result

    assert outcomes(3) == outcomes(3)
    assert set(outcomes(3)) == {"fault", "ok"}


def test_inject_latency_delays_on_the_scheduler() -> None:
    trace = rxr.testing.run(lambda: rx.of("x").pipe(rxr.chaos.inject_latency(1.0, 4.0)))
    trace.assert_values("x").assert_completed(at=4.0)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: rxr.chaos.inject_fault(1.5, Boom()), "rate"),
        (lambda: rxr.chaos.inject_fault(0.5, "boom"), "error"),
        (lambda: rxr.chaos.inject_latency(0.5, -1.0), "seconds"),
        (lambda: rxr.testing.flaky(failures=-1), "failures"),
    ],
)
def test_bad_fault_arguments_raise(build: Any, argument: str) -> None:
    with pytest.raises((ValueError, TypeError), match=argument):
        build()


_OUT_OF_RANGE = DURATIONS_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda v: rxr.chaos.inject_latency(0.5, v), "seconds"),
        (lambda v: rxr.testing.flaky(latency=v), "latency"),
        (
            lambda v: rxr.testing.FlakySource(
                ["ok"], lambda i: "ok", v, lambda call: Boom()
            ),
            "latency",
        ),
    ],
)
@pytest.mark.parametrize(("value", "error"), _OUT_OF_RANGE)
def test_a_latency_out_of_range_is_refused_naming_it(
    build: Any, argument: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=rf"^{argument} "):
        build(value)


def test_a_latency_in_range_is_accepted_zero_included() -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (0, 5, 0.5, LONGEST_WAIT):
        rxr.chaos.inject_latency(0.5, value)
        rxr.testing.flaky(latency=value)
    trace = rxr.testing.run(lambda: rxr.testing.flaky(["x"], failures=0, latency=3))
    trace.assert_values("x").assert_completed(at=3.0)


# --- no_delays ------------------------------------------------------------------------


def test_no_delays_makes_retries_immediate_in_real_time() -> None:
    source = rxr.testing.flaky(["ok"], failures=3)
    with rxr.testing.no_delays():
        # 1 + 2 + 4 seconds of backoff would elapse on the real clock otherwise
        assert source.pipe(rxr.retry(4)).run() == "ok"


def test_no_delays_is_local_to_the_context() -> None:
    seen: list[float] = []

    def other_thread() -> None:
        from rxresilience._delay_mode import delays_disabled

        seen.append(float(delays_disabled()))

    with rxr.testing.no_delays():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == [0.0]


def test_the_process_wide_switch() -> None:
    rxr.testing.set_no_delays(True)
    try:
        assert rxr.testing.flaky(["ok"], failures=2).pipe(rxr.retry(3)).run() == "ok"
    finally:
        rxr.testing.set_no_delays(False)


def test_importing_the_library_does_not_import_hypothesis() -> None:
    code = "import sys, rxresilience; print('hypothesis' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- strategies -------------------------------------------------------------------------


@settings(max_examples=50)
@given(
    backoff=rst.backoff_policies(),
    policy=rst.retry_policies(),
    config=rst.breaker_configs(),
    budget=rst.timeout_budgets(),
    plan=rst.saga_plans(),
    error=rst.exceptions(),
    source=rst.flaky_sources(silent_failures=True),
    schedule=rst.failure_schedules(),
    requests=rst.idempotency_requests(),
)
def test_strategies_build_valid_values(
    backoff: rxr.Backoff,
    policy: rxr.RetryPolicy,
    config: dict[str, Any],
    budget: rxr.TimeoutPolicy,
    plan: rst.SagaPlan,
    error: Exception,
    source: rxr.testing.FlakySource[Any],
    schedule: list[rst.BreakerCall],
    requests: list[tuple[str, int]],
) -> None:
    assert len(backoff.sample(5)) == 5
    rxr.retry(policy)
    rxr.CircuitBreaker(**config)
    rxr.timeout(budget)
    assert plan.steps >= 1
    assert isinstance(error, Exception)
    assert source.calls == 0
    assert all(call.outcome in ("ok", "fail", "ignored") for call in schedule)
    assert requests


# --- VirtualTimeMachine ---------------------------------------------------------------


class RetryMachine(rxr.testing.VirtualTimeMachine):
    """A user's own machine: subscriptions made and disposed in virtual time."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: list[Any] = []

    @rule()
    def subscribe(self) -> None:
        source = rxr.testing.flaky(["x"], failures=["fail", "hang"], latency=1.0)
        self.subscriptions.append(
            source.pipe(rxr.retry(3, backoff=2.0)).subscribe(scheduler=self.scheduler)
        )

    def teardown(self) -> None:
        for subscription in self.subscriptions:
            subscription.dispose()
        super().teardown()


TestRetryMachine = RetryMachine.TestCase
RetryMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15)


# --- run(): found by a hostile review ---------------------------------------------


def test_run_keeps_the_clock_still_through_hundreds_of_actions_at_one_instant() -> None:
    # RxPY's start() moves the clock a second on after 100 actions due at one
    # instant: 150 immediate retries completed "at 1.0", and a law failed a
    # transparent operator on the times it reported.
    trace = rxr.testing.run(
        lambda: rxr.testing.flaky(["ok"], failures=150).pipe(
            rxr.retry(200, backoff=None)
        )
    )
    trace.assert_values("ok").assert_completed(at=0.0)
    rxr.testing.laws.retry_is_transparent_without_failures(
        [0, 1, 2], 500, operator=lambda: rxr.timeout(5.0)
    )


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"subscribe_at": -5.0}, "subscribe_at"),
        ({"subscribe_at": True}, "subscribe_at"),
        ({"until": float("nan")}, "until"),
        ({"dispose_at": -1.0}, "dispose_at"),
        ({"subscribe_at": 5.0, "dispose_at": 2.0}, "dispose_at"),
    ],
)
def test_run_refuses_times_that_cannot_be_naming_them(
    arguments: dict[str, Any], named: str
) -> None:
    # Each gave a false trace: a subscription never disposed, nothing run,
    # or a subscription time that never was.
    with pytest.raises((ValueError, TypeError), match=rf"^{named}"):
        rxr.testing.run(lambda: rx.interval(1.0), **{"until": 10.0, **arguments})


def test_run_on_a_scheduler_past_subscribe_at_records_when_it_subscribed() -> None:
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    scheduler.advance_to(7.0)
    trace = rxr.testing.run(lambda s: rx.timer(3.0, scheduler=s), scheduler=scheduler)
    assert trace.subscribed_at == 7.0
    trace.assert_completed(at=10.0)


def test_a_factory_that_raises_leaves_the_scheduler_usable() -> None:
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()

    def broken() -> rx.Observable[int]:
        raise RuntimeError("factory")

    with pytest.raises(RuntimeError, match="factory"):
        rxr.testing.run(broken, scheduler=scheduler)
    trace = rxr.testing.run(lambda s: rx.timer(1.0, scheduler=s), scheduler=scheduler)
    assert trace.events  # it ran (it silently ran nothing, for good)


# --- flaky and chaos: found by a hostile review -----------------------------------


@pytest.mark.parametrize(
    ("failures", "error"),
    [
        (["fail", "hnag"], ValueError),  # a typo: retried as an error, calls left open
        ("fail", TypeError),  # split into characters
        (range(3), ValueError),
        (2.0, TypeError),
        (None, TypeError),
    ],
)
def test_flaky_refuses_a_script_that_cannot_be_naming_failures(
    failures: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="failures"):
        rxr.testing.flaky(["ok"], failures=failures)


def test_flaky_refuses_an_error_function_that_cannot_take_the_call_number() -> None:
    with pytest.raises(TypeError, match=r"^error must take the call's number"):
        rxr.testing.flaky(error=lambda: ValueError("x"))


@pytest.mark.parametrize("latency", [0.0, 1.0])
def test_an_error_function_that_raises_or_makes_no_exception_fails_the_call(
    latency: float,
) -> None:
    # Raising, it hung the stream on a timer thread (and escaped run()).
    def raising(call: int) -> Exception:
        raise KeyError("factory")

    trace = rxr.testing.run(
        lambda: rxr.testing.flaky(failures=1, latency=latency, error=raising)
    )
    assert isinstance(trace.error, KeyError)
    trace = rxr.testing.run(
        lambda: rxr.testing.flaky(
            failures=1,
            latency=latency,
            error=lambda call: "nope",  # type: ignore[arg-type, return-value]
        )
    )
    assert isinstance(trace.error, TypeError)
    assert "error must make an exception" in str(trace.error)


def test_flaky_counts_exactly_from_eight_threads() -> None:
    # Two threads could take the same call number: 2 failures instead of 1.
    for _ in range(50):
        source = rxr.testing.flaky(["ok"], failures=1)
        errors: list[Exception] = []
        barrier = threading.Barrier(8)

        def call(
            source: Any = source, barrier: Any = barrier, errors: Any = errors
        ) -> None:
            barrier.wait()
            source.subscribe(on_error=errors.append)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(errors) == 1
        assert source.calls == 8
        assert all(end is not None for _, end in source.subscriptions)


def test_a_call_whose_subscriber_raises_is_logged_as_ended() -> None:
    source = rxr.testing.flaky(["ok"], failures=0)

    def raising(_: Any) -> None:
        raise RuntimeError("subscriber")

    with pytest.raises(RuntimeError):
        source.subscribe(raising)
    assert source.subscriptions[0][1] is not None


def test_inject_fault_delivers_a_clear_error_for_a_factory_making_none() -> None:
    trace = rxr.testing.run(
        lambda: rx.of(1).pipe(rxr.chaos.inject_fault(1.0, error=lambda: "nope"))  # type: ignore[arg-type, return-value]
    )
    assert isinstance(trace.error, TypeError)


def test_inject_latency_refuses_a_scheduler_that_is_not_one() -> None:
    with pytest.raises(TypeError, match="scheduler"):
        rxr.chaos.inject_latency(1.0, 1.0, scheduler="virtual")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(rst.retry_policies())
def test_every_generated_retry_policy_ends_against_a_source_that_always_fails(
    policy: rxr.RetryPolicy,
) -> None:
    # Unlimited attempts with a time budget and no delay never moved the
    # clock: 174,851 calls at t=0 under run(until=100).
    source = rxr.testing.flaky(failures=10**9)
    trace = rxr.testing.run(lambda: source.pipe(rxr.retry(policy)), until=10_000.0)
    assert trace.error is not None
    assert source.calls < 10_000


def test_set_no_delays_and_sample_refuse_what_is_no_switch_or_count() -> None:
    with pytest.raises(TypeError, match=r"^enabled must be a bool"):
        rxr.testing.set_no_delays("no")  # type: ignore[arg-type]
    for count in (-1, True):
        with pytest.raises((TypeError, ValueError), match=r"^count"):
            rxr.ConstantBackoff(1.0).sample(count)
    assert rxr.ConstantBackoff(1.0).sample(0) == []


def test_the_trials_law_gives_the_breaker_its_permits_back() -> None:
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1, reset_timeout=1.0, scheduler=scheduler
    )
    with pytest.raises(RuntimeError):
        breaker.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    scheduler.advance_to(2.0)  # half-open
    rxr.testing.laws.breaker_admits_at_most_n_trials(breaker, 5)
    assert not isinstance(breaker.try_admit(), rxr.CircuitOpenError)


def test_run_inside_a_run_on_the_same_scheduler_is_a_clear_error() -> None:
    # It returned an empty trace, the inner events arriving later.
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    inner: list[Any] = []

    def nested(s: Any) -> rx.Observable[int]:
        try:
            rxr.testing.run(lambda t: rx.timer(1.0, scheduler=t), scheduler=scheduler)
        except RuntimeError as error:
            inner.append(error)
        return rx.of(1)

    rxr.testing.run(nested, subscribe_at=1.0, scheduler=scheduler).assert_values(1)
    assert len(inner) == 1
    assert "running already" in str(inner[0])


# --- a review of the fixes above ------------------------------------------------------


def test_run_says_when_virtual_time_stands_still_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rxresilience.testing import _trace

    monkeypatch.setattr(_trace, "MOST_AT_ONE_INSTANT", 1_000)
    policy = rxr.RetryPolicy(max_attempts=None, backoff=None, max_elapsed=10.0)
    with pytest.raises(RuntimeError, match="virtual time stands still at 0"):
        rxr.testing.run(
            lambda: rxr.testing.flaky(failures=10**9).pipe(rxr.retry(policy))
        )


def test_run_refuses_a_nested_run_at_any_instant() -> None:
    from reactivex.testing import TestScheduler

    scheduler = TestScheduler()
    refused: list[Exception] = []

    def nested() -> rx.Observable[int]:
        try:
            rxr.testing.run(lambda t: rx.timer(3.0, scheduler=t), scheduler=scheduler)
        except RuntimeError as error:
            refused.append(error)
        return rx.of(1)

    trace = rxr.testing.run(nested, scheduler=scheduler)  # subscribed at 0
    assert len(refused) == 1
    trace.assert_values(1)
    assert trace.events[0].time == 0.0
    assert isinstance(trace.subscribed_at, float)


def test_run_takes_any_finite_virtual_time_and_refuses_until_before_subscribing() -> (
    None
):
    trace = rxr.testing.run(lambda s: rx.timer(1.0, scheduler=s), until=1e10)
    trace.assert_completed(at=1.0)
    with pytest.raises(ValueError, match=r"^until must not come before subscribe_at"):
        rxr.testing.run(lambda: rx.of(1), subscribe_at=10.0, until=5.0)


def test_the_idempotency_law_holds_for_an_operator_with_a_short_max_run() -> None:
    store = rxr.InMemoryIdempotencyStore()
    rxr.testing.laws.idempotent_runs_once_per_key(
        ["a", "a", "b"],
        operator_for=lambda key: rxr.idempotent(
            rxr.IdempotencyPolicy(store, ttl=60, max_run=0.5), key=key
        ),
    )


def test_flaky_takes_generated_scripts_and_wrapped_error_functions() -> None:
    import functools

    def make() -> Exception:
        return KeyError("x")

    @functools.wraps(make)
    def wrapper(call: int) -> Exception:
        return make()

    source = rxr.testing.flaky(failures=(s for s in ["fail", "ok"]), error=wrapper)
    assert rxr.testing.run(lambda: source.pipe(rxr.retry(2, backoff=None))).values == [
        "ok"
    ]


def test_inject_fault_refuses_an_error_function_that_wants_an_argument() -> None:
    with pytest.raises(TypeError, match=r"^error must be an exception or a function"):
        rxr.chaos.inject_fault(1.0, error=lambda n: ValueError(n))  # type: ignore[arg-type, misc]
