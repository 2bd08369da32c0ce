"""One breaker hammered from many threads: exact counts, bounded trials, no lock held."""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import Any

import reactivex as rx
from reactivex import abc
from reactivex.testing import TestScheduler

import rxresilience as rxr

THREADS = 8
CALLS = 10_000


class Boom(Exception):
    pass


def _run_threads(work: Any) -> None:
    barrier = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_eight_threads_leave_exact_counts_through_the_operator() -> None:
    breaker = rxr.CircuitBreaker(
        failure_threshold=None,
        window=rxr.CountWindow(1000),
        failure_rate_threshold=1.0,
        ignore=KeyError,
        scheduler=TestScheduler(),  # a clock that does not move: nothing times out
    )

    def succeed(observer: abc.ObserverBase[int], _: Any = None) -> None:
        observer.on_next(1)
        observer.on_completed()

    def fail(observer: abc.ObserverBase[int], _: Any = None) -> None:
        observer.on_error(Boom())

    def ignored(observer: abc.ObserverBase[int], _: Any = None) -> None:
        observer.on_error(KeyError("ignored"))

    sources = [
        rx.create(succeed).pipe(rxr.circuit_breaker(breaker)),
        rx.create(fail).pipe(rxr.circuit_breaker(breaker)),
        rx.create(succeed).pipe(rxr.circuit_breaker(breaker)),
        rx.create(ignored).pipe(rxr.circuit_breaker(breaker)),
    ]

    def work(index: int) -> None:
        for i in range(CALLS):
            sources[(i + index) % 4].subscribe(on_error=lambda _: None)

    _run_threads(work)
    metrics = breaker.metrics()
    total = THREADS * CALLS
    assert metrics.state is rxr.CircuitState.CLOSED  # 1/3 failure rate < 100 %
    assert metrics.successes == total // 2
    assert metrics.failures == total // 4
    assert metrics.ignored == total // 4
    assert metrics.calls == total * 3 // 4
    assert metrics.rejected == 0
    assert metrics.window_calls == 1000


def test_eight_threads_leave_exact_counts_through_call() -> None:
    breaker = rxr.CircuitBreaker(
        failure_threshold=None,
        window=rxr.CountWindow(50),
        failure_rate_threshold=1.0,
        scheduler=TestScheduler(),
    )

    def broken() -> None:
        raise Boom()

    def work(index: int) -> None:
        for i in range(CALLS):
            if (i + index) % 2:
                breaker.call(int, "1")
            else:
                with contextlib.suppress(Boom):
                    breaker.call(broken)

    _run_threads(work)
    metrics = breaker.metrics()
    assert (metrics.successes, metrics.failures) == (THREADS * CALLS // 2,) * 2


def _half_open_round(scheduler: TestScheduler) -> tuple[int, list[Exception]]:
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=3, scheduler=scheduler)
    rx.throw(Boom()).pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_error=lambda _: None
    )
    scheduler.advance_by(10)
    admitted: list[abc.ObserverBase[int]] = []
    refused: list[Exception] = []

    def hang(observer: abc.ObserverBase[int], _: Any = None) -> None:
        admitted.append(observer)  # never ends: every trial stays in flight

    def work(_: int) -> None:
        for _ in range(50):
            rx.create(hang).pipe(rxr.circuit_breaker(breaker)).subscribe(
                on_error=refused.append
            )

    _run_threads(work)
    return len(admitted), refused


def test_half_open_never_admits_more_trials_than_allowed_across_threads() -> None:
    scheduler = TestScheduler()
    for _round in range(20):
        admitted, refused = _half_open_round(scheduler)
        assert admitted == 3
        assert len(refused) == THREADS * 50 - 3
        assert all(isinstance(e, rxr.CircuitOpenError) for e in refused)


def test_the_breakers_lock_is_never_held_while_the_source_runs() -> None:
    breaker = rxr.CircuitBreaker(5, 10.0)
    nested_done = threading.Event()

    def source(observer: abc.ObserverBase[str], _: Any = None) -> None:
        # Another thread calls through the same breaker and reads its metrics
        # while this call is still running: it would deadlock if we held the lock.
        def other() -> None:
            breaker.call(len, "x")
            breaker.metrics()
            nested_done.set()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=10)
        observer.on_next("done" if nested_done.is_set() else "blocked")
        observer.on_completed()

    values: list[str] = []
    rx.create(source).pipe(rxr.circuit_breaker(breaker)).subscribe(values.append)
    assert values == ["done"]
    assert breaker.metrics().successes == 2


def test_state_changes_are_published_once_each_in_order_under_contention() -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, half_open_max_calls=1, scheduler=scheduler)
    seen: list[rxr.StateChange] = []
    breaker.state_changes.subscribe(seen.append)

    def work(index: int) -> None:
        for i in range(2000):
            if (i + index) % 3 == 0:
                breaker.reset()
            elif (i + index) % 3 == 1:
                breaker.force_open()
            else:
                breaker.disable()

    _run_threads(work)
    for earlier, later in itertools.pairwise(seen):
        assert earlier.current is later.previous  # a gap-free chain
    assert seen[-1].current is breaker.state


def test_refusals_while_open_are_counted_exactly_across_threads() -> None:
    breaker = rxr.CircuitBreaker(1, 3600.0, scheduler=TestScheduler())
    rx.throw(Boom()).pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_error=lambda _: None
    )
    refused = rx.of(1).pipe(rxr.circuit_breaker(breaker))

    def work(_: int) -> None:
        for _ in range(2000):
            refused.subscribe(on_error=lambda _: None)

    _run_threads(work)
    assert breaker.metrics().rejected == THREADS * 2000
    breaker.reset()
    assert breaker.metrics().rejected == 0
