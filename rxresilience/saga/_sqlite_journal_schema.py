"""The tables of ``SQLiteSagaJournal``, made or upgraded in place when it opens."""

from __future__ import annotations

import sqlite3

from .._sqlite import immediate_transaction, open_database
from ..errors import SagaError

__all__ = ["SCHEMA_VERSION", "open_journal_database"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rxr_sagas (
    saga_id TEXT PRIMARY KEY,
    saga_name TEXT NOT NULL,
    status TEXT NOT NULL,
    touched REAL NOT NULL,
    owner TEXT,
    lease_until REAL
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

#: The columns 0.2 added to ``rxr_sagas``, added in place to a 0.1 database
#: (its rows keep NULL there: no owner, no lease).
_OWNERSHIP_COLUMNS = (("owner", "TEXT"), ("lease_until", "REAL"))


def open_journal_database(
    path: str, *, timeout: float, synchronous: str
) -> sqlite3.Connection:
    """The journal's database, its tables made, a 0.1 one upgraded (closed again
    if the upgrade fails).

    Raises:
        SagaError: the database holds a journal schema this version does not
            understand.
    """
    db = open_database(
        path,
        timeout=timeout,
        synchronous=synchronous,
        schema=_SCHEMA,
        schema_name="saga_schema",
        version=SCHEMA_VERSION,
        main_table="rxr_sagas",
        error=SagaError,
    )
    try:
        _add_ownership_columns(db)
    except BaseException:
        db.close()
        raise
    return db


def _add_ownership_columns(db: sqlite3.Connection) -> None:
    """Give a 0.1 database the columns of ownership, in place, once (two
    processes opening it at once: the second finds them added)."""
    with immediate_transaction(db):
        present = {row[1] for row in db.execute("PRAGMA table_info(rxr_sagas)")}
        for name, kind in _OWNERSHIP_COLUMNS:  # literals, never user input
            if name not in present:
                db.execute(f"ALTER TABLE rxr_sagas ADD COLUMN {name} {kind}")
