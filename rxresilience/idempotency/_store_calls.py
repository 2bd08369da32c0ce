"""Where an execution's store calls run: on the caller's thread, or off the event loop.

Under asyncio a store call that may wait (a SQLite lock held by another
process, a Redis or PostgreSQL round trip) must not run on the event loop:
it would stall every coroutine. When the execution runs under an
``AsyncIOScheduler`` (the subscribe-time one, as ``rxr.to_async`` sets up,
or the operator's own) and its store says ``calls_may_block``, each call is
made on a thread of a small pool of our own, and the execution goes on, on
the loop, with the answer: its state is still touched by one thread at a
time, as everywhere else. Outside asyncio, or with a store whose calls
never wait, every call is made on the caller's thread and answered at once,
as before: no thread.

An answer that comes back after its loop closed is handled on the thread
that has it, so a claim won for an execution disposed meanwhile is still
given back, and a record still settled: nothing is leaked for want of a loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._loop_scheduler import in_loop_thread, loop_of_scheduler
from .._weak_identity_map import WeakIdentityMap
from ..stores._base import IdempotencyStore

__all__ = ["PER_STORE", "STORE_THREADS", "StoreCalls"]

_R = TypeVar("_R")

_log = logging.getLogger("rxresilience")

#: Threads making blocking stores' calls for executions under asyncio, in a
#: process: a few calls in flight at once (a store's own pool, or its lock,
#: serialises them further), the rest queued in order.
STORE_THREADS = 4


class StoreCalls:
    """How one execution calls its store: in place, or off its event loop.

    Args:
        store: the execution's store (its ``calls_may_block`` decides).
        schedulers: the execution's schedulers, the one its timers run on
            first: the first ``AsyncIOScheduler`` among them names the loop.
    """

    __slots__ = ("_store", "loop")

    def __init__(
        self, store: IdempotencyStore, *schedulers: abc.SchedulerBase | None
    ) -> None:
        self._store = store
        #: The event loop kept free of store calls, or None (calls in place).
        self.loop: asyncio.AbstractEventLoop | None = None
        if store.calls_may_block:
            for scheduler in schedulers:
                if isinstance(scheduler, AsyncIOScheduler):
                    self.loop = loop_of_scheduler(scheduler)
                    break

    def run(
        self, call: Callable[[], _R], then: Callable[[_R | Exception], None]
    ) -> None:
        """Make ``call``; ``then`` gets its answer, or the exception it raised.

        In place: both on this thread, before this returns. Off the loop:
        ``call`` on a pool thread (or on this thread, when it is not the
        loop's), ``then`` on the loop, later.
        """
        loop = self.loop
        if loop is None:
            then(_answer_of(call))
            return
        if in_loop_thread(loop):
            _lane_of(self._store).submit(functools.partial(self._off_loop, call, then))
            return
        self._off_loop(call, then)

    def _off_loop(
        self, call: Callable[[], _R], then: Callable[[_R | Exception], None]
    ) -> None:
        self.on_loop(then, _answer_of(call))

    def on_loop(self, action: Callable[[_R], None], argument: _R) -> None:
        """``action(argument)`` on the loop (at once, without a loop), or here,
        on this thread, if the loop has closed: its outcome must still be
        honoured (a claim given back, a record settled)."""
        loop = self.loop
        if loop is None:
            action(argument)
            return
        try:
            loop.call_soon_threadsafe(action, argument)
        except RuntimeError:  # the loop closed: nobody else will do it
            action(argument)


def _answer_of(call: Callable[[], _R]) -> _R | Exception:
    try:
        return call()
    except Exception as error:
        return error


#: Calls of one store on those threads at once, at most: a store whose server
#: stopped answering keeps the others a thread (the rest of its calls wait
#: in its own queue, not in the threads' queue ahead of other stores').
PER_STORE = STORE_THREADS - 1


class _Lane:
    """One store's calls on the store threads: at most :data:`PER_STORE` at
    once, the others queued in order."""

    __slots__ = ("_lock", "_running", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: collections.deque[Callable[[], None]] = collections.deque()

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            if self._running >= PER_STORE:
                self._waiting.append(work)
                return
            self._running += 1
        try:
            _store_threads().submit(self._drain, work)
        except RuntimeError:  # the interpreter is shutting down: call here
            _log.debug("no store thread left: calling the store on the loop")
            self._drain(work)

    def _drain(self, work: Callable[[], None] | None) -> None:
        """On a store thread: ``work``, then this store's calls waiting."""
        while work is not None:
            try:
                work()
            except BaseException:  # its future is read by nobody: said here
                _log.exception("a store call failed on its thread")
            with self._lock:
                work = self._waiting.popleft() if self._waiting else None
                if work is None:
                    self._running -= 1


@functools.lru_cache(maxsize=1)
def _lanes(pid: int) -> WeakIdentityMap[IdempotencyStore, _Lane]:
    return WeakIdentityMap()


def _lane_of(store: IdempotencyStore) -> _Lane:
    """``store``'s lane (made again in a forked child, as the threads are)."""
    return _lanes(os.getpid()).setdefault(store, _Lane)


@functools.lru_cache(maxsize=1)
def _pool(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=STORE_THREADS, thread_name_prefix="rxresilience-store"
    )


def _store_threads() -> concurrent.futures.ThreadPoolExecutor:
    """The store calls' threads: our own, not the loop's default executor,
    which user code may fill (``asyncio.to_thread``) while idempotent calls
    wait; made again in a forked child, where the parent's threads do not
    exist."""
    return _pool(os.getpid())
