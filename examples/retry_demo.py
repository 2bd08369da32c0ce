"""Retry with exponential backoff and jitter on a flaky source, in virtual time.

A simulated service fails its first three calls and then answers. The retry
waits 1 s, 2 s, 4 s (plus up to 30 % jitter) between attempts; the whole
timeline runs on a ``TestScheduler``, so 7+ seconds of backoff take no wall
time. Run it with ``make demo``.
"""

from __future__ import annotations

import random
import time
from typing import Any

import reactivex as rx
from reactivex import abc
from reactivex.testing import TestScheduler

import rxresilience as rxr


class ServiceUnavailable(Exception):
    """The simulated service is down."""


def flaky_service(
    scheduler: TestScheduler, failures: int, latency: float, log: list[str]
) -> rx.Observable[str]:
    """A cold observable: each subscription is one call that answers after ``latency``."""
    calls = 0

    def subscribe(
        observer: abc.ObserverBase[str], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        nonlocal calls
        calls += 1
        call = calls
        log.append(f"t={scheduler.clock:7.3f}s  call {call} sent")

        def answer(_: abc.SchedulerBase, __: Any = None) -> None:
            if call <= failures:
                log.append(f"t={scheduler.clock:7.3f}s  call {call} failed (503)")
                observer.on_error(ServiceUnavailable(f"call {call}: 503"))
            else:
                log.append(f"t={scheduler.clock:7.3f}s  call {call} answered")
                observer.on_next(f"user #42 (call {call})")
                observer.on_completed()

        return scheduler.schedule_relative(latency, answer)

    return rx.create(subscribe)


def main() -> None:
    wall_start = time.perf_counter()
    scheduler = TestScheduler()
    log: list[str] = []
    finished_at = 0.0

    def finish(message: str) -> None:
        nonlocal finished_at
        finished_at = scheduler.clock
        log.append(f"t={scheduler.clock:7.3f}s  {message}")

    def on_retry(event: rxr.RetryEvent) -> None:
        log.append(
            f"t={scheduler.clock:7.3f}s  attempt {event.attempt} failed "
            f"({event.error}); retrying in {event.delay:.3f}s"
        )

    user = flaky_service(scheduler, failures=3, latency=0.25, log=log).pipe(
        rxr.retry(
            max_attempts=5,
            backoff=rxr.ExponentialBackoff(
                base=1.0, factor=2.0, max_delay=30.0, jitter=0.3
            ),
            should_retry=ServiceUnavailable,
            rng=random.Random(7),
            on_retry=on_retry,
        )
    )
    user.subscribe(
        on_next=lambda value: log.append(f"t={scheduler.clock:7.3f}s  got {value!r}"),
        on_error=lambda error: finish(f"gave up: {error}"),
        on_completed=lambda: finish("completed"),
        scheduler=scheduler,
    )
    scheduler.advance_to(60.0)
    wall = time.perf_counter() - wall_start

    print("rxr.retry on a service that fails 3 times (virtual time):\n")
    for line in log:
        print("  " + line)
    print(
        f"\n{finished_at:.3f} s of virtual time ran in {wall * 1000:.1f} ms of "
        "wall time."
    )


if __name__ == "__main__":
    main()
