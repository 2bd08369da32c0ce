"""Run every benchmark suite and print the tables: ``python -m benchmarks``."""

from __future__ import annotations

import platform
import sys
from datetime import date

from . import (
    bench_breaker,
    bench_bulkhead,
    bench_hedge,
    bench_idempotency,
    bench_postgres,
    bench_rate_limit,
    bench_redis,
    bench_retry,
    bench_saga,
    bench_saga_asyncio,
    bench_telemetry,
    bench_timeout,
)
from ._harness import print_table

SUITES = {
    "retry": bench_retry.run,
    "breaker": bench_breaker.run,
    "timeout": bench_timeout.run,
    "idempotency": bench_idempotency.run,
    "saga": bench_saga.run,
    "saga-asyncio": bench_saga_asyncio.run,
    "telemetry": bench_telemetry.run,
    "redis": bench_redis.run,
    "postgres": bench_postgres.run,
    "rate-limit": bench_rate_limit.run,
    "hedge": bench_hedge.run,
    "bulkhead": bench_bulkhead.run,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(SUITES)
    unknown = [name for name in chosen if name not in SUITES]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; choose from {list(SUITES)}")
        return 2
    print(
        f"{date.today()} | Python {platform.python_version()} | "
        f"{platform.machine()} | {platform.processor() or platform.platform()}"
    )
    missed = 0
    for name in chosen:
        rows = SUITES[name]()
        print_table(name, rows)
        missed += sum(row.verdict == "MISSED" for row in rows)
    print(f"\n{missed} target(s) missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
