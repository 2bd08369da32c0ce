"""``RateLimiter``, ``rxr.rate_limit`` and ``RedisRateLimiterStorage`` against their peers.

- ``limiter.try_acquire()`` against the hit path (a permit taken) of
  ``limits`` (moving window, memory storage: its ``hit``) and of
  ``pyrate-limiter`` (an in-memory bucket: its ``try_acquire``), each with a
  limit far above what the loop takes, so every call is a hit. Both keep
  one entry per hit in the window; GCRA keeps one number.
- ``rate_limit`` per subscription when a permit is free, against a
  pass-through ``ops.map``.
- Redis: round trips per permit, counted at the client, and permits per
  second from one caller against ``redis-benchmark``'s single-client
  ceiling (as ``bench_redis``).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import reactivex as rx
from limits import RateLimitItemPerSecond, storage, strategies
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate
from reactivex import operators as ops

import rxresilience as rxr

from ._harness import Comparison, compare
from .bench_redis import _count_round_trips, _redis_benchmark_set

#: A limit no loop reaches: every call takes a permit.
_UNREACHED = 10**9

#: Ours the same way: a limiter's spacing must stay above its clock's
#: resolution (about 700,000 permits a second at most), so a burst no loop
#: uses up stands for the unreachable rate.
_OUR_RATE = 500_000
_OUR_BURST = 10**9


def _noop(*_: Any) -> None:
    pass


def _identity(x: int) -> int:
    return x


def run() -> list[Comparison]:
    rows = _in_memory()
    from tests._redis_server import RedisServer

    server = RedisServer(Path(tempfile.mkdtemp()) / "redis")
    server.start()
    try:
        rows += _redis(server)
    finally:
        server.stop()
    return rows


def _in_memory() -> list[Comparison]:
    ours = rxr.RateLimiter(rate=_OUR_RATE, per=1.0, burst=_OUR_BURST)
    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerSecond(_UNREACHED, 1)
    bucket = Limiter(InMemoryBucket([Rate(_UNREACHED, Duration.SECOND)]))
    assert ours.try_acquire()
    assert moving.hit(item, "k")
    assert bucket.try_acquire("k")
    rows = [
        compare(
            "limiter.try_acquire() vs limits MovingWindowRateLimiter.hit (memory)",
            ours.try_acquire,
            lambda: moving.hit(item, "k"),
            target=1.0,
            loops=5000,
            batches=7,
        ),
        compare(
            "limiter.try_acquire() vs pyrate-limiter Limiter.try_acquire (memory)",
            ours.try_acquire,
            lambda: bucket.try_acquire("k"),
            target=1.0,
            loops=5000,
            batches=7,
        ),
    ]
    limiter = rxr.RateLimiter(rate=_OUR_RATE, per=1.0, burst=_OUR_BURST)
    limited = rx.of(1).pipe(rxr.rate_limit(limiter))
    mapped = rx.of(1).pipe(ops.map(_identity))
    rows.append(
        compare(
            "per subscription, permit free: of(1) + rate_limit vs of(1) + map(identity)",
            lambda: limited.subscribe(_noop, _noop, _noop),
            lambda: mapped.subscribe(_noop, _noop, _noop),
            target=1.3,
            batches=7,
        )
    )
    return rows


def _redis(server: Any) -> list[Comparison]:
    client = server.client()
    free = rxr.RedisRateLimiterStorage(client, name="bench-free")
    limiter = rxr.RateLimiter(_OUR_RATE, 1.0, _OUR_BURST, storage=free)
    spent = rxr.RedisRateLimiterStorage(client, name="bench-spent")
    refusing = rxr.RateLimiter(1, 3600.0, storage=spent)
    refusing.try_acquire()
    waiting = rxr.RedisRateLimiterStorage(client, name="bench-wait")
    queue = rxr.RateLimiter(1, 3600.0, storage=waiting)
    queue.try_acquire()

    def reserve_and_give_back() -> None:
        reservation = queue.try_reserve()
        assert isinstance(reservation, rxr.RateLimiterReservation)
        queue.cancel(reservation)

    trips = {
        "limiter.try_acquire(), a permit taken": _count_round_trips(
            free._client, limiter.try_acquire, 1000
        ),
        "limiter.try_acquire(), refused": _count_round_trips(
            spent._client, refusing.try_acquire, 1000
        ),
        "a waiting permit reserved, then given back": _count_round_trips(
            waiting._client, reserve_and_give_back, 500
        ),
    }
    values = itertools.count()

    def redis_set() -> None:
        client.set("bench-set", next(values))

    local = rxr.RateLimiter(rate=_OUR_RATE, per=1.0, burst=_OUR_BURST)
    rows = [
        compare(
            "limiter.try_acquire() with Redis storage vs a redis-py SET",
            limiter.try_acquire,
            redis_set,
            target=None,
            loops=500,
            batches=7,
        ),
        compare(
            "limiter.try_acquire() with Redis storage vs in-memory storage",
            limiter.try_acquire,
            local.try_acquire,
            target=None,
            loops=500,
            batches=7,
        ),
    ]
    ceiling = _redis_benchmark_set(server.port)
    print("\n### rate limit, redis: round trips (requests sent per operation)\n")
    print("| operation | round trips |")
    print("|---|---:|")
    for name, count in trips.items():
        print(f"| {name} | {count:g} |")
    print("\n### rate limit, redis: permits per second, one caller\n")
    if ceiling is None:
        print("redis-benchmark is not on PATH (Debian: redis-tools): no ceiling.")
    else:
        print(
            f"redis-benchmark SET, 1 client, no pipelining: {ceiling:,.0f} requests/s"
        )
    print("\n| operation | per second | of the ceiling |")
    print("|---|---:|---:|")
    for label, nanoseconds, shared in (
        ("redis-py SET (same process)", rows[0].baseline_ns, True),
        ("try_acquire(), RedisRateLimiterStorage", rows[0].candidate_ns, True),
        ("try_acquire(), in memory", rows[1].baseline_ns, False),
    ):
        per_second = 1e9 / nanoseconds
        share = "-" if ceiling is None or not shared else f"{per_second / ceiling:.0%}"
        print(f"| {label} | {per_second:,.0f} | {share} |")
    script = client.info("commandstats").get("cmdstat_evalsha", {})
    print(
        f"\nThe GCRA script's time in the server: "
        f"{float(script.get('usec_per_call', 0.0)):.1f} us per call (INFO commandstats)."
    )
    return rows
