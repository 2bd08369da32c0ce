"""``PostgresSagaJournal``: durable sagas any process of a fleet can recover.

Two tables: one row per saga (name, status, last touch, owner token, lease,
entry count) and one row per entry. A saga's rows are keyed by the SHA-256
of its id (a btree row holds at most 2704 bytes; an id may be longer); the
saga's row holds the id itself, which every statement compares too. Every fenced write is a compare-and-set
on the owner token in its ``WHERE`` clause, committed at once: no row lock
outlives a write (a step or a compensation may take minutes). Taking a saga
whose owner is gone is one ``UPDATE ... WHERE`` that PostgreSQL re-checks on
the row's latest version, so two recoverers racing for a saga never both
win, and the former owner's writes are refused from then on.

``psycopg`` and ``psycopg-pool`` are optional dependencies: ``pip install
'rxresilience[postgres]'``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._arguments import require_bool
from .._postgres import (
    DEFAULT_POOL_SIZE,
    DEFAULT_TIMEOUT,
    LONGEST_NAME,
    PostgresConnections,
    require_schema_name,
    require_table_name,
    text_digest,
)
from .._postgres_schema import SchemaOpening, TableSchema
from ..errors import SagaError
from ._journal import JournalEntry, JournalWrite, SagaJournal, SagaRecord
from ._postgres_batch import apply_batch, batch_statements, pg_text

__all__ = ["PostgresSagaJournal"]

SCHEMA_VERSION = 1

_DDL = (
    """CREATE TABLE IF NOT EXISTS {sagas} (
    id_sha256 BYTEA PRIMARY KEY,
    saga_id TEXT NOT NULL CHECK (id_sha256 = sha256(convert_to(saga_id, 'UTF8'))),
    saga_name TEXT NOT NULL,
    status TEXT NOT NULL,
    touched DOUBLE PRECISION NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION,
    entry_count INTEGER NOT NULL DEFAULT 0
)""",
    """CREATE TABLE IF NOT EXISTS {entries} (
    id_sha256 BYTEA NOT NULL REFERENCES {sagas} (id_sha256) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    context BYTEA,
    error TEXT,
    PRIMARY KEY (id_sha256, seq)
)""",
    "CREATE INDEX IF NOT EXISTS {running_index} ON {sagas} (touched) "
    "WHERE status = 'running'",
)

# Every statement finds a saga by its id's digest and compares the id too:
# two ids of one digest are never taken for each other (the second could not
# begin: SHA-256 makes that a theoretical case).
_ID = "id_sha256 = %s AND saga_id = %s"
_BEGIN = """INSERT INTO {sagas}
    (id_sha256, saga_id, saga_name, status, touched, owner, lease_until)
VALUES (%s, %s, %s, 'running', %s, %s, %s)
ON CONFLICT (id_sha256) DO NOTHING RETURNING 1"""
# Touch the saga (if held by the owner) and add the entry: one statement.
_APPEND = f"""WITH s AS (
    UPDATE {{sagas}} SET touched = %s, entry_count = entry_count + 1
    WHERE {_ID} AND (%s::text IS NULL OR owner = %s)
    RETURNING id_sha256, entry_count)
INSERT INTO {{entries}} (id_sha256, seq, kind, step, context, error)
SELECT id_sha256, entry_count, %s, %s, %s, %s FROM s RETURNING 1"""
_FINISH = f"""UPDATE {{sagas}} SET status = %s, touched = %s
WHERE {_ID} AND (%s::text IS NULL OR owner = %s)"""
_CLAIM_STALE = f"""UPDATE {{sagas}} SET touched = %s
WHERE {_ID} AND status = 'running' AND touched < %s"""
# Gone: the lease (or, written without one, the last touch) ended before
# stale_before, or the saga is held by the owner known to be gone (a NULL
# gone owner matches nobody).
_TAKE = f"""UPDATE {{sagas}} SET owner = %s, lease_until = %s, touched = %s
WHERE {_ID} AND status = 'running'
    AND (COALESCE(lease_until, touched) < %s OR owner = %s)"""
_RENEW = f"""UPDATE {{sagas}} SET lease_until = %s, touched = %s
WHERE {_ID} AND owner = %s AND status = 'running'"""
_LOAD = """SELECT s.saga_name, s.status, s.touched, s.owner, s.lease_until,
    e.kind, e.step, e.context, e.error
FROM {sagas} s LEFT JOIN {entries} e ON e.id_sha256 = s.id_sha256
WHERE s.id_sha256 = %s AND s.saga_id = %s ORDER BY e.seq"""
_UNFINISHED = (
    "SELECT saga_id FROM {sagas} WHERE status = 'running' ORDER BY touched, saga_id"
)


def _found(saga_id: str) -> tuple[bytes, str]:
    """What a statement finds a saga by (``_ID``): its id's digest, and its id."""
    return text_digest(saga_id), saga_id


class PostgresSagaJournal(SagaJournal):
    """Saga journals in PostgreSQL: durable, shared by processes on many machines.

    Every write the journal acknowledges is committed (with PostgreSQL's
    default ``synchronous_commit=on`` it survives a crash or restart of the
    server), so recovery never forgets a step that may have happened.

    The tables (``<prefix>_sagas``, ``<prefix>_entries``; default prefix
    ``rxr_saga``) are made on first use if missing, with a version row in
    ``rxr_schema_versions``::

        CREATE TABLE IF NOT EXISTS "rxr_schema_versions"
            (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "rxr_saga_sagas" (
            id_sha256 BYTEA PRIMARY KEY,
            saga_id TEXT NOT NULL
                CHECK (id_sha256 = sha256(convert_to(saga_id, 'UTF8'))),
            saga_name TEXT NOT NULL,
            status TEXT NOT NULL,
            touched DOUBLE PRECISION NOT NULL,
            owner TEXT,
            lease_until DOUBLE PRECISION,
            entry_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS "rxr_saga_entries" (
            id_sha256 BYTEA NOT NULL REFERENCES "rxr_saga_sagas" (id_sha256)
                ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            step TEXT NOT NULL,
            context BYTEA,
            error TEXT,
            PRIMARY KEY (id_sha256, seq)
        );
        CREATE INDEX IF NOT EXISTS "rxr_saga_sagas_running"
            ON "rxr_saga_sagas" (touched) WHERE status = 'running';
        INSERT INTO "rxr_schema_versions" (component, version)
            VALUES ('saga_journal:rxr_saga', 1) ON CONFLICT (component) DO NOTHING;

    (:meth:`schema_sql` gives it for the names in use.) A saga's rows are
    found by the SHA-256 of its id (a btree index row holds at most 2704
    bytes), so ids and step names of any length work, as on the other
    journals; the saga's row keeps the id itself, and every statement
    compares it too. For a role that may
    not create tables pass ``create_schema=False`` and have them made ahead
    (:meth:`create_schema`, or that SQL). Tables of a newer version than this
    release knows are refused, as is a ``<prefix>_sagas`` without a version
    row.

    A batch of writes (:meth:`write_owned`: a run's writes between two
    waits, and under asyncio several runs' batches, written off the event
    loop by the group commit) is one transaction of a few statements, each
    write fenced on its own saga. Times are the callers' clocks (the saga's
    scheduler): the fleet's clocks must agree to within a small part of a
    lease, as for Redis, or a recoverer whose clock runs ahead takes sagas
    early.

    Args:
        connection: a connection string (the journal opens a pool of its
            own, of up to 10 autocommit connections), a
            ``psycopg_pool.ConnectionPool`` (``READ COMMITTED`` connections,
            PostgreSQL's default), or a ``psycopg.Connection``, for
            single-threaded use only.
        table_prefix: the tables' names begin with it: letters, digits and
            underscores, at most 49 characters; quoted, so its case is kept.
        schema: the PostgreSQL schema the tables live in (same rule, at most
            63 characters); None, the connection's ``search_path``.
        create_schema: make the tables on first use when they are missing.
        timeout: seconds (positive, finite) to wait for a connection from the
            pool; on the journal's own pool also the connect timeout (at
            least 2 seconds), every statement's ``statement_timeout``, and
            ``tcp_user_timeout`` with keepalives. Whatever the connection,
            every operation ends within ``timeout`` + 0.5 seconds from its
            start, answered or failed with ``SagaError``: past that a watchdog
            shuts its connection down (a frozen server, whose kernel still
            keeps the TCP connection, never answers), the connection is
            discarded, and nothing is sent again (a batch's outcome is then
            unknown). A lone ``psycopg.Connection`` is lost with it; the
            journal's own pool reconnects on the next call's demand.

    Raises:
        SagaError: on any operation, when PostgreSQL, the network or the pool
            fails (nothing acknowledged is lost; a write whose reply was lost
            is not sent again, and its outcome is unknown), when a saga id is
            begun twice, or when the tables are missing (with
            ``create_schema=False``), newer, or not ours.
        ValueError: a ``table_prefix`` or ``schema`` that is not letters,
            digits and underscores, or too long; a ``timeout`` not above 0 or
            not finite; a connection string that does not parse.
        TypeError: a ``connection`` of another kind, a non-string name, a
            non-number ``timeout``, or a non-bool ``create_schema``.
        ImportError: psycopg is not installed (``pip install
            'rxresilience[postgres]'``).
    """

    def __init__(
        self,
        connection: Any,
        *,
        table_prefix: str = "rxr_saga",
        schema: str | None = None,
        create_schema: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.table_prefix = require_table_name(
            "table_prefix", table_prefix, longest=LONGEST_NAME - len("_sagas_running")
        )
        if schema is not None:
            require_schema_name(schema)
        require_bool("create_schema", create_schema)
        prefix = self.table_prefix
        self._layout = TableSchema(
            component=f"saga_journal:{prefix}",
            version=SCHEMA_VERSION,
            names={
                "sagas": f"{prefix}_sagas",
                "entries": f"{prefix}_entries",
                "running_index": f"{prefix}_sagas_running",
            },
            main="sagas",
            ddl=_DDL,
            schema=schema,
        )
        self._connections = PostgresConnections(
            connection,
            timeout=timeout,
            pool_size=DEFAULT_POOL_SIZE,
            error=SagaError,
            what=f"saga journal {prefix!r}",
        )
        self._tables = SchemaOpening(
            self._layout, self._connections, create=create_schema
        )
        render = self._layout.render
        self._begin_sql = render(_BEGIN)
        self._append_sql = render(_APPEND)
        self._finish_sql = render(_FINISH)
        self._claim_sql = render(_CLAIM_STALE)
        self._take_sql = render(_TAKE)
        self._renew_sql = render(_RENEW)
        self._load_sql = render(_LOAD)
        self._unfinished_sql = render(_UNFINISHED)
        self._batch = batch_statements(render)

    def schema_sql(self) -> str:
        """The SQL that makes this journal's tables, for a DBA to run ahead."""
        return self._layout.sql_text()

    def create_schema(self) -> None:
        """Make the tables (and the versions table) now, if missing; check them."""
        self._tables.now()

    @contextmanager
    def _statement(self) -> Iterator[Any]:
        self._tables.once()
        with self._connections.statement() as conn:
            yield conn

    def _changed(self, sql: str, params: tuple[object, ...]) -> bool:
        """One statement on one saga's row: True when its conditions held."""
        with self._statement() as conn:
            return bool(conn.execute(sql, params).rowcount == 1)

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
        with self._statement() as conn:
            created = conn.execute(
                self._begin_sql,
                (*_found(saga_id), saga_name, now, owner, lease_until),
            ).fetchone()
        if created is None:
            raise SagaError(f"saga id {saga_id!r} is already in the journal")

    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        self._append(saga_id, entry, now, None)

    def append_owned(
        self, saga_id: str, entry: JournalEntry, now: float, *, owner: str
    ) -> bool:
        return self._append(saga_id, entry, now, owner)

    def _append(
        self, saga_id: str, entry: JournalEntry, now: float, owner: str | None
    ) -> bool:
        params = (
            now,
            *_found(saga_id),
            owner,
            owner,
            pg_text(entry.kind),
            pg_text(entry.step),
        )
        with self._statement() as conn:
            written = conn.execute(
                self._append_sql,
                (
                    *params,
                    entry.context,
                    None if entry.error is None else pg_text(entry.error),
                ),
            ).fetchone()
        return written is not None

    def finish(self, saga_id: str, status: str, now: float) -> None:
        self._changed(self._finish_sql, (status, now, *_found(saga_id), None, None))

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        return self._changed(
            self._finish_sql,
            (status, now, *_found(saga_id), owner, owner),
        )

    def write_owned(self, writes: Sequence[JournalWrite]) -> list[bool]:
        """All the writes in one transaction, each fenced on its own saga."""
        if not writes:
            return []
        self._tables.once()
        with self._connections.transaction() as conn:
            return apply_batch(conn, self._batch, writes)

    def load(self, saga_id: str) -> SagaRecord | None:
        with self._statement() as conn:
            rows = conn.execute(self._load_sql, _found(saga_id)).fetchall()
        if not rows:
            return None
        name, status, touched, owner, lease_until = rows[0][:5]
        entries = tuple(
            JournalEntry(kind, step, None if context is None else bytes(context), error)
            for *_, kind, step, context, error in rows
            if kind is not None
        )
        return SagaRecord(saga_id, name, status, touched, entries, owner, lease_until)

    def unfinished(self) -> list[str]:
        with self._statement() as conn:
            return [row[0] for row in conn.execute(self._unfinished_sql)]

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        return self._changed(self._claim_sql, (now, *_found(saga_id), stale_before))

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
        return self._changed(
            self._take_sql,
            (owner, lease_until, now, *_found(saga_id), stale_before, gone_owner),
        )

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        return self._changed(
            self._renew_sql, (lease_until, now, *_found(saga_id), owner)
        )

    def close(self) -> None:
        """Close the pool the journal opened (a pool or connection given to it
        is left open: it is its owner's)."""
        self._connections.close()

    def __repr__(self) -> str:
        return f"PostgresSagaJournal(table_prefix={self.table_prefix!r})"
