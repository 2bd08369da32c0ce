"""``rxr.HedgePolicy``: validated once, at construction, naming the argument."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest

import rxresilience as rxr

from .._support import DURATIONS_OUT_OF_RANGE


def test_defaults_are_one_hedge_and_hedging_on_every_error() -> None:
    policy = rxr.HedgePolicy(0.2)
    assert (policy.delay, policy.max_hedges, policy.should_hedge) == (0.2, 1, None)
    assert policy.hedge_predicate is None


def test_an_integer_delay_is_kept_as_seconds_in_a_float() -> None:
    policy = rxr.HedgePolicy(2)
    assert policy.delay == 2.0
    assert type(policy.delay) is float


def test_a_zero_delay_is_allowed_it_starts_every_attempt_at_once() -> None:
    assert rxr.HedgePolicy(0).delay == 0.0


@pytest.mark.parametrize(("delay", "error"), DURATIONS_OUT_OF_RANGE)
def test_a_delay_out_of_range_is_refused_naming_it(
    delay: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="delay"):
        rxr.HedgePolicy(delay)
    with pytest.raises(error, match="delay"):
        rxr.hedge(delay)


@pytest.mark.parametrize("delay", [-0.5, -math.inf, math.nan, math.inf])
def test_nan_negative_and_infinite_delays_are_value_errors(delay: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        rxr.HedgePolicy(delay)


@pytest.mark.parametrize(
    ("max_hedges", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (-(10**400), ValueError),
        (True, TypeError),
        (False, TypeError),
        (1.0, TypeError),
        (math.nan, TypeError),
        ("2", TypeError),
        (None, TypeError),
    ],
)
def test_max_hedges_must_be_an_int_of_at_least_one(
    max_hedges: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_hedges"):
        rxr.HedgePolicy(1.0, max_hedges)
    with pytest.raises(error, match="max_hedges"):
        rxr.hedge(1.0, max_hedges)


def test_a_huge_max_hedges_is_an_int_like_any_other() -> None:
    assert rxr.HedgePolicy(1.0, 10**400).max_hedges == 10**400


@pytest.mark.parametrize("should_hedge", [3, "ConnectionError", (), (ValueError, 3)])
def test_should_hedge_must_be_a_predicate_or_exception_types(
    should_hedge: Any,
) -> None:
    with pytest.raises(TypeError, match="should_hedge"):
        rxr.HedgePolicy(1.0, should_hedge=should_hedge)


@pytest.mark.parametrize("delay", [[1.0], "1", None, lambda k: 1.0])
def test_a_delay_that_is_neither_seconds_nor_a_backoff_is_refused(
    delay: Any,
) -> None:
    with pytest.raises(TypeError, match="delay"):
        rxr.HedgePolicy(delay)


def test_should_hedge_takes_types_tuples_and_predicates() -> None:
    by_type = rxr.HedgePolicy(1.0, should_hedge=ConnectionError).hedge_predicate
    by_tuple = rxr.HedgePolicy(
        1.0, should_hedge=(ConnectionError, TimeoutError)
    ).hedge_predicate
    by_function = rxr.HedgePolicy(
        1.0, should_hedge=lambda error: "retry" in str(error)
    ).hedge_predicate
    assert by_type is not None
    assert by_tuple is not None
    assert by_function is not None
    assert by_type(ConnectionResetError())
    assert not by_type(ValueError())
    assert by_tuple(TimeoutError())
    assert not by_tuple(KeyError())
    assert by_function(ValueError("retry me"))
    assert not by_function(ValueError())


def test_a_backoff_delay_gives_the_wait_before_each_hedge() -> None:
    policy = rxr.HedgePolicy(rxr.LinearBackoff(initial=1.0, step=2.0), max_hedges=3)
    assert policy.sample(3) == [1.0, 3.0, 5.0]
    assert rxr.HedgePolicy(0.5).sample(3) == [0.5, 0.5, 0.5]


def test_a_jittered_backoff_delay_repeats_with_a_seeded_rng() -> None:
    policy = rxr.HedgePolicy(rxr.ExponentialBackoff(base=1.0, jitter=1.0))
    assert policy.sample(4, random.Random(3)) == policy.sample(4, random.Random(3))


def test_the_policy_is_a_frozen_value() -> None:
    policy = rxr.HedgePolicy(0.2, 2)
    assert policy == rxr.HedgePolicy(0.2, 2)
    assert hash(policy) == hash(rxr.HedgePolicy(0.2, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_hedges = 3  # type: ignore[misc]


def test_options_beside_a_policy_are_refused() -> None:
    policy = rxr.HedgePolicy(0.2)
    with pytest.raises(TypeError, match="HedgePolicy"):
        rxr.hedge(policy, 1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="HedgePolicy"):
        rxr.hedge(policy, should_hedge=ValueError)  # type: ignore[call-overload]


def test_a_scheduler_that_is_not_one_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="scheduler"):
        rxr.hedge(1.0, scheduler="now")  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [0, 0.0, 1e-300])
def test_more_hedges_than_can_start_at_once_are_refused_with_no_delay(
    delay: float,
) -> None:
    """All at one instant, a source that never answers at once would be
    subscribed without end."""
    rxr.hedge(delay, 100)
    with pytest.raises(ValueError, match="max_hedges"):
        rxr.hedge(delay, 101)
    with pytest.raises(ValueError, match="max_hedges"):
        rxr.HedgePolicy(delay, max_hedges=10**400)
