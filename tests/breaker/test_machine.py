"""The pure state machine, driven directly: no clock, no lock, no breaker."""

from __future__ import annotations

from typing import Any

from rxresilience import (
    BreakerConfig,
    CircuitState,
    CountWindow,
    Outcome,
    Permit,
    Refusal,
    StateChange,
)
from rxresilience.breaker._machine import CircuitMachine


def machine(**overrides: Any) -> tuple[CircuitMachine, list[StateChange]]:
    settings: dict[str, Any] = {
        "failure_threshold": 2,
        "reset_timeout": 10.0,
        "half_open_max_calls": 2,
        "window": None,
        "failure_rate_threshold": None,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "minimum_calls": 1,
    }
    settings.update(overrides)
    changes: list[StateChange] = []
    return CircuitMachine(BreakerConfig(**settings), changes.append), changes


def admit(m: CircuitMachine, now: float) -> Permit:
    permit = m.acquire(now)
    assert isinstance(permit, Permit)
    return permit


def fail_twice(m: CircuitMachine, now: float = 0.0) -> None:
    for _ in range(2):
        m.record(admit(m, now), Outcome.FAILURE, now)


def test_consecutive_failures_open_it_and_a_success_breaks_the_run() -> None:
    m, changes = machine()
    m.record(admit(m, 0.0), Outcome.FAILURE, 0.0)
    m.record(admit(m, 0.0), Outcome.SUCCESS, 0.0)
    m.record(admit(m, 0.0), Outcome.FAILURE, 0.0)
    assert m.state is CircuitState.CLOSED
    m.record(admit(m, 1.0), Outcome.FAILURE, 1.0)
    assert changes == [
        StateChange(
            CircuitState.CLOSED, CircuitState.OPEN, 1.0, "2 consecutive failures"
        )
    ]
    assert (m.opened_at, m.generation) == (1.0, 1)


def test_open_refuses_with_the_time_left_then_admits_a_trial() -> None:
    m, changes = machine()
    fail_twice(m)
    assert m.acquire(4.0) == Refusal(6.0, CircuitState.OPEN)
    assert m.retry_after(4.0) == 6.0
    trial = admit(m, 10.0)
    assert trial.trial
    assert changes[-1].reason == "reset timeout elapsed"
    assert m.metrics(10.0).rejected == 1


def test_half_open_admits_n_trials_and_their_successes_close_it() -> None:
    m, changes = machine()
    fail_twice(m)
    first, second = admit(m, 10.0), admit(m, 10.0)
    refusal = m.acquire(10.0)
    assert refusal == Refusal(1.0, CircuitState.HALF_OPEN)  # a tenth of the timeout
    m.record(first, Outcome.SUCCESS, 11.0)
    assert m.state is CircuitState.HALF_OPEN
    m.record(second, Outcome.SUCCESS, 11.0)
    assert changes[-1].reason == "2 of 2 trial calls succeeded"
    assert m.state is CircuitState.CLOSED


def test_a_refused_caller_in_half_open_is_told_when_the_first_trial_times_out() -> None:
    m, _ = machine(half_open_max_calls=1, max_half_open_wait=0.5)
    fail_twice(m)
    admit(m, 10.0)
    refusal = m.acquire(10.2)
    assert isinstance(refusal, Refusal)
    assert abs((refusal.retry_after or 0) - 0.3) < 1e-9


def test_one_failed_timed_out_or_slow_trial_reopens_it() -> None:
    for outcome, settings, reason in [
        (Outcome.FAILURE, {}, "trial call failed"),
        (Outcome.TIMED_OUT, {}, "trial call outlasted max_half_open_wait"),
        (
            Outcome.SUCCESS,
            {
                "window": CountWindow(2),
                "slow_call_duration": 1.0,
                "slow_call_rate_threshold": 1.0,
            },
            "trial call was slow",
        ),
    ]:
        m, changes = machine(**settings)
        fail_twice(m)
        m.record(admit(m, 10.0), outcome, 12.0)
        assert (m.state, changes[-1].reason) == (CircuitState.OPEN, reason)


def test_a_trial_given_back_frees_its_permit() -> None:
    m, _ = machine(half_open_max_calls=1)
    fail_twice(m)
    m.record(admit(m, 10.0), Outcome.NEITHER, 10.0)
    assert admit(m, 10.0).trial


def test_outcomes_of_an_older_generation_count_only_in_the_totals() -> None:
    m, _ = machine(half_open_max_calls=1)
    late = admit(m, 0.0)
    fail_twice(m)
    trial = admit(m, 10.0)
    m.record(late, Outcome.SUCCESS, 10.0)  # cannot close it
    assert m.state is CircuitState.HALF_OPEN
    m.record(trial, Outcome.FAILURE, 10.0)
    assert m.state is CircuitState.OPEN
    assert m.metrics(10.0).successes == 1


def test_a_permit_is_settled_once() -> None:
    m, _ = machine()
    permit = admit(m, 0.0)
    m.record(permit, Outcome.FAILURE, 0.0)
    m.record(permit, Outcome.FAILURE, 0.0)
    assert m.state is CircuitState.CLOSED
    assert m.metrics(0.0).failures == 1


def test_forced_open_refuses_without_a_wait_and_reset_clears_every_count() -> None:
    m, changes = machine()
    m.record(admit(m, 0.0), Outcome.FAILURE, 0.0)
    m.force(CircuitState.FORCED_OPEN, 1.0, "forced open")
    assert m.acquire(1.0) == Refusal(None, CircuitState.FORCED_OPEN)
    m.force(CircuitState.CLOSED, 2.0, "reset")
    metrics = m.metrics(2.0)
    assert (metrics.failures, metrics.rejected, metrics.consecutive_failures) == (
        0,
        0,
        0,
    )
    assert [c.reason for c in changes] == ["forced open", "reset"]


def test_half_open_if_due_waits_for_the_timeout() -> None:
    m, _ = machine()
    fail_twice(m)
    m.half_open_if_due(9.0)
    assert m.state is CircuitState.OPEN
    m.half_open_if_due(10.0)
    assert m.state is CircuitState.HALF_OPEN


def test_adopt_starts_over_silently_in_a_new_generation() -> None:
    m, changes = machine()
    earlier = admit(m, 0.0)
    m.adopt(CircuitState.OPEN, 5.0)
    assert changes == []
    assert (m.state, m.opened_at, m.generation) == (CircuitState.OPEN, 5.0, 1)
    m.record(earlier, Outcome.FAILURE, 6.0)
    assert m.metrics(6.0).consecutive_failures == 0


def test_a_window_opens_it_at_the_rate_once_it_holds_minimum_calls() -> None:
    m, changes = machine(
        failure_threshold=None,
        window=CountWindow(4),
        failure_rate_threshold=0.5,
        minimum_calls=3,
    )
    m.record(admit(m, 0.0), Outcome.FAILURE, 0.0)
    assert m.metrics(0.0).failure_rate is None  # fewer than minimum_calls
    m.record(admit(m, 0.0), Outcome.SUCCESS, 0.0)
    m.record(admit(m, 0.0), Outcome.SUCCESS, 0.0)
    assert m.metrics(0.0).failure_rate == 1 / 3
    m.record(admit(m, 0.0), Outcome.FAILURE, 0.0)
    assert changes[-1].reason == "failure rate 2/4 reached 50%"
