"""How ``PostgresSagaJournal`` writes a batch: a few statements for many sagas.

Inside one transaction: the batch's new sagas are inserted (``ON CONFLICT
DO NOTHING``: an id another process began first is not ours), the rows of
every saga the batch touches are locked (``FOR UPDATE``, until the commit,
a few milliseconds: never across a step), each write is checked against the
owners read then and against the writes before it, in Python, and the
entries and the sagas' new touch, entry count and status are written by one
statement each, whatever the batch's size (arrays, ``unnest``). Rows are
found by the SHA-256 of the saga id, and the id itself is compared too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._postgres import text_digest
from ._journal import JournalWrite, lease_of

__all__ = ["BatchStatements", "apply_batch", "batch_statements", "pg_text"]


@dataclass(frozen=True, slots=True)
class BatchStatements:
    """The journal's statements a batch runs, rendered for its tables."""

    begin: str
    lock: str
    entries: str
    update: str


_BEGIN = """INSERT INTO {sagas}
    (id_sha256, saga_id, saga_name, status, touched, owner, lease_until)
SELECT h, i, n, 'running', t, o, l
FROM unnest(%s::bytea[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::float8[])
    AS v(h, i, n, t, o, l)
ON CONFLICT (id_sha256) DO NOTHING
RETURNING saga_id"""
# A row of another id with the same digest (theoretical) is not the batch's:
# apply_batch passes over the rows whose id it did not ask for.
_LOCK = (
    "SELECT saga_id, owner, entry_count FROM {sagas} "
    "WHERE id_sha256 = ANY(%s::bytea[]) FOR UPDATE"
)
_ENTRIES = """INSERT INTO {entries} (id_sha256, seq, kind, step, context, error)
SELECT * FROM unnest(%s::bytea[], %s::int[], %s::text[], %s::text[], %s::bytea[], %s::text[])"""
_UPDATE = """UPDATE {sagas} AS s SET touched = COALESCE(v.t, s.touched),
    entry_count = v.c, status = COALESCE(v.st, s.status)
FROM unnest(%s::bytea[], %s::text[], %s::float8[], %s::int[], %s::text[])
    AS v(h, i, t, c, st)
WHERE s.id_sha256 = v.h AND s.saga_id = v.i"""


def batch_statements(render: Any) -> BatchStatements:
    """The statements, each ``{sagas}``/``{entries}`` a quoted name (by ``render``)."""
    return BatchStatements(
        render(_BEGIN), render(_LOCK), render(_ENTRIES), render(_UPDATE)
    )


@dataclass(slots=True)
class _Saga:
    """What the batch knows of one saga as it goes through the writes."""

    owner: str | None
    count: int
    touched: float | None = None
    status: str | None = None
    changed: bool = False


@dataclass(slots=True)
class _Plan:
    done: list[bool] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)


def apply_batch(
    conn: Any, statements: BatchStatements, writes: Sequence[JournalWrite]
) -> list[bool]:
    """A batch of writes inside the caller's transaction, each fenced on its
    own saga; one answer per write."""
    digests = {write.saga_id: text_digest(write.saga_id) for write in writes}
    firsts: dict[str, JournalWrite] = {}
    for write in writes:
        if write.begin is not None:
            firsts.setdefault(write.saga_id, write)
    begun: set[str] = set()
    if firsts:
        news = list(firsts.values())
        begun = {
            row[0]
            for row in conn.execute(
                statements.begin,
                (
                    [digests[w.saga_id] for w in news],
                    [w.saga_id for w in news],
                    [w.begin for w in news],
                    [w.now for w in news],
                    [w.owner for w in news],
                    [lease_of(w) for w in news],
                ),
            )
        }
    sagas = {
        saga_id: _Saga(owner, count)
        for saga_id, owner, count in conn.execute(
            statements.lock, (list(digests.values()),)
        )
        # not in begun: the batch made it, so it was absent before the batch
        if saga_id in digests and saga_id not in begun
    }
    plan = _plan(writes, sagas, begun)
    if plan.entries:
        columns = [list(column) for column in zip(*plan.entries, strict=True)]
        columns[0] = [digests[saga_id] for saga_id in columns[0]]
        conn.execute(statements.entries, columns)
    changed = [(i, s) for i, s in sagas.items() if s.changed]
    if changed:
        conn.execute(
            statements.update,
            (
                [digests[i] for i, _ in changed],
                [i for i, _ in changed],
                [s.touched for _, s in changed],
                [s.count for _, s in changed],
                [s.status for _, s in changed],
            ),
        )
    return plan.done


def _plan(
    writes: Sequence[JournalWrite], sagas: dict[str, _Saga], begun: set[str]
) -> _Plan:
    """Each write checked against the sagas as the writes before it left them."""
    plan = _Plan()
    for write in writes:
        saga = sagas.get(write.saga_id)
        if write.begin is not None:
            if saga is not None or write.saga_id not in begun:
                plan.done.append(False)  # in the journal already
                continue
            begun.discard(write.saga_id)  # a second begin of it finds it
            saga = sagas[write.saga_id] = _Saga(write.owner, 0)
        elif saga is None or saga.owner != write.owner:
            plan.done.append(False)
            continue
        else:
            saga.touched = write.now  # the last write's time, as in memory
            saga.changed = True
        for entry in write.entries:
            saga.count += 1
            saga.changed = True
            plan.entries.append(
                (
                    write.saga_id,
                    saga.count,
                    pg_text(entry.kind),
                    pg_text(entry.step),
                    entry.context,
                    None if entry.error is None else pg_text(entry.error),
                )
            )
        if write.status is not None:
            saga.status = write.status
            saga.changed = True
        plan.done.append(True)
    return plan


def pg_text(value: str) -> str:
    """``value`` as PostgreSQL text can hold it: a NUL written as ``\\x00``, as
    the library's own error texts are (a NUL failed the whole batch)."""
    if "\x00" not in value:
        return value
    return value.replace("\x00", "\\x00")
