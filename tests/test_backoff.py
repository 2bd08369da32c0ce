"""Backoff policies: formulas, seeded determinism, composition, validation."""

from __future__ import annotations

import itertools
import math
import random
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience._backoff_argument import FunctionBackoff, to_backoff
from rxresilience._clock import LONGEST_WAIT

from ._support import DURATIONS_OUT_OF_RANGE


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


# -- duration arguments: finite, >= 0 (> 0 where zero means nothing), <= LONGEST_WAIT --

#: (build from the value, the argument's name, the field holding it, zero accepted)
_DURATION_ARGUMENTS: list[Any] = [
    pytest.param(rxr.ConstantBackoff, "delay", "delay", True, id="Constant.delay"),
    pytest.param(
        lambda v: rxr.LinearBackoff(initial=v, max_delay=LONGEST_WAIT),
        "initial",
        "initial",
        True,
        id="Linear.initial",
    ),
    pytest.param(
        lambda v: rxr.LinearBackoff(step=v), "step", "step", True, id="Linear.step"
    ),
    pytest.param(
        lambda v: rxr.LinearBackoff(initial=0.0, max_delay=v),
        "max_delay",
        "max_delay",
        True,
        id="Linear.max_delay",
    ),
    *(
        pytest.param(
            lambda v, kind=kind: kind(base=v, max_delay=LONGEST_WAIT),
            "base",
            "base",
            True,
            id=f"{kind.__name__}.base",
        )
        for kind in (
            rxr.ExponentialBackoff,
            rxr.FullJitterBackoff,
            rxr.EqualJitterBackoff,
            rxr.DecorrelatedJitterBackoff,
        )
    ),
    *(
        pytest.param(
            lambda v, kind=kind: kind(base=0.0, max_delay=v),
            "max_delay",
            "max_delay",
            zero,
            id=f"{kind.__name__}.max_delay",
        )
        for kind, zero in (
            (rxr.ExponentialBackoff, False),
            (rxr.FullJitterBackoff, False),
            (rxr.EqualJitterBackoff, False),
            (rxr.DecorrelatedJitterBackoff, True),
        )
    ),
    pytest.param(
        lambda v: rxr.CappedBackoff(rxr.ConstantBackoff(1.0), v),
        "max_delay",
        "max_delay",
        True,
        id="Capped.max_delay",
    ),
    pytest.param(
        lambda v: rxr.ConstantBackoff(1.0).capped(v),
        "max_delay",
        "max_delay",
        True,
        id="capped()",
    ),
    pytest.param(to_backoff, "backoff", "delay", True, id="retry(backoff=seconds)"),
]

_OUT_OF_RANGE: list[Any] = [
    *DURATIONS_OUT_OF_RANGE,
    pytest.param(LONGEST_WAIT * (1 + 1e-15), ValueError, id="just-past-longest"),
    pytest.param(-math.inf, ValueError, id="-inf"),
    pytest.param(-1e-300, ValueError, id="-tiny"),
]


@pytest.mark.parametrize(("value", "error"), _OUT_OF_RANGE)
@pytest.mark.parametrize(("build", "argument", "field", "zero"), _DURATION_ARGUMENTS)
def test_a_duration_argument_out_of_range_is_refused_naming_it(
    build: Callable[[object], object],
    argument: str,
    field: str,
    zero: bool,
    value: object,
    error: type[Exception],
) -> None:
    with pytest.raises(error, match=rf"^{argument} "):
        build(value)


@pytest.mark.parametrize(("build", "argument", "field", "zero"), _DURATION_ARGUMENTS)
def test_a_duration_argument_in_range_is_kept_as_a_float(
    build: Callable[[object], object], argument: str, field: str, zero: bool
) -> None:
    for value in (5, 0.5, 1e-300, int(LONGEST_WAIT), LONGEST_WAIT):
        kept = getattr(build(value), field)
        assert type(kept) is float
        assert kept == value
    if zero:
        assert getattr(build(0), field) == 0.0
    else:
        with pytest.raises(ValueError, match=rf"^{argument} must be > 0"):
            build(0)


@pytest.mark.parametrize(
    "build",
    [
        lambda v: rxr.ExponentialBackoff(factor=v),
        lambda v: rxr.FullJitterBackoff(factor=v),
        lambda v: rxr.EqualJitterBackoff(factor=v),
    ],
)
def test_a_factor_is_a_finite_ratio_of_at_least_one(
    build: Callable[[object], rxr.Backoff],
) -> None:
    for bad in (math.inf, math.nan, 0.5, 0, -2):
        with pytest.raises(ValueError, match=r"^factor "):
            build(bad)
    with pytest.raises(TypeError, match=r"^factor "):
        build(True)
    for good in (1, 2, 1.5, 1e300, 1.7e308):
        assert build(good).sample(3) is not None


_ATTEMPTS = 100_000


def _policies_at_their_limits() -> list[Any]:
    """(policy, cap): every kind, integer and float arguments, jitter on and off."""
    tiny = 5e-324  # the smallest float: factor ** exponent overflows long before
    longest = int(LONGEST_WAIT)
    exponential: list[tuple[rxr.Backoff, float]] = []
    for kind in (rxr.FullJitterBackoff, rxr.EqualJitterBackoff):
        exponential += [
            (kind(base=1, factor=2, max_delay=longest), LONGEST_WAIT),
            (kind(base=tiny, factor=2.0, max_delay=LONGEST_WAIT), LONGEST_WAIT),
            (kind(base=1e-300, factor=1e300, max_delay=30.0), 30.0),
            (kind(base=3, factor=1.0000001, max_delay=60), 60.0),
            (kind(base=0, factor=7, max_delay=1), 1.0),
        ]
    for jitter in (0, 0.3, 1):
        exponential += [
            (
                rxr.ExponentialBackoff(
                    base=1, factor=2, max_delay=longest, jitter=jitter
                ),
                LONGEST_WAIT,
            ),
            (
                rxr.ExponentialBackoff(
                    base=tiny, factor=2.0, max_delay=LONGEST_WAIT, jitter=jitter
                ),
                LONGEST_WAIT,
            ),
            (
                rxr.ExponentialBackoff(
                    base=1e-300, factor=1e300, max_delay=30.0, jitter=jitter
                ),
                30.0,
            ),
            (
                rxr.ExponentialBackoff(
                    base=7, factor=10**6, max_delay=longest, jitter=jitter
                ),
                LONGEST_WAIT,
            ),
            (
                rxr.ExponentialBackoff(
                    base=tiny, factor=1.7e308, max_delay=tiny, jitter=jitter
                ),
                tiny,
            ),
            (
                rxr.ExponentialBackoff(base=0, factor=3, max_delay=5, jitter=jitter),
                5.0,
            ),
        ]
    others: list[tuple[rxr.Backoff, float]] = [
        (rxr.ConstantBackoff(0), 0.0),
        (rxr.ConstantBackoff(5), 5.0),
        (rxr.ConstantBackoff(longest), LONGEST_WAIT),
        (rxr.LinearBackoff(initial=1, step=2, max_delay=30), 30.0),
        (rxr.LinearBackoff(initial=0, step=longest, max_delay=longest), LONGEST_WAIT),
        (rxr.LinearBackoff(initial=0.0, step=tiny, max_delay=1.0), 1.0),
        (rxr.LinearBackoff(initial=50, step=0, max_delay=10), 10.0),
        (rxr.DecorrelatedJitterBackoff(base=1, max_delay=longest), LONGEST_WAIT),
        (
            rxr.DecorrelatedJitterBackoff(
                base=tiny, max_delay=LONGEST_WAIT, multiplier=1.7e308
            ),
            LONGEST_WAIT,
        ),
        (rxr.DecorrelatedJitterBackoff(base=0, max_delay=5, multiplier=1), 5.0),
        (rxr.ConstantBackoff(10).capped(3), 3.0),
        (
            rxr.ExponentialBackoff(base=tiny, factor=2, max_delay=longest).capped(60),
            60.0,
        ),
        (
            rxr.ExponentialBackoff(base=1, factor=1e300, max_delay=longest)
            + rxr.LinearBackoff(initial=1, step=longest, max_delay=longest),
            2 * LONGEST_WAIT,
        ),
        (rxr.FullJitterBackoff(max_delay=30) + 5, 35.0),
        (0.5 + rxr.DecorrelatedJitterBackoff(), 30.5),
        (FunctionBackoff(lambda attempt: attempt % 7), 6.0),
        (FunctionBackoff(lambda attempt: (attempt % 13) * 0.25), 3.0),
        (FunctionBackoff(lambda attempt: min(attempt, 60)), 60.0),
        # run-time values past LONGEST_WAIT are the retry's "never": kept finite
        (
            FunctionBackoff(lambda attempt: 1e300) + rxr.ConstantBackoff(5),
            sys.float_info.max,
        ),
        (
            FunctionBackoff(lambda attempt: 1.7e308)
            + FunctionBackoff(lambda attempt: 1.7e308),
            sys.float_info.max,
        ),
    ]
    return [
        pytest.param(policy, cap, id=f"{index}-{type(policy).__name__}")
        for index, (policy, cap) in enumerate(others + exponential)
    ]


@pytest.mark.parametrize(("policy", "cap"), _policies_at_their_limits())
def test_attempt_100_000_of_every_policy_is_a_finite_float_within_the_cap(
    policy: rxr.Backoff, cap: float
) -> None:
    delays = list(itertools.islice(policy.delays(random.Random(7)), _ATTEMPTS))
    assert len(delays) == _ATTEMPTS
    assert all(type(delay) is float for delay in delays)
    assert all(map(math.isfinite, delays))
    assert min(delays) >= 0.0
    assert max(delays) <= cap


_durations = st.one_of(
    st.integers(0, int(LONGEST_WAIT)),
    st.floats(0.0, LONGEST_WAIT),
    st.sampled_from([0.0, 5e-324, 1e-300, 1.0, LONGEST_WAIT]),
)
_factors = st.one_of(
    st.integers(1, 10**9),
    st.floats(1.0, 1.7e308),
    st.sampled_from([1.0, 1.0000001, 2.0, 1e300, 1.7e308]),
)


@given(
    kind=st.sampled_from(
        [rxr.ExponentialBackoff, rxr.FullJitterBackoff, rxr.EqualJitterBackoff]
    ),
    base=_durations,
    factor=_factors,
    cap=_durations,
    jitter=st.sampled_from([0, 0.0, 0.3, 1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_exponential_delays_never_overflow_for_any_valid_arguments(
    kind: Any, base: float, factor: float, cap: float, jitter: float, seed: int
) -> None:
    max_delay = max(base, cap) or 1.0
    options: dict[str, Any] = (
        {"jitter": jitter} if kind is rxr.ExponentialBackoff else {}
    )
    policy = kind(base=base, factor=factor, max_delay=max_delay, **options)
    delays = policy.sample(2_000, random.Random(seed))
    assert all(type(delay) is float and math.isfinite(delay) for delay in delays)
    assert min(delays) >= 0.0
    assert max(delays) <= max_delay
    if jitter == 0 and kind is rxr.ExponentialBackoff:
        assert delays == sorted(delays)  # never shrinks, then holds the cap


@given(
    base=_durations,
    cap=_durations,
    multiplier=_factors,
    seed=st.integers(0, 2**32 - 1),
)
def test_decorrelated_jitter_never_overflows_for_any_valid_arguments(
    base: float, cap: float, multiplier: float, seed: int
) -> None:
    max_delay = max(base, cap)
    policy = rxr.DecorrelatedJitterBackoff(
        base=base, max_delay=max_delay, multiplier=multiplier
    )
    delays = policy.sample(2_000, random.Random(seed))
    assert all(type(delay) is float and math.isfinite(delay) for delay in delays)
    assert all(float(base) <= delay <= max_delay for delay in delays)


def test_exponential_backoff_holds_the_formula_with_a_tiny_base() -> None:
    """Far past where ``2.0 ** exponent`` overflows, the delays still double."""
    tiny = 5e-324
    delays = rxr.ExponentialBackoff(
        base=tiny, factor=2.0, max_delay=LONGEST_WAIT, jitter=0.0
    ).sample(1200)
    assert delays[0] == tiny
    assert delays[1] == 2 * tiny
    first_capped = delays.index(LONGEST_WAIT)
    assert all(d < LONGEST_WAIT for d in delays[:first_capped])
    assert delays[first_capped:] == [LONGEST_WAIT] * (1200 - first_capped)
    for before, after in itertools.pairwise(delays[:first_capped]):
        assert after == pytest.approx(2 * before, rel=1e-9)


# --- the operator's jitter source, seeded on first use ------------------------------------


def test_a_generator_seeded_on_first_use_draws_like_a_seeded_one() -> None:
    import copy
    import pickle

    from rxresilience._seeded_random import SeededOnFirstUse

    first, second = SeededOnFirstUse(), SeededOnFirstUse()
    draws = [first.random() for _ in range(3)]
    assert len(set(draws)) == 3
    assert all(0.0 <= d < 1.0 for d in draws)
    assert second.getrandbits(64) != 0  # an unseeded generator gives zeros
    assert SeededOnFirstUse().randrange(10**12) != SeededOnFirstUse().randrange(10**12)
    assert SeededOnFirstUse().uniform(5, 6) >= 5
    seeded = SeededOnFirstUse()
    seeded.seed(7)
    assert seeded.random() == random.Random(7).random()
    for twin in (copy.copy(first), pickle.loads(pickle.dumps(first))):
        assert twin.random() == copy.copy(first).random()


def test_operators_built_alike_share_a_policy_but_not_their_jitter() -> None:
    import reactivex as rx
    from reactivex.testing import TestScheduler

    import rxresilience as rxr

    def delays() -> list[float]:
        scheduler = TestScheduler()
        attempts: list[float] = []
        source = rx.defer(
            lambda _: (attempts.append(scheduler.clock), rx.throw(OSError()))[1]
        )
        source.pipe(rxr.retry(4)).subscribe(
            on_error=lambda e: None, scheduler=scheduler
        )
        scheduler.start()
        return [b - a for a, b in itertools.pairwise(attempts)]

    assert delays() != delays()  # each operator draws its own jitter


def test_retry_arguments_are_still_checked_when_the_policy_is_shared() -> None:
    import pytest

    import rxresilience as rxr

    for bad, error in (
        (True, TypeError),
        (0, ValueError),
        (-1, ValueError),
        (2.0, TypeError),
    ):
        with pytest.raises(error, match="max_attempts"):
            rxr.retry(bad)  # type: ignore[arg-type]
