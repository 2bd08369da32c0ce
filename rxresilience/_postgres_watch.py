"""The watchdog of one PostgreSQL operation: its client-side deadline.

Every operation is bounded on the client side too: psycopg has no
client-side timeout for a query, so a server that stops answering while its
kernel still keeps the TCP connection (a frozen process, a hung disk) would
block the caller forever. A watchdog on the library's shared thread timer
shuts the connection's socket down once an operation has run ``timeout`` +
:data:`GRACE` seconds from its start (the pool wait included): the blocked
call fails at once, the connection is discarded (its pool drops a broken
connection when it comes back), and the caller gets its error type. The
socket is shut down, never closed under the blocked call, so its descriptor
cannot be reused meanwhile; a watchdog that comes after its operation ended
does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

from reactivex import abc

from ._clock import clock_of, deadline_clock, thread_scheduler
from ._shared_timer import shared_timer

__all__ = ["GRACE", "Watch"]

#: Seconds past ``timeout`` before the client gives up on a server that does
#: not answer: the server's own ``statement_timeout`` (on the library's pool)
#: ends a slow statement first, with its clearer error.
GRACE = 0.5


class Watch:
    """The client-side deadline of one operation: ``timeout`` + ``GRACE``
    seconds from its start, the pool wait included."""

    __slots__ = ("_conn", "_deadline", "_done", "_lock", "expired")

    def __init__(self, timeout: float) -> None:
        self._deadline = _clock() + timeout + GRACE
        self._lock = threading.Lock()
        self._conn: Any = None
        self._done = False
        self.expired = False

    @contextlib.contextmanager
    def watching(self, conn: Any) -> Iterator[None]:
        """Watch ``conn`` until the block ends (before the connection is
        given back)."""
        self._conn = conn
        deadline = _timer().schedule_relative(self._deadline - _clock(), self._fire)
        try:
            yield
        finally:
            with self._lock:  # waits for a watchdog shutting the socket down
                self._done = True
            deadline.dispose()

    def _fire(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            _shut_down(self._conn)

    def lost_connection(self) -> bool:
        """Whether the operation's connection was broken from the server side
        (a restart, a crash): not by a watchdog, nor a pool timeout."""
        conn = self._conn
        return conn is not None and bool(conn.broken)


def _shut_down(conn: Any) -> None:
    """Shut the connection's socket down: the call blocked on it fails at once
    (it reads end-of-file), and psycopg marks the connection broken. A
    duplicate of the descriptor is shut down and closed; the connection's own
    descriptor stays open until psycopg closes it, so it is never reused under
    the blocked call."""
    with contextlib.suppress(Exception):  # already closed: nothing to wake
        duplicate = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


# Deadlines on a monotonic clock: a step of the system clock moves none.
_clock = deadline_clock(clock_of(thread_scheduler()))


def _timer() -> Any:
    """The thread scheduler's shared timer: arming a deadline is a push on a
    heap, and a thread starts only when the earliest deadline moves."""
    timer = shared_timer(thread_scheduler())
    assert timer is not None  # TimeoutScheduler's timers are threads
    return timer
