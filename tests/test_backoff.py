"""Backoff policies: formulas, seeded determinism, composition, validation."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxresilience as rxr


def test_exponential_backoff_follows_the_documented_formula() -> None:
    policy = rxr.ExponentialBackoff(base=1.0, factor=2.0, max_delay=30.0, jitter=0.3)
    draws = random.Random(11)
    expected = [
        min(1.0 * 2.0 ** (k - 1) * (1 + draws.random() * 0.3), 30.0)
        for k in range(1, 9)
    ]
    assert policy.sample(8, random.Random(11)) == expected


def test_exponential_backoff_without_jitter_doubles_then_caps() -> None:
    policy = rxr.ExponentialBackoff(base=0.5, factor=2.0, max_delay=3.0, jitter=0.0)
    assert policy.sample(6) == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_cap_applies_after_jitter() -> None:
    policy = rxr.ExponentialBackoff(base=10.0, factor=1.0, max_delay=10.0, jitter=1.0)
    assert policy.sample(50, random.Random(3)) == [10.0] * 50


def test_a_seeded_rng_gives_the_same_delays_every_run() -> None:
    policies: list[rxr.Backoff] = [
        rxr.ExponentialBackoff(),
        rxr.FullJitterBackoff(),
        rxr.EqualJitterBackoff(),
        rxr.DecorrelatedJitterBackoff(),
    ]
    for policy in policies:
        assert policy.sample(20, random.Random(5)) == policy.sample(
            20, random.Random(5)
        )


def test_policies_never_touch_the_global_random_state() -> None:
    random.seed(1234)
    before = random.getstate()
    rxr.ExponentialBackoff().sample(10, random.Random(1))
    rxr.DecorrelatedJitterBackoff().sample(10, random.Random(1))
    assert random.getstate() == before


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_full_jitter_stays_within_the_aws_window(seed: int) -> None:
    policy = rxr.FullJitterBackoff(base=1.0, factor=2.0, max_delay=8.0)
    for k, delay in enumerate(policy.sample(8, random.Random(seed)), start=1):
        assert 0.0 <= delay < min(8.0, 2.0 ** (k - 1)) or delay == 0.0


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_equal_jitter_keeps_at_least_half(seed: int) -> None:
    policy = rxr.EqualJitterBackoff(base=1.0, factor=2.0, max_delay=8.0)
    for k, delay in enumerate(policy.sample(8, random.Random(seed)), start=1):
        window = min(8.0, 2.0 ** (k - 1))
        assert window / 2 <= delay <= window


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_decorrelated_jitter_follows_the_aws_recurrence(seed: int) -> None:
    policy = rxr.DecorrelatedJitterBackoff(base=0.5, max_delay=20.0)
    previous = 0.5
    for delay in policy.sample(30, random.Random(seed)):
        assert 0.5 <= delay <= min(20.0, previous * 3)
        previous = delay


def test_constant_and_linear_backoff() -> None:
    assert rxr.ConstantBackoff(2.5).sample(3) == [2.5, 2.5, 2.5]
    assert rxr.LinearBackoff(initial=1.0, step=1.5, max_delay=4.0).sample(4) == [
        1.0,
        2.5,
        4.0,
        4.0,
    ]


def test_policies_compose_with_cap_and_sum() -> None:
    capped = rxr.ExponentialBackoff(jitter=0.0).capped(3.0)
    assert capped.sample(4) == [1.0, 2.0, 3.0, 3.0]
    assert (rxr.ConstantBackoff(1.0) + 0.25).sample(2) == [1.25, 1.25]
    assert (0.25 + rxr.ConstantBackoff(1.0)).sample(1) == [1.25]
    summed = rxr.ConstantBackoff(1.0) + rxr.LinearBackoff(initial=0.0, step=1.0)
    assert summed.sample(3) == [1.0, 2.0, 3.0]


def test_policies_are_immutable_values() -> None:
    policy = rxr.ExponentialBackoff()
    with pytest.raises(AttributeError):
        policy.base = 2.0  # type: ignore[misc]
    assert policy == rxr.ExponentialBackoff()
    assert hash(policy) == hash(rxr.ExponentialBackoff())


def test_long_sequences_never_overflow() -> None:
    delays = rxr.ExponentialBackoff(base=1e-3, factor=10.0, max_delay=60.0).sample(
        5000, random.Random(0)
    )
    assert max(delays) <= 60.0
    assert all(math.isfinite(d) for d in delays)
    assert rxr.ExponentialBackoff(base=0.0).sample(3000) == [0.0] * 3000


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: rxr.ExponentialBackoff(base=-1.0), "base"),
        (lambda: rxr.ExponentialBackoff(factor=0.5), "factor"),
        (lambda: rxr.ExponentialBackoff(jitter=1.5), "jitter"),
        (lambda: rxr.ExponentialBackoff(jitter=-0.1), "jitter"),
        (lambda: rxr.ExponentialBackoff(max_delay=-1.0), "max_delay"),
        (lambda: rxr.ExponentialBackoff(base=5.0, max_delay=1.0), "max_delay"),
        (lambda: rxr.ExponentialBackoff(base=math.nan), "base"),
        (lambda: rxr.FullJitterBackoff(factor=0.9), "factor"),
        (lambda: rxr.DecorrelatedJitterBackoff(multiplier=0.5), "multiplier"),
        (lambda: rxr.DecorrelatedJitterBackoff(base=3.0, max_delay=1.0), "max_delay"),
        (lambda: rxr.ConstantBackoff(-0.5), "delay"),
        (lambda: rxr.LinearBackoff(step=-1.0), "step"),
        (lambda: rxr.ConstantBackoff(1.0).capped(-1.0), "max_delay"),
    ],
)
def test_bad_policy_arguments_raise_naming_the_argument(
    build: object, argument: str
) -> None:
    with pytest.raises(ValueError, match=argument):
        build()  # type: ignore[operator]


def test_non_numbers_are_type_errors() -> None:
    with pytest.raises(TypeError, match="base"):
        rxr.ExponentialBackoff(base="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="delay"):
        rxr.ConstantBackoff(True)
    with pytest.raises(TypeError, match="policy"):
        rxr.CappedBackoff(1.0, 2.0)  # type: ignore[arg-type]
