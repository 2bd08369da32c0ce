"""``rxr.bulkhead`` hammered from 8 threads: never above the limit, exact counts."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex.disposable import Disposable

import rxresilience as rxr

THREADS = 8


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    """Let threads interleave inside our few bytecodes, not every 5 ms."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


class Service:
    """Sources that count how many run at once, checked as each starts.

    A source runs from its subscription until it answers or is disposed;
    with ``servers`` the answers come from those threads, else at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.subscribed = 0
        self.violations: list[int] = []
        self.inbox: queue.Queue[Any] = queue.Queue()

    def _begin(self) -> None:
        with self.lock:
            self.running += 1
            self.subscribed += 1
            self.peak = max(self.peak, self.running)
            if self.running > self.limit:  # asserted at the end, on the test's thread
                self.violations.append(self.running)

    def source(self, *, served: bool) -> rx.Observable[int]:
        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> Disposable:
            self._begin()
            live = [True]

            def stop() -> bool:
                with self.lock:
                    if not live[0]:
                        return False
                    live[0] = False
                    self.running -= 1
                    return True

            def answer() -> None:
                if stop():
                    observer.on_next(1)
                    observer.on_completed()

            if served:
                self.inbox.put(answer)
            else:
                for _ in range(30):  # some work while holding the slot
                    pass
                answer()

            def cancel() -> None:
                stop()

            return Disposable(cancel)

        return rx.create(subscribe)

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set() or not self.inbox.empty():
            try:
                answer = self.inbox.get(timeout=0.01)
            except queue.Empty:
                continue
            answer()


class Outcomes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.completed = 0
        self.refused = 0
        self.other: list[Exception] = []

    def on_completed(self) -> None:
        with self.lock:
            self.completed += 1

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if isinstance(error, rxr.BulkheadFullError):
                self.refused += 1
            else:
                self.other.append(error)


def run_threads(target: Any) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_synchronous_sources_never_exceed_the_limit_and_nothing_is_lost() -> None:
    calls = 400
    bulkhead = rxr.Bulkhead(3, THREADS * calls)
    service, outcomes = Service(3), Outcomes()

    def client(_: int) -> None:
        for _ in range(calls):
            service.source(served=False).pipe(rxr.bulkhead(bulkhead)).subscribe(
                on_error=outcomes.on_error, on_completed=outcomes.on_completed
            )

    run_threads(client)
    assert service.violations == []
    assert outcomes.completed == THREADS * calls
    assert (outcomes.refused, outcomes.other) == (0, [])
    assert bulkhead.metrics() == rxr.BulkheadMetrics(0, 0, THREADS * calls, 0, 3)


def test_sources_answered_by_other_threads_shed_and_count_exactly() -> None:
    calls = 300
    bulkhead = rxr.Bulkhead(4, 6)
    service, outcomes = Service(4), Outcomes()
    stop = threading.Event()
    servers = [threading.Thread(target=service.serve, args=(stop,)) for _ in range(3)]
    for server in servers:
        server.start()

    def client(_: int) -> None:
        for _ in range(calls):
            service.source(served=True).pipe(rxr.bulkhead(bulkhead)).subscribe(
                on_error=outcomes.on_error, on_completed=outcomes.on_completed
            )

    try:
        run_threads(client)
    finally:
        stop.set()
        for server in servers:
            server.join()
    # Waiters left when the clients stopped were started by the servers' drain
    # loops, and answered by them.
    assert service.violations == []
    metrics = bulkhead.metrics()
    assert (metrics.active, metrics.queued) == (0, 0)
    assert outcomes.completed + outcomes.refused == THREADS * calls
    assert metrics.admitted == outcomes.completed == service.subscribed
    assert metrics.rejected == outcomes.refused
    assert outcomes.other == []


def test_disposals_racing_handovers_never_exceed_the_limit_or_leak_a_slot() -> None:
    calls = 300
    bulkhead = rxr.Bulkhead(2, 50, name="racing")
    service, outcomes = Service(2), Outcomes()
    stop = threading.Event()
    servers = [threading.Thread(target=service.serve, args=(stop,)) for _ in range(2)]
    for server in servers:
        server.start()
    disposed = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        kept: list[abc.DisposableBase] = []
        for call in range(calls):
            subscription = (
                service.source(served=True)
                .pipe(rxr.bulkhead(bulkhead))
                .subscribe(
                    on_error=outcomes.on_error, on_completed=outcomes.on_completed
                )
            )
            kept.append(subscription)
            if (call + index) % 3 == 0:  # waiting, starting or running: any instant
                kept[len(kept) // 2].dispose()
                with lock:
                    disposed[0] += 1

    try:
        run_threads(client)
    finally:
        stop.set()
        for server in servers:
            server.join()
    assert service.violations == []
    metrics = bulkhead.metrics()
    assert (metrics.active, metrics.queued) == (0, 0)
    assert service.running == 0
    assert metrics.admitted >= service.subscribed
    assert metrics.admitted + metrics.rejected <= THREADS * calls
    assert metrics.rejected == outcomes.refused
    assert outcomes.completed <= service.subscribed
    assert outcomes.other == []
