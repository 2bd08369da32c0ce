"""Type-checked, never run: the bulkhead's public types (``mypy --strict tests/typing``)."""

from __future__ import annotations

from typing import assert_type

import reactivex as rx

import rxresilience as rxr

numbers: rx.Observable[int] = rx.of(1, 2, 3)
bulkhead = rxr.Bulkhead(
    max_concurrent=10, max_queue=100, max_wait=None, name="inventory"
)

assert_type(numbers.pipe(rxr.bulkhead(bulkhead)), rx.Observable[int])
assert_type(numbers.pipe(rxr.bulkhead(bulkhead), rxr.retry(3)), rx.Observable[int])
assert_type(bulkhead.metrics(), rxr.BulkheadMetrics)
assert_type(bulkhead.metrics().active, int)
assert_type(bulkhead.max_wait, float | None)
assert_type(rxr.BulkheadFullError("inventory", "queue full").retry_after, float | None)
