"""Free when nobody listens: the hot paths build nothing for telemetry.

With no subscriber, a hot path reads one module global and takes one branch:
no event, no clock read for it, no attribute mapping, no tracing context.
Checked two ways: the bus's functions are replaced by ones that fail the
test, and ``tracemalloc`` finds no allocation made with a frame of the
telemetry package on the stack. (The timing side is benchmarks/bench_telemetry.)
"""

from __future__ import annotations

import pathlib
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience import telemetry
from rxresilience.telemetry import _bus

TELEMETRY = str(pathlib.Path(telemetry.__file__).parent)


def _answer_at_once(observer: abc.ObserverBase[int], _: Any = None) -> Disposable:
    observer.on_next(1)
    observer.on_completed()
    return Disposable()


def _hedging(scheduler: TestScheduler) -> Callable[[], Any]:
    """A call whose hedge starts and wins (attempt 1 answers after 5 ticks,
    the hedge after 1), run to its end in virtual time."""
    count = [0]

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> Any:
        count[0] += 1
        latency = 5.0 if count[0] % 2 else 1.0
        return scheduler.schedule_relative(
            latency, lambda *_: (observer.on_next(1), observer.on_completed())
        )

    hedged = rx.create(subscribe).pipe(rxr.hedge(1.0))

    def work() -> None:
        hedged.subscribe(lambda _v: None, scheduler=scheduler)
        scheduler.advance_by(10.0)

    return work


def _hot_paths() -> dict[str, Callable[[], Any]]:
    retried = rx.of(1).pipe(rxr.retry(3))
    breaker = rxr.CircuitBreaker()
    guarded = rx.of(1).pipe(rxr.circuit_breaker(breaker))
    scheduler = TestScheduler()
    timed = rx.from_iterable(range(50)).pipe(rxr.timeout(5.0))
    admitting = rx.of(1).pipe(rxr.bulkhead(rxr.Bulkhead(10)))
    full = rxr.Bulkhead(1, max_queue=1, max_wait=5.0)
    Subject[int]().pipe(rxr.bulkhead(full)).subscribe()  # holds the only slot
    queued = rx.of(1).pipe(rxr.bulkhead(full))
    refusing = rxr.Bulkhead(1)
    Subject[int]().pipe(rxr.bulkhead(refusing)).subscribe()
    refused = rx.of(1).pipe(rxr.bulkhead(refusing))
    hedged = rx.create(_answer_at_once).pipe(rxr.hedge(0.2))
    return {
        "retry success per subscription": lambda: retried.subscribe(lambda _v: None),
        "breaker.call": lambda: breaker.call(len, "abc"),
        "breaker operator per subscription": lambda: guarded.subscribe(lambda _v: None),
        "timeout per item": lambda: timed.subscribe(
            lambda _v: None, scheduler=scheduler
        ),
        "bulkhead operator per subscription": lambda: admitting.subscribe(
            lambda _v: None
        ),
        "bulkhead operator, a call queued then disposed": lambda: queued.subscribe(
            lambda _v: None, scheduler=scheduler
        ).dispose(),
        "bulkhead operator, a call refused": lambda: refused.subscribe(
            on_error=lambda _e: None
        ),
        "hedge per subscription, answered at once": lambda: hedged.subscribe(
            lambda _v: None
        ),
        "hedge that hedges and wins, in virtual time": _hedging(TestScheduler()),
    }


@pytest.fixture
def nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _bus.listening

    def forbidden(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("telemetry work done with nobody listening")

    monkeypatch.setattr(_bus, "emit", forbidden)
    monkeypatch.setattr(_bus, "trace_context", forbidden)


def _telemetry_allocations(work: Callable[[], Any], repeat: int) -> int:
    """Blocks allocated while a telemetry frame was anywhere on the stack."""
    for _ in range(10):  # warm caches and lazy imports outside the measure
        work()
    tracemalloc.start(64)
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(repeat):
            work()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    only = [tracemalloc.Filter(True, f"{TELEMETRY}/*", all_frames=True)]
    stats = after.filter_traces(only).compare_to(
        before.filter_traces(only), "traceback"
    )
    return sum(stat.count_diff for stat in stats if stat.count_diff > 0)


@pytest.mark.parametrize("path", list(_hot_paths()))
def test_a_hot_path_allocates_nothing_for_telemetry_with_nobody_listening(
    path: str, nobody_listens: None
) -> None:
    assert _telemetry_allocations(_hot_paths()[path], 200) == 0


@pytest.mark.parametrize(
    "path",
    [
        "breaker.call",
        "bulkhead operator, a call queued then disposed",
        "bulkhead operator, a call refused",
        "hedge that hedges and wins, in virtual time",
    ],
)
def test_the_measure_does_see_telemetry_allocations_when_someone_listens(
    path: str,
) -> None:
    """The control: the same measure, on paths that report, with a subscriber."""
    seen: list[Any] = []
    subscription = telemetry.events().subscribe(seen.append)
    try:
        allocated = _telemetry_allocations(_hot_paths()[path], 200)
    finally:
        subscription.dispose()
    assert len(seen) >= 200
    assert allocated > 0


@pytest.mark.parametrize("path", list(_hot_paths()))
def test_a_hot_path_makes_no_telemetry_call_with_nobody_listening(
    path: str, nobody_listens: None
) -> None:
    work = _hot_paths()[path]
    for _ in range(100):
        work()
