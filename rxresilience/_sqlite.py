"""What the SQLite store and journal share: the connection and the schema check."""

from __future__ import annotations

import sqlite3

from ._arguments import require_finite

__all__ = ["LONGEST_BUSY_TIMEOUT", "open_database"]

#: The longest ``timeout`` (seconds) SQLite can wait for a lock: it keeps the
#: busy timeout as a C ``int`` of milliseconds, and a longer one wraps round to
#: "do not wait at all" (``database is locked`` at once), silently.
LONGEST_BUSY_TIMEOUT = (2**31 - 1) / 1000

_META = (
    "CREATE TABLE IF NOT EXISTS rxr_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
)


def open_database(
    path: str,
    *,
    timeout: float,
    schema: str,
    schema_name: str,
    version: str,
    main_table: str,
    error: type[Exception],
) -> sqlite3.Connection:
    """Connect in WAL mode and make sure the schema is one we understand.

    Every component writes its schema version in ``rxr_meta`` under
    ``schema_name``; a database holding another version, or ``main_table``
    without a version, is refused with ``error`` rather than misread.

    ``timeout`` is checked before the file is touched: seconds to wait for
    another connection's lock, finite, from 0 (do not wait) to
    :data:`LONGEST_BUSY_TIMEOUT`, else ``ValueError`` (``TypeError`` for a
    non-number or a ``bool``) naming it.
    """
    seconds = require_finite("timeout", timeout)
    if seconds > LONGEST_BUSY_TIMEOUT:  # tighter than LONGEST_WAIT
        raise ValueError(
            f"timeout must be at most {LONGEST_BUSY_TIMEOUT!r} seconds (SQLite "
            f"keeps it as an int of milliseconds), got {timeout!r}"
        )
    db = sqlite3.connect(
        path, timeout=seconds, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0]
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            found = None
            if "rxr_meta" in tables:
                row = db.execute(
                    "SELECT value FROM rxr_meta WHERE name = ?", (schema_name,)
                ).fetchone()
                found = None if row is None else row[0]
            if found is None and main_table in tables:
                raise error(
                    f"{path}: {main_table} without a schema version; refusing a "
                    "database this version does not understand"
                )
            if found is not None and found != version:
                raise error(
                    f"{path}: {schema_name} version {found!r}; this version of "
                    f"rxresilience understands {version!r} only"
                )
            for statement in [_META, *schema.split(";")]:
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO rxr_meta (name, value) VALUES (?, ?)",
                (schema_name, version),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except BaseException:
        db.close()
        raise
    return db
