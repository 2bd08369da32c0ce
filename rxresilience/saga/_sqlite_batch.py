"""How ``SQLiteSagaJournal`` writes a batch: a few statements for many sagas."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._journal import JournalWrite, lease_of

__all__ = ["apply_batch"]

#: Ids per ``IN (...)``: SQLite builds before 3.32 allow 999 parameters.
_IDS_PER_QUERY = 500


def apply_batch(db: sqlite3.Connection, writes: Sequence[JournalWrite]) -> list[bool]:
    """A batch of writes inside one transaction, each fenced on its own saga.

    The transaction holds the database's write lock, so owners read at its
    start stay true to its end: each write is checked against them (and
    against the writes before it in the batch) in Python, then every kind of
    statement runs once for the whole batch. A few calls into SQLite per
    batch rather than four per write: under asyncio this runs beside the
    event loop, and each call back into Python waits for the loop's GIL.
    """
    ids = list({write.saga_id: None for write in writes})
    owners: dict[str, str | None] = {}
    last: dict[str, int] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        owners.update(
            db.execute(
                f"SELECT saga_id, owner FROM rxr_sagas WHERE saga_id IN ({marks})",
                chunk,
            )
        )
        last.update(
            db.execute(
                "SELECT saga_id, MAX(seq) FROM rxr_saga_entries "
                f"WHERE saga_id IN ({marks}) GROUP BY saga_id",
                chunk,
            )
        )
    done: list[bool] = []
    begins: list[tuple[object, ...]] = []
    touched: dict[str, float] = {}
    entries: list[tuple[object, ...]] = []
    ends: dict[str, list[str]] = {}
    for write in writes:
        saga_id = write.saga_id
        if write.begin is not None:
            if saga_id in owners:  # the id is in the journal already
                done.append(False)
                continue
            owners[saga_id] = write.owner
            begins.append(
                (saga_id, write.begin, write.now, write.owner, lease_of(write))
            )
        elif saga_id not in owners or owners[saga_id] != write.owner:
            done.append(False)
            continue
        else:
            touched[saga_id] = max(write.now, touched.get(saga_id, write.now))
        seq = last.get(saga_id, 0)
        for entry in write.entries:
            seq += 1
            entries.append(
                (saga_id, seq, entry.kind, entry.step, entry.context, entry.error)
            )
        last[saga_id] = seq
        if write.status is not None:
            ends.setdefault(write.status, []).append(saga_id)
        done.append(True)
    # Many rows per statement: one call binds them and one step writes them,
    # the GIL released meanwhile (executemany takes it back for every row).
    _insert(
        db,
        "rxr_sagas (saga_id, saga_name, status, touched, owner, lease_until)",
        "(?, ?, 'running', ?, ?, ?)",
        begins,
    )
    _insert(
        db,
        "rxr_saga_entries (saga_id, seq, kind, step, context, error)",
        "(?, ?, ?, ?, ?, ?)",
        entries,
    )
    if touched:  # each saga touched at its latest write of the batch
        _update_each(db, "touched", list(touched.items()))
    for status, ids in ends.items():
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            db.execute(
                "UPDATE rxr_sagas SET status = ? WHERE saga_id IN "
                f"({', '.join('?' * len(chunk))})",
                [status, *chunk],
            )
    return done


def _insert(
    db: sqlite3.Connection, into: str, row: str, rows: list[tuple[object, ...]]
) -> None:
    """``INSERT INTO <into> VALUES <row>, <row>, ...``, in statements of at
    most 999 parameters (``into`` and ``row`` are literals of this module)."""
    if not rows:
        return
    per = 999 // len(rows[0])
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        db.execute(
            f"INSERT INTO {into} VALUES {', '.join([row] * len(chunk))}",
            [value for each in chunk for value in each],
        )


def _update_each(
    db: sqlite3.Connection, column: str, values: list[tuple[str, float]]
) -> None:
    """Set ``column`` of each saga to its own value: one ``CASE`` statement per
    chunk (``column`` is a literal of this module)."""
    per = 999 // 3
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        cases = " ".join(["WHEN ? THEN ?"] * len(chunk))
        ids = ", ".join("?" * len(chunk))
        db.execute(
            f"UPDATE rxr_sagas SET {column} = CASE saga_id {cases} END "
            f"WHERE saga_id IN ({ids})",
            [v for pair in chunk for v in pair] + [saga_id for saga_id, _ in chunk],
        )
