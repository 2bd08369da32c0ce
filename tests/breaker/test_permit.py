"""One permit, one settle path: the operator, ``call`` and ``call_async`` agree."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx
from reactivex.testing import TestScheduler

import rxresilience as rxr


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


class PredicateBug(Exception):
    pass


def _raise(error: BaseException) -> Any:
    raise error


class Opener(Exception):
    """The failure that opens the breaker before a trial."""


def _bad_predicate(value: Any) -> bool:
    raise PredicateBug


def _bad_record(error: Exception) -> bool:
    if isinstance(error, Opener):
        return True
    raise PredicateBug


def _bad_ignore(error: Exception) -> bool:
    if isinstance(error, Opener):
        return False
    raise PredicateBug


#: How a call ends, and the breaker settings that judge it.
SCENARIOS: dict[str, tuple[dict[str, Any], str, Any]] = {
    "success": ({}, "value", 1),
    "recorded error": ({}, "error", Boom()),
    "ignored error": ({"ignore": Ignored}, "error", Ignored()),
    "unrecorded error": ({"record": Boom}, "error", Ignored()),
    "value flagged by failure_if": ({"failure_if": lambda v: v == 503}, "value", 503),
    "value passed by failure_if": ({"failure_if": lambda v: v == 503}, "value", 200),
    "failure_if raises": ({"failure_if": _bad_predicate}, "value", 1),
    "record raises": ({"record": _bad_record}, "error", Boom()),
    "ignore raises": ({"ignore": _bad_ignore}, "error", Boom()),
    "cancelled": ({}, "cancel", None),
}


def through_operator(breaker: rxr.CircuitBreaker, kind: str, payload: Any) -> Any:
    source: rx.Observable[Any]
    if kind == "value":
        source = rx.of(payload)
    elif kind == "error":
        source = rx.throw(payload)
    else:
        source = rx.never()
    seen: list[Any] = []
    subscription = source.pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_next=lambda _: None, on_error=seen.append
    )
    subscription.dispose()
    return type(seen[0]) if seen else None


def through_call(breaker: rxr.CircuitBreaker, kind: str, payload: Any) -> Any:
    def work() -> Any:
        if kind == "value":
            return payload
        # a cancellation in plain code: an error that is not an Exception
        raise payload if kind == "error" else KeyboardInterrupt

    try:
        breaker.call(work)
    except BaseException as error:
        return (
            KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else type(error)
        )
    return None


def through_call_async(breaker: rxr.CircuitBreaker, kind: str, payload: Any) -> Any:
    async def work() -> Any:
        if kind == "value":
            return payload
        if kind == "error":
            raise payload
        await asyncio.sleep(60)

    async def main() -> Any:
        task = asyncio.ensure_future(breaker.call_async(work))
        await asyncio.sleep(0)
        if kind == "cancel":
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return KeyboardInterrupt  # as the plain call's cancellation
        except Exception as error:
            return type(error)
        return None

    return asyncio.run(main())


DRIVERS: dict[str, Callable[[rxr.CircuitBreaker, str, Any], Any]] = {
    "operator": through_operator,
    "call": through_call,
    "call_async": through_call_async,
}


def settle(
    driver: str, settings: dict[str, Any], kind: str, payload: Any, *, trial: bool
) -> tuple[Any, ...]:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1, reset_timeout=10.0, scheduler=scheduler, **settings
    )
    if trial:  # open the breaker and let its timeout pass: the next call is a trial
        breaker.force_open()
        breaker.reset()
        breaker.admit().failure(Opener())
        scheduler.advance_by(10.0)
    error = DRIVERS[driver](breaker, kind, payload)
    if error is KeyboardInterrupt and driver == "operator":
        error = None  # disposal is silent; the others see their cancellation
    metrics = breaker.metrics()
    after = breaker.try_admit()  # a released trial's permit was given back
    return (
        error if kind != "cancel" else None,
        breaker.state,
        metrics.successes,
        metrics.failures,
        metrics.ignored,
        isinstance(after, rxr.Permit),
    )


@pytest.mark.parametrize("trial", [False, True], ids=["closed", "half-open"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_operator_call_and_call_async_settle_a_call_the_same_way(
    scenario: str, trial: bool
) -> None:
    settings, kind, payload = SCENARIOS[scenario]
    results = {
        driver: settle(driver, settings, kind, payload, trial=trial)
        for driver in DRIVERS
    }
    assert results["call"] == results["operator"], results
    assert results["call_async"] == results["operator"], results


@pytest.mark.parametrize("driver", list(DRIVERS))
def test_a_refused_call_never_runs_and_counts_as_rejected(driver: str) -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1, scheduler=TestScheduler())
    breaker.force_open()
    ran: list[str] = []
    original = DRIVERS[driver]
    error = original(breaker, "value", ran)
    assert error is rxr.CircuitOpenError
    assert breaker.metrics().rejected == 1


def test_the_outcomes_of_the_table_are_the_documented_ones() -> None:
    """The agreement above is not vacuous: each scenario settles as the docs say."""
    expected = {
        "success": (1, 0, 0),
        "recorded error": (0, 1, 0),
        "ignored error": (0, 0, 1),
        "unrecorded error": (0, 0, 1),
        "value flagged by failure_if": (0, 1, 0),
        "value passed by failure_if": (1, 0, 0),
        "failure_if raises": (0, 0, 1),
        "record raises": (0, 0, 1),
        "ignore raises": (0, 0, 1),
        "cancelled": (0, 0, 1),
    }
    for scenario, counts in expected.items():
        settings, kind, payload = SCENARIOS[scenario]
        result = settle("call", settings, kind, payload, trial=False)
        assert result[2:5] == counts, scenario


def test_a_subscriber_raising_after_a_value_settles_as_a_success() -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1, scheduler=TestScheduler())
    rx.of(1, 2).pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_next=lambda _: _raise(Boom()), on_error=lambda _: None
    )
    assert (breaker.metrics().successes, breaker.metrics().failures) == (1, 0)


def test_a_permit_settles_once() -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1, scheduler=TestScheduler())
    permit = breaker.admit()
    permit.success()
    permit.failure(Boom())
    permit.release()
    assert permit.settled
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures, metrics.ignored) == (1, 0, 0)
    assert breaker.state is rxr.CircuitState.CLOSED


def test_admit_raises_the_refusal_and_try_admit_returns_it() -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1, scheduler=TestScheduler())
    breaker.force_open()
    with pytest.raises(rxr.CircuitOpenError):
        breaker.admit()
    assert isinstance(breaker.try_admit(), rxr.CircuitOpenError)


def test_an_unsettled_trial_permit_times_out_after_max_half_open_wait() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1,
        reset_timeout=10.0,
        max_half_open_wait=3.0,
        scheduler=scheduler,
    )
    breaker.admit().failure(Boom())
    scheduler.advance_by(10.0)
    permit = breaker.admit()
    assert permit.trial
    scheduler.advance_by(3.0)
    assert permit.settled
    assert breaker.state is rxr.CircuitState.OPEN
    permit.success()  # too late: ignored
    assert breaker.state is rxr.CircuitState.OPEN


def test_a_permit_not_from_a_breaker_cannot_be_settled() -> None:
    permit = rxr.Permit(0, False, 0.0)
    with pytest.raises(RuntimeError, match="not handed out"):
        permit.success()
    with pytest.raises(RuntimeError, match="not handed out"):
        permit.release()
