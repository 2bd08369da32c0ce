"""Functions that run in child processes for the cross-process idempotency tests."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr


def count_effect(effects_path: str, who: str) -> None:
    """Record one run of the side effect in its own small database."""
    db = sqlite3.connect(effects_path, timeout=30, isolation_level=None)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS effects (who TEXT)")
        db.execute("INSERT INTO effects VALUES (?)", (who,))
    finally:
        db.close()


def effects(effects_path: str) -> list[str]:
    if not os.path.exists(effects_path):
        return []
    db = sqlite3.connect(effects_path, timeout=30)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS effects (who TEXT)")
        return [row[0] for row in db.execute("SELECT who FROM effects")]
    finally:
        db.close()


def _store(kind: str, location: str) -> rxr.IdempotencyStore:
    if kind == "sqlite":
        return rxr.SQLiteIdempotencyStore(location)
    import redis

    return rxr.RedisIdempotencyStore(
        redis.Redis.from_url(location, socket_timeout=5), prefix="race:"
    )


def race(
    kind: str, location: str, effects_path: str, who: str, start_at: float
) -> list[Any]:
    """Wait for the common start, then run the keyed operation once.

    ``kind`` is ``"sqlite"`` (``location`` a file) or ``"redis"`` (a URL).
    """
    store = _store(kind, location)

    def operation(_: Any) -> rx.Observable[Any]:
        count_effect(effects_path, who)
        # a little real latency so that the others arrive while it is in flight
        return rx.timer(0.2).pipe(ops.map(lambda _: f"charged by {who}"))

    while time.time() < start_at:
        pass  # a busy wait of a few ms: every process starts at the same moment
    try:
        result: list[Any] = (
            rx.defer(operation)
            .pipe(
                rxr.idempotent(
                    store, key="order-42", payload={"total": 99}, poll_interval=0.02
                ),
                ops.to_list(),
            )
            .run()
        )
        return result
    finally:
        store.close()


def claim_and_hang(store_path: str, effects_path: str, ready_path: str) -> None:
    """Claim the key, start the effect, signal, and hang until killed."""
    store = rxr.SQLiteIdempotencyStore(store_path)

    def operation(_: Any) -> rx.Observable[Any]:
        count_effect(effects_path, "crashed")
        with open(ready_path, "w") as ready:
            ready.write("claimed")
        return rx.never()

    rx.defer(operation).pipe(
        rxr.idempotent(store, key="order-7", in_progress_timeout=30.0)
    ).subscribe()
    threading.Event().wait()  # hang until SIGKILL


def claim_and_renew(store_path: str, effects_path: str, ready_path: str) -> None:
    """Claim the key with a 1 s lease, start the effect, and run (renewing) until
    killed."""
    store = rxr.SQLiteIdempotencyStore(store_path)

    def operation(_: Any) -> rx.Observable[Any]:
        count_effect(effects_path, "crashed")
        with open(ready_path, "w") as ready:
            ready.write("claimed")
        return rx.never()

    rx.defer(operation).pipe(
        rxr.idempotent(store, key="order-8", in_progress_timeout=1.0)
    ).subscribe()
    threading.Event().wait()  # hang (renewing on timer threads) until SIGKILL
