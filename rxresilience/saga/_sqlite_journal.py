"""``SQLiteSagaJournal``: the durable, embedded default journal."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from .._child_safe_lock import ChildSafeLock
from .._sqlite import ProcessConnection, immediate_transaction, require_synchronous
from ..errors import SagaError
from ._journal import JournalEntry, JournalWrite, SagaJournal, SagaRecord
from ._sqlite_batch import apply_batch
from ._sqlite_journal_rows import GONE, append_entry, load_record, unfinished_ids
from ._sqlite_journal_schema import open_journal_database

__all__ = ["SQLiteSagaJournal"]


class SQLiteSagaJournal(SagaJournal):
    """Saga journals in a SQLite database (WAL mode; several processes may share it).

    A new database file is created private (mode 0600, whatever the umask),
    and SQLite gives its ``-wal`` and ``-shm`` files the same mode; an
    existing file keeps its mode. A database written by 0.1 gains the
    ``owner`` and ``lease_until`` columns in place; its sagas have no lease.
    Each fenced write is one transaction.

    Examples:
        >>> import tempfile, os
        >>> journal = SQLiteSagaJournal(os.path.join(tempfile.mkdtemp(), "sagas.db"))
        >>> journal.begin("order-1", "order", now=0.0)
        >>> journal.state("order-1").status == "running"
        True
        >>> journal.close()

    Args:
        path: the database file (created if missing), or ``":memory:"``.
        timeout: seconds to wait for another process's write lock: finite,
            from 0 (do not wait) to about 24.8 days (``2**31 - 1``
            milliseconds, the longest SQLite keeps).
        synchronous: durability, SQLite's ``PRAGMA synchronous``:
            ``"NORMAL"`` (the default) keeps every journal entry through a
            crash of the process, not through a power loss or an OS crash,
            which may lose the last entries (a step could then be run or
            compensated again); ``"FULL"`` keeps them through those too, at
            the cost of an fsync per write.

    Raises:
        SagaError: the database holds a journal schema this version does not
            understand.
        ValueError: a ``timeout`` out of that range, or a ``synchronous``
            other than ``"NORMAL"`` or ``"FULL"``, checked before the
            database is touched.
        TypeError: a ``timeout`` that is not a number (a ``bool`` included).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = os.fspath(path)
        self.synchronous = require_synchronous(synchronous)
        # Made anew in a forked child, as the connection is (a parent thread
        # may hold it at the fork).
        self._lock = ChildSafeLock()
        self._commits = 0
        self._connection = ProcessConnection(
            lambda: open_journal_database(
                self.path, timeout=timeout, synchronous=self.synchronous
            ),
            self._lock,
        )

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connection.get()

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        self._begin(saga_id, saga_name, now, None, None)

    def begin_owned(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
    ) -> None:
        self._begin(saga_id, saga_name, now, owner, lease_until)

    def _begin(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        owner: str | None,
        lease_until: float | None,
    ) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO rxr_sagas "
                    "(saga_id, saga_name, status, touched, owner, lease_until) "
                    "VALUES (?, ?, 'running', ?, ?, ?)",
                    (saga_id, saga_name, now, owner, lease_until),
                )
                self._commits += 1
            except sqlite3.IntegrityError as error:
                raise SagaError(
                    f"saga id {saga_id!r} is already in the journal"
                ) from error

    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        self._append(saga_id, entry, now, None)

    def append_owned(
        self, saga_id: str, entry: JournalEntry, now: float, *, owner: str
    ) -> bool:
        return self._append(saga_id, entry, now, owner)

    def _append(
        self, saga_id: str, entry: JournalEntry, now: float, owner: str | None
    ) -> bool:
        """One transaction: touch the saga (if ``owner`` holds it), add the entry."""
        with self._lock:
            if not append_entry(self._db, saga_id, entry, now, owner):
                return False
            self._commits += 1
        return True

    def finish(self, saga_id: str, status: str, now: float) -> None:
        self._write(
            "UPDATE rxr_sagas SET status = ?, touched = ? WHERE saga_id = ?",
            (status, now, saga_id),
        )

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        return self._write(
            "UPDATE rxr_sagas SET status = ?, touched = ? "
            "WHERE saga_id = ? AND owner = ?",
            (status, now, saga_id, owner),
        )

    def _write(self, sql: str, params: tuple[object, ...]) -> bool:
        """One statement on one saga's row, its own transaction: True when it
        changed the row (the statement's conditions held)."""
        with self._lock:
            cursor = self._db.execute(sql, params)
            self._commits += 1
            return cursor.rowcount == 1

    @property
    def commits(self) -> int:
        """How many write transactions this object has committed (each
        statement outside a transaction counts as one): what batching saves."""
        return self._commits

    def write_owned(self, writes: Sequence[JournalWrite]) -> list[bool]:
        """All the writes in one transaction, each fenced on its own row."""
        with self._lock:
            with immediate_transaction(self._db):
                done = apply_batch(self._db, writes)
            self._commits += 1
        return done

    def load(self, saga_id: str) -> SagaRecord | None:
        with self._lock:
            return load_record(self._db, saga_id)

    def unfinished(self) -> list[str]:
        with self._lock:
            return unfinished_ids(self._db)

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        return self._write(
            "UPDATE rxr_sagas SET touched = ? "
            "WHERE saga_id = ? AND status = 'running' AND touched < ?",
            (now, saga_id, stale_before),
        )

    def take(
        self,
        saga_id: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
        stale_before: float,
        gone_owner: str | None = None,
    ) -> bool:
        return self._write(
            "UPDATE rxr_sagas SET owner = ?, lease_until = ?, touched = ? "
            f"WHERE saga_id = ? AND {GONE}",
            (owner, lease_until, now, saga_id, stale_before, gone_owner),
        )

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        return self._write(
            "UPDATE rxr_sagas SET lease_until = ?, touched = ? "
            "WHERE saga_id = ? AND owner = ? AND status = 'running'",
            (lease_until, now, saga_id, owner),
        )

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __repr__(self) -> str:
        return f"SQLiteSagaJournal({self.path!r})"
