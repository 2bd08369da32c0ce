"""asyncio: coroutines as cold observables, and observables awaited on the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ._arguments import close_coroutine, require_callable
from ._loop_scheduler import LoopScheduler, hand_to, in_loop_thread, loop_of_scheduler
from .errors import EmptySequenceError

__all__ = ["EmptySequenceError", "from_async", "to_async"]

_T = TypeVar("_T")


def from_async(
    function: Callable[[], Awaitable[_T]],
) -> Observable[_T]:
    """A cold observable over a coroutine function: each subscription runs it anew.

    ::

        from_async(fetch):   ----r|      one request per subscription
        disposed early:      --X         the task is cancelled: the request is
                                         really abandoned (a timeout, a breaker)

    The coroutine runs as a task on the event loop of the subscribe-time
    ``AsyncIOScheduler``, else on the running loop. Disposing the
    subscription cancels the task, from any thread. A task cancelled by
    anyone else (a shared future it awaited, the loop shutting down) ends
    the observable with ``asyncio.CancelledError``, as RxPY's
    ``from_future`` does; an exception that is not an ``Exception`` (say
    ``KeyboardInterrupt``) ends it too, so that nothing awaiting it hangs.

    Examples:
        >>> import asyncio
        >>> async def answer():
        ...     return 42
        >>> asyncio.run(to_async(from_async(answer)))
        42

    Args:
        function: a coroutine function taking no argument (close over what
            it needs: ``lambda: client.get(url)``).

    Returns:
        An observable emitting the coroutine's result, then completing.

    Raises:
        TypeError: ``function`` is not callable (a coroutine object, already
            made, would run once at most: pass the function).
    """
    if close_coroutine(function):
        raise TypeError(
            "function must be a coroutine function, got a coroutine (it would "
            "run once at most): from_async(fetch), or from_async(lambda: fetch(url))"
        )
    require_callable("function", function)

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = _loop_of(scheduler)
        if loop is None:
            observer.on_error(
                RuntimeError(
                    "from_async needs an event loop: subscribe from a running loop or "
                    "with an AsyncIOScheduler (rxr.to_async does both)"
                )
            )
            return Disposable()
        lock = threading.Lock()
        task: asyncio.Task[_T] | None = None
        disposed = False

        def deliver(done: asyncio.Task[_T]) -> None:
            # Every outcome is read, so no exception is left unretrieved, and
            # told even after disposal (the observer is detached by then).
            if done.cancelled():
                observer.on_error(cast(Exception, asyncio.CancelledError()))
                return
            error = done.exception()
            if error is None:
                observer.on_next(done.result())
                observer.on_completed()
            else:
                observer.on_error(cast(Exception, error))

        async def call() -> _T:
            return await function()

        def start() -> None:
            nonlocal task
            with lock:
                if disposed:
                    return
                task = loop.create_task(call())
            task.add_done_callback(deliver)

        def dispose() -> None:
            nonlocal disposed
            with lock:
                disposed = True
                started = task
            if started is None:
                return
            if in_loop_thread(loop):
                started.cancel()
            else:  # a task is the loop's alone: cancelled there
                hand_to(loop, started.cancel)

        if in_loop_thread(loop):
            start()
        elif not hand_to(loop, start):
            observer.on_error(RuntimeError("from_async: the event loop is closed"))
        return Disposable(dispose)

    return Observable(subscribe)


def _loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop | None:
    if isinstance(scheduler, AsyncIOScheduler):
        return loop_of_scheduler(scheduler)
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def to_async(observable: Observable[_T]) -> _T:
    """Await an observable's last value (or its error) in the running event loop.

    The subscription gets an ``AsyncIOScheduler`` bound to this loop, so every
    timer of every operator in the pipeline runs on the loop (no threads),
    which RxPY's own ``await observable`` does not arrange for operators
    that fall back to their default scheduler. A source on another thread
    (a thread pool) may schedule on it too: it hands its timers to the loop
    safely. Cancelling the awaiting task disposes the subscription.

    Examples:
        >>> import asyncio, reactivex as rx
        >>> asyncio.run(to_async(rx.of(1, 2, 3)))
        3

    Raises:
        EmptySequenceError: the observable completed without a value.
        TypeError: ``observable`` is not an observable.
        RuntimeError: the observable failed with ``StopIteration`` (the
            cause), which an awaitable cannot raise.
    """
    if close_coroutine(observable):
        raise TypeError(
            "observable must be an Observable, got a coroutine: await it, "
            "or make it one with rxr.from_async"
        )
    if not isinstance(observable, abc.ObservableBase):
        raise TypeError(
            f"observable must be an Observable, got {type(observable).__name__}"
        )
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()
    last: list[Any] = []

    def settle(action: Callable[[], None]) -> None:
        if in_loop_thread(loop):
            action()
        else:  # once the loop is closed nobody awaits: nothing to settle
            hand_to(loop, action)

    def on_next(value: _T) -> None:
        if last:
            last[0] = value
        else:
            last.append(value)

    def on_error(error: Exception) -> None:
        if isinstance(error, StopIteration):  # a future refuses it (generators)
            stopped = RuntimeError("the observable failed with StopIteration")
            stopped.__cause__ = error
            error = stopped

        def fail() -> None:
            if not done.done():
                done.set_exception(error)

        settle(fail)

    def on_completed() -> None:
        def finish() -> None:
            if done.done():
                return
            if last:
                done.set_result(last[0])
            else:
                done.set_exception(EmptySequenceError("the observable completed empty"))

        settle(finish)

    subscription = observable.subscribe(
        on_next, on_error, on_completed, scheduler=LoopScheduler(loop)
    )
    try:
        return await done
    finally:
        subscription.dispose()
