"""The one write transaction every SQLite store and journal writes through."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from rxresilience._sqlite import immediate_transaction


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.execute("CREATE TABLE t (x INTEGER)")
    yield connection
    connection.close()


def rows(db: sqlite3.Connection) -> list[int]:
    return [x for (x,) in db.execute("SELECT x FROM t ORDER BY x")]


def test_a_block_that_ends_commits(db: sqlite3.Connection) -> None:
    with immediate_transaction(db):
        assert db.in_transaction
        db.execute("INSERT INTO t VALUES (1)")
    assert not db.in_transaction
    assert rows(db) == [1]


def test_a_block_left_by_return_commits(db: sqlite3.Connection) -> None:
    def write() -> bool:
        with immediate_transaction(db):
            db.execute("INSERT INTO t VALUES (2)")
            return True

    assert write()
    assert not db.in_transaction
    assert rows(db) == [2]


@pytest.mark.parametrize("error", [ValueError("no"), KeyboardInterrupt()])
def test_a_block_that_raises_rolls_back(
    db: sqlite3.Connection, error: BaseException
) -> None:
    def write() -> None:
        with immediate_transaction(db):
            db.execute("INSERT INTO t VALUES (3)")
            raise error

    with pytest.raises(type(error)):
        write()
    assert not db.in_transaction
    assert rows(db) == []


def test_a_commit_that_fails_rolls_back_and_raises(db: sqlite3.Connection) -> None:
    # A deferred foreign key is checked at COMMIT: the commit fails and leaves
    # the transaction open, unless it is rolled back.
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent (id) "
        "DEFERRABLE INITIALLY DEFERRED)"
    )

    def write() -> None:
        with immediate_transaction(db):
            db.execute("INSERT INTO t VALUES (4)")
            db.execute("INSERT INTO child VALUES (99)")

    with pytest.raises(sqlite3.IntegrityError):
        write()
    assert not db.in_transaction
    assert rows(db) == []


def test_an_error_inside_a_rolled_back_transaction_is_not_masked(
    db: sqlite3.Connection,
) -> None:
    # The block's own ROLLBACK ended the transaction: the error that follows
    # is the one raised, not SQLite's "no transaction is active".
    def write() -> None:
        with immediate_transaction(db):
            db.execute("ROLLBACK")
            raise ValueError("mine")

    with pytest.raises(ValueError, match="mine"):
        write()
    assert not db.in_transaction


class InterruptedAfterBegin(sqlite3.Connection):
    """A connection where a signal's exception arrives as BEGIN returns (a
    Ctrl-C, a deadline's alarm, delivered once the lock is taken)."""

    signal_pending = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = super().execute(sql, *args)
        if sql == "BEGIN IMMEDIATE" and self.signal_pending:
            self.signal_pending = False
            raise KeyboardInterrupt
        return cursor


def test_an_interrupt_as_begin_returns_rolls_back(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.db"
    db = sqlite3.connect(path, isolation_level=None, factory=InterruptedAfterBegin)
    db.execute("CREATE TABLE t (x INTEGER)")

    def write() -> None:
        with immediate_transaction(db):
            db.execute("INSERT INTO t VALUES (5)")

    with pytest.raises(KeyboardInterrupt):
        write()
    assert not db.in_transaction  # the write lock is let go
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer gets it at once
    other.execute("ROLLBACK")
    other.close()
    write()  # and the next transaction of this one works
    assert rows(db) == [5]
    db.close()
