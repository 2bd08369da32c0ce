"""PostgreSQL: the idempotency store against bare SQL, and sagas beside SQLite and Redis.

Starts its own PostgreSQL server (from the ``pgserver`` wheel or PATH, as the
test suite does), with PostgreSQL's default durability (``fsync=on``,
``synchronous_commit=on``: every commit waits for its WAL flush), and its own
``redis-server`` for the Redis journal.

- claim + complete of a new key through ``PostgresIdempotencyStore`` vs a bare
  ``INSERT`` then ``UPDATE`` of the same row shape through the same pool
  (target <= 1.5x); then keys per second with 1 and with 8 threads calling;
- a 3-step saga with the PostgreSQL journal, beside the SQLite and Redis
  journals (sagas per second).
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rxresilience as rxr

from ._harness import Comparison, compare
from .bench_idempotency import RECORD, claims_on
from .bench_saga import _saga

_TABLE = """CREATE TABLE bare (key TEXT PRIMARY KEY, status TEXT NOT NULL,
    fingerprint TEXT, owner TEXT, expires_at DOUBLE PRECISION NOT NULL, record BYTEA)"""


def _bare_on(pool: Any) -> Callable[[], None]:
    """One bare INSERT + UPDATE of a new key per call, two pool checkouts."""
    keys = itertools.count()
    prefix = uuid.uuid4().hex  # new keys, whichever call made this

    def insert_and_update() -> None:
        key = f"{prefix}-{next(keys)}"
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO bare (key, status, owner, expires_at) "
                "VALUES (%s, 'in_progress', %s, %s)",
                (key, "owner", 60.0),
            )
        with pool.connection() as conn:
            conn.execute(
                "UPDATE bare SET status = 'completed', owner = NULL, "
                "expires_at = %s, record = %s WHERE key = %s AND owner = %s",
                (3600.0, RECORD, key, "owner"),
            )

    return insert_and_update


def _per_second(work: Callable[[], object], callers: int, each: int) -> float:
    """Units of ``work`` per second with ``callers`` threads doing ``each``."""

    def call() -> None:
        for _ in range(each):
            work()

    threads = [threading.Thread(target=call) for _ in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return callers * each / (time.perf_counter() - started)


def run() -> list[Comparison]:
    from tests._postgres_server import PostgresServer
    from tests._redis_server import RedisServer

    folder = Path(tempfile.mkdtemp())
    postgres = PostgresServer(folder / "pg")
    redis = RedisServer(folder / "redis")
    postgres.start()
    redis.start()
    try:
        return _measure(postgres, redis, folder)
    finally:
        postgres.stop()
        redis.stop()


def _measure(postgres: Any, redis: Any, folder: Path) -> list[Comparison]:
    import psycopg_pool

    rows: list[Comparison] = []
    pool = psycopg_pool.ConnectionPool(
        postgres.url, min_size=8, max_size=8, kwargs={"autocommit": True}, open=True
    )
    pool.wait()
    with pool.connection() as conn:
        conn.execute(_TABLE)
    store = rxr.PostgresIdempotencyStore(pool, table="bench")
    ours = claims_on(store)
    bare = _bare_on(pool)
    rows.append(
        compare(
            "claim + complete of a new key, PostgreSQL store vs a bare INSERT + "
            "UPDATE through the same pool",
            ours,
            bare,
            target=1.5,
            loops=200,
            batches=9,
            unit="key",
        )
    )
    rates: dict[tuple[str, int], float] = {}
    for callers in (1, 8):
        fresh = rxr.PostgresIdempotencyStore(pool, table=f"bench_{callers}")
        fresh.create_schema()  # not part of the figure
        each = 800 // callers
        rates["store", callers] = _per_second(claims_on(fresh), callers, each)
        rates["bare", callers] = _per_second(_bare_on(pool), callers, each)
        fresh.close()
    print("\n### postgres: keys per second (claim + complete of a new key)\n")
    print("| callers (threads) | PostgreSQL store | bare INSERT + UPDATE |")
    print("|---:|---:|---:|")
    for callers in (1, 8):
        print(
            f"| {callers} | {rates['store', callers]:,.0f} "
            f"| {rates['bare', callers]:,.0f} |"
        )
    ids = itertools.count()
    saga = _saga()
    journals: dict[str, rxr.SagaJournal] = {
        "PostgreSQL": rxr.PostgresSagaJournal(pool, table_prefix="bench"),
        "SQLite": rxr.SQLiteSagaJournal(os.path.join(folder, "sagas.db")),
        "Redis": rxr.RedisSagaJournal(redis.client(), prefix="bench:"),
    }

    def run_on(journal: rxr.SagaJournal) -> Callable[[], object]:
        return lambda: saga.run(0, journal=journal, saga_id=f"s{next(ids)}").run()

    for other in ("SQLite", "Redis"):
        rows.append(
            compare(
                f"3-step saga, PostgreSQL journal vs {other} journal",
                run_on(journals["PostgreSQL"]),
                run_on(journals[other]),
                target=None,
                loops=100,
                batches=7,
                unit="saga",
            )
        )
    print("\n### postgres: 3-step sagas per second, one caller\n")
    print("| journal | sagas/s |")
    print("|---|---:|")
    for name, journal in journals.items():
        print(f"| {name} | {_per_second(run_on(journal), 1, 300):,.0f} |")
    for journal in journals.values():
        journal.close()
    store.close()
    pool.close()
    return rows
