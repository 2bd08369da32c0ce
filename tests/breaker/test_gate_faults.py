"""Faults around the breaker's one settle path (found by a hostile review)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience import CircuitState


def boom() -> None:
    raise RuntimeError("down")


class Refusing(TestScheduler):
    """Refuses to arm one timer (a closed loop, a disposed EventLoopScheduler)."""

    refuse_next = False

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        if self.refuse_next:
            self.refuse_next = False
            raise RuntimeError("Event loop is closed")
        return super().schedule_relative(duetime, action, state)


def test_a_half_open_timer_that_cannot_be_armed_does_not_silence_state_changes() -> (
    None
):
    scheduler = Refusing()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1, reset_timeout=1.0, scheduler=scheduler, auto_half_open=True
    )
    seen: list[CircuitState] = []
    breaker.state_changes.subscribe(lambda change: seen.append(change.current))
    scheduler.refuse_next = True
    with pytest.raises(RuntimeError, match="down"):  # the call's own error, not ours
        breaker.call(boom)
    breaker.reset()
    with pytest.raises(RuntimeError, match="down"):
        breaker.call(boom)
    assert seen == [CircuitState.OPEN, CircuitState.CLOSED, CircuitState.OPEN]


def test_a_trial_whose_timer_cannot_be_armed_gives_its_slot_back() -> None:
    scheduler = Refusing()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1,
        reset_timeout=1.0,
        scheduler=scheduler,
        max_half_open_wait=5.0,
    )
    with pytest.raises(RuntimeError, match="down"):
        breaker.call(boom)
    scheduler.advance_to(2.0)
    scheduler.refuse_next = True
    ran: list[int] = []
    with pytest.raises(RuntimeError, match="closed"):
        breaker.call(lambda: ran.append(1))
    assert ran == []
    assert isinstance(breaker.try_admit(), rxr.Permit)  # not wedged half-open


def test_a_late_report_of_a_settled_permit_asks_no_predicate() -> None:
    asked: list[BaseException] = []

    def record(error: BaseException) -> bool:
        asked.append(error)
        raise ValueError("a predicate with a bug")

    def failure_if(value: object) -> bool:
        raise ValueError("another")

    breaker = rxr.CircuitBreaker(
        failure_threshold=3, record=record, failure_if=failure_if
    )
    permit = breaker.admit()
    permit.success()
    permit.failure(RuntimeError("late"))  # ignored, as documented
    assert permit.check("late value") is False
    assert asked == []


def test_each_misuse_of_a_hand_made_permit_gets_its_own_error() -> None:
    permit = rxr.Permit(0, False, 0.0)
    errors = []
    for _ in range(3):
        with pytest.raises(RuntimeError, match="not handed out") as caught:
            permit.success()
        errors.append(caught.value)
    assert errors[0] is not errors[1]


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_call_admitted_before_a_reset_while_closed_counts_in_no_run(
    kind: str, request: pytest.FixtureRequest
) -> None:
    import uuid

    storage = None
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        storage = rxr.RedisBreakerStorage(server.client(), name=uuid.uuid4().hex)
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=2, scheduler=scheduler, storage=storage
    )
    before = breaker.admit()
    breaker.reset()
    before.failure(RuntimeError("admitted before the reset"))
    with pytest.raises(RuntimeError, match="down"):
        breaker.call(boom)
    assert breaker.state is CircuitState.CLOSED  # one failure since the reset
    assert breaker.metrics().consecutive_failures == 1
    with pytest.raises(RuntimeError, match="down"):
        breaker.call(boom)
    assert breaker.state is CircuitState.OPEN


def test_a_fleet_trial_held_past_the_reset_timeout_says_why_it_reopened(
    request: pytest.FixtureRequest,
) -> None:
    """Without max_half_open_wait, Redis gives a trial up after reset_timeout
    (its process may be gone); in one process the breaker holds its trials."""
    import uuid

    server = request.getfixturevalue("redis_server")
    reasons: dict[str, list[str]] = {}
    for kind in ("memory", "redis"):
        storage = (
            rxr.RedisBreakerStorage(server.client(), name=uuid.uuid4().hex)
            if kind == "redis"
            else None
        )
        scheduler = TestScheduler()
        breaker = rxr.CircuitBreaker(
            failure_threshold=1, reset_timeout=5.0, scheduler=scheduler, storage=storage
        )
        seen: list[str] = []
        breaker.state_changes.subscribe(
            lambda change, seen=seen: seen.append(change.reason)
        )
        with pytest.raises(RuntimeError, match="down"):
            breaker.call(boom)
        scheduler.advance_to(5.0)
        trial = breaker.admit()
        scheduler.advance_to(11.0)
        breaker.try_admit()
        trial.success()
        reasons[kind] = seen
    assert reasons["memory"][-1] == "1 of 1 trial calls succeeded"
    assert reasons["redis"][-1] == (
        "trial call outlasted reset_timeout (no max_half_open_wait)"
    )


class FailingStorage(rxr.InMemoryBreakerStorage):
    """A storage whose ``record`` fails ``failures`` times for ``outcomes``."""

    def __init__(self, outcomes: set[rxr.Outcome], failures: int = 10**9) -> None:
        super().__init__()
        self.outcomes = outcomes
        self.failures = failures

    def record(self, permit: rxr.Permit, outcome: rxr.Outcome, now: float) -> None:
        if outcome in self.outcomes and self.failures > 0:
            self.failures -= 1
            raise ConnectionError("storage down")
        super().record(permit, outcome, now)


def test_a_storage_that_fails_to_record_a_success_ends_the_call_with_its_error() -> (
    None
):
    # It escaped into a timer source's scheduler and the subscriber hung.
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        storage=FailingStorage({rxr.Outcome.SUCCESS}), scheduler=scheduler
    )
    ends: list[object] = []
    rx.timer(1.0).pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_next=ends.append,
        on_error=lambda error: ends.append(repr(error)),
        on_completed=lambda: ends.append("completed"),
        scheduler=scheduler,
    )
    scheduler.advance_to(2.0)
    assert ends == [0, "ConnectionError('storage down')"]


def test_disposing_a_call_whose_storage_fails_does_not_raise() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        storage=FailingStorage({rxr.Outcome.NEITHER}), scheduler=scheduler
    )
    subscription = (
        rx.never().pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    )
    subscription.dispose()  # logged, not raised at the disposer


def test_a_trial_timeout_the_storage_failed_to_record_is_recorded_later() -> None:
    # One failure on the max_half_open_wait timer left the breaker half-open,
    # its trial slot taken, refusing every call for good.
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=1,
        reset_timeout=1.0,
        max_half_open_wait=2.0,
        scheduler=scheduler,
        storage=FailingStorage({rxr.Outcome.TIMED_OUT}, failures=1),
    )
    with pytest.raises(RuntimeError, match="down"):
        breaker.call(boom)
    scheduler.advance_to(1.5)
    rx.never().pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    scheduler.advance_to(3.6)  # the timeout came, its record failed
    assert breaker.state is CircuitState.HALF_OPEN
    scheduler.advance_to(5.6)  # tried again a wait later: the trial failed
    assert breaker.state is CircuitState.OPEN


def test_a_storage_that_stays_down_is_asked_again_at_most_once_a_second() -> None:
    # With max_half_open_wait=1e-6 the failed record re-armed every microsecond.
    scheduler = TestScheduler()
    storage = FailingStorage({rxr.Outcome.TIMED_OUT})
    breaker = rxr.CircuitBreaker(
        failure_threshold=1,
        reset_timeout=1.0,
        max_half_open_wait=1e-6,
        scheduler=scheduler,
        storage=storage,
    )
    with pytest.raises(RuntimeError, match="down"):
        breaker.call(boom)
    scheduler.advance_to(1.5)
    rx.never().pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    before = storage.failures
    scheduler.advance_to(4.5)
    assert before - storage.failures <= 4  # once at once, then once a second
