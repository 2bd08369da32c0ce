"""The laws of ``rxresilience.testing.laws``, run against every operator of the library."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import laws
from rxresilience.testing import strategies as rst

from ._redis_server import RedisServer


@given(policy=rst.retry_policies(), failures=st.integers(0, 6))
def test_retry_succeeds_after_fewer_failures_than_attempts(
    policy: rxr.RetryPolicy, failures: int
) -> None:
    laws.retry_succeeds_after_fewer_failures_than_attempts(policy, failures)


@given(attempts=st.integers(1, 6), backoff=st.one_of(st.none(), rst.backoff_policies()))
def test_retry_exhausts_after_exactly_n_subscriptions(
    attempts: int, backoff: rxr.Backoff | None
) -> None:
    laws.retry_exhausts_after_exactly_n_subscriptions(attempts, backoff)


@given(values=st.lists(st.integers(), max_size=5), repeats=st.integers(1, 3))
def test_retry_is_transparent_without_failures(values: list[int], repeats: int) -> None:
    laws.retry_is_transparent_without_failures(values, repeats)


@given(policy=rst.backoff_policies(), seed=st.integers(0, 2**16))
def test_backoff_schedules_are_sane(policy: rxr.Backoff, seed: int) -> None:
    laws.backoff_schedule_is_sane(policy, seed=seed)


@given(
    gaps=st.lists(st.integers(0, 6), max_size=6),
    budget=st.sampled_from([2.0, 3.0, 5.0, 7.0]),
)
def test_timeout_is_identity_when_every_gap_fits(
    gaps: list[int], budget: float
) -> None:
    laws.timeout_is_identity_when_every_gap_fits(gaps, budget)


@given(gaps=st.lists(st.integers(0, 6), max_size=6), budget=st.integers(1, 6))
def test_timeout_fires_exactly_at_the_deadline(gaps: list[int], budget: int) -> None:
    laws.timeout_fires_exactly_at_the_deadline(gaps, budget)


def _drive(schedule: list[rst.BreakerCall]) -> Any:
    def drive(breaker: rxr.CircuitBreaker) -> None:
        scheduler = breaker.scheduler
        assert isinstance(scheduler, TestScheduler)
        for call in schedule:
            error: Exception = (
                KeyError("ignored") if call.outcome == "ignored" else OSError()
            )
            source = rxr.testing.flaky(
                ["ok"], failures=["ok" if call.outcome == "ok" else "fail"], error=error
            )
            source.pipe(rxr.circuit_breaker(breaker)).subscribe(
                on_error=lambda _: None, scheduler=scheduler
            )
            scheduler.advance_by(call.duration + call.pause)

    return drive


@given(config=rst.breaker_configs(), schedule=rst.failure_schedules())
def test_breaker_transitions_are_legal(
    config: dict[str, Any], schedule: list[rst.BreakerCall]
) -> None:
    breaker = rxr.CircuitBreaker(**config, ignore=KeyError, scheduler=TestScheduler())
    laws.breaker_transitions_are_legal(breaker, _drive(schedule))
    laws.breaker_never_subscribes_while_open(breaker)


@given(
    config=rst.breaker_configs(),
    schedule=rst.failure_schedules(),
    attempts=st.integers(1, 8),
)
def test_breaker_admits_at_most_n_trials(
    config: dict[str, Any], schedule: list[rst.BreakerCall], attempts: int
) -> None:
    breaker = rxr.CircuitBreaker(**config, ignore=KeyError, scheduler=TestScheduler())
    _drive(schedule)(breaker)
    laws.breaker_admits_at_most_n_trials(breaker, attempts)


@given(
    config=rst.breaker_configs(),
    schedule=rst.failure_schedules(),
    attempts=st.integers(1, 8),
)
def test_the_breaker_laws_hold_with_the_state_in_redis(
    redis_server: RedisServer,
    config: dict[str, Any],
    schedule: list[rst.BreakerCall],
    attempts: int,
) -> None:
    def make() -> rxr.CircuitBreaker:
        storage = rxr.RedisBreakerStorage(redis_server.client(), name=uuid.uuid4().hex)
        return rxr.CircuitBreaker(
            **config, ignore=KeyError, scheduler=TestScheduler(), storage=storage
        )

    breaker = make()
    laws.breaker_transitions_are_legal(breaker, _drive(schedule))
    laws.breaker_never_subscribes_while_open(breaker)
    breaker = make()
    _drive(schedule)(breaker)
    laws.breaker_admits_at_most_n_trials(breaker, attempts)


@given(requests=rst.idempotency_requests())
def test_idempotent_runs_once_per_key(requests: list[tuple[str, int]]) -> None:
    laws.idempotent_runs_once_per_key([key for key, _ in requests])


@given(plan=rst.saga_shapes())
def test_saga_compensates_exactly_the_succeeded_steps(plan: rst.SagaShape) -> None:
    failing = plan.steps if plan.failing_step is None else plan.failing_step
    laws.saga_compensates_exactly_the_succeeded_steps_in_reverse(plan.steps, failing)


_OPERATORS: dict[str, Any] = {
    "retry": lambda: rxr.retry(5, backoff=rxr.ConstantBackoff(2.0)),
    "timeout": lambda: rxr.timeout(3.0),
    "timeout_total": lambda: rxr.timeout(total=4.0),
    "breaker": lambda: rxr.circuit_breaker(
        rxr.CircuitBreaker(1, 5.0, scheduler=TestScheduler())
    ),
    "fallback": lambda: rxr.fallback(rx.never()),
    "resilient": lambda: rxr.resilient(
        timeout=2.0,
        retry=rxr.RetryPolicy(max_attempts=4, backoff=1.0),
        total_timeout=20.0,
    ),
    "idempotent": lambda: rxr.idempotent(rxr.InMemoryIdempotencyStore(), key="k"),
    "chaos_latency": lambda: rxr.chaos.inject_latency(1.0, 2.0),
    "chaos_fault": lambda: rxr.chaos.inject_fault(0.5, RuntimeError("chaos")),
    "idempotent_map": lambda: rxr.idempotent_map(
        rx.of, store=rxr.InMemoryIdempotencyStore(), key=str
    ),
}


@given(
    name=st.sampled_from(sorted(_OPERATORS)),
    dispose_at=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 7.0]),
)
def test_disposal_leaves_nothing_behind(name: str, dispose_at: float) -> None:
    laws.disposal_leaves_nothing_behind(_OPERATORS[name](), dispose_at)


def test_the_laws_catch_a_broken_retry() -> None:
    """A law is only useful if it fails: a retry that swallows errors breaks one."""

    def broken(source: rx.Observable[Any]) -> rx.Observable[Any]:
        return source.pipe(ops.retry(3), ops.catch(rx.empty()))

    errors = 0
    try:
        trace = rxr.testing.run(
            lambda: rxr.testing.flaky(["x"], failures=5).pipe(broken)
        )
        trace.assert_error(rxr.testing.FlakyError)
    except AssertionError:
        errors += 1
    assert errors == 1


# --- the laws that take the user's own pipeline ------------------------------------------


@given(values=st.lists(st.integers(), max_size=5), repeats=st.integers(1, 3))
def test_a_users_resilient_pipeline_is_transparent_without_failures(
    values: list[int], repeats: int
) -> None:
    # The law runs in virtual time: a breaker inside keeps virtual time too.
    breaker = rxr.CircuitBreaker(3, 30.0, scheduler=TestScheduler())
    laws.retry_is_transparent_without_failures(
        values,
        repeats,
        operator=lambda: rxr.resilient(
            retry=rxr.RetryPolicy(3), breaker=breaker, fallback="fallback"
        ),
    )


def test_a_law_fails_for_a_pipeline_that_is_not_transparent() -> None:
    with pytest.raises(AssertionError):
        laws.retry_is_transparent_without_failures(
            [1, 2], operator=lambda: rx.operators.map(lambda x: x * 10)
        )


@given(keys=st.lists(st.sampled_from("abc"), max_size=8))
def test_a_users_idempotent_policy_runs_once_per_key(keys: list[str]) -> None:
    policy = rxr.IdempotencyPolicy(rxr.InMemoryIdempotencyStore(), ttl=60.0)
    laws.idempotent_runs_once_per_key(
        keys, operator_for=lambda key: rxr.idempotent(policy, key=key)
    )


def test_the_idempotency_law_catches_an_operator_that_runs_twice() -> None:
    with pytest.raises(AssertionError):
        laws.idempotent_runs_once_per_key(
            ["a", "a"], operator_for=lambda key: rx.operators.map(lambda x: x)
        )


# --- rate limiter, bulkhead and hedging: the laws under their public names ----------------


@given(
    config=rst.rate_limiter_configs(),
    subscribe_at=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), max_size=8),
)
def test_rate_limit_never_exceeds_the_rate(
    config: rxr.RateLimiterConfig, subscribe_at: list[float]
) -> None:
    laws.rate_limit_never_exceeds_the_rate(config, subscribe_at)


@given(
    config=rst.rate_limiter_configs(),
    subscribe_at=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), max_size=8),
)
def test_a_users_resilient_pipeline_never_exceeds_the_rate(
    config: rxr.RateLimiterConfig, subscribe_at: list[float]
) -> None:
    laws.rate_limit_never_exceeds_the_rate(
        config,
        subscribe_at,
        lambda limiter: rxr.resilient(
            rate_limit=limiter, retry=rxr.RetryPolicy(3, backoff=1.0), timeout=2.0
        ),
    )


@given(
    config=rst.rate_limiter_configs(),
    arrivals=st.lists(st.sampled_from([0.0, 0.5, 1.0, 4.0]), max_size=8),
)
def test_pace_delivers_every_item_in_order_within_the_rate(
    config: rxr.RateLimiterConfig, arrivals: list[float]
) -> None:
    laws.pace_delivers_every_item_in_order_within_the_rate(config, arrivals)


def test_admissions_fit_the_rate_catches_a_burst_too_many() -> None:
    config = rxr.RateLimiterConfig(rate=1, per=1.0, burst=2)
    laws.admissions_fit_the_rate([0.0, 0.0, 1.0, 2.0], config)
    with pytest.raises(AssertionError):
        laws.admissions_fit_the_rate([0.0, 0.0, 0.0], config)


@given(bulkhead=rst.bulkheads(), calls=rst.bulkhead_loads())
def test_bulkhead_never_exceeds_its_concurrency(
    bulkhead: rxr.Bulkhead, calls: list[rst.BulkheadCall]
) -> None:
    laws.bulkhead_never_exceeds_its_concurrency(bulkhead, calls)


@given(bulkhead=rst.bulkheads(), calls=rst.bulkhead_loads())
def test_a_users_resilient_pipeline_never_exceeds_the_bulkheads_concurrency(
    bulkhead: rxr.Bulkhead, calls: list[rst.BulkheadCall]
) -> None:
    laws.bulkhead_never_exceeds_its_concurrency(
        bulkhead,
        calls,
        operator=lambda: rxr.resilient(
            bulkhead=bulkhead, timeout=1.5, retry=rxr.RetryPolicy(2, backoff=0.5)
        ),
    )


@given(policy=rst.hedge_policies(), scripts=rst.hedge_scripts())
def test_hedging_emits_exactly_one_attempts_notifications(
    policy: rxr.HedgePolicy, scripts: list[tuple[float, str]]
) -> None:
    laws.hedging_emits_exactly_one_attempts_notifications(scripts, policy)


@given(
    policy=rst.hedge_policies(),
    scripts=rst.hedge_scripts(
        outcomes=[o for o in laws.HEDGE_OUTCOMES if o != "partial"]
    ),
)
def test_a_users_resilient_pipeline_emits_exactly_one_attempts_notifications(
    policy: rxr.HedgePolicy, scripts: list[tuple[float, str]]
) -> None:
    """(Not with "partial": the retry retries a winner that failed after its
    first item, so two rounds pass, as they should.)"""
    bulkhead = rxr.Bulkhead(max_concurrent=8)  # room for every attempt
    laws.hedging_emits_exactly_one_attempts_notifications(
        scripts,
        operator=lambda: rxr.resilient(
            hedge=policy, retry=rxr.RetryPolicy(2, backoff=1.0), bulkhead=bulkhead
        ),
    )


def test_the_idempotency_law_catches_an_operator_that_remembers_a_key_too_late() -> (
    None
):
    # Requests ran one after another: an operator that remembers a key only
    # once its run completes passed, though overlapping requests run twice.
    from reactivex.disposable import Disposable

    done: dict[str, Any] = {}

    def naive(key: str) -> Any:
        def operator(source: rx.Observable[Any]) -> rx.Observable[Any]:
            def subscribe(observer: Any, scheduler: Any = None) -> Any:
                if key in done:
                    observer.on_next(done[key])
                    observer.on_completed()
                    return Disposable()
                return source.pipe(
                    ops.do_action(lambda v: done.__setitem__(key, v))
                ).subscribe(observer, scheduler=scheduler)

            return rx.create(subscribe)

        return operator

    with pytest.raises(AssertionError):
        rxr.testing.laws.idempotent_runs_once_per_key(["a", "a"], operator_for=naive)
    rxr.testing.laws.idempotent_runs_once_per_key(["a", "a", "b"])
