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
    started: float,
    seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    """Try for permits for ``seconds``; report when each was taken, and the tries.

    The limiter's clock is a virtual one set to the real seconds since
    ``started`` before each try, so every process keeps the same time and
    each admission's instant is exact.
    """
    clock = TestScheduler()
    rate, per, burst = settings
    storage = rxr.RedisRateLimiterStorage(redis.Redis.from_url(url), name=name)
    limiter = rxr.RateLimiter(rate, per, burst, storage=storage, scheduler=clock)
    taken: list[float] = []
    tries = 0
    barrier.wait()
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
