"""The SQLite and in-memory idempotency stores beyond the contract every backend
shares (``tests/test_stores.py``): the SQLite file, its busy timeout, the
memory bound, ownership and purge as the operator relies on them."""

from __future__ import annotations

import pathlib
import sqlite3
import threading
import time
from typing import Any

import pytest
from reactivex import operators as ops

import rxresilience as rxr

from .._support import DURATIONS_OUT_OF_RANGE
from ._doubles import (
    Operation,
)


def test_a_record_survives_reopening_the_sqlite_store(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restart.db"
    operation = Operation()
    first = rxr.SQLiteIdempotencyStore(path)
    operation.observable.pipe(rxr.idempotent(first, key="k"), ops.to_list()).run()
    first.close()
    again = rxr.SQLiteIdempotencyStore(path)
    replay = operation.observable.pipe(rxr.idempotent(again, key="k"), ops.to_list())
    assert replay.run() == ["a1", "b1"]
    assert operation.runs == 1
    again.close()


def test_sqlite_runs_in_wal_mode(tmp_path: pathlib.Path) -> None:
    store = rxr.SQLiteIdempotencyStore(tmp_path / "wal.db")
    store.close()
    db = sqlite3.connect(tmp_path / "wal.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_sqlite_refuses_a_schema_it_does_not_understand(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "future.db"
    rxr.SQLiteIdempotencyStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE rxr_meta SET value = '99' WHERE name = 'idempotency_schema'")
    db.commit()
    db.close()
    with pytest.raises(rxr.IdempotencyError, match="schema version '99'"):
        rxr.SQLiteIdempotencyStore(path)


def test_purge_expired_deletes_old_records(store: Any) -> None:
    store.claim("old", None, "o", now=0.0, lease_until=10.0)
    store.complete("old", "o", b'{"values":[],"error":null}', expires_at=50.0)
    store.claim("lapsed", None, "o", now=0.0, lease_until=10.0)
    store.claim("fresh", None, "o", now=0.0, lease_until=1000.0)
    assert store.purge_expired(now=100.0) == 2
    assert store.get("old", now=0.0) is None
    assert store.claim("fresh", None, "p", now=100.0, lease_until=200.0).status is (
        rxr.ClaimStatus.IN_PROGRESS
    )


def test_only_the_owner_completes_or_releases(store: Any) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    assert not store.complete("k", "intruder", b"{}", expires_at=100.0)
    assert not store.release("k", "intruder")
    assert store.complete("k", "owner", b"{}", expires_at=100.0)
    assert store.get("k", now=1.0) == b"{}"


def test_the_memory_store_is_bounded_least_recently_used_first() -> None:
    store = rxr.InMemoryIdempotencyStore(max_entries=2)
    for key in ("a", "b"):
        store.claim(key, None, "o", now=0.0, lease_until=10.0)
        store.complete(key, "o", key.encode(), expires_at=100.0)
    store.claim("a", None, "o", now=1.0, lease_until=10.0)  # touches a: b is oldest
    store.claim("c", None, "o", now=1.0, lease_until=10.0)
    store.complete("c", "o", b"c", expires_at=100.0)
    assert store.get("b", now=2.0) is None
    assert store.get("a", now=2.0) == b"a"
    assert len(store) == 2


def test_a_bad_max_entries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        rxr.InMemoryIdempotencyStore(max_entries=0)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        *DURATIONS_OUT_OF_RANGE,
        pytest.param(2_147_484, ValueError, id="past-int-milliseconds"),
        pytest.param(-0.5, ValueError, id="-0.5"),
    ],
)
def test_a_sqlite_timeout_out_of_range_is_refused_naming_it(
    tmp_path: pathlib.Path, value: object, error: type[Exception]
) -> None:
    """SQLite keeps its busy timeout as an int of milliseconds: a longer one
    would wrap round to "do not wait at all"."""
    path = tmp_path / "idempotency.db"
    with pytest.raises(error, match=r"^timeout "):
        rxr.SQLiteIdempotencyStore(path, timeout=value)  # type: ignore[arg-type]
    assert not path.exists()  # refused before the database is touched


def test_the_longest_sqlite_timeout_still_waits_for_the_lock(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "idempotency.db"
    for value in (0, 5, 0.5):
        rxr.SQLiteIdempotencyStore(path, timeout=value).close()
    store = rxr.SQLiteIdempotencyStore(path, timeout=2_147_483.647)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: writer.execute("COMMIT")).start()
    started = time.monotonic()
    claim = store.claim("k", None, "owner", now=0.0, lease_until=60.0)
    assert claim.status is rxr.ClaimStatus.CLAIMED
    assert time.monotonic() - started >= 0.2  # it waited, rather than "locked"
    store.close()
    writer.close()
