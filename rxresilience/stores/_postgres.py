"""``PostgresIdempotencyStore``: durable claims and outcomes shared by a fleet.

One row per key, keyed by the SHA-256 of the key (a btree row holds at most
2704 bytes; a key may be longer) and holding the key itself, which every
statement compares too. A claim is one ``INSERT ... ON CONFLICT (key_sha256)
DO UPDATE ... WHERE <the row expired>``: PostgreSQL either inserts the row or locks the
existing one and re-checks the condition on its latest version, so two
callers racing for a key never both win (never a check-then-insert). The
other writes are one conditional statement each (a compare-and-set on the
owner token). Times are the callers' (absolute seconds, as for every store),
compared in the statements; PostgreSQL's clock is never read.

``psycopg`` and ``psycopg-pool`` are optional dependencies: ``pip install
'rxresilience[postgres]'``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._arguments import require_bool
from .._codec import Codec, codec_or_json
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
from ..errors import IdempotencyError
from ._base import (
    Claim,
    ClaimStatus,
    IdempotencyStore,
    require_record,
    require_store_key,
    require_time,
)

__all__ = ["PostgresIdempotencyStore"]

SCHEMA_VERSION = 1
_SWEEP_EVERY = 1000  # claims between two sweeps of expired rows
_BATCH = 1000  # rows a sweep (or one round of a purge) deletes at most
_CLAIM_ROUNDS = 5  # a key expired or released between our two looks: look again

_DDL = (
    """CREATE TABLE IF NOT EXISTS {table} (
    key_sha256 BYTEA PRIMARY KEY,
    key TEXT NOT NULL CHECK (key_sha256 = sha256(convert_to(key, 'UTF8'))),
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed')),
    fingerprint TEXT,
    owner TEXT,
    expires_at DOUBLE PRECISION NOT NULL,
    record BYTEA
)""",
    "CREATE INDEX IF NOT EXISTS {expiry_index} ON {table} (expires_at)",
)

# Every statement finds a row by the key's digest and compares the key too:
# two keys of one digest would never be taken for each other (the second
# would stay unclaimable: SHA-256 makes that a theoretical case).
_KEY = "key_sha256 = %s AND key = %s"
_CLAIM = """INSERT INTO {table} AS t
    (key_sha256, key, status, fingerprint, owner, expires_at, record)
VALUES (%s, %s, 'in_progress', %s, %s, %s, NULL)
ON CONFLICT (key_sha256) DO UPDATE SET status = 'in_progress',
    fingerprint = EXCLUDED.fingerprint, owner = EXCLUDED.owner,
    expires_at = EXCLUDED.expires_at, record = NULL
WHERE t.expires_at <= %s AND t.key = EXCLUDED.key
RETURNING 1"""
_READ = f"SELECT status, fingerprint, expires_at, record FROM {{table}} WHERE {_KEY}"
_RENEW = (
    "UPDATE {table} SET expires_at = %s "
    f"WHERE {_KEY} AND status = 'in_progress' AND owner = %s"
)
_COMPLETE = (
    "UPDATE {table} SET status = 'completed', owner = NULL, expires_at = %s, "
    f"record = %s WHERE {_KEY} AND status = 'in_progress' AND owner = %s"
)
_RELEASE = (
    f"DELETE FROM {{table}} WHERE {_KEY} AND status = 'in_progress' AND owner = %s"
)
_GET = (
    "SELECT record FROM {table} "
    f"WHERE {_KEY} AND status = 'completed' AND expires_at > %s"
)
# SKIP LOCKED: a sweep passes over rows a claim is rewriting this instant.
_PURGE = (
    "DELETE FROM {table} WHERE key_sha256 IN (SELECT key_sha256 FROM {table} "
    "WHERE expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED)"
)

_IN_PROGRESS = Claim(ClaimStatus.IN_PROGRESS)
_KEY_REUSED = Claim(ClaimStatus.KEY_REUSED)
_CLAIMED = Claim(ClaimStatus.CLAIMED)


def _require_postgres_key(key: object) -> tuple[bytes, str]:
    """A store key that PostgreSQL's text can hold (no NUL, valid UTF-8, any
    length), with the digest its row is found by."""
    text = require_store_key(key)
    if "\x00" in text:
        raise ValueError("key must not contain NUL characters (PostgreSQL text)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"key must be encodable as UTF-8, got {text!r} (lone surrogates)"
        ) from None
    return text_digest(text), text


class PostgresIdempotencyStore(IdempotencyStore):
    """Idempotency claims and outcomes in PostgreSQL, durable, for a fleet.

    Every acknowledged claim and record is committed by PostgreSQL (with its
    default ``synchronous_commit=on``, it survives a crash or a restart of the
    server), so a key's effect never runs twice because the store forgot it.

    The table (default ``rxr_idempotency``) is made on first use if missing,
    with its version row in ``rxr_schema_versions``::

        CREATE TABLE IF NOT EXISTS "rxr_schema_versions"
            (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "rxr_idempotency" (
            key_sha256 BYTEA PRIMARY KEY,
            key TEXT NOT NULL
                CHECK (key_sha256 = sha256(convert_to(key, 'UTF8'))),
            status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed')),
            fingerprint TEXT,
            owner TEXT,
            expires_at DOUBLE PRECISION NOT NULL,
            record BYTEA
        );
        CREATE INDEX IF NOT EXISTS "rxr_idempotency_expires_at"
            ON "rxr_idempotency" (expires_at);
        INSERT INTO "rxr_schema_versions" (component, version)
            VALUES ('idempotency_store:rxr_idempotency', 1)
            ON CONFLICT (component) DO NOTHING;

    (:meth:`schema_sql` gives it for the names in use.) A row is found by
    the SHA-256 of its key (a btree index row holds at most 2704 bytes), so
    keys of any length work, as on the other stores; the row keeps the key
    itself, and every statement compares it too. A role without the
    right to create tables: pass ``create_schema=False`` and have the tables
    made ahead, by :meth:`create_schema` or that SQL. A table holding a newer
    version than this release knows is refused, as is a table of that name
    without a version row.

    Times are the callers' clocks (the operator's scheduler, so virtual time
    works); the fleet's clocks must agree to within a small part of a lease,
    as for Redis: a caller whose clock runs ahead takes over claims early.
    Expired rows are replaced when their key is claimed again, swept every
    thousand claims, and deleted by :meth:`purge_expired`.

    Under asyncio (``calls_may_block``, as for the SQLite and Redis stores)
    ``rxr.idempotent`` makes the store's calls on threads of its own, never on
    the event loop, and goes on, on the loop, with each answer.

    Args:
        connection: a connection string (the store opens a pool of its own,
            of up to 10 autocommit connections), a
            ``psycopg_pool.ConnectionPool`` (its connections must use
            PostgreSQL's default ``READ COMMITTED`` isolation), or a
            ``psycopg.Connection``, for single-threaded use only (its
            transactions would interleave with other users').
        table: the table's name: letters, digits and underscores, at most 52
            characters; quoted, so its case is kept.
        schema: the PostgreSQL schema it lives in (same rule, at most 63
            characters); None, the connection's ``search_path``.
        codec: how outcomes are encoded (default JSON; never pickle).
        create_schema: make the table on first use when it is missing.
        timeout: seconds (positive, finite) to wait for a connection from the
            pool; on the store's own pool also the connect timeout (at least
            2 seconds), the ``statement_timeout`` of every statement, and
            ``tcp_user_timeout`` with keepalives (a user's pool: set
            ``connect_timeout`` and keepalives in its connection settings).
            Whatever the connection, every operation ends within ``timeout``
            + 0.5 seconds from its start, answered or failed with
            ``IdempotencyError``: past that a watchdog shuts its connection
            down (a frozen server, whose kernel still keeps the TCP connection,
            never answers), the connection is discarded, and nothing is sent
            again. A lone ``psycopg.Connection`` is lost with it; the store's
            own pool reconnects on the next call's demand.

    Raises:
        IdempotencyError: on any operation, when PostgreSQL, the network or
            the pool fails (a closed pool included), or the table is missing
            (with ``create_schema=False``), newer, or not ours. A write whose
            reply was lost is not sent again: its outcome is unknown, as with
            any lost reply, and a claim it made expires with its lease.
        ValueError: a ``table`` or ``schema`` that is not letters, digits and
            underscores, or too long; a ``timeout`` not above 0 or not
            finite; a connection string that does not parse.
        TypeError: a ``connection`` of another kind, a non-string name, a
            non-number ``timeout``, or a non-bool ``create_schema``.
        ImportError: psycopg is not installed (``pip install
            'rxresilience[postgres]'``).
    """

    def __init__(
        self,
        connection: Any,
        *,
        table: str = "rxr_idempotency",
        schema: str | None = None,
        codec: Codec | None = None,
        create_schema: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.table = require_table_name(
            "table", table, longest=LONGEST_NAME - len("_expires_at")
        )
        if schema is not None:
            require_schema_name(schema)
        require_bool("create_schema", create_schema)
        self.codec = codec_or_json(codec)
        self._layout = TableSchema(
            component=f"idempotency_store:{self.table}",
            version=SCHEMA_VERSION,
            names={"table": self.table, "expiry_index": f"{self.table}_expires_at"},
            main="table",
            ddl=_DDL,
            schema=schema,
        )
        self._connections = PostgresConnections(
            connection,
            timeout=timeout,
            pool_size=DEFAULT_POOL_SIZE,
            error=IdempotencyError,
            what=f"idempotency store {self.table!r}",
        )
        self._tables = SchemaOpening(
            self._layout, self._connections, create=create_schema
        )
        self._claims = itertools.count(1)
        render = self._layout.render
        self._claim_sql = render(_CLAIM)
        self._read_sql = render(_READ)
        self._renew_sql = render(_RENEW)
        self._complete_sql = render(_COMPLETE)
        self._release_sql = render(_RELEASE)
        self._get_sql = render(_GET)
        self._purge_sql = render(_PURGE)

    def schema_sql(self) -> str:
        """The SQL that makes this store's table, for a DBA to run ahead."""
        return self._layout.sql_text()

    def create_schema(self) -> None:
        """Make the table (and the versions table) now, if missing; check it."""
        self._tables.now()

    @contextmanager
    def _statement(self) -> Iterator[Any]:
        self._tables.once()
        with self._connections.statement() as conn:
            yield conn

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        digest, key = _require_postgres_key(key)
        now = require_time("now", now)
        lease_until = require_time("lease_until", lease_until)
        if next(self._claims) % _SWEEP_EVERY == 0:
            with self._statement() as conn:
                conn.execute(self._purge_sql, (now, _BATCH))
        for _ in range(_CLAIM_ROUNDS):
            with self._statement() as conn:
                won = conn.execute(
                    self._claim_sql,
                    (digest, key, fingerprint, owner, lease_until, now),
                ).fetchone()
                if won is not None:
                    return _CLAIMED
                row = conn.execute(self._read_sql, (digest, key)).fetchone()
            if row is not None and row[2] > now:
                status, stored_fingerprint, _, record = row
                if stored_fingerprint != fingerprint:
                    return _KEY_REUSED
                if status == "completed":
                    return Claim(ClaimStatus.COMPLETED, bytes(record))
                return _IN_PROGRESS
            # Released, purged or expired between the two statements: again.
        return _IN_PROGRESS  # a key churning this fast is busy: wait and see

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        digest, key = _require_postgres_key(key)
        lease_until = require_time("lease_until", lease_until)
        with self._statement() as conn:
            done = conn.execute(self._renew_sql, (lease_until, digest, key, owner))
            return bool(done.rowcount == 1)

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        record = require_record(record)
        digest, key = _require_postgres_key(key)
        expires_at = require_time("expires_at", expires_at)
        with self._statement() as conn:
            done = conn.execute(
                self._complete_sql, (expires_at, record, digest, key, owner)
            )
            return bool(done.rowcount == 1)

    def release(self, key: str, owner: str) -> bool:
        digest, key = _require_postgres_key(key)
        with self._statement() as conn:
            done = conn.execute(self._release_sql, (digest, key, owner))
            return bool(done.rowcount == 1)

    def get(self, key: str, now: float | None = None) -> bytes | None:
        digest, key = _require_postgres_key(key)
        moment = self._now(now)
        with self._statement() as conn:
            row = conn.execute(self._get_sql, (digest, key, moment)).fetchone()
        return None if row is None else bytes(row[0])

    def purge_expired(self, now: float | None = None) -> int:
        """Delete expired claims and records, a thousand rows per statement
        (rows locked by a claim at that instant are passed over); return how
        many went."""
        moment = self._now(now)
        removed = 0
        while True:
            with self._statement() as conn:
                count = int(conn.execute(self._purge_sql, (moment, _BATCH)).rowcount)
            removed += count
            if count < _BATCH:
                return removed

    def close(self) -> None:
        """Close the pool the store opened (a pool or connection given to it is
        left open: it is its owner's)."""
        self._connections.close()

    def __repr__(self) -> str:
        return f"PostgresIdempotencyStore(table={self.table!r})"
