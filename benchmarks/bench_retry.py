"""``rxr.retry`` against ``reactivex.operators.retry``."""

from __future__ import annotations

from typing import Any

import reactivex as rx
from reactivex import abc
from reactivex import operators as ops

import rxresilience as rxr

from ._harness import Comparison, compare

ITEMS = 10_000


def _noop(*_: Any) -> None:
    pass


def run() -> list[Comparison]:
    rows: list[Comparison] = []

    ours_ok = rx.defer(lambda _: rx.of(1)).pipe(rxr.retry(3))
    theirs_ok = rx.defer(lambda _: rx.of(1)).pipe(ops.retry(3))
    rows.append(
        compare(
            "success path, per subscription: retry(3) vs ops.retry(3)",
            lambda: ours_ok.subscribe(_noop, _noop, _noop),
            lambda: theirs_ok.subscribe(_noop, _noop, _noop),
            target=1.1,
        )
    )

    error = RuntimeError("down")

    def fail(observer: abc.ObserverBase[int], _: abc.SchedulerBase | None) -> None:
        observer.on_error(error)

    failing = rx.create(fail)
    ours_fail = failing.pipe(rxr.retry(3, backoff=None))
    theirs_fail = failing.pipe(ops.retry(3))
    rows.append(
        compare(
            "failing path, 3 attempts: retry(3, backoff=None) vs ops.retry(3)",
            lambda: ours_fail.subscribe(_noop, _noop, _noop),
            lambda: theirs_fail.subscribe(_noop, _noop, _noop),
            target=0.6,
        )
    )

    def double(x: int) -> int:
        return x * 2

    items = range(ITEMS)
    ours_stream = rx.from_iterable(items).pipe(ops.map(double), rxr.retry(3))
    theirs_stream = rx.from_iterable(items).pipe(ops.map(double), ops.retry(3))
    rows.append(
        compare(
            f"per item, {ITEMS:,}-item stream: map + retry(3) vs map + ops.retry(3)",
            lambda: ours_stream.subscribe(_noop, _noop, _noop),
            lambda: theirs_stream.subscribe(_noop, _noop, _noop),
            target=1.1,
            loops=3,
            batches=11,
            per=ITEMS,
            unit="item",
        )
    )
    # Building the operator, as users do per call inside flat_map.
    policy = rxr.RetryPolicy(3)
    rows.append(
        compare(
            "building the operator: rxr.retry(3) vs ops.retry(3)",
            lambda: rxr.retry(3),
            lambda: ops.retry(3),
            target=2.0,
            loops=5000,
            unit="operator",
        )
    )
    rows.append(
        compare(
            "building the operator from a prebuilt policy: rxr.retry(policy) vs "
            "ops.retry(3)",
            lambda: rxr.retry(policy),
            lambda: ops.retry(3),
            target=1.2,
            loops=5000,
            unit="operator",
        )
    )
    timeout_policy = rxr.TimeoutPolicy(5.0)
    rows.append(
        compare(
            "building rxr.resilient(retry=policy, timeout=policy) vs ops.retry(3)",
            lambda: rxr.resilient(retry=policy, timeout=timeout_policy),
            lambda: ops.retry(3),
            target=3.0,
            loops=5000,
            unit="operator",
        )
    )
    return rows
