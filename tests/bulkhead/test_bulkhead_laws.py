"""The bulkhead's strategies and law, on our operator and on users' pipelines."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from reactivex import operators as ops

import rxresilience as rxr
from rxresilience.testing._bulkhead_laws import (
    BulkheadCall,
    bulkhead_loads,
    bulkhead_never_exceeds_its_concurrency,
    bulkheads,
)


@given(bulkheads(), bulkhead_loads())
def test_our_bulkhead_obeys_the_law_with_disposal_at_every_instant(
    bulkhead: rxr.Bulkhead, calls: list[BulkheadCall]
) -> None:
    """Never above the limit, first in first out, every call counted once."""
    bulkhead_never_exceeds_its_concurrency(bulkhead, calls)


@given(bulkheads(waits=False), bulkhead_loads(disposals=False))
def test_without_waits_or_disposals_every_call_is_admitted_or_refused(
    bulkhead: rxr.Bulkhead, calls: list[BulkheadCall]
) -> None:
    bulkhead_never_exceeds_its_concurrency(bulkhead, calls)
    metrics = bulkhead.metrics()
    assert metrics.admitted + metrics.rejected == len(calls)


def double(value: int) -> int:
    return value * 2


@given(bulkheads(), bulkhead_loads())
def test_a_user_pipeline_with_a_total_timeout_obeys_the_law(
    bulkhead: rxr.Bulkhead, calls: list[BulkheadCall]
) -> None:
    def pipeline() -> Any:
        return rx.compose(
            ops.map(double),
            rxr.bulkhead(bulkhead),
            rxr.timeout(total=1.5),
            rxr.fallback(-1),
        )

    bulkhead_never_exceeds_its_concurrency(bulkhead, calls, operator=pipeline)


def test_the_law_catches_a_pipeline_that_forgets_its_bulkhead() -> None:
    bulkhead = rxr.Bulkhead(1, 5)
    calls = [BulkheadCall(0.0, 1.0), BulkheadCall(0.0, 1.0)]
    with pytest.raises(AssertionError, match="2 sources ran at once, limit 1"):
        bulkhead_never_exceeds_its_concurrency(
            bulkhead, calls, operator=lambda: ops.map(lambda value: value)
        )


def test_the_issue_example_as_a_load() -> None:
    bulkhead = rxr.Bulkhead(2, 1)
    bulkhead_never_exceeds_its_concurrency(
        bulkhead, [BulkheadCall(0.0, 1.0) for _ in range(4)]
    )
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 3, 1, 2)


def test_the_law_counts_from_where_a_used_bulkhead_stands() -> None:
    bulkhead = rxr.Bulkhead(1, 1)
    calls = [BulkheadCall(0.0, 1.0), BulkheadCall(0.0, 1.0), BulkheadCall(0.0, 1.0)]
    bulkhead_never_exceeds_its_concurrency(bulkhead, calls)
    bulkhead_never_exceeds_its_concurrency(bulkhead, calls)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 4, 2, 1)


def test_the_law_needs_an_idle_bulkhead() -> None:
    bulkhead = rxr.Bulkhead(1)
    rx.never().pipe(rxr.bulkhead(bulkhead)).subscribe()
    with pytest.raises(ValueError, match="idle"):
        bulkhead_never_exceeds_its_concurrency(bulkhead, [])
