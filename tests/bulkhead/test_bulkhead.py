"""``rxr.Bulkhead``: the shared object, its counters and its handover."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import threading
from typing import Any

import pytest

import rxresilience as rxr

from .._support import DURATIONS_OUT_OF_RANGE


class Call:
    """A plain call taking part through the public protocol; counts its starts."""

    def __init__(self, bulkhead: rxr.Bulkhead, on_start: Any = None) -> None:
        self.bulkhead = bulkhead
        self.starts = 0
        self.on_start = on_start

    def start(self) -> None:
        self.starts += 1
        if self.on_start is not None:
            self.on_start(self)


def test_the_defaults_are_polly_s_no_queue_and_no_wait_bound() -> None:
    bulkhead = rxr.Bulkhead(10)
    assert (bulkhead.max_concurrent, bulkhead.max_queue, bulkhead.max_wait) == (
        10,
        0,
        None,
    )
    assert bulkhead.name == "bulkhead"
    assert repr(bulkhead) == (
        "Bulkhead(name='bulkhead', max_concurrent=10, max_queue=0, max_wait=None)"
    )


def test_metrics_are_a_frozen_slotted_snapshot() -> None:
    bulkhead = rxr.Bulkhead(2, 3, name="inventory")
    metrics = bulkhead.metrics()
    assert metrics == rxr.BulkheadMetrics(
        active=0, queued=0, admitted=0, rejected=0, max_concurrent=2
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.active = 1  # type: ignore[misc]
    assert not hasattr(metrics, "__dict__")
    bulkhead.enter(Call(bulkhead))
    assert metrics.active == 0  # a snapshot, not a view
    assert bulkhead.metrics().active == 1


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (True, TypeError),
        (1.0, TypeError),
        (2.5, TypeError),
        (math.nan, TypeError),
        ("3", TypeError),
        (None, TypeError),
    ],
)
def test_max_concurrent_must_be_an_int_of_at_least_one(
    value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_concurrent"):
        rxr.Bulkhead(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (False, TypeError),
        (1.0, TypeError),
        (math.inf, TypeError),
        (None, TypeError),
    ],
)
def test_max_queue_must_be_an_int_of_at_least_zero(
    value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_queue"):
        rxr.Bulkhead(1, value)


@pytest.mark.parametrize(("value", "error"), DURATIONS_OUT_OF_RANGE)
def test_max_wait_must_be_a_duration(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_wait"):
        rxr.Bulkhead(1, 1, value)


@pytest.mark.parametrize("value", ["", 3, None])
def test_name_must_be_a_non_empty_string(value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="name"):
        rxr.Bulkhead(1, name=value)


def test_huge_counts_are_meaningful() -> None:
    bulkhead = rxr.Bulkhead(10**400, sys.maxsize, 0.0)
    assert bulkhead.enter(Call(bulkhead)) is True
    assert bulkhead.metrics().active == 1


def test_enter_admits_then_queues_then_refuses_with_queue_full() -> None:
    bulkhead = rxr.Bulkhead(1, 1, name="b[*]?")
    first, second, third = Call(bulkhead), Call(bulkhead), Call(bulkhead)
    assert bulkhead.enter(first) is True
    assert bulkhead.enter(second) is False
    refusal = bulkhead.enter(third)
    assert isinstance(refusal, rxr.BulkheadFullError)
    assert (refusal.bulkhead, refusal.reason, refusal.retry_after) == (
        "b[*]?",
        "queue full",
        None,
    )
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 1, 1, 1, 1)
    assert second.starts == 0


def test_a_freed_slot_goes_to_the_first_waiter_on_the_freeing_thread() -> None:
    bulkhead = rxr.Bulkhead(1, 3)
    first = Call(bulkhead)
    bulkhead.enter(first)
    started_on: list[int] = []
    waiters = [
        Call(bulkhead, lambda c: started_on.append(threading.get_ident()))
        for _ in range(3)
    ]
    for waiter in waiters:
        assert bulkhead.enter(waiter) is False
    bulkhead.leave(first)
    assert [w.starts for w in waiters] == [1, 0, 0]
    assert started_on == [threading.get_ident()]
    # A newcomer never overtakes the queue.
    assert bulkhead.enter(Call(bulkhead)) is False
    bulkhead.leave(waiters[0])
    assert [w.starts for w in waiters] == [1, 1, 0]
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 2, 3, 0, 1)


def test_leave_is_idempotent_and_gives_up_a_place_in_the_queue() -> None:
    bulkhead = rxr.Bulkhead(1, 2)
    first, waiting, next_ = Call(bulkhead), Call(bulkhead), Call(bulkhead)
    bulkhead.enter(first)
    bulkhead.enter(waiting)
    bulkhead.enter(next_)
    bulkhead.leave(waiting)  # disposed while waiting: neither admitted nor refused
    bulkhead.leave(waiting)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 1, 1, 0, 1)
    bulkhead.leave(first)
    bulkhead.leave(first)  # a second leave must not free a second slot
    assert (waiting.starts, next_.starts) == (0, 1)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 2, 0, 1)
    bulkhead.leave(next_)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 2, 0, 1)


def test_expire_refuses_a_waiter_once_and_never_one_handed_a_slot() -> None:
    bulkhead = rxr.Bulkhead(1, 2, 5.0)
    first, late, lucky = Call(bulkhead), Call(bulkhead), Call(bulkhead)
    bulkhead.enter(first)
    bulkhead.enter(late)
    bulkhead.enter(lucky)
    refusal = bulkhead.expire(late)
    assert isinstance(refusal, rxr.BulkheadFullError)
    assert refusal.reason == "wait exceeded"
    assert bulkhead.expire(late) is None  # counted once
    bulkhead.leave(first)
    assert lucky.starts == 1
    assert bulkhead.expire(lucky) is None  # the handover won
    assert late.starts == 0
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 2, 1, 1)


def test_max_wait_zero_allows_no_wait() -> None:
    bulkhead = rxr.Bulkhead(1, 5, 0.0)
    assert bulkhead.enter(Call(bulkhead)) is True
    refusal = bulkhead.enter(Call(bulkhead))
    assert isinstance(refusal, rxr.BulkheadFullError)
    assert refusal.reason == "wait exceeded"
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 1, 1, 1)


def test_waiters_that_end_as_they_start_drain_in_constant_stack() -> None:
    bulkhead = rxr.Bulkhead(1, 20_000)
    first = Call(bulkhead)
    bulkhead.enter(first)
    waiters = [Call(bulkhead, bulkhead.leave) for _ in range(20_000)]
    for waiter in waiters:
        bulkhead.enter(waiter)
    bulkhead.leave(first)  # each waiter frees its slot inside its own start
    assert all(w.starts == 1 for w in waiters)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, 20_001, 0, 1)


def test_a_waiter_raising_as_it_starts_is_logged_and_the_next_still_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bulkhead = rxr.Bulkhead(1, 2, name="inventory")
    first = Call(bulkhead)
    bulkhead.enter(first)

    def explode(call: Call) -> None:
        bulkhead.leave(call)
        raise RuntimeError("the subscriber's own bug")

    broken, fine = Call(bulkhead, explode), Call(bulkhead)
    bulkhead.enter(broken)
    bulkhead.enter(fine)
    with caplog.at_level(logging.ERROR, logger="rxresilience"):
        bulkhead.leave(first)  # never raises into the call that freed the slot
    assert (broken.starts, fine.starts) == (1, 1)
    [record] = caplog.records
    assert "'inventory'" in record.getMessage()
    assert record.exc_info is not None
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 3, 0, 1)


def test_eight_threads_never_exceed_the_limit_and_count_exactly() -> None:
    limit, threads, calls = 3, 8, 1500
    bulkhead = rxr.Bulkhead(limit, threads * calls)
    lock = threading.Lock()
    running = [0]
    peak = [0]
    starts = [0]

    def run(call: Call) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            starts[0] += 1
        for _ in range(20):
            pass
        with lock:
            running[0] -= 1
        bulkhead.leave(call)

    def worker() -> None:
        for _ in range(calls):
            call = Call(bulkhead, run)
            if bulkhead.enter(call) is True:
                call.start()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert peak[0] <= limit
    assert starts[0] == threads * calls
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, threads * calls, 0, limit)


def test_max_wait_zero_without_a_queue_refuses_for_a_full_queue() -> None:
    bulkhead = rxr.Bulkhead(1, 0, 0.0)
    bulkhead.enter(Call(bulkhead))
    refusal = bulkhead.enter(Call(bulkhead))
    assert isinstance(refusal, rxr.BulkheadFullError)
    assert refusal.reason == "queue full"


@dataclasses.dataclass
class EqualCall:
    """A waiter of the user's own whose ``__eq__`` says all are equal (and so
    is unhashable): each is still a call of its own."""

    starts: int = 0

    def start(self) -> None:
        self.starts += 1


def test_waiters_are_themselves_whatever_their_eq_says() -> None:
    bulkhead = rxr.Bulkhead(1, 2)
    first, second, third = EqualCall(), EqualCall(), EqualCall()
    assert first == second == third
    assert bulkhead.enter(first) is True
    assert bulkhead.enter(second) is False
    assert bulkhead.enter(third) is False
    bulkhead.leave(third)  # leaves the queue: not second's place
    bulkhead.leave(first)
    assert (second.starts, third.starts) == (1, 0)
    assert bulkhead.metrics() == rxr.BulkheadMetrics(1, 0, 2, 0, 1)
