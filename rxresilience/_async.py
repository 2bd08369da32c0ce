"""asyncio: coroutines as cold observables, and observables awaited on the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ._arguments import require_callable
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
    subscription cancels the task.

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
    """
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

        def deliver(task: asyncio.Future[_T]) -> None:
            if task.cancelled():
                return
            error = task.exception()
            if error is None:
                observer.on_next(task.result())
                observer.on_completed()
            elif isinstance(error, Exception):
                observer.on_error(error)
            else:  # pragma: no cover - BaseException from a coroutine
                raise error

        async def call() -> _T:
            return await function()

        if in_loop_thread(loop):
            task: asyncio.Future[_T] = loop.create_task(call())
            task.add_done_callback(deliver)
            return Disposable(lambda: _cancel(task))
        future = asyncio.run_coroutine_threadsafe(call(), loop)
        future.add_done_callback(
            lambda done: loop.call_soon_threadsafe(
                deliver, asyncio.wrap_future(done, loop=loop)
            )
        )
        return Disposable(lambda: _cancel(future))

    return Observable(subscribe)


def _cancel(future: Any) -> None:
    future.cancel()


def loop_of_scheduler(scheduler: AsyncIOScheduler) -> asyncio.AbstractEventLoop:
    """The loop an ``AsyncIOScheduler`` schedules on (RxPY keeps it private)."""
    loop: asyncio.AbstractEventLoop = scheduler._loop
    return loop


def _loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop | None:
    if isinstance(scheduler, AsyncIOScheduler):
        return loop_of_scheduler(scheduler)
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the calling thread is ``loop``'s (running it, or its owner)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return getattr(loop, "_thread_id", None) == threading.get_ident()


async def to_async(observable: Observable[_T]) -> _T:
    """Await an observable's last value (or its error) in the running event loop.

    The subscription gets an ``AsyncIOScheduler`` bound to this loop, so every
    timer of every operator in the pipeline runs on the loop (no threads),
    which RxPY's own ``await observable`` does not arrange for operators
    that fall back to their default scheduler. Cancelling the awaiting task
    disposes the subscription.

    Examples:
        >>> import asyncio, reactivex as rx
        >>> asyncio.run(to_async(rx.of(1, 2, 3)))
        3

    Raises:
        EmptySequenceError: the observable completed without a value.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()
    last: list[Any] = []

    def settle(action: Callable[[], None]) -> None:
        if in_loop_thread(loop):
            action()
        else:
            loop.call_soon_threadsafe(action)

    def on_next(value: _T) -> None:
        if last:
            last[0] = value
        else:
            last.append(value)

    def on_error(error: Exception) -> None:
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
        on_next, on_error, on_completed, scheduler=AsyncIOScheduler(loop)
    )
    try:
        return await done
    finally:
        subscription.dispose()
