"""A run under faults: a subscriber's exceptions belong to the subscriber, and
a step that fails or cleans up badly beside its siblings leaves no saga running."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _saga_worker as worker
from .._saga_worker import wait_until_terminal
from .._support import pending


class Boom(Exception):
    pass


class SubscriberBug(Exception):
    pass


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def saga_journal(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[rxr.SagaJournal]:
    yield from worker.journal_of(request, tmp_path)


def two_steps(
    undone: list[str],
    *,
    fail_second: bool = False,
    scheduler: Any = None,
    gate: threading.Event | None = None,
) -> rxr.Saga[int]:
    """Two steps, each answering from a timer; with ``gate``, not before it is set."""

    def answer(value: int) -> int:
        if gate is not None:
            gate.wait(10)
        return value

    def later(value: int) -> rx.Observable[int]:
        return rx.timer(0.01 if scheduler is None else 1.0, scheduler=scheduler).pipe(
            ops.map(lambda _: answer(value))
        )

    return (
        rxr.Saga[int]("two")
        .step("a", execute=lambda n: later(n + 1), compensate=undone.append)
        .step(
            "b",
            execute=lambda n: later(n).pipe(
                ops.flat_map(lambda v: rx.throw(Boom()) if fail_second else rx.of(v))
            ),
            compensate=undone.append,
        )
    )


# --- 2. a subscriber's exception belongs to the subscriber --------------------------------


class Raising:
    """A subscriber whose on_next raises on the first StepSucceeded."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self.values: list[Any] = []
        self.completed = 0
        self.bug = SubscriberBug("my own bug")

    def on_next(self, event: Any) -> None:
        self.values.append(event)
        if isinstance(event, rxr.StepSucceeded):
            raise self.bug

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    def on_completed(self) -> None:
        self.completed += 1


@pytest.mark.parametrize("fail_second", [False, True], ids=["completes", "fails"])
def test_a_raising_subscriber_gets_its_error_once_and_the_saga_runs_on(
    fail_second: bool,
) -> None:
    scheduler = TestScheduler()
    undone: list[str] = []
    saga = two_steps(undone, fail_second=fail_second, scheduler=scheduler)
    published: list[Any] = []
    saga.events.subscribe(published.append)
    journal = rxr.InMemorySagaJournal()
    subscriber = Raising()
    saga.execute(0, journal=journal, saga_id="r-1").subscribe(
        subscriber.on_next,
        subscriber.on_error,
        subscriber.on_completed,
        scheduler=scheduler,
    )
    scheduler.advance_to(10.0)
    assert subscriber.errors == [subscriber.bug]
    assert subscriber.completed == 0
    assert [type(e).__name__ for e in subscriber.values] == [
        "StepStarted",
        "StepSucceeded",
    ]
    state = journal.state("r-1")
    assert state is not None
    if fail_second:
        assert state.status == "compensated"
        assert state.failed_step == "b"
        assert isinstance(published[-1], rxr.StepCompensated)
        assert undone == [1]
    else:
        assert state.status == "completed"
        assert isinstance(published[-1], rxr.SagaCompleted)
        assert undone == []
    assert pending(scheduler) == []


def test_a_raising_subscriber_of_run_is_not_a_step_failure() -> None:
    scheduler = TestScheduler()
    undone: list[str] = []
    journal = rxr.InMemorySagaJournal()
    errors: list[Exception] = []

    def boom(_: Any) -> None:
        raise SubscriberBug

    two_steps(undone, scheduler=scheduler).run(0, journal=journal, saga_id="r-2").pipe(
        ops.map(lambda n: n * 10)
    ).subscribe(boom, errors.append, scheduler=scheduler)
    scheduler.advance_to(10.0)
    assert [type(e) for e in errors] == [SubscriberBug]
    state = journal.state("r-2")
    assert state is not None
    assert state.status == "completed"
    assert undone == []


@pytest.mark.parametrize("fail_second", [False, True], ids=["completes", "fails"])
def test_a_subscriber_raising_on_a_timer_thread_leaves_the_saga_to_its_end(
    saga_journal: rxr.SagaJournal, fail_second: bool
) -> None:
    undone: list[int] = []
    # The steps answer once subscribe has returned: a loaded machine's main
    # thread, still in the run's mailbox, would deliver their events itself.
    subscribed = threading.Event()
    saga = two_steps(undone, fail_second=fail_second, gate=subscribed)  # type: ignore[arg-type]
    threads: list[str] = []
    got_error = threading.Event()
    subscriber = Raising()

    def on_next(event: Any) -> None:
        threads.append(threading.current_thread().name)
        subscriber.on_next(event)

    def on_error(error: Exception) -> None:
        subscriber.on_error(error)
        got_error.set()

    saga.execute(0, journal=saga_journal, saga_id="t-2").subscribe(on_next, on_error)
    subscribed.set()
    state = wait_until_terminal(saga_journal, "t-2")
    assert got_error.wait(10)
    assert threads[-1] != threading.main_thread().name  # it raised on a timer thread
    assert subscriber.errors == [subscriber.bug]
    if fail_second:
        assert (state.status, state.compensated_steps) == ("compensated", ("a",))
        assert undone == [1]
    else:
        assert (state.status, state.completed_steps) == ("completed", ("a", "b"))


def test_a_subscriber_that_disposes_from_on_next_cancels_the_saga() -> None:
    """Disposal from inside on_next is a disposal (unlike an exception)."""
    scheduler = TestScheduler()
    undone: list[int] = []
    journal = rxr.InMemorySagaJournal()
    holder: list[Any] = []

    def on_next(event: Any) -> None:
        if isinstance(event, rxr.StepSucceeded):
            holder[0].dispose()

    holder.append(
        two_steps(undone, scheduler=scheduler)
        .execute(0, journal=journal, saga_id="d-1")
        .subscribe(on_next, scheduler=scheduler)
    )
    scheduler.advance_to(10.0)
    state = journal.state("d-1")
    assert state is not None
    assert (state.status, state.completed_steps) == ("compensated", ("a",))
    assert undone == [1]


# --- found by a hostile review -------------------------------------------------------------


def test_a_sibling_that_succeeds_as_another_fails_is_compensated(
    saga_journal: rxr.SagaJournal,
) -> None:
    undone: list[str] = []

    def fails(ctx: int) -> rx.Observable[int]:
        return rx.create(lambda o, _: o.on_error(Boom("x")))

    def succeeds(ctx: int) -> rx.Observable[int]:
        def subscribe(o: Any, _: Any) -> None:
            o.on_next(ctx)
            o.on_completed()

        return rx.create(subscribe)

    saga = rxr.Saga("s").parallel(
        "g",
        [
            rxr.SagaStep("x", fails),
            rxr.SagaStep(
                "y",
                succeeds,
                lambda ctx: rx.empty().pipe(
                    ops.do_action(on_completed=lambda: undone.append("y"))
                ),
            ),
        ],
        merge=lambda ctx, results: ctx,
    )
    saga.execute(0, journal=saga_journal, saga_id="p").subscribe(
        on_error=lambda _: None
    )
    assert undone == ["y"]
    state = saga_journal.state("p")
    assert state is not None
    assert state.status == "compensated"
    assert state.compensated_steps == ("y",)


def test_a_step_whose_cleanup_raises_on_cancel_leaves_no_saga_running(
    saga_journal: rxr.SagaJournal,
) -> None:
    from reactivex.disposable import Disposable

    undone: list[str] = []

    def boom() -> None:
        raise OSError("close failed")

    saga = (
        rxr.Saga("s")
        .step(
            "a",
            rx.of,
            lambda ctx: rx.empty().pipe(
                ops.do_action(on_completed=lambda: undone.append("a"))
            ),
        )
        .step("b", lambda ctx: rx.create(lambda o, _: Disposable(boom)))
    )
    ends: list[Any] = []
    subscription = saga.execute(0, journal=saga_journal, saga_id="k").subscribe(
        on_error=ends.append, on_completed=lambda: ends.append("done")
    )
    subscription.dispose()
    assert undone == ["a"]
    state = saga_journal.state("k")
    assert state is not None
    assert state.status == "compensated"


def test_a_run_a_keyboard_interrupt_tore_through_stops_renewing_its_lease() -> None:
    # Ctrl-C in the subscriber's on_next left the saga half-run and its lease
    # renewed for as long as the process lived (a REPL, a notebook): no
    # recoverer could ever finish it.
    scheduler = TestScheduler()
    journal = rxr.InMemorySagaJournal()
    saga = (
        rxr.Saga[int]("s", lease=3.0)
        .step("a", execute=lambda n: rx.of(n + 1), compensate=lambda n: rx.empty())
        .step(
            "b",
            execute=lambda n: rx.timer(5.0).pipe(ops.map(lambda _: n + 1)),
            compensate=lambda n: rx.empty(),
        )
    )

    def interrupted(event: Any) -> None:
        if isinstance(event, rxr.StepSucceeded):
            raise KeyboardInterrupt

    saga.execute(0, journal=journal, saga_id="s-1").subscribe(
        interrupted, scheduler=scheduler
    )
    with pytest.raises(KeyboardInterrupt):
        scheduler.advance_to(1.0)
    scheduler.stop()  # the interrupted advance left the scheduler marked running
    record = journal.load("s-1")
    assert record is not None
    assert record.lease_until is not None
    scheduler.advance_to(30.0)
    later = journal.load("s-1")
    assert later is not None
    assert later.lease_until == record.lease_until
    assert pending(scheduler) == []
    # so a recoverer takes it once the lease is over, and finishes it
    events: list[Any] = []
    rxr.recover(journal, {"s": saga}, scheduler=scheduler).subscribe(
        events.append, scheduler=scheduler
    )
    scheduler.advance_to(40.0)
    assert journal.load("s-1").status == "compensated"  # type: ignore[union-attr]


def test_a_step_completing_as_the_saga_is_cancelled_is_never_journaled_after_its_end() -> (
    None
):
    # The step's on_completed had passed RxPY's check when the disposal
    # stopped it: its success arrived after the compensations had ended, was
    # journaled after "compensated" and was never undone.
    import sys
    import time

    from rxresilience.saga import _forward

    paused, resume = threading.Event(), threading.Event()
    observers: dict[str, Any] = {}

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if (
            event == "call"
            and frame.f_code.co_name == "on_completed"
            and frame.f_code.co_filename == _forward.__file__
        ):
            paused.set()
            resume.wait(5)
        return None

    undone: list[str] = []
    saga = (
        rxr.Saga[str]("R")
        .step("a", rx.of, lambda c: rx.from_callable(lambda: undone.append("a")))
        .step(
            "b",
            lambda c: rx.create(lambda o, s=None: observers.__setitem__("b", o)),
            lambda c: rx.from_callable(lambda: undone.append("b")),
        )
    )
    journal = rxr.InMemorySagaJournal()
    published: list[str] = []
    saga.events.subscribe(lambda e: published.append(type(e).__name__))
    subscription = saga.execute("c", journal=journal, saga_id="s").subscribe(
        on_error=lambda e: None
    )

    def complete_b() -> None:
        observers["b"].on_next("B")
        sys.settrace(tracer)
        observers["b"].on_completed()
        sys.settrace(None)

    thread = threading.Thread(target=complete_b)
    thread.start()
    assert paused.wait(5)
    subscription.dispose()  # b is cancelled as its completion is in flight
    resume.set()
    thread.join(5)
    deadline = time.monotonic() + 5
    while journal.load("s").status == "running" and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.01)
    record = journal.load("s")
    assert record is not None
    assert record.status == "compensated"
    kinds = [(e.kind, e.step) for e in record.entries]
    assert ("step_succeeded", "b") not in kinds  # a step cancelled mid-way
    assert undone == ["a"]
    assert published[-1] == "StepCompensated"  # nothing after the end
