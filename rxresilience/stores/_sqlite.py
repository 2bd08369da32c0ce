"""``SQLiteIdempotencyStore``: the durable, embedded default.

One row per key in a WAL-mode database: safe for several processes on one
machine (every claim is one ``BEGIN IMMEDIATE`` transaction, every other
write one statement), and it survives restarts. Expired rows are replaced
when their key is claimed again, swept now and then, and deleted by
:meth:`purge_expired`. The schema is 0.1's: files written by 0.1 are read
as they are.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

from .._child_safe_lock import ChildSafeLock
from .._codec import Codec, codec_or_json
from .._sqlite import (
    ProcessConnection,
    immediate_transaction,
    open_database,
    require_synchronous,
)
from ..errors import IdempotencyError
from ._base import (
    Claim,
    ClaimStatus,
    IdempotencyStore,
    require_record,
    require_store_key,
    require_time,
)

__all__ = ["SQLiteIdempotencyStore"]

SCHEMA_VERSION = "1"
_SWEEP_EVERY = 1000  # claims between two sweeps of expired rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rxr_idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed')),
    fingerprint TEXT,
    owner TEXT,
    expires_at REAL NOT NULL,
    record BLOB
);
CREATE INDEX IF NOT EXISTS rxr_idempotency_expiry ON rxr_idempotency (expires_at);
"""

_IN_PROGRESS = Claim(ClaimStatus.IN_PROGRESS)
_KEY_REUSED = Claim(ClaimStatus.KEY_REUSED)
_CLAIMED = Claim(ClaimStatus.CLAIMED)


@contextlib.contextmanager
def _reported(path: str) -> Iterator[None]:
    """SQLite's failures (a lock held too long, a full disk) as IdempotencyError."""
    try:
        yield
    except sqlite3.Error as error:
        raise IdempotencyError(
            f"SQLite idempotency store {path!r} failed: {error}"
        ) from error


class SQLiteIdempotencyStore(IdempotencyStore):
    """Claims and outcomes in a SQLite database file.

    A new database file is created private (mode 0600, whatever the umask),
    and SQLite gives its ``-wal`` and ``-shm`` files the same mode; an
    existing file keeps its mode.

    Every operation refuses an empty key or a time out of range, before
    writing anything, as :class:`IdempotencyStore` describes.

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "idempotency.db")
        >>> store = SQLiteIdempotencyStore(path)
        >>> store.claim("k", None, "owner-1", now=0.0, lease_until=60.0).status
        <ClaimStatus.CLAIMED: 'claimed'>
        >>> store.close()

    Args:
        path: the database file (created if missing), or ``":memory:"``.
        codec: how outcomes are encoded (default JSON; never pickle).
        timeout: seconds to wait for another process's write lock: finite,
            from 0 (do not wait) to about 24.8 days (``2**31 - 1``
            milliseconds, the longest SQLite keeps).
        synchronous: durability, SQLite's ``PRAGMA synchronous``:
            ``"NORMAL"`` (the default) keeps every acknowledged claim and
            record through a crash of the process, not through a power loss
            or an OS crash, which may lose the last commits (an effect could
            then run twice); ``"FULL"`` keeps them through those too, at the
            cost of an fsync per write.

    Raises:
        IdempotencyError: the database holds a schema this version does not
            understand; and on any operation, when SQLite fails (another
            process held the lock beyond ``timeout``, a full disk).
        ValueError: a ``timeout`` out of that range, or a ``synchronous``
            other than ``"NORMAL"`` or ``"FULL"``, checked before the
            database is touched.
        TypeError: a ``timeout`` that is not a number (a ``bool`` included).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codec: Codec | None = None,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self.codec = codec_or_json(codec)
        self.path = os.fspath(path)
        self.synchronous = require_synchronous(synchronous)
        # Made anew in a forked child, as the connection is (a parent thread
        # may hold it at the fork).
        self._lock = ChildSafeLock()
        self._claims_since_sweep = 0
        self._connection = ProcessConnection(
            lambda: open_database(
                self.path,
                timeout=timeout,
                synchronous=self.synchronous,
                schema=_SCHEMA,
                schema_name="idempotency_schema",
                version=SCHEMA_VERSION,
                main_table="rxr_idempotency",
                error=IdempotencyError,
            ),
            self._lock,
        )

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connection.get()

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        require_store_key(key)
        now = require_time("now", now)
        lease_until = require_time("lease_until", lease_until)
        with self._lock, _reported(self.path):
            db = self._db
            with immediate_transaction(db):
                row = db.execute(
                    "SELECT status, fingerprint, expires_at, record "
                    "FROM rxr_idempotency WHERE key = ?",
                    (key,),
                ).fetchone()
                if row is not None and row[2] > now:
                    status, stored_fingerprint, _, record = row
                    if stored_fingerprint != fingerprint:
                        return _KEY_REUSED
                    if status == "completed":
                        return Claim(ClaimStatus.COMPLETED, bytes(record))
                    return _IN_PROGRESS
                db.execute(
                    "INSERT OR REPLACE INTO rxr_idempotency "
                    "(key, status, fingerprint, owner, expires_at, record) "
                    "VALUES (?, 'in_progress', ?, ?, ?, NULL)",
                    (key, fingerprint, owner, lease_until),
                )
                self._claims_since_sweep += 1
                if self._claims_since_sweep >= _SWEEP_EVERY:
                    self._claims_since_sweep = 0
                    db.execute(
                        "DELETE FROM rxr_idempotency WHERE expires_at <= ?", (now,)
                    )
                return _CLAIMED

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        require_store_key(key)
        lease_until = require_time("lease_until", lease_until)
        with self._lock, _reported(self.path):
            cursor = self._db.execute(
                "UPDATE rxr_idempotency SET expires_at = ? "
                "WHERE key = ? AND status = 'in_progress' AND owner = ?",
                (lease_until, key, owner),
            )
            return cursor.rowcount == 1

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        record = require_record(record)
        require_store_key(key)
        expires_at = require_time("expires_at", expires_at)
        with self._lock, _reported(self.path):
            cursor = self._db.execute(
                "UPDATE rxr_idempotency SET status = 'completed', owner = NULL, "
                "expires_at = ?, record = ? "
                "WHERE key = ? AND status = 'in_progress' AND owner = ?",
                (expires_at, record, key, owner),
            )
            return cursor.rowcount == 1

    def release(self, key: str, owner: str) -> bool:
        require_store_key(key)
        with self._lock, _reported(self.path):
            cursor = self._db.execute(
                "DELETE FROM rxr_idempotency "
                "WHERE key = ? AND status = 'in_progress' AND owner = ?",
                (key, owner),
            )
            return cursor.rowcount == 1

    def get(self, key: str, now: float | None = None) -> bytes | None:
        require_store_key(key)
        moment = self._now(now)
        with self._lock, _reported(self.path):
            row = self._db.execute(
                "SELECT record FROM rxr_idempotency "
                "WHERE key = ? AND status = 'completed' AND expires_at > ?",
                (key, moment),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def purge_expired(self, now: float | None = None) -> int:
        moment = self._now(now)
        with self._lock, _reported(self.path):
            cursor = self._db.execute(
                "DELETE FROM rxr_idempotency WHERE expires_at <= ?", (moment,)
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __repr__(self) -> str:
        return f"SQLiteIdempotencyStore({self.path!r})"
