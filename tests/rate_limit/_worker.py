"""Worker processes sharing one Redis-backed rate limiter (run with spawn)."""

from __future__ import annotations

import time
from typing import Any

import redis
from reactivex.testing import TestScheduler

import rxresilience as rxr


def take_permits(
    url: str,
    name: str,
    settings: tuple[float, float, int],
    start: Any,
    seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    """Try for permits for ``seconds``; report when each was taken, and the tries.

    The limiter's clock is a virtual one set to the real seconds since
    ``start`` (a shared value the parent sets between the two waits on
    ``barrier``) before each try, so every process keeps the same time and
    each admission's instant is exact.
    """
    clock = TestScheduler()
    rate, per, burst = settings
    storage = rxr.RedisRateLimiterStorage(redis.Redis.from_url(url), name=name)
    limiter = rxr.RateLimiter(rate, per, burst, storage=storage, scheduler=clock)
    taken: list[float] = []
    tries = 0
    barrier.wait(timeout=120)  # every worker is up
    barrier.wait(timeout=120)  # the parent has set the start
    started = float(start.value)
    while True:
        now = time.time() - started
        if now >= seconds:
            break
        if now > clock.clock:
            clock.advance_to(now)
        tries += 1
        if limiter.try_acquire():
            taken.append(float(clock.clock))
    results.put((taken, tries))
