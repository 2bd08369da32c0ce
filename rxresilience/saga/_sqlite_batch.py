"""How ``SQLiteSagaJournal`` writes a batch: a few statements for many sagas."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from ._journal import JournalWrite, lease_of

__all__ = ["apply_batch"]

#: Parameters per statement at most, whatever the build allows: SQLite keeps
#: the values last bound to each statement Python's sqlite3 caches (a copy of
#: every context), so longer statements would keep a batch's worth of
#: contexts alive per cached statement (measured: 389 MB at 10,000 against
#: 25 MB at 999 for 128 large batches); longer ones measured no faster.
_MOST_PARAMETERS = 999

#: Characters of saga ids per owners query at most: the JSON row holding them
#: (up to six times as long, escaped) stays far below SQLite's longest string.
_MOST_ID_CHARACTERS = 1_000_000

#: No owner at all (an owner read from the journal may be None: a 0.1 row).
_ABSENT = object()


def apply_batch(db: sqlite3.Connection, writes: Sequence[JournalWrite]) -> list[bool]:
    """A batch of writes inside one transaction, each fenced on its own saga.

    The transaction holds the database's write lock, so owners read at its
    start stay true to its end: each write is checked against them (and
    against the writes before it in the batch) in Python, then every kind of
    statement runs once for the whole batch. A few calls into SQLite per
    batch rather than four per write: under asyncio this runs beside the
    event loop, and each call back into Python waits for the loop's GIL.
    """
    owners, last = _owners_and_last_seq(db, list({w.saga_id: None for w in writes}))
    done: list[bool] = []
    # Rows flat, as they are bound: built here, beside a busy event loop,
    # each Python step costs.
    begins: list[object] = []
    entries: list[object] = []
    # A saga begun in this batch is touched by its insert (and by the later
    # writes of the batch): the last write's time, as the in-memory journal
    # keeps it; one that ends, ends with its last write's status.
    touched: dict[str, float] = {}
    ends: dict[str, str] = {}
    for write in writes:
        saga_id = write.saga_id
        if write.begin is not None:
            if saga_id in owners:  # the id is in the journal already
                done.append(False)
                continue
            owners[saga_id] = write.owner
            begins += (saga_id, write.begin, write.now, write.owner, lease_of(write))
        elif owners.get(saga_id, _ABSENT) != write.owner:
            done.append(False)
            continue
        else:
            touched[saga_id] = write.now
        seq = last.get(saga_id, 0)
        for entry in write.entries:
            seq += 1
            entries += (
                saga_id,
                seq,
                entry.kind,
                entry.step,
                entry.context,
                entry.error,
            )
        last[saga_id] = seq
        if write.status is not None:
            ends[saga_id] = write.status
        done.append(True)
    # Many rows per statement: one call binds them and one step writes them,
    # the GIL released meanwhile (executemany takes it back for every row).
    _insert(
        db,
        "rxr_sagas (saga_id, saga_name, status, touched, owner, lease_until)",
        "(?, ?, 'running', ?, ?, ?)",
        5,
        begins,
    )
    _insert(
        db,
        "rxr_saga_entries (saga_id, seq, kind, step, context, error)",
        "(?, ?, ?, ?, ?, ?)",
        6,
        entries,
    )
    if touched or ends:
        updates: list[object] = []
        for saga_id in touched.keys() | ends.keys():
            updates += (saga_id, touched.get(saga_id), ends.get(saga_id))
        _update(db, updates)
    return done


def _insert(
    db: sqlite3.Connection, into: str, row: str, width: int, values: list[object]
) -> None:
    """``INSERT INTO <into> VALUES <row>, <row>, ...`` for ``values``, rows of
    ``width`` laid end to end, in statements of at most 999 parameters, fewer
    if the build allows fewer (``into`` and ``row`` are literals of this
    module)."""
    per = _features().parameters // width * width
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        db.execute(
            f"INSERT INTO {into} VALUES {', '.join([row] * (len(chunk) // width))}",
            chunk,
        )


def _owners_and_last_seq(
    db: sqlite3.Connection, ids: list[str]
) -> tuple[dict[str, str | None], dict[str, int]]:
    """Each saga's owner and the last ``seq`` of its entries (sagas not in the
    journal are left out; a saga without entries has no last ``seq``)."""
    owners: dict[str, str | None] = {}
    last: dict[str, int] = {}
    for chunk in _chunks(ids, _features().parameters):
        marks = ", ".join("?" * len(chunk))
        if _features().json:
            # One row, one step: stepping through a row per saga takes the GIL
            # back for every row, and under asyncio the loop holds it.
            (found,) = db.execute(
                "SELECT json_group_array(json_array(saga_id, owner, (SELECT "
                "MAX(seq) FROM rxr_saga_entries AS e WHERE e.saga_id = s.saga_id)))"
                f" FROM rxr_sagas AS s WHERE saga_id IN ({marks})",
                chunk,
            ).fetchone()
            rows = json.loads(found)
        else:
            rows = db.execute(
                "SELECT saga_id, owner, (SELECT MAX(seq) FROM rxr_saga_entries "
                "AS e WHERE e.saga_id = s.saga_id) FROM rxr_sagas AS s "
                f"WHERE saga_id IN ({marks})",
                chunk,
            ).fetchall()
        for saga_id, owner, seq in rows:
            owners[saga_id] = owner
            if seq is not None:
                last[saga_id] = seq
    return owners, last


def _chunks(ids: list[str], most: int) -> list[list[str]]:
    """``ids`` in order, in chunks of at most ``most`` ids and (but for a
    single longer id) ``_MOST_ID_CHARACTERS`` characters."""
    if len(ids) <= most and sum(map(len, ids)) <= _MOST_ID_CHARACTERS:
        return [ids]  # the usual batch: no need to count id by id
    chunks: list[list[str]] = []
    chunk: list[str] = []
    characters = 0
    for saga_id in ids:
        if chunk and (
            len(chunk) == most or characters + len(saga_id) > _MOST_ID_CHARACTERS
        ):
            chunks.append(chunk)
            chunk, characters = [], 0
        chunk.append(saga_id)
        characters += len(saga_id)
    if chunk:
        chunks.append(chunk)
    return chunks


def _update(db: sqlite3.Connection, values: list[object]) -> None:
    """Set each saga's ``touched`` and ``status`` (None: leave it) from
    ``saga_id, touched, status`` rows laid end to end."""
    if not _features().update_from:
        db.executemany(
            "UPDATE rxr_sagas SET touched = COALESCE(?, touched), "
            "status = COALESCE(?, status) WHERE saga_id = ?",
            [
                (values[i + 1], values[i + 2], values[i])
                for i in range(0, len(values), 3)
            ],
        )
        return
    per = _features().parameters // 3 * 3
    for start in range(0, len(values), per):
        chunk = values[start : start + per]
        # A join on the primary key: one lookup per row (a ``CASE`` of n
        # branches per row would cost n * n comparisons).
        db.execute(
            "UPDATE rxr_sagas SET touched = COALESCE(v.column2, touched), "
            "status = COALESCE(v.column3, status) "
            f"FROM (VALUES {', '.join(['(?, ?, ?)'] * (len(chunk) // 3))}) AS v "
            "WHERE rxr_sagas.saga_id = v.column1",
            chunk,
        )


class _Features(NamedTuple):
    json: bool
    update_from: bool
    parameters: int = 999


@functools.cache
def _features() -> _Features:
    """What the linked SQLite library can do: ``json_group_array`` (the JSON
    functions, built in since 3.38 and in most builds before), ``UPDATE ...
    FROM`` (3.33), and how many parameters a statement may have (999 before
    3.32 by default, 32,766 since; builds choose their own)."""
    probe = sqlite3.connect(":memory:")
    try:
        try:
            probe.execute("SELECT json_group_array(json_array(1))").fetchone()
            has_json = True
        except sqlite3.OperationalError:
            has_json = False
        parameters = probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return _Features(
            has_json,
            sqlite3.sqlite_version_info >= (3, 33, 0),
            max(6, min(parameters, _MOST_PARAMETERS)),
        )
    finally:
        probe.close()
