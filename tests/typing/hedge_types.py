"""Pins the public types of ``rxr.hedge``: type-checked by ``mypy --strict
tests/typing``, never run."""

from __future__ import annotations

from typing import assert_type

import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr

numbers: rx.Observable[int] = rx.of(1, 2, 3)

assert_type(numbers.pipe(rxr.hedge(0.2)), rx.Observable[int])
assert_type(numbers.pipe(ops.map(str), rxr.hedge(0.2, 2)), rx.Observable[str])
assert_type(
    numbers.pipe(
        rxr.hedge(
            rxr.LinearBackoff(initial=0.2, step=0.2),
            max_hedges=3,
            should_hedge=(ConnectionError, TimeoutError),
        )
    ),
    rx.Observable[int],
)
policy = rxr.HedgePolicy(0.2, max_hedges=2, should_hedge=lambda error: True)
assert_type(numbers.pipe(rxr.hedge(policy)), rx.Observable[int])
assert_type(policy.max_hedges, int)
assert_type(policy.sample(2), list[float])
assert_type(numbers.pipe(rxr.hedge(delay=0.2, max_hedges=1)), rx.Observable[int])
numbers.pipe(rxr.hedge(policy, 2))  # type: ignore[call-overload]
