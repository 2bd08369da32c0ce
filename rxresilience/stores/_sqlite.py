"""``SQLiteIdempotencyStore``: the durable, embedded default.

One row per key in a WAL-mode database: safe for several processes on one
machine (every claim is one ``BEGIN IMMEDIATE`` transaction), and it
survives restarts. Expired rows are replaced when their key is claimed
again, swept now and then, and deleted by :meth:`purge_expired`.
"""

from __future__ import annotations

import os
import threading

from .._codec import Codec, codec_or_json
from .._sqlite import open_database
from ..errors import IdempotencyError
from ._base import Claim, ClaimStatus, IdempotencyStore

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


class SQLiteIdempotencyStore(IdempotencyStore):
    """Claims and outcomes in a SQLite database file.

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

    Raises:
        IdempotencyError: the database holds a schema this version does not
            understand.
        ValueError: a ``timeout`` out of that range, checked before the
            database is touched.
        TypeError: a ``timeout`` that is not a number (a ``bool`` included).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codec: Codec | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.codec = codec_or_json(codec)
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._claims_since_sweep = 0
        self._db = open_database(
            self.path,
            timeout=timeout,
            schema=_SCHEMA,
            schema_name="idempotency_schema",
            version=SCHEMA_VERSION,
            main_table="rxr_idempotency",
            error=IdempotencyError,
        )

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT status, fingerprint, expires_at, record "
                    "FROM rxr_idempotency WHERE key = ?",
                    (key,),
                ).fetchone()
                if row is not None and row[2] > now:
                    status, stored_fingerprint, _, record = row
                    db.execute("COMMIT")
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
                db.execute("COMMIT")
                return _CLAIMED
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE rxr_idempotency SET status = 'completed', owner = NULL, "
                "expires_at = ?, record = ? "
                "WHERE key = ? AND status = 'in_progress' AND owner = ?",
                (expires_at, record, key, owner),
            )
            return cursor.rowcount == 1

    def release(self, key: str, owner: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM rxr_idempotency "
                "WHERE key = ? AND status = 'in_progress' AND owner = ?",
                (key, owner),
            )
            return cursor.rowcount == 1

    def get(self, key: str, now: float | None = None) -> bytes | None:
        moment = self._now(now)
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM rxr_idempotency "
                "WHERE key = ? AND status = 'completed' AND expires_at > ?",
                (key, moment),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def purge_expired(self, now: float | None = None) -> int:
        moment = self._now(now)
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM rxr_idempotency WHERE expires_at <= ?", (moment,)
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteIdempotencyStore({self.path!r})"
