"""``rxr.timeout`` per item on the default scheduler."""

from __future__ import annotations

from typing import Any

import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr

from ._harness import Comparison, compare

ITEMS = 100_000
RXPY_ITEMS = 2_000  # ops.timeout starts an OS timer thread per item: keep it short


def _noop(*_: Any) -> None:
    pass


def _identity(x: int) -> int:
    return x


def run() -> list[Comparison]:
    ours = rx.from_iterable(range(ITEMS)).pipe(rxr.timeout(60.0))
    mapped = rx.from_iterable(range(ITEMS)).pipe(ops.map(_identity))
    rows = [
        compare(
            f"per item, {ITEMS:,} items, default scheduler: timeout(each=60) vs map",
            lambda: ours.subscribe(_noop, _noop, _noop),
            lambda: mapped.subscribe(_noop, _noop, _noop),
            target=3.0,
            loops=1,
            batches=7,
            per=ITEMS,
            unit="item",
        )
    ]
    ours_short = rx.from_iterable(range(RXPY_ITEMS)).pipe(rxr.timeout(60.0))
    theirs_short = rx.from_iterable(range(RXPY_ITEMS)).pipe(ops.timeout(60.0))
    rows.append(
        compare(
            f"per item, {RXPY_ITEMS:,} items: timeout(each=60) vs ops.timeout(60)",
            lambda: ours_short.subscribe(_noop, _noop, _noop),
            lambda: theirs_short.subscribe(_noop, _noop, _noop),
            target=None,
            loops=1,
            batches=5,
            per=RXPY_ITEMS,
            unit="item",
        )
    )
    return rows
