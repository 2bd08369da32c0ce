"""How ``SQLiteSagaJournal`` reads a saga's rows and appends one entry.

Each function runs on the connection it is given, under the journal's lock.
"""

from __future__ import annotations

import sqlite3

from .._sqlite import immediate_transaction
from ._journal import JournalEntry, SagaRecord

__all__ = ["GONE", "append_entry", "load_record", "unfinished_ids"]

#: A running saga whose owner is gone: its lease ended, or (written by 0.1,
#: without a lease) its last touch was, before the given time; or its owner
#: is the given one (``owner = NULL`` is never true, so None matches nothing).
GONE = (
    "status = 'running' AND "
    "((CASE WHEN lease_until IS NULL THEN touched ELSE lease_until END) < ? "
    "OR owner = ?)"
)


def append_entry(
    db: sqlite3.Connection,
    saga_id: str,
    entry: JournalEntry,
    now: float,
    owner: str | None,
) -> bool:
    """One transaction: touch the saga (if ``owner`` holds it), add the entry.

    False, with nothing written, when ``owner`` is given and does not hold it.
    """
    with immediate_transaction(db):
        if owner is None:
            db.execute(
                "UPDATE rxr_sagas SET touched = ? WHERE saga_id = ?",
                (now, saga_id),
            )
        elif (
            db.execute(
                "UPDATE rxr_sagas SET touched = ? WHERE saga_id = ? AND owner = ?",
                (now, saga_id, owner),
            ).rowcount
            != 1
        ):
            return False  # nothing written: the empty transaction commits
        db.execute(
            "INSERT INTO rxr_saga_entries (saga_id, seq, kind, step, context, error) "
            "VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rxr_saga_entries "
            "WHERE saga_id = ?), ?, ?, ?, ?)",
            (saga_id, saga_id, entry.kind, entry.step, entry.context, entry.error),
        )
    return True


def load_record(db: sqlite3.Connection, saga_id: str) -> SagaRecord | None:
    """The saga's row and its entries in order, or None if it is not there."""
    row = db.execute(
        "SELECT saga_name, status, touched, owner, lease_until "
        "FROM rxr_sagas WHERE saga_id = ?",
        (saga_id,),
    ).fetchone()
    if row is None:
        return None
    entries = tuple(
        JournalEntry(kind, step, None if context is None else bytes(context), error)
        for kind, step, context, error in db.execute(
            "SELECT kind, step, context, error FROM rxr_saga_entries "
            "WHERE saga_id = ? ORDER BY seq",
            (saga_id,),
        )
    )
    return SagaRecord(saga_id, row[0], row[1], row[2], entries, row[3], row[4])


def unfinished_ids(db: sqlite3.Connection) -> list[str]:
    """The running sagas' ids, least recently touched first."""
    return [
        row[0]
        for row in db.execute(
            "SELECT saga_id FROM rxr_sagas WHERE status = 'running' ORDER BY touched"
        )
    ]
