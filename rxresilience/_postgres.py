"""The PostgreSQL connections each PostgreSQL-backed part of the library talks through.

A store or journal is given a connection string (it opens a pool of its
own), a ``psycopg_pool.ConnectionPool`` (it borrows connections from it),
or one ``psycopg.Connection`` (single-threaded use only). Every operation
borrows a connection, runs its statements in one transaction (or, on an
autocommit connection, one statement on its own), and gives it back. A
failure of PostgreSQL, of the network or of the pool becomes the caller's
error type (``IdempotencyError``, ``SagaError``); nothing is retried, so a
write whose reply was lost is never sent twice.

Every operation is bounded on the client side too: see
:mod:`._postgres_watch`.

``psycopg`` (3.2 or later) and ``psycopg-pool`` are optional dependencies:
``pip install 'rxresilience[postgres]'``; nothing here imports them until a
store or journal is built.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._arguments import require_duration, require_instance
from ._child_safe_lock import ChildSafeLock
from ._postgres_watch import GRACE, Watch

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
    "GRACE",
    "LONGEST_NAME",
    "PostgresConnections",
    "import_psycopg",
    "require_schema_name",
    "require_table_name",
    "text_digest",
]

#: Seconds an operation waits, by default, for a connection, a connect, or
#: (on a pool of the library's own) a statement: see :class:`PostgresConnections`.
DEFAULT_TIMEOUT = 5.0

#: Connections in a pool the library opens from a connection string.
DEFAULT_POOL_SIZE = 10

#: The longest identifier PostgreSQL keeps (``NAMEDATALEN - 1`` bytes); a
#: longer one is silently truncated, so two long names could meet.
LONGEST_NAME = 63

_LONGEST_INT = 2**31 - 1

_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)


def text_digest(text: str) -> bytes:
    """The SHA-256 of ``text`` in UTF-8: the 32 bytes a table keys a text by.

    A btree index row holds at most 2704 bytes, so a key or saga id of any
    length is indexed by its digest (the tables ``CHECK`` that it is
    ``sha256(convert_to(text, 'UTF8'))``: an expression index cannot say so,
    ``convert_to`` is not immutable) and the statements compare the text too.
    A lone surrogate passes through, for PostgreSQL to refuse the text itself.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def import_psycopg() -> Any:
    """psycopg (with psycopg_pool), or an ImportError that says how to install it."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - checked here, used by PostgresConnections
    except ImportError as error:
        raise ImportError(
            "the PostgreSQL-backed parts of rxresilience need psycopg 3 and "
            "psycopg-pool: pip install 'rxresilience[postgres]'"
        ) from error
    return psycopg


def require_table_name(name: str, value: object, *, longest: int) -> str:
    """A table name (or prefix, or schema): letters, digits and underscores.

    Nothing else (no quotes, spaces, dots, non-ASCII letters), between 1 and
    ``longest`` characters, else ``ValueError`` (``TypeError`` for a
    non-string) naming the argument. The name is quoted in every statement
    all the same (``psycopg.sql.Identifier``), so case is kept.
    """
    require_instance(name, value, str, "a string")
    text = str(value)
    if not _NAME.fullmatch(text):
        raise ValueError(
            f"{name} must be letters, digits and underscores only, got {value!r}"
        )
    if len(text) > longest:
        raise ValueError(
            f"{name} must be at most {longest} characters (PostgreSQL truncates "
            f"longer names), got {len(text)}"
        )
    return text


def require_schema_name(value: object) -> str:
    """A PostgreSQL schema of the user's: :func:`require_table_name`, and none
    of PostgreSQL's own (``pg_*``, ``information_schema``)."""
    name = require_table_name("schema", value, longest=LONGEST_NAME)
    if name.lower().startswith("pg_") or name.lower() == "information_schema":
        raise ValueError(f"schema must be one of the application's, got {name!r}")
    return name


#: Seconds of ``timeout`` at least: below, no connection could ever be had.
SHORTEST_TIMEOUT = 0.001


class PostgresConnections:
    """Where a store or journal borrows its connections, and how failures read.

    Args:
        connection: a connection string (``"postgresql://app@db/app"``): a pool
            of the library's own is opened, of up to ``pool_size``
            autocommit connections, each with ``connect_timeout``,
            ``tcp_user_timeout`` and keepalives from ``timeout``, and a
            server-side ``statement_timeout`` of ``timeout``; or a
            ``psycopg_pool.ConnectionPool`` (its connections and their
            settings are the user's: set ``connect_timeout`` and keepalives
            there); or a ``psycopg.Connection``, for single-threaded use
            only (the library serialises its own use of it, but the
            transactions of other users of the same connection would
            interleave with its own).
        timeout: seconds to wait for a pool's connection (or the lone
            connection's turn), and on the library's own pool the bounds
            above; positive, finite. Every operation, whatever the
            connection, ends within ``timeout`` + :data:`GRACE` from its start
            (the watchdog: see the module).
        error: the error type failures are raised as.
        what: how messages name the store or journal.
    """

    def __init__(
        self,
        connection: object,
        *,
        timeout: float,
        pool_size: int,
        error: type[Exception],
        what: str,
    ) -> None:
        psycopg = import_psycopg()
        import psycopg_pool

        self.timeout = require_duration("timeout", timeout, positive=True)
        if self.timeout < SHORTEST_TIMEOUT:  # no connection could ever be had
            raise ValueError(
                f"timeout must be at least {SHORTEST_TIMEOUT} seconds, got {timeout!r}"
            )
        self._error = error
        self._what = what
        self._lock = threading.Lock()
        self._own = False
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._single: Any = None  # a psycopg.Connection
        # The process whose connections these are: a forked child has its
        # parent's sockets, never to be used there (see _borrowed).
        self._pid = os.getpid()
        self._fork_lock = ChildSafeLock()
        self._conninfo = ""
        self._pool_size = pool_size
        if isinstance(connection, str):
            try:
                psycopg.conninfo.conninfo_to_dict(connection)
            except psycopg.ProgrammingError as bad:
                raise ValueError(
                    f"connection is not a valid connection string: {bad}"
                ) from None
            self._conninfo = connection
            self._pool = self._open_pool()
            self._own = True
        elif isinstance(connection, psycopg_pool.ConnectionPool):
            self._pool = connection
        elif isinstance(connection, psycopg.Connection):
            self._single = connection
        else:
            raise TypeError(
                "connection must be a connection string, a "
                "psycopg_pool.ConnectionPool or a psycopg.Connection, got "
                f"{type(connection).__name__}"
            )

    def _open_pool(self) -> Any:
        import psycopg_pool

        return psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            timeout=self.timeout,
            # Give up reconnecting in the background after one failed try:
            # the next call's demand tries again at once, so the pool serves
            # again from the first call after an outage (psycopg's default
            # backs off for up to five minutes).
            reconnect_timeout=self.timeout,
            kwargs=_own_settings(self.timeout, self._conninfo),
            open=True,
            name=self._what,
        )

    def _in_this_process(self) -> None:
        """After a fork, in the child: a pool of the library's own is opened
        anew for the child; a user's pool or connection is refused. The
        parent's pool is dropped unclosed: closing it would end the parent's
        sessions (psycopg leaves a connection collected in a child open)."""
        with self._fork_lock:
            if self._pid == os.getpid():
                return
            if not self._own:
                raise self._error(
                    f"PostgreSQL {self._what}: its connections were made before "
                    "os.fork(), in the parent process, and are the parent's; "
                    "make the store (and its pool) in the child"
                )
            self._pool = self._open_pool()
            self._pid = os.getpid()

    def failed(self, error: BaseException | str) -> Exception:
        """The caller's error for a failure of PostgreSQL."""
        return self._error(f"PostgreSQL {self._what} failed: {error}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside a transaction, committed when the block ends.

        Any failure of psycopg or of the pool (the server down, a reply lost,
        a pool closed or exhausted past ``timeout``, no answer within
        ``timeout`` + :data:`GRACE`) is raised as the caller's error; nothing
        is retried.
        """
        psycopg = import_psycopg()
        watch = Watch(self.timeout)
        with (
            self._failures(psycopg, watch),
            self._borrowed(psycopg, watch) as conn,
            conn.transaction(),
        ):
            yield conn

    @contextlib.contextmanager
    def statement(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one statement: autocommit commits it alone (one
        round trip); otherwise it runs in a transaction of its own."""
        psycopg = import_psycopg()
        watch = Watch(self.timeout)
        with self._failures(psycopg, watch), self._borrowed(psycopg, watch) as conn:
            if conn.autocommit:
                yield conn
            else:
                with conn.transaction():
                    yield conn

    @contextlib.contextmanager
    def _failures(self, psycopg: Any, watch: Watch) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            if watch.expired:
                raise self._error(
                    f"PostgreSQL {self._what}: no answer within "
                    f"{self.timeout + GRACE:g} seconds (the server is frozen, "
                    "overloaded or unreachable); the connection was dropped, and "
                    "the outcome of a write in flight is unknown"
                ) from error
            if watch.lost_connection():
                self._drop_dead_connections()
            raise self.failed(error) from error
        except UnicodeError as error:  # text PostgreSQL cannot hold (surrogates)
            raise self.failed(error) from error

    @contextlib.contextmanager
    def _borrowed(
        self, psycopg: Any, watch: Watch
    ) -> Iterator[psycopg.Connection[Any]]:
        if self._pid != os.getpid():
            self._in_this_process()
        pool = self._pool
        if pool is not None:
            if pool.closed:
                raise self._error(
                    f"PostgreSQL {self._what}: its connection pool is closed "
                    "(open it, or give the store a pool that is open)"
                )
            # The watch ends before the connection goes back to the pool: a
            # late watchdog never touches a connection someone else borrowed.
            with (
                pool.connection(timeout=self.timeout) as conn,
                watch.watching(conn),
                _plain_rows(conn),
            ):
                yield conn
            return
        conn = self._single
        assert conn is not None
        if not self._lock.acquire(timeout=self.timeout):
            raise self._error(
                f"PostgreSQL {self._what}: its connection stayed busy for "
                f"{self.timeout} seconds (a lone connection serves one caller "
                "at a time: give it a pool)"
            )
        try:
            if conn.closed:
                raise self._error(f"PostgreSQL {self._what}: its connection is closed")
            status = conn.info.transaction_status
            if status != psycopg.pq.TransactionStatus.IDLE:
                raise self._error(
                    f"PostgreSQL {self._what}: its connection is inside a "
                    f"transaction ({status.name}) that is not the library's; "
                    "give it a connection of its own"
                )
            with watch.watching(conn), _plain_rows(conn):
                yield conn
        finally:
            self._lock.release()

    def _drop_dead_connections(self) -> None:
        """After a connection the server side broke (a restart, a crash), let
        the pool drop its other dead ones, so that a restarted server costs
        one failed operation, not one per pooled connection (best effort: the
        pool may be down or closed). Never after a watchdog or a pool
        timeout: against a frozen server the pool's check would wait forever."""
        if self._pool is not None and not self._pool.closed:
            with contextlib.suppress(Exception):
                self._pool.check()

    def close(self) -> None:
        """Close the pool the library opened (in a forked child that never
        used it: nothing, the pool is the parent's); a user's pool or
        connection is left to its owner."""
        if self._own and self._pool is not None and self._pid == os.getpid():
            self._pool.close()


@contextlib.contextmanager
def _plain_rows(conn: Any) -> Iterator[None]:
    """Tuples for rows and ``%s`` for parameters while the library uses
    ``conn`` (a user's pool may make rows dicts, ``row_factory=dict_row``, or
    use ``$1``, ``cursor_factory=RawCursor``); the user's own back after."""
    import psycopg
    from psycopg.rows import tuple_row

    rows, cursors = conn.row_factory, conn.cursor_factory
    conn.row_factory, conn.cursor_factory = tuple_row, psycopg.Cursor
    try:
        yield
    finally:
        conn.row_factory, conn.cursor_factory = rows, cursors


def _own_settings(timeout: float, conninfo: str) -> dict[str, Any]:
    """The settings of the connections of a pool the library opens: those the
    connection string leaves out (what it says stands), and a server-side
    ``statement_timeout`` before its own ``options`` (its own
    ``statement_timeout``, given there, comes later and stands)."""
    psycopg = import_psycopg()
    given = psycopg.conninfo.conninfo_to_dict(conninfo)
    # PostgreSQL and libpq keep these as C ints (of milliseconds, of seconds)
    milliseconds = min(_LONGEST_INT, max(1, math.ceil(timeout * 1000)))
    seconds = min(_LONGEST_INT, max(2, math.ceil(timeout)))  # libpq's shortest
    settings: dict[str, Any] = {
        "connect_timeout": seconds,
        "tcp_user_timeout": milliseconds,
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }
    own = {name: value for name, value in settings.items() if name not in given}
    options = f"-c statement_timeout={milliseconds}"
    # libpq reads PGOPTIONS only when no options are passed: passed with ours.
    theirs = given.get("options") or os.environ.get("PGOPTIONS")
    if theirs:
        options = f"{options} {theirs}"
    return {"autocommit": True, **own, "options": options}
