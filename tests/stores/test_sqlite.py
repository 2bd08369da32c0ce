"""``SQLiteIdempotencyStore`` beyond the contract: locks, file modes, durability, 0.1 files."""

from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3
import stat
import threading
from collections.abc import Callable
from typing import Any

import pytest

import rxresilience as rxr

from .._support import DURATIONS_OUT_OF_RANGE
from ._store_values import (
    CLAIMED,
    COMPLETED,
    FIXTURES,
    IN_PROGRESS,
    RECORD,
)


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.claim("new", None, "o", now=0.0, lease_until=10.0),
        lambda s: s.complete("k", "owner", RECORD, expires_at=100.0),
        lambda s: s.release("k", "owner"),
        lambda s: s.renew("k", "owner", lease_until=100.0),
        lambda s: s.purge_expired(now=1000.0),
    ],
    ids=["claim", "complete", "release", "renew", "purge"],
)
def test_a_locked_sqlite_database_fails_a_write_with_idempotency_error(
    tmp_path: pathlib.Path, write: Callable[[rxr.IdempotencyStore], object]
) -> None:
    path = tmp_path / "locked.db"
    store = rxr.SQLiteIdempotencyStore(path, timeout=0)
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(rxr.IdempotencyError, match="locked"):
            write(store)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert store.renew("k", "owner", lease_until=100.0)  # usable again
    store.close()


def _v01_database(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "idempotency.db"
    shutil.copyfile(FIXTURES / "idempotency-v0.1.db", path)
    path.chmod(0o644)
    return path


def test_a_sqlite_file_written_by_0_1_replays_expires_and_purges(
    tmp_path: pathlib.Path,
) -> None:
    path = _v01_database(tmp_path)
    store = rxr.SQLiteIdempotencyStore(path)
    receipt = b'{"values":["receipt-1"],"error":null}'
    claim = store.claim("paid-1", "f1", "new", now=1500.0, lease_until=1600.0)
    assert (claim.status, claim.record) == (COMPLETED, receipt)
    assert store.get("paid-2", now=1500.0) == b'{"values":[2],"error":null}'
    assert store.claim(
        "paid-1", "f2", "new", now=1500.0, lease_until=1600.0
    ).status is (rxr.ClaimStatus.KEY_REUSED)
    assert store.get("old", now=1500.0) is None
    assert store.claim(
        "charging", "f3", "new", now=1500.0, lease_until=1600.0
    ).status is (IN_PROGRESS)
    assert store.renew("charging", "worker-a", lease_until=2500.0)
    assert store.purge_expired(now=1500.0) == 1  # old
    assert store.claim(
        "charging", "f3", "new", now=2500.0, lease_until=2600.0
    ).status is (CLAIMED)
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # an existing file keeps its mode
    again = rxr.SQLiteIdempotencyStore(path)
    assert again.purge_expired(now=200_000.0) == 3
    again.close()


def test_a_claim_in_flight_in_a_0_1_sqlite_file_expires(tmp_path: pathlib.Path) -> None:
    store = rxr.SQLiteIdempotencyStore(_v01_database(tmp_path))
    assert store.claim(
        "charging", "f3", "new", now=1999.0, lease_until=3000.0
    ).status is (IN_PROGRESS)
    assert store.claim(
        "charging", "f3", "new", now=2000.0, lease_until=3000.0
    ).status is (CLAIMED)
    assert not store.complete("charging", "worker-a", RECORD, expires_at=9000.0)
    store.close()


# --- E. SQLite files: private when new, durability chosen -------------------------------


def _sqlite_builders() -> list[Any]:
    return [
        pytest.param(rxr.SQLiteIdempotencyStore, id="store"),
        pytest.param(rxr.SQLiteSagaJournal, id="journal"),
    ]


def _write_something(opened: Any) -> None:
    if isinstance(opened, rxr.SQLiteSagaJournal):
        opened.begin("s", "saga", now=0.0)
    else:
        opened.claim("k", None, "o", now=0.0, lease_until=10.0)


def _mode(path: str | pathlib.Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
@pytest.mark.parametrize("build", _sqlite_builders())
def test_a_new_database_and_its_wal_files_are_private(
    tmp_path: pathlib.Path, build: Any, umask: int
) -> None:
    path = tmp_path / "private.db"
    previous = os.umask(umask)
    try:
        opened = build(path)
        _write_something(opened)
        for suffix in ("", "-wal", "-shm"):
            assert _mode(f"{path}{suffix}") == 0o600, suffix
        opened.close()
    finally:
        os.umask(previous)


@pytest.mark.parametrize("build", _sqlite_builders())
def test_an_existing_database_keeps_its_mode(
    tmp_path: pathlib.Path, build: Any
) -> None:
    path = tmp_path / "shared.db"
    build(path).close()
    path.chmod(0o640)
    opened = build(path)
    _write_something(opened)
    assert _mode(path) == 0o640
    assert _mode(f"{path}-wal") == 0o640  # SQLite gives its files the database's mode
    opened.close()


@pytest.mark.parametrize("build", _sqlite_builders())
def test_durability_is_normal_by_default_or_full_on_request(
    tmp_path: pathlib.Path, build: Any
) -> None:
    normal = build(tmp_path / "normal.db")
    full = build(tmp_path / "full.db", synchronous="FULL")
    assert normal.synchronous == "NORMAL"
    assert full.synchronous == "FULL"
    assert normal._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert full._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    _write_something(full)
    normal.close()
    full.close()


@pytest.mark.parametrize("value", ["OFF", "EXTRA", "normal", "", 2, None, True])
@pytest.mark.parametrize("build", _sqlite_builders())
def test_another_durability_is_refused_before_the_file_is_touched(
    tmp_path: pathlib.Path, build: Any, value: object
) -> None:
    path = tmp_path / "refused.db"
    with pytest.raises(ValueError, match=r"^synchronous "):
        build(path, synchronous=value)
    assert not path.exists()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        *DURATIONS_OUT_OF_RANGE,
        pytest.param(2_147_484, ValueError, id="past-int-milliseconds"),
        pytest.param(-0.5, ValueError, id="-0.5"),
    ],
)
def test_a_journal_timeout_out_of_range_is_refused_naming_it(
    tmp_path: pathlib.Path, value: object, error: type[Exception]
) -> None:
    path = tmp_path / "sagas.db"
    with pytest.raises(error, match=r"^timeout "):
        rxr.SQLiteSagaJournal(path, timeout=value)  # type: ignore[arg-type]
    assert not path.exists()


def test_a_store_and_a_journal_made_before_a_fork_open_their_own_in_the_child(
    tmp_path: pathlib.Path,
) -> None:
    """SQLite forbids carrying a connection across fork(): the child's first
    use opens its own, and the parent's goes on serving the parent. A fork
    made while a parent thread is inside a write transaction waits for it
    to end: the child inherits SQLite's record of the process's file locks,
    and a lock held at the fork would make every write of the child fail as
    "locked", for good."""
    from rxresilience._sqlite import immediate_transaction

    from .._fork import in_forked_child

    store = rxr.SQLiteIdempotencyStore(tmp_path / "keys.db", timeout=1.0)
    journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db", timeout=1.0)
    assert store.claim("parent-1", None, "p", 0.0, 1e9).status.name == "CLAIMED"
    journal.begin("parent-1", "saga", 0.0)
    inside = threading.Event()

    def write_a_while(part: Any) -> None:
        with part._lock, immediate_transaction(part._db):
            inside.set()
            threading.Event().wait(0.3)  # a transaction under way at the fork

    def child() -> bool:
        claims = [
            store.claim(f"child-{i}", None, "c", 0.0, 1e9).status.name
            for i in range(20)
        ]
        for i in range(20):
            journal.begin(f"child-{i}", "saga", 0.0)
        return claims == ["CLAIMED"] * 20

    for part in (store, journal):
        inside.clear()
        writer = threading.Thread(target=write_a_while, args=(part,))
        writer.start()
        assert inside.wait(10)
        assert in_forked_child(child if part is store else lambda: True) == 0
        writer.join(10)
    assert store.claim("child-3", None, "x", 0.0, 1e9).status.name == "IN_PROGRESS"
    assert store.claim("parent-2", None, "p", 0.0, 1e9).status.name == "CLAIMED"
    assert {"parent-1", "child-0", "child-19"} <= set(journal.unfinished())
    for path in ("keys.db", "sagas.db"):
        with sqlite3.connect(tmp_path / path) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()
    journal.close()
