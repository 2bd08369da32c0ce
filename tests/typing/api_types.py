"""Pins the public types: type-checked by ``mypy --strict tests/typing``, never run."""

from __future__ import annotations

import random
from typing import assert_type

import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr

numbers: rx.Observable[int] = rx.of(1, 2, 3)

assert_type(numbers.pipe(rxr.retry(3)), rx.Observable[int])
assert_type(numbers.pipe(rxr.retry(rxr.RetryPolicy())), rx.Observable[int])
assert_type(
    numbers.pipe(ops.map(str), rxr.retry(None, backoff=None)), rx.Observable[str]
)
assert_type(
    numbers.pipe(
        rxr.retry(
            max_attempts=5,
            backoff=rxr.ExponentialBackoff().capped(10.0) + 0.5,
            should_retry=(ConnectionError, TimeoutError),
            max_elapsed=60.0,
            rng=random.Random(1),
            on_retry=lambda event: None,
        )
    ),
    rx.Observable[int],
)
assert_type(
    numbers.pipe(rxr.retry(rxr.RetryPolicy(), scheduler=None, rng=None)),
    rx.Observable[int],
)
rxr.retry(3, bakoff=1.0)  # type: ignore[call-overload]
rxr.retry(3, backoff="soon")  # type: ignore[call-overload]
rxr.retry(rxr.RetryPolicy(), backoff=1.0)  # type: ignore[call-overload]
rxr.idempotent(rxr.InMemoryIdempotencyStore(), key="k", tll=5.0)  # type: ignore[call-arg]
rxr.idempotent(rxr.InMemoryIdempotencyStore(), key="k", ttl="1h")  # type: ignore[arg-type]
rxr.idempotent_map(rx.of, store=rxr.InMemoryIdempotencyStore(), key=str, tll=1)  # type: ignore[call-arg]
assert_type(rxr.FullJitterBackoff().sample(3), list[float])
assert_type(rxr.RetryPolicy().max_attempts, int | None)

breaker = rxr.CircuitBreaker(failure_threshold=5, reset_timeout=30.0)
assert_type(numbers.pipe(rxr.circuit_breaker(breaker)), rx.Observable[int])
assert_type(
    numbers.pipe(rxr.circuit_breaker(breaker), rxr.retry(3)), rx.Observable[int]
)
assert_type(breaker.call(lambda a, b: str(a + b), 1, 2), str)
assert_type(breaker.state, rxr.CircuitState)
assert_type(breaker.metrics(), rxr.BreakerMetrics)
assert_type(breaker.state_changes, rx.Observable[rxr.StateChange])
assert_type(rxr.CircuitOpenError("b", "open", 1.0).retry_after, float | None)
assert_type(rxr.CallRefusedError("quota", retry_after=2.0).retry_after, float | None)
assert_type(rxr.RetryPolicy(max_refusal_wait=30.0).max_refusal_wait, float)
assert_type(rxr.RetryEvent(1, 2.0, ValueError(), refused=True).refused, bool)
assert_type(rxr.OptimisticApplyError(ValueError()).cause, BaseException)

assert_type(numbers.pipe(rxr.timeout(5.0)), rx.Observable[int])
assert_type(
    numbers.pipe(rxr.timeout(first=1.0, each=2.0, total=3.0)), rx.Observable[int]
)
assert_type(numbers.pipe(rxr.fallback(0)), rx.Observable[int])
assert_type(
    numbers.pipe(
        rxr.resilient(
            timeout=5.0,
            retry=rxr.RetryPolicy(max_attempts=3),
            breaker=breaker,
            fallback=lambda error: rx.of(0),
            total_timeout=20.0,
        )
    ),
    rx.Observable[int],
)
assert_type(
    numbers.pipe(
        rxr.resilient(
            rate_limit=rxr.RateLimiter(rate=100, per=1.0, burst=10),
            bulkhead=rxr.Bulkhead(max_concurrent=10),
            hedge=0.2,
            retry=3,
        )
    ),
    rx.Observable[int],
)
assert_type(
    numbers.pipe(ops.map(str), rxr.resilient(hedge=rxr.HedgePolicy(0.2, 2))),
    rx.Observable[str],
)
rxr.resilient(hedge="0.2")  # type: ignore[arg-type]
rxr.resilient(rate_limit=100)  # type: ignore[arg-type]
rxr.resilient(bulkhead=10)  # type: ignore[arg-type]
assert_type(rxr.TimeoutError("each", 1.0).budget, str)

store = rxr.InMemoryIdempotencyStore()
assert_type(numbers.pipe(rxr.idempotent(store, key="k", ttl=60.0)), rx.Observable[int])
assert_type(
    numbers.pipe(rxr.idempotent_map(lambda n: rx.of(str(n)), store=store, key=str)),
    rx.Observable[str],
)
assert_type(rxr.fingerprint({"a": 1}), str)

saga = rxr.Saga[int]("s").step("double", execute=lambda n: rx.of(n * 2))
assert_type(saga.run(1), rx.Observable[int])
assert_type(saga.execute(1), rx.Observable[rxr.SagaEvent])
assert_type(
    rxr.recover(rxr.InMemorySagaJournal(), {"s": saga}), rx.Observable[rxr.SagaEvent]
)
keyed = rxr.Saga[int]("k", compensation_timeout=30.0).step(
    "charge",
    execute=lambda n, key: rx.of(n + len(key)),
    compensate=lambda n, key: rx.empty(),
    compensation_timeout=5.0,
)
assert_type(keyed, rxr.Saga[int])
rxr.Saga[int]("wrong").step("text", execute=lambda n: rx.of(str(n)))  # type: ignore[arg-type]
rxr.Saga[int]("wrong").step("key", execute=lambda n, key: rx.of("text"))  # type: ignore[arg-type]


def _charge(order: int, key: str) -> rx.Observable[str]:
    return rx.of(key)


rxr.Saga[int]("wrong").step("charge", execute=_charge)  # type: ignore[arg-type]
rxr.Saga[int]("closure").step("i", execute=lambda n, i=1: rx.of(n + i))

state = rxr.OptimisticState(0)
assert_type(state.update(lambda n: n + 1, commit=rx.of), rx.Observable[bool])
assert_type(state.value, int)
assert_type(rx.of(1).pipe(rxr.optimistic(state, commit=rx.of)), rx.Observable[bool])


async def _awaits() -> None:
    async def answer() -> int:
        return 1

    assert_type(rxr.from_async(answer), rx.Observable[int])
    assert_type(await rxr.to_async(rx.of("x")), str)
    assert_type(await breaker.call_async(answer), int)
