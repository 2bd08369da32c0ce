"""The asyncio bridges under threads, cancellations and a closing loop.

``to_async`` hands its pipeline a scheduler bound to the loop that any
thread may schedule on; ``from_async`` cancels its task on the loop whoever
disposes it, and ends (never hangs) whatever ends its task. Every wait here
is bounded, so a defect fails a test rather than hanging the suite.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex.scheduler import ThreadPoolScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject

import rxresilience as rxr

BOUND = 10.0  # seconds: only a defect waits this long


@pytest.fixture
def thread_errors() -> Iterator[list[BaseException]]:
    """Exceptions that escaped a thread (they would be lost otherwise)."""
    caught: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda hook: caught.append(hook.exc_value)  # type: ignore[arg-type,assignment]
    try:
        yield caught
    finally:
        threading.excepthook = previous


def run_debug(main: Any) -> Any:
    """``asyncio.run`` in debug mode, whose checks refuse calls from the wrong
    thread; what reaches the loop's exception handler fails the test."""
    handled: list[dict[str, Any]] = []

    async def checked() -> Any:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: handled.append(context)
        )
        return await main()

    result = asyncio.run(checked(), debug=True)
    assert handled == []
    return result


# --- to_async ---------------------------------------------------------------------------


def test_a_timer_set_from_a_worker_thread_runs_on_the_loop_on_time() -> None:
    # retry's backoff is scheduled from the pool thread the failure arrived on.
    pool = ThreadPoolScheduler(2)
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("flaky")
        return "ok"

    async def main() -> str:
        source = rx.from_callable(call, scheduler=pool).pipe(rxr.retry(3, backoff=0.01))
        return await asyncio.wait_for(rxr.to_async(source), BOUND)

    assert run_debug(main) == "ok"
    assert len(calls) == 2


def test_a_source_failing_with_stop_iteration_fails_the_await() -> None:
    async def main() -> None:
        await asyncio.wait_for(rxr.to_async(rx.throw(StopIteration())), BOUND)

    with pytest.raises(RuntimeError, match="StopIteration") as raised:
        run_debug(main)
    assert isinstance(raised.value.__cause__, StopIteration)


def test_an_emission_after_the_loop_closed_is_dropped_quietly(
    thread_errors: list[BaseException],
) -> None:
    subject: Subject[int] = Subject()
    loop = asyncio.new_event_loop()
    task = loop.create_task(rxr.to_async(subject))
    loop.run_until_complete(asyncio.sleep(0))  # subscribed
    loop.close()
    producer = threading.Thread(
        target=lambda: (subject.on_next(1), subject.on_completed())
    )
    producer.start()
    producer.join(BOUND)
    assert thread_errors == []
    assert not task.done()  # nothing runs it any more


def test_to_async_refuses_what_is_not_an_observable() -> None:
    async def fetch() -> int:
        return 1

    with pytest.raises(TypeError, match="observable must be an Observable, got int"):
        asyncio.run(rxr.to_async(42))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited"
        with pytest.raises(TypeError, match="got a coroutine"):
            asyncio.run(rxr.to_async(fetch()))  # type: ignore[arg-type]
        gc.collect()


# --- from_async -------------------------------------------------------------------------


def test_disposing_from_another_thread_cancels_the_task_on_the_loop() -> None:
    async def main() -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def slow() -> int:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return 1

        subscription = rxr.from_async(slow).subscribe()
        await asyncio.wait_for(started.wait(), BOUND)
        disposer = threading.Thread(target=subscription.dispose)
        disposer.start()
        await asyncio.wait_for(cancelled.wait(), BOUND)
        disposer.join(BOUND)

    run_debug(main)


def test_disposed_before_the_loop_starts_it_never_runs() -> None:
    ran: list[int] = []

    async def work() -> int:
        ran.append(1)
        return 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        subscribed = threading.Event()

        def off_the_loop() -> None:
            rxr.from_async(work).subscribe(scheduler=AsyncIOScheduler(loop)).dispose()
            subscribed.set()

        threading.Thread(target=off_the_loop).start()
        await asyncio.wait_for(asyncio.to_thread(subscribed.wait, BOUND), BOUND)
        for _ in range(3):
            await asyncio.sleep(0)

    run_debug(main)
    assert ran == []


def test_a_task_cancelled_by_someone_else_ends_with_cancelled_error() -> None:
    async def main() -> list[str]:
        shared: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def waits() -> int:
            return await shared

        told: list[str] = []
        ended = asyncio.Event()
        rxr.from_async(waits).subscribe(
            on_next=lambda value: told.append(f"next {value}"),
            on_error=lambda error: (told.append(type(error).__name__), ended.set()),
            on_completed=lambda: (told.append("completed"), ended.set()),
        )
        await asyncio.sleep(0)
        shared.cancel()
        await asyncio.wait_for(ended.wait(), BOUND)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(rxr.to_async(rxr.from_async(lambda: shared)), BOUND)
        return told

    assert run_debug(main) == ["CancelledError"]


def test_the_loop_shutting_down_ends_a_pending_from_async() -> None:
    told: list[str] = []
    ended = threading.Event()
    ready = threading.Event()
    finish = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def server() -> None:
        loops.append(asyncio.get_running_loop())
        ready.set()
        await asyncio.to_thread(finish.wait, BOUND)

    async def slow() -> int:
        await asyncio.Event().wait()
        return 1

    thread = threading.Thread(target=lambda: asyncio.run(server()))
    thread.start()
    assert ready.wait(BOUND)
    rxr.from_async(slow).subscribe(
        on_error=lambda error: (told.append(type(error).__name__), ended.set()),
        on_completed=lambda: (told.append("completed"), ended.set()),
        scheduler=AsyncIOScheduler(loops[0]),
    )
    finish.set()  # the application ends: asyncio.run cancels what is left
    thread.join(BOUND)
    assert ended.wait(BOUND)
    assert told == ["CancelledError"]


class Failed(BaseException):
    """Not an ``Exception``: as pytest's own ``fail()`` raises."""


def test_a_base_exception_from_the_coroutine_ends_it_and_reaches_the_await() -> None:
    async def fails() -> int:
        raise Failed("in a coroutine under test")

    async def main() -> None:
        await asyncio.wait_for(rxr.to_async(rxr.from_async(fails)), BOUND)

    with pytest.raises(Failed):
        run_debug(main)


def test_an_error_raised_while_cancelling_is_retrieved_off_the_loop_too() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def raises_on_cancel() -> int:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()
                raise ValueError("while cancelling")

        holder: list[Any] = []
        subscriber = threading.Thread(
            target=lambda: holder.append(
                rxr.from_async(raises_on_cancel).subscribe(
                    on_error=lambda error: None, scheduler=AsyncIOScheduler(loop)
                )
            )
        )
        subscriber.start()
        await asyncio.wait_for(started.wait(), BOUND)
        subscriber.join(BOUND)
        threading.Thread(target=holder[0].dispose).start()
        await asyncio.wait_for(cancelled.wait(), BOUND)
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()  # "Task exception was never retrieved" is said on collection

    run_debug(main)


def test_from_async_refuses_a_coroutine_and_closes_it() -> None:
    async def fetch() -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="got a coroutine"):
            rxr.from_async(fetch())  # type: ignore[arg-type]
        gc.collect()


def test_from_async_on_a_closed_loop_fails_without_a_stray_coroutine() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    told: list[BaseException] = []

    async def fetch() -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rxr.from_async(fetch).subscribe(
            on_error=told.append, scheduler=AsyncIOScheduler(loop)
        )
        gc.collect()
    assert [type(error) for error in told] == [RuntimeError]
    assert "closed" in str(told[0])


# --- the loop scheduler -------------------------------------------------------------


def test_actions_scheduled_from_another_thread_run_in_the_order_given() -> None:
    async def main() -> list[int]:
        scheduler = rxr_loop_scheduler(asyncio.get_running_loop())
        ran: list[int] = []
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def schedule_all() -> None:
            for number in range(2000):
                scheduler.schedule(lambda _s, _n, number=number: ran.append(number))
            scheduler.schedule(lambda *_: loop.call_soon(done.set))

        thread = threading.Thread(target=schedule_all)
        thread.start()
        await asyncio.wait_for(done.wait(), BOUND)
        thread.join(BOUND)
        return ran

    assert run_debug(main) == list(range(2000))


def test_an_action_scheduled_on_the_loop_and_disposed_elsewhere_never_runs() -> None:
    async def main() -> list[str]:
        scheduler = rxr_loop_scheduler(asyncio.get_running_loop())
        ran: list[str] = []
        soon = scheduler.schedule(lambda *_: ran.append("soon"))
        later = scheduler.schedule_relative(0.05, lambda *_: ran.append("later"))
        for subscription in (soon, later):
            other = threading.Thread(target=subscription.dispose)
            other.start()
            other.join(BOUND)  # the loop is busy here: neither ran yet
        await asyncio.sleep(0.1)
        return ran

    assert run_debug(main) == []


def rxr_loop_scheduler(loop: asyncio.AbstractEventLoop) -> Any:
    from rxresilience._loop_scheduler import LoopScheduler

    return LoopScheduler(loop)
