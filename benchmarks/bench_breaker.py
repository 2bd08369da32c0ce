"""``rxr.circuit_breaker`` and ``CircuitBreaker.call`` against their baselines."""

from __future__ import annotations

from typing import Any

import pybreaker
import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr

from ._harness import Comparison, compare


def _noop(*_: Any) -> None:
    pass


def _identity(x: int) -> int:
    return x


def _work() -> int:
    return 1


def run() -> list[Comparison]:
    rows: list[Comparison] = []

    breaker = rxr.CircuitBreaker(failure_threshold=5, reset_timeout=30.0)
    guarded = rx.of(1).pipe(rxr.circuit_breaker(breaker))
    mapped = rx.of(1).pipe(ops.map(_identity))
    rows.append(
        compare(
            "per subscription: of(1) + circuit_breaker vs of(1) + map(identity)",
            lambda: guarded.subscribe(_noop, _noop, _noop),
            lambda: mapped.subscribe(_noop, _noop, _noop),
            target=1.3,
        )
    )

    opened = rxr.CircuitBreaker(failure_threshold=1, reset_timeout=3600.0)
    rx.throw(RuntimeError("down")).pipe(rxr.circuit_breaker(opened)).subscribe(
        on_error=_noop
    )
    assert opened.state is rxr.CircuitState.OPEN
    refused = rx.of(1).pipe(rxr.circuit_breaker(opened))
    thrown = rx.throw(RuntimeError("down"))
    rows.append(
        compare(
            "rejection while OPEN vs a bare rx.throw subscription",
            lambda: refused.subscribe(_noop, _noop, _noop),
            lambda: thrown.subscribe(_noop, _noop, _noop),
            target=1.0,
        )
    )

    rows.append(
        compare(
            "breaker.call(f) vs a bare f()",
            lambda: breaker.call(_work),
            _work,
            target=None,
            loops=20_000,
        )
    )
    theirs = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    rows.append(
        compare(
            "breaker.call(f) vs pybreaker.CircuitBreaker.call(f)",
            lambda: breaker.call(_work),
            lambda: theirs.call(_work),
            target=1.0,
            loops=20_000,
        )
    )
    return rows
