"""What the SQLite store and journal share: the connection and the schema check."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import weakref
from collections.abc import Callable, Iterator

from ._arguments import require_choice, require_finite
from ._child_safe_lock import ChildSafeLock

__all__ = [
    "LONGEST_BUSY_TIMEOUT",
    "SYNCHRONOUS",
    "ProcessConnection",
    "immediate_transaction",
    "open_database",
    "require_synchronous",
]

#: The durability settings offered: ``"NORMAL"`` (in WAL mode a commit
#: survives a crash of the process, not a power loss or an OS crash) and
#: ``"FULL"`` (it survives those too, at the cost of an fsync per commit).
SYNCHRONOUS = ("NORMAL", "FULL")

#: The mode of a database file we create: it holds user data.
FILE_MODE = 0o600

#: The longest ``timeout`` (seconds) SQLite can wait for a lock: it keeps the
#: busy timeout as a C ``int`` of milliseconds, and a longer one wraps round to
#: "do not wait at all" (``database is locked`` at once), silently.
LONGEST_BUSY_TIMEOUT = (2**31 - 1) / 1000

_META = (
    "CREATE TABLE IF NOT EXISTS rxr_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
)


@contextlib.contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction with the write lock taken at once (``BEGIN
    IMMEDIATE``, so that what the block reads stays true until it commits):
    committed when the block ends, however it ends (a ``return`` included),
    rolled back when it raises (``KeyboardInterrupt`` too) or when the
    commit fails."""
    try:
        # Inside: a signal's exception (Ctrl-C, a deadline's alarm) raised as
        # BEGIN returns, the lock taken, must roll back too.
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def require_synchronous(synchronous: object) -> str:
    """``"NORMAL"`` or ``"FULL"``, else ``ValueError`` naming ``synchronous``."""
    require_choice("synchronous", synchronous, SYNCHRONOUS)
    return str(synchronous)


def create_private(path: str) -> None:
    """Create ``path`` empty and private (0600) unless it exists.

    An existing file keeps its mode. SQLite gives the ``-wal`` and ``-shm``
    files it creates the database's mode, so they are private too. The mode is
    set with ``fchmod``, so no umask can widen or narrow it. A failure other
    than "it exists" is left to SQLite to report.
    """
    if path in ("", ":memory:"):  # no file
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except OSError:  # it exists (left as it is), or SQLite will say why not
        return
    try:
        if hasattr(os, "fchmod"):  # POSIX; elsewhere the mode is advisory anyway
            os.fchmod(fd, FILE_MODE)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(fd)


def open_database(
    path: str,
    *,
    timeout: float,
    synchronous: object = "NORMAL",
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
    non-number or a ``bool``) naming it; so is ``synchronous``, one of
    :data:`SYNCHRONOUS`. A new database file is created private (0600).
    """
    seconds = require_finite("timeout", timeout)
    if seconds > LONGEST_BUSY_TIMEOUT:  # tighter than LONGEST_WAIT
        raise ValueError(
            f"timeout must be at most {LONGEST_BUSY_TIMEOUT!r} seconds (SQLite "
            f"keeps it as an int of milliseconds), got {timeout!r}"
        )
    durability = require_synchronous(synchronous)
    create_private(path)
    db = sqlite3.connect(
        path, timeout=seconds, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={durability}")  # one of two literals
        with immediate_transaction(db):
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
    except BaseException:
        db.close()
        raise
    return db


class ProcessConnection:
    """A SQLite connection of this process's own, opened again in a forked child.

    SQLite forbids carrying a connection across ``fork()``: the child would
    write through its parent's handle, under locks that are the parent's. A
    child's first use opens a connection of its own; the parent's is kept
    (referenced, never used or closed) so the child never touches it. And a
    fork waits for the transaction under way on it (``guard``, the lock its
    owner holds while it uses it, is taken before the fork): the child
    inherits SQLite's record of this process's file locks, and one held at
    the fork would stay held there for good, every write "locked".
    """

    __slots__ = ("__weakref__", "_connection", "_guard", "_lock", "_open", "_pid")

    def __init__(
        self, open_: Callable[[], sqlite3.Connection], guard: ChildSafeLock
    ) -> None:
        self._open = open_
        self._connection = open_()
        self._pid = os.getpid()
        self._lock = ChildSafeLock()
        self._guard = guard
        _connections.add(self)

    def get(self) -> sqlite3.Connection:
        """This process's connection."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    _inherited.append(self._connection)
                    self._connection = self._open()
                    self._pid = os.getpid()
        return self._connection

    def close(self) -> None:
        """Close it (in a forked child that never used it: nothing, it is the
        parent's)."""
        if self._pid == os.getpid():
            self._connection.close()


#: Connections a forked child inherited: never used, never closed there.
_inherited: list[sqlite3.Connection] = []

_connections: weakref.WeakSet[ProcessConnection] = weakref.WeakSet()
_quiet: list[ChildSafeLock] = []

#: Seconds a fork waits for one transaction to end: a guard held longer (by
#: the forking thread itself, say) is left to the child as it is.
FORK_WAIT = 5.0


def _quiesce() -> None:
    """Before a fork: no transaction of ours under way (see ProcessConnection)."""
    for connection in sorted(_connections, key=id):
        if connection._guard.acquire(timeout=FORK_WAIT):
            _quiet.append(connection._guard)


def _resume() -> None:
    """After a fork, in the parent: the transactions go on."""
    while _quiet:
        _quiet.pop().release()


def _forget() -> None:
    """After a fork, in the child: its guards are new (ChildSafeLock), unheld."""
    _quiet.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_quiesce, after_in_parent=_resume, after_in_child=_forget
    )
