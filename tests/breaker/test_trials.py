"""``HalfOpenTrials``: the slots, waits and verdicts of one half-open spell."""

from __future__ import annotations

from typing import Any

import pytest

from rxresilience import BreakerConfig, CircuitState, Outcome
from rxresilience.breaker import _reasons
from rxresilience.breaker._trials import HalfOpenTrials


def trials(**overrides: Any) -> HalfOpenTrials:
    settings: dict[str, Any] = {
        "failure_threshold": 1,
        "reset_timeout": 10.0,
        "half_open_max_calls": 2,
        "window": None,
        "failure_rate_threshold": None,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "minimum_calls": 1,
    }
    settings.update(overrides)
    return HalfOpenTrials(BreakerConfig(**settings))


def test_slots_are_taken_up_to_the_limit_and_a_given_back_one_is_free_again() -> None:
    spell = trials()
    assert spell.take(0.0)
    assert spell.take(1.0)
    assert not spell.take(2.0)
    assert spell.settle(0.0, Outcome.NEITHER, slow=False) is None
    assert spell.take(3.0)
    assert not spell.take(3.0)


def test_every_trial_must_succeed_to_close() -> None:
    spell = trials()
    spell.take(0.0)
    spell.take(0.0)
    assert spell.settle(0.0, Outcome.SUCCESS, slow=False) is None
    assert spell.settle(0.0, Outcome.SUCCESS, slow=False) == (
        CircuitState.CLOSED,
        _reasons.TRIALS_SUCCEEDED.format(successes=2),
    )


@pytest.mark.parametrize(
    ("outcome", "slow", "reason"),
    [
        (Outcome.FAILURE, False, _reasons.TRIAL_FAILED),
        (Outcome.TIMED_OUT, False, _reasons.TRIAL_OUTLASTED),
        (Outcome.SUCCESS, True, _reasons.TRIAL_SLOW),
    ],
)
def test_one_bad_trial_reopens(outcome: Outcome, slow: bool, reason: str) -> None:
    spell = trials()
    spell.take(0.0)
    assert spell.settle(0.0, outcome, slow) == (CircuitState.OPEN, reason)


def test_a_refused_call_waits_for_the_earliest_trial_or_a_tenth_of_the_timeout() -> (
    None
):
    assert trials().wait(5.0) == 1.0  # no max_half_open_wait: reset_timeout / 10
    spell = trials(max_half_open_wait=3.0)
    assert spell.wait(0.0) == 1.0  # no trial running
    spell.take(2.0)
    spell.take(4.0)
    assert spell.wait(4.5) == 0.5  # the first trial's wait ends at 5.0
    spell.settle(2.0, Outcome.NEITHER, slow=False)
    assert spell.wait(4.5) == 1.0  # the next ends at 7.0: the cap is sooner
    assert spell.wait(7.5) > 0  # an overdue trial: never a wait of 0 or less


def test_clear_starts_a_new_spell() -> None:
    spell = trials(half_open_max_calls=1)
    spell.take(0.0)
    spell.settle(0.0, Outcome.SUCCESS, slow=False)
    spell.clear()
    assert (spell.taken, spell.succeeded, spell.starts) == (0, 0, [])
    assert spell.take(1.0)
