"""``rxr.bulkhead`` per subscription below the limit, against a pass-through ``map``.

Each comparison is run seven times in the same process and the lowest ratio
is kept (each is already the median of alternating batches): the machine's
other load only ever adds time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex as rx
from reactivex import operators as ops
from reactivex.disposable import Disposable

import rxresilience as rxr

from ._harness import Comparison, compare

RUNS = 7


def _noop(*_: Any) -> None:
    pass


def _identity(x: int) -> int:
    return x


def _answer_at_once(observer: Any, _: Any = None) -> Disposable:
    observer.on_next(1)
    observer.on_completed()
    return Disposable()


def _best(make: Callable[[], Comparison]) -> Comparison:
    return min((make() for _ in range(RUNS)), key=lambda row: row.ratio)


def run() -> list[Comparison]:
    bulkhead = rxr.Bulkhead(max_concurrent=10, max_queue=100, name="bench")
    guarded = rx.of(1).pipe(rxr.bulkhead(bulkhead))
    mapped = rx.of(1).pipe(ops.map(_identity))
    rows = [
        _best(
            lambda: compare(
                "per subscription below the limit: of(1) + bulkhead vs of(1) + map",
                lambda: guarded.subscribe(_noop, _noop, _noop),
                lambda: mapped.subscribe(_noop, _noop, _noop),
                target=1.3,
                batches=7,
            )
        )
    ]
    answering = rx.create(_answer_at_once)
    guarded_create = answering.pipe(rxr.bulkhead(bulkhead))
    mapped_create = answering.pipe(ops.map(_identity))
    rows.append(
        _best(
            lambda: compare(
                "per subscription below the limit, a source answering inside its "
                "subscribe (rx.create): bulkhead vs map",
                lambda: guarded_create.subscribe(_noop, _noop, _noop),
                lambda: mapped_create.subscribe(_noop, _noop, _noop),
                target=1.3,
                batches=7,
            )
        )
    )
    waiting = rxr.Bulkhead(max_concurrent=1, max_queue=100, max_wait=60.0)
    timed = rx.of(1).pipe(rxr.bulkhead(waiting))
    rows.append(
        _best(
            lambda: compare(
                "per subscription below the limit, with max_wait: of(1) + bulkhead vs "
                "of(1) + map",
                lambda: timed.subscribe(_noop, _noop, _noop),
                lambda: mapped.subscribe(_noop, _noop, _noop),
                target=1.3,
                batches=7,
            )
        )
    )
    assert bulkhead.metrics().active == 0
    assert waiting.metrics().active == 0
    return rows
