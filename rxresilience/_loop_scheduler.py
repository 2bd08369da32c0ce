"""An ``AsyncIOScheduler`` that any thread may schedule on."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from reactivex import abc, typing
from reactivex.disposable import (
    CompositeDisposable,
    Disposable,
    SingleAssignmentDisposable,
)
from reactivex.scheduler.eventloop import AsyncIOScheduler

__all__ = ["LoopScheduler", "hand_to", "in_loop_thread", "loop_of_scheduler"]

_TState = TypeVar("_TState")

_log = logging.getLogger("rxresilience")


def loop_of_scheduler(scheduler: AsyncIOScheduler) -> asyncio.AbstractEventLoop:
    """The loop an ``AsyncIOScheduler`` schedules on (RxPY keeps it private)."""
    loop: asyncio.AbstractEventLoop = scheduler._loop
    return loop


def in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the calling thread is ``loop``'s (running it, or its owner)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return getattr(loop, "_thread_id", None) == threading.get_ident()


class LoopScheduler(AsyncIOScheduler):
    """Schedules on an event loop from its own thread or any other.

    On the loop's thread it schedules as RxPY's ``AsyncIOScheduler`` does
    (``call_soon``, ``call_later``). From another thread (a source on a
    thread pool, a timer thread) the action is handed to the loop with
    ``call_soon_threadsafe``, which wakes it: ``AsyncIOScheduler`` calls
    ``call_later`` there, which asyncio does not allow (the loop never wakes
    for it, or in debug mode it raises in that thread); actions due at once
    keep the order they were scheduled in. Disposing from another thread
    never blocks waiting for the loop (which may be waiting for that thread),
    unlike RxPY's ``AsyncIOThreadSafeScheduler``: the action is marked
    cancelled at once, so the loop does not start it from then on (one the
    loop is starting at that instant may still run), and its timer is
    cancelled on the loop, as asyncio requires. Once the loop is closed
    nothing it is handed runs (there is no one left to run it, or to tell).
    """

    def schedule(
        self, action: typing.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        return self._scheduled(0.0, action, state)

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: typing.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        return self._scheduled(self.to_seconds(duetime), action, state)

    def _scheduled(
        self,
        seconds: float,
        action: typing.ScheduledAction[_TState],
        state: _TState | None,
    ) -> abc.DisposableBase:
        loop = self._loop
        inner = SingleAssignmentDisposable()
        lock: threading.Lock | None = None
        handle: asyncio.Handle | None = None
        cancelled = False

        def run() -> None:
            if not cancelled:
                inner.disposable = self.invoke_action(action, state=state)

        if in_loop_thread(loop):
            handle = (
                loop.call_soon(run) if seconds <= 0 else loop.call_later(seconds, run)
            )
        else:
            lock = threading.Lock()
            due = loop.time() + seconds  # due from now, not from when it is armed

            def arm() -> None:
                nonlocal handle
                assert lock is not None
                with lock:
                    if not cancelled:
                        handle = (
                            loop.call_soon(run)
                            if seconds <= 0
                            else loop.call_at(due, run)
                        )

            hand_to(loop, arm)

        def dispose() -> None:
            nonlocal cancelled
            if lock is None:
                cancelled = True
                armed = handle
            else:
                with lock:
                    cancelled = True
                    armed = handle
            if armed is None:
                return
            if in_loop_thread(loop):
                armed.cancel()
            else:  # a handle is the loop's alone
                hand_to(loop, armed.cancel)

        return CompositeDisposable(inner, Disposable(dispose))


def hand_to(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> bool:
    """``loop.call_soon_threadsafe(callback)``; False, and nothing, once the
    loop is closed (nothing will run on it again, nobody is left to tell)."""
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        _log.debug("event loop closed: %r is dropped", callback)
        return False
    return True
