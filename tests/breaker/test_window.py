"""Sliding windows against naive models: what they hold after any sequence of calls."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience._clock import LONGEST_WAIT

from .._support import POSITIVE_DURATIONS_OUT_OF_RANGE

outcomes = st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200)


@given(size=st.integers(1, 20), calls=outcomes)
def test_count_window_holds_exactly_the_last_n_calls(
    size: int, calls: list[tuple[bool, bool]]
) -> None:
    window = rxr.CountWindow(size).accumulator()
    for failed, slow in calls:
        window.add(0.0, failed, slow)
    last = calls[-size:]
    totals = window.totals(0.0)
    assert totals.calls == len(last)
    assert totals.failures == sum(f for f, _ in last)
    assert totals.slow_calls == sum(s for _, s in last)


@given(
    seconds=st.sampled_from([1.0, 2.5, 10.0, 60.0]),
    buckets=st.one_of(st.none(), st.integers(1, 12)),
    steps=st.lists(
        st.tuples(st.floats(0, 7, allow_nan=False), st.booleans(), st.booleans()),
        max_size=120,
    ),
)
def test_time_window_holds_the_calls_of_its_live_buckets(
    seconds: float,
    buckets: int | None,
    steps: list[tuple[float, bool, bool]],
) -> None:
    config = rxr.TimeWindow(seconds, buckets)
    width = seconds / config.bucket_count
    window = config.accumulator()
    now = 0.0
    seen: list[tuple[int, bool, bool]] = []
    for advance, failed, slow in steps:
        now += advance
        window.add(now, failed, slow)
        seen.append((math.floor(now / width), failed, slow))
    current = math.floor(now / width)
    live = [(f, s) for epoch, f, s in seen if epoch > current - config.bucket_count]
    totals = window.totals(now)
    assert totals.calls == len(live)
    assert totals.failures == sum(f for f, _ in live)
    assert totals.slow_calls == sum(s for _, s in live)
    later = now + seconds
    assert window.totals(later).calls == 0  # everything ages out


def test_clear_empties_both_windows() -> None:
    for config in (rxr.CountWindow(3), rxr.TimeWindow(5.0)):
        window = config.accumulator()
        window.add(1.0, True, True)
        window.clear()
        assert window.totals(1.0).calls == 0


@pytest.mark.parametrize(
    ("value", "error"),
    POSITIVE_DURATIONS_OUT_OF_RANGE,
)
def test_time_window_seconds_out_of_range_are_refused_naming_them(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^seconds "):
        rxr.TimeWindow(value)  # type: ignore[arg-type]


def test_time_window_seconds_in_range_are_kept_as_a_float() -> None:
    for value in (5, 0.5, int(LONGEST_WAIT), LONGEST_WAIT):
        window = rxr.TimeWindow(value)
        assert type(window.seconds) is float
        assert window.seconds == value
    assert rxr.TimeWindow(5) == rxr.TimeWindow(5.0)


@pytest.mark.parametrize(
    ("seconds", "buckets"), [(1e-7, None), (1e-300, None), (1e-3, 10_000)]
)
def test_a_bucket_narrower_than_a_microsecond_is_refused(
    seconds: float, buckets: int | None
) -> None:
    """Schedulers resolve a microsecond at best; ``now / width`` overflows long before."""
    with pytest.raises(ValueError, match=r"^seconds .*buckets"):
        rxr.TimeWindow(seconds, buckets)


def test_the_narrowest_and_widest_windows_count_on_the_real_clock() -> None:
    for config in (
        rxr.TimeWindow(1e-6),
        rxr.TimeWindow(1e-3, buckets=1000),
        rxr.TimeWindow(LONGEST_WAIT),
        rxr.TimeWindow(LONGEST_WAIT, buckets=1),
    ):
        window = config.accumulator()
        now = time.time()
        window.add(now, True, False)
        assert window.totals(now).calls == 1


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: rxr.CountWindow(sys.maxsize), "size"),
        (lambda: rxr.CountWindow(2**36), "size"),
        (lambda: rxr.TimeWindow(1e9, buckets=10**10), "buckets"),
    ],
)
def test_windows_too_large_to_allocate_are_refused_naming_the_argument(
    build: Any, named: str
) -> None:
    # Accepted, each died as a bare MemoryError in CircuitBreaker (or took
    # gigabytes for one breaker).
    with pytest.raises(ValueError, match=rf"^{named} must be at most"):
        build()


def test_the_largest_windows_are_accepted() -> None:
    rxr.CircuitBreaker(window=rxr.CountWindow(1_000_000), failure_rate_threshold=0.5)
    rxr.CircuitBreaker(
        window=rxr.TimeWindow(100_000.0, buckets=100_000), failure_rate_threshold=0.5
    )
