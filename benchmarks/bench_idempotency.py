"""Idempotency: replay cost, and SQLite claim+complete throughput."""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from collections.abc import Callable
from typing import Any

import reactivex as rx

import rxresilience as rxr

from ._harness import Comparison, compare

RECORD = b'{"values":[1],"error":null}'


def _noop(*_: Any) -> None:
    pass


def claims_on(store: rxr.IdempotencyStore) -> Callable[[], None]:
    """One claim + complete of a new key on ``store`` per call."""
    keys = itertools.count()

    def claim_and_complete() -> None:
        key = f"k{next(keys)}"
        store.claim(key, None, "owner", now=0.0, lease_until=60.0)
        store.complete(key, "owner", RECORD, expires_at=3600.0)

    return claim_and_complete


def run() -> list[Comparison]:
    rows: list[Comparison] = []
    trivial = rx.defer(lambda _: rx.of(1))

    memory = rxr.InMemoryIdempotencyStore()
    hit = trivial.pipe(rxr.idempotent(memory, key="hit"))
    hit.run()
    rows.append(
        compare(
            "replay (hit), in-memory store vs running a trivial source",
            lambda: hit.subscribe(_noop, _noop, _noop),
            lambda: trivial.subscribe(_noop, _noop, _noop),
            target=None,
        )
    )

    folder = tempfile.mkdtemp()
    sqlite_store = rxr.SQLiteIdempotencyStore(os.path.join(folder, "bench.db"))
    sqlite_hit = trivial.pipe(rxr.idempotent(sqlite_store, key="hit"))
    sqlite_hit.run()
    rows.append(
        compare(
            "replay (hit), SQLite store vs running a trivial source",
            lambda: sqlite_hit.subscribe(_noop, _noop, _noop),
            lambda: trivial.subscribe(_noop, _noop, _noop),
            target=None,
            loops=500,
        )
    )

    claim_and_complete = claims_on(sqlite_store)
    record = RECORD

    raw = sqlite3.connect(
        os.path.join(folder, "raw.db"), isolation_level=None, check_same_thread=False
    )
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE TABLE t (key TEXT PRIMARY KEY, status TEXT, record BLOB)")
    raw_keys = itertools.count()

    def raw_insert_and_update() -> None:
        key = f"k{next(raw_keys)}"
        raw.execute("INSERT INTO t VALUES (?, 'in_progress', NULL)", (key,))
        raw.execute(
            "UPDATE t SET status = 'completed', record = ? WHERE key = ?", (record, key)
        )

    rows.append(
        compare(
            "SQLite claim+complete vs a bare INSERT + UPDATE (autocommit, WAL)",
            claim_and_complete,
            raw_insert_and_update,
            target=None,
            loops=500,
            unit="key",
        )
    )
    sqlite_store.close()
    raw.close()
    return rows
