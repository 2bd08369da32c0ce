"""``SQLiteSagaJournal``: the durable, embedded default journal."""

from __future__ import annotations

import os
import sqlite3
import threading

from .._sqlite import open_database, require_synchronous
from ..errors import SagaError
from ._journal import JournalEntry, SagaJournal, SagaRecord

__all__ = ["SQLiteSagaJournal"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rxr_sagas (
    saga_id TEXT PRIMARY KEY,
    saga_name TEXT NOT NULL,
    status TEXT NOT NULL,
    touched REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rxr_saga_entries (
    saga_id TEXT NOT NULL REFERENCES rxr_sagas (saga_id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    context BLOB,
    error TEXT,
    PRIMARY KEY (saga_id, seq)
);
CREATE INDEX IF NOT EXISTS rxr_sagas_running ON rxr_sagas (status, touched);
"""


class SQLiteSagaJournal(SagaJournal):
    """Saga journals in a SQLite database (WAL mode; several processes may share it).

    A new database file is created private (mode 0600, whatever the umask),
    and SQLite gives its ``-wal`` and ``-shm`` files the same mode; an
    existing file keeps its mode.

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
        self._lock = threading.Lock()
        self._db = open_database(
            self.path,
            timeout=timeout,
            synchronous=self.synchronous,
            schema=_SCHEMA,
            schema_name="saga_schema",
            version=SCHEMA_VERSION,
            main_table="rxr_sagas",
            error=SagaError,
        )

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO rxr_sagas (saga_id, saga_name, status, touched) "
                    "VALUES (?, ?, 'running', ?)",
                    (saga_id, saga_name, now),
                )
            except sqlite3.IntegrityError as error:
                raise SagaError(
                    f"saga id {saga_id!r} is already in the journal"
                ) from error

    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO rxr_saga_entries (saga_id, seq, kind, step, context, error) "
                    "VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rxr_saga_entries "
                    "WHERE saga_id = ?), ?, ?, ?, ?)",
                    (
                        saga_id,
                        saga_id,
                        entry.kind,
                        entry.step,
                        entry.context,
                        entry.error,
                    ),
                )
                db.execute(
                    "UPDATE rxr_sagas SET touched = ? WHERE saga_id = ?", (now, saga_id)
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def finish(self, saga_id: str, status: str, now: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE rxr_sagas SET status = ?, touched = ? WHERE saga_id = ?",
                (status, now, saga_id),
            )

    def load(self, saga_id: str) -> SagaRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT saga_name, status, touched FROM rxr_sagas WHERE saga_id = ?",
                (saga_id,),
            ).fetchone()
            if row is None:
                return None
            entries = tuple(
                JournalEntry(
                    kind, step, None if context is None else bytes(context), error
                )
                for kind, step, context, error in self._db.execute(
                    "SELECT kind, step, context, error FROM rxr_saga_entries "
                    "WHERE saga_id = ? ORDER BY seq",
                    (saga_id,),
                )
            )
        return SagaRecord(saga_id, row[0], row[1], row[2], entries)

    def unfinished(self) -> list[str]:
        with self._lock:
            return [
                row[0]
                for row in self._db.execute(
                    "SELECT saga_id FROM rxr_sagas WHERE status = 'running' "
                    "ORDER BY touched"
                )
            ]

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE rxr_sagas SET touched = ? "
                "WHERE saga_id = ? AND status = 'running' AND touched < ?",
                (now, saga_id, stale_before),
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteSagaJournal({self.path!r})"
