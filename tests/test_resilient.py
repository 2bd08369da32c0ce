"""``rxr.resilient``: the patterns combined, in virtual time."""

from __future__ import annotations

import math
from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex.testing import TestScheduler

import rxresilience as rxr

from ._support import record


class Boom(Exception):
    pass


class Service:
    """Each subscription is one call; ``script`` says how each call behaves."""

    def __init__(self, scheduler: TestScheduler, script: list[str]) -> None:
        self.scheduler = scheduler
        self.script = script
        self.calls: list[float] = []
        self.cancelled: list[float] = []
        self.observable: rx.Observable[str] = rx.create(self._subscribe)

    def _subscribe(self, observer: abc.ObserverBase[str], _: Any = None) -> Any:
        index = len(self.calls)
        self.calls.append(self.scheduler.clock)
        behaviour = self.script[min(index, len(self.script) - 1)]

        def act(*_: Any) -> None:
            if behaviour == "ok":
                observer.on_next(f"answer {index + 1}")
                observer.on_completed()
            elif behaviour == "fail":
                observer.on_error(Boom(f"call {index + 1}"))

        timer = self.scheduler.schedule_relative(1.0, act)  # "hang" never acts

        def cancel() -> None:
            self.cancelled.append(self.scheduler.clock)
            timer.dispose()

        return rx.disposable.Disposable(cancel)


def test_a_hanging_attempt_is_timed_out_retried_and_counted_by_the_breaker() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, ["hang", "ok"])
    breaker = rxr.CircuitBreaker(5, 30.0, scheduler=scheduler)
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                timeout=5.0,
                retry=rxr.RetryPolicy(max_attempts=3, backoff=2.0),
                breaker=breaker,
            )
        ),
        subscribe_at=0,
    )
    assert service.calls == [0.0, 7.0]  # timed out at 5, retried 2 s later
    assert service.cancelled[0] == 5.0  # the hanging call was really abandoned
    assert events == [(8.0, "next", "answer 2"), (8.0, "completed", None)]
    metrics = breaker.metrics()
    assert (metrics.failures, metrics.successes) == (1, 1)


def test_a_breaker_that_opens_mid_retry_makes_the_retry_wait_for_retry_after() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, ["fail", "fail", "ok"])
    breaker = rxr.CircuitBreaker(2, 20.0, scheduler=scheduler)
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(max_attempts=5, backoff=1.0), breaker=breaker
            )
        ),
        subscribe_at=0,
    )
    # calls at 0 and 2 fail (the breaker opens at 3); the attempt at 4 is refused
    # with retry_after=19, so the next attempt waits until 23, the trial
    assert service.calls == [0.0, 2.0, 23.0]
    assert events == [(24.0, "next", "answer 3"), (24.0, "completed", None)]
    assert breaker.state is rxr.CircuitState.CLOSED
    assert breaker.metrics().rejected == 1


def test_fallback_receives_the_final_error() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, ["fail"])
    seen: list[Exception] = []

    def cached(error: Exception) -> rx.Observable[str]:
        seen.append(error)
        return rx.of("cached")

    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(max_attempts=3, backoff=1.0), fallback=cached
            )
        ),
        subscribe_at=0,
    )
    assert events == [(5.0, "next", "cached"), (5.0, "completed", None)]
    assert [str(e) for e in seen] == ["call 3"]


def test_total_timeout_bounds_retries_and_can_fall_back() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, ["fail"])
    seen: list[Exception] = []

    def cached(error: Exception) -> rx.Observable[str]:
        seen.append(error)
        return rx.of("cached")

    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(max_attempts=None, backoff=4.0),
                total_timeout=12.0,
                fallback=cached,
            )
        ),
        subscribe_at=0,
    )
    assert service.calls == [0.0, 5.0, 10.0]
    assert events == [(12.0, "next", "cached"), (12.0, "completed", None)]
    assert isinstance(seen[0], rxr.TimeoutError)
    assert seen[0].budget == "total"


def test_an_open_breaker_falls_back_without_calling_the_service() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, ["ok"])
    breaker = rxr.CircuitBreaker(1, 60.0, scheduler=scheduler)
    breaker.force_open()
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(breaker=breaker, fallback="cached")
        ),
        subscribe_at=0,
    )
    assert service.calls == []
    assert events == [(0.0, "next", "cached"), (0.0, "completed", None)]


def test_resilient_is_the_documented_pipe_of_the_single_operators() -> None:
    def run(operator: Any) -> tuple[list[Any], list[float]]:
        scheduler = TestScheduler()
        service = Service(scheduler, ["hang", "fail", "fail", "hang", "ok"])
        breaker = rxr.CircuitBreaker(2, 6.0, scheduler=scheduler)
        events = record(
            scheduler,
            lambda: service.observable.pipe(operator(breaker)),
            subscribe_at=0,
        )
        return [(t, k, str(v)) for t, k, v in events], service.calls

    policy = rxr.RetryPolicy(max_attempts=6, backoff=1.0)
    combined = run(
        lambda b: rxr.resilient(
            timeout=3.0, retry=policy, breaker=b, total_timeout=40.0, fallback="x"
        )
    )
    piped = run(
        lambda b: (
            lambda source: source.pipe(
                rxr.timeout(3.0),
                rxr.circuit_breaker(b),
                rxr.retry(policy),
                rxr.timeout(total=40.0),
                rxr.fallback("x"),
            )
        )
    )
    assert combined == piped
    assert combined[0][-1][1] == "completed"


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({}, ValueError, "at least one"),
        ({"timeout": "5s"}, TypeError, "timeout"),
        ({"timeout": 0}, ValueError, "^timeout "),
        ({"retry": "3"}, TypeError, "retry"),
        ({"retry": 0}, ValueError, "retry must be"),
        ({"breaker": object()}, TypeError, "breaker"),
        ({"fallback": Boom()}, TypeError, "fallback"),
        ({"total_timeout": -1}, ValueError, "total"),
        ({"rate_limit": 100}, TypeError, "^rate_limit must be a RateLimiter"),
        ({"bulkhead": 10}, TypeError, "^bulkhead must be a Bulkhead"),
        ({"hedge": "0.2"}, TypeError, "^hedge must be a HedgePolicy"),
        ({"hedge": True}, TypeError, "^hedge must be a HedgePolicy"),
        ({"hedge": rxr.ConstantBackoff(1.0)}, TypeError, "^hedge "),
        ({"hedge": -1}, ValueError, "^hedge "),
        ({"hedge": math.nan}, ValueError, "^hedge "),
        ({"hedge": math.inf}, ValueError, "^hedge "),
        ({"hedge": 10**400}, ValueError, "^hedge "),
    ],
)
def test_bad_input_raises_at_construction_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.resilient(**kwargs)


def test_a_number_as_hedge_is_the_delay_of_a_hedge_policy() -> None:
    def hedged(hedge: Any) -> tuple[list[Any], list[float]]:
        scheduler = TestScheduler()
        service = Service(scheduler, ["hang", "ok"])
        events = record(
            scheduler,
            lambda: service.observable.pipe(rxr.resilient(hedge=hedge)),
            subscribe_at=0,
        )
        return events, service.calls

    assert hedged(2) == hedged(rxr.HedgePolicy(2.0))
    assert hedged(2) == (
        [(3.0, "next", "answer 2"), (3.0, "completed", None)],
        [0.0, 2.0],
    )


def test_name_names_the_hedge_and_the_shared_parts_keep_their_own() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, ["hang", "ok"])
    limiter = rxr.RateLimiter(1, per=10.0, scheduler=scheduler)
    limiter.try_acquire()  # the first attempt waits for its permit: an event
    seen: list[rxr.telemetry.TelemetryEvent] = []
    subscription = rxr.telemetry.events().subscribe(seen.append)
    try:
        record(
            scheduler,
            lambda: service.observable.pipe(
                rxr.resilient(
                    hedge=1.0,
                    rate_limit=limiter,
                    bulkhead=rxr.Bulkhead(1),
                    name="quotes",
                )
            ),
            subscribe_at=0,
        )
    finally:
        subscription.dispose()
    policies = {(event.kind, event.policy) for event in seen}
    assert ("hedge.started", "quotes") in policies
    assert ("rate_limit.waited", "rate-limiter") in policies
    # the hedge's attempt finds the first one's slot taken: refused
    assert ("bulkhead.rejected", "bulkhead") in policies
    mine = rxr.HedgePolicy(1.0, name="mine")
    seen.clear()
    subscription = rxr.telemetry.events().subscribe(seen.append)
    try:
        record(
            scheduler,
            lambda: Service(scheduler, ["hang", "ok"]).observable.pipe(
                rxr.resilient(hedge=mine, name="quotes")
            ),
            subscribe_at=100,
        )
    finally:
        subscription.dispose()
    assert {event.policy for event in seen} == {"mine"}


@pytest.mark.parametrize(
    ("arguments", "error", "named"),
    [
        ({"total_timeout": 0}, ValueError, "total_timeout must be"),
        ({"total_timeout": "x"}, TypeError, "total_timeout must be"),
        ({"retry": 0}, ValueError, "retry must be"),
    ],
)
def test_a_refusal_names_the_argument_resilient_was_given(
    arguments: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=f"^{named}"):
        rxr.resilient(**arguments)
