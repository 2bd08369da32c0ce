"""One hedged subscription under threads: exactly one winner, exact counts, no leaks."""

from __future__ import annotations

import collections
import functools
import queue
import random
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import NewThreadScheduler, TimeoutScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience._shared_timer import shared_timer

ROUNDS = 200
THREADS = 8


class Boom(Exception):
    pass


class _Held:
    """Keeps every timer for the test to fire by hand, on any thread."""

    timers: list[tuple[Callable[..., Any], Any, list[bool]]]

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        cancelled = [False]
        self.timers.append((action, state, cancelled))
        return Disposable(lambda: cancelled.__setitem__(0, True))

    def fire(self, index: int) -> None:
        """Run timer ``index`` unless it was cancelled; it counts as done."""
        action, state, cancelled = self.timers[index]
        if not cancelled[0]:
            cancelled[0] = True  # spent: nothing left pending
            action(self, state)

    def all_done(self) -> bool:
        """Every timer fired or was cancelled: none is left pending."""
        return all(cancelled[0] for _, _, cancelled in self.timers)


class HeldTimers(_Held, TestScheduler):
    """Timers armed at once (a virtual-time scheduler)."""

    def __init__(self) -> None:
        super().__init__()
        self.timers = []


class HeldThreadTimers(_Held, TimeoutScheduler):
    """A scheduler whose timers are threads: hedges are deadlines on its shared
    timer, whose own timer is held here. Its clock is moved by the test:
    firing a held timer first moves the clock to that timer's deadline, and
    an action handed over with ``schedule`` runs at once, on the firing
    thread. A new instance each time (``TimeoutScheduler`` itself is a
    singleton), so each has a shared timer of its own."""

    def __new__(cls) -> HeldThreadTimers:
        return object.__new__(cls)

    def __init__(self) -> None:
        self.timers = []
        self.deadlines: list[float] = []
        self.clock = 0.0

    @property
    def now(self) -> datetime:
        return self.to_datetime(self.clock)

    def schedule(self, action: Any, state: Any = None) -> Any:
        action(self, state)
        return Disposable()

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        self.deadlines.append(self.clock + self.to_seconds(duetime))
        return super().schedule_relative(duetime, action, state)

    def fire(self, index: int) -> None:
        self.clock = max(self.clock, self.deadlines[index])
        super().fire(index)

    def all_done(self) -> bool:
        """No hedge is pending (the shared timer's own timer runs out alone)."""
        shared = shared_timer(self)
        assert shared is not None
        return shared.pending() == 0


Held = HeldTimers | HeldThreadTimers
KINDS = pytest.mark.parametrize("held", [HeldTimers, HeldThreadTimers])


class Recorder:
    """A subscriber that checks it is never called concurrently."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = 0
        self._busy = threading.Lock()

    def _enter(self) -> None:
        assert self._busy.acquire(blocking=False), "notifications overlapped"

    def on_next(self, value: Any) -> None:
        self._enter()
        self.items.append(value)
        self._busy.release()

    def on_error(self, error: Exception) -> None:
        self._enter()
        self.errors.append(error)
        self._busy.release()

    def on_completed(self) -> None:
        self._enter()
        self.completed += 1
        self._busy.release()


_spin = random.Random(7)


def together(*bodies: Callable[[], None]) -> None:
    """Run the bodies on threads of their own, released at the same instant,
    each after a short spin of random length (so each side wins some races)."""
    barrier = threading.Barrier(len(bodies))
    failures: list[BaseException] = []
    spins = [_spin.randrange(2_000) for _ in bodies]

    def run(body: Callable[[], None], spin: int) -> None:
        barrier.wait()
        for _ in range(spin):
            pass
        try:
            body()
        except BaseException as error:  # reported on the test's thread
            failures.append(error)

    threads = [
        threading.Thread(target=run, args=(body, spin))
        for body, spin in zip(bodies, spins, strict=True)
    ]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave between bytecodes
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures


def emit(subject: Subject[Any], tag: int, count: int = 20) -> Callable[[], None]:
    def body() -> None:
        for i in range(count):
            subject.on_next((tag, i))
        subject.on_completed()

    return body


def test_two_attempts_answering_on_two_threads_make_exactly_one_winner() -> None:
    for _ in range(ROUNDS):
        subjects: list[Subject[Any]] = [Subject(), Subject()]
        made = iter(subjects)
        recorder = Recorder()
        rx.defer(lambda _, made=made: next(made)).pipe(rxr.hedge(0, 1)).subscribe(
            recorder
        )
        together(emit(subjects[0], 0), emit(subjects[1], 1))
        tags = {tag for tag, _ in recorder.items}
        assert len(tags) == 1, tags
        [winner] = tags
        assert recorder.items == [(winner, i) for i in range(20)]
        assert recorder.completed == 1
        assert recorder.errors == []
        assert not subjects[1 - winner].observers  # the loser was disposed


@KINDS
def test_a_hedge_timer_racing_the_first_answer_makes_exactly_one_winner(
    held: type[Held],
) -> None:
    """The timer starts attempt 2, which answers inside its own subscribe, on
    one thread, while attempt 1 answers on another."""
    winners = collections.Counter()
    for _ in range(ROUNDS):
        first: Subject[Any] = Subject()
        subscribed: list[int] = []

        def call(
            _: Any, first: Subject[Any] = first, subscribed: list[int] = subscribed
        ) -> rx.Observable[Any]:
            subscribed.append(1)
            if len(subscribed) == 1:
                return first
            return rx.of((1, 0), (1, 1))

        scheduler = held()
        recorder = Recorder()
        rx.defer(call).pipe(rxr.hedge(1.0, 3, scheduler=scheduler)).subscribe(recorder)
        together(emit(first, 0, 2), functools.partial(scheduler.fire, 0))
        [winner] = {tag for tag, _ in recorder.items}
        winners[winner] += 1
        assert recorder.items == [(winner, 0), (winner, 1)]
        assert recorder.completed == 1
        assert not first.observers
        assert len(subscribed) <= 2
        # No hedge is left armed once there is a winner.
        assert scheduler.all_done()
    print(f"winners: {dict(winners)}")  # both sides win some (seen with -s)


@KINDS
def test_disposal_racing_an_answer_and_a_timer_leaves_nothing_subscribed(
    held: type[Held],
) -> None:
    for _ in range(ROUNDS):
        subjects: list[Subject[Any]] = []

        def call(_: Any, subjects: list[Subject[Any]] = subjects) -> rx.Observable[Any]:
            subject: Subject[Any] = Subject()
            subjects.append(subject)
            return subject

        scheduler = held()
        recorder = Recorder()
        subscription = (
            rx.defer(call)
            .pipe(rxr.hedge(1.0, 3, scheduler=scheduler))
            .subscribe(recorder)
        )
        first = subjects[0]
        together(
            emit(first, 0, 5),
            functools.partial(scheduler.fire, 0),
            subscription.dispose,
        )
        assert all(not subject.observers for subject in subjects)
        assert {tag for tag, _ in recorder.items} <= {0}
        assert scheduler.all_done()


def test_attempts_failing_on_eight_threads_at_once_end_with_one_error() -> None:
    for _ in range(ROUNDS // 4):
        subjects: list[Subject[Any]] = []

        def call(_: Any, subjects: list[Subject[Any]] = subjects) -> rx.Observable[Any]:
            subject: Subject[Any] = Subject()
            subjects.append(subject)
            return subject

        recorder = Recorder()
        rx.defer(call).pipe(rxr.hedge(0, THREADS - 1)).subscribe(recorder)
        assert len(subjects) == THREADS  # a zero delay starts them all at once
        errors = [Boom(i) for i in range(THREADS)]
        together(
            *[
                (lambda s=subject, e=error: s.on_error(e))
                for subject, error in zip(subjects, errors, strict=True)
            ]
        )
        assert len(recorder.errors) == 1
        assert recorder.errors[0] in errors
        assert recorder.items == []
        assert recorder.completed == 0
        assert len(subjects) == THREADS


def test_failures_on_many_threads_start_each_hedge_exactly_once() -> None:
    """Each failure starts the next attempt from whichever thread failed: the
    source is subscribed exactly 1 + max_hedges times and one error arrives."""
    hedges = 400
    started: queue.Queue[Subject[Any] | None] = queue.Queue()
    count = [0]
    lock = threading.Lock()

    def call(_: Any) -> rx.Observable[Any]:
        subject: Subject[Any] = Subject()
        with lock:
            count[0] += 1
        started.put(subject)
        return subject

    recorder = Recorder()
    done = threading.Event()

    def on_error(error: Exception) -> None:
        recorder.on_error(error)
        done.set()

    rx.defer(call).pipe(rxr.hedge(3600.0, hedges)).subscribe(
        recorder.on_next, on_error, recorder.on_completed
    )

    def worker() -> None:
        while True:
            subject = started.get()
            if subject is None:
                return
            subject.on_error(Boom())

    workers = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in workers:
        thread.start()
    assert done.wait(60)
    for _ in workers:
        started.put(None)
    for thread in workers:
        thread.join()
    assert count[0] == 1 + hedges
    assert len(recorder.errors) == 1
    assert recorder.completed == 0


@KINDS
def test_a_source_answering_on_another_thread_during_subscribe_arms_no_timer(
    held: type[Held],
) -> None:
    """The answer may arrive before the first subscribe call has returned: the
    hedge is armed only once nothing has answered."""
    for _ in range(ROUNDS):
        scheduler = held()
        recorder = Recorder()

        def answer_elsewhere(observer: abc.ObserverBase[int], _: Any = None) -> Any:
            thread = threading.Thread(
                target=lambda: (observer.on_next(1), observer.on_completed())
            )
            thread.start()
            thread.join()
            return Disposable()

        rx.create(answer_elsewhere).pipe(rxr.hedge(1.0, scheduler=scheduler)).subscribe(
            recorder
        )
        assert recorder.items == [1]
        assert recorder.completed == 1
        assert scheduler.timers == []


def test_sources_answering_from_the_trampoline_share_one_thread_timer() -> None:
    """``rx.of`` answers just after its subscribe returns, from the current
    thread's trampoline, so the hedge is armed first: on a scheduler whose
    timers are threads it is a deadline on the scheduler's shared timer, and
    a thousand such subscriptions arm one timer of the scheduler's in all
    and leave no deadline pending."""
    scheduler = HeldThreadTimers()
    hedged = rx.of(1, 2).pipe(rxr.hedge(1.0, 3, scheduler=scheduler))
    for _ in range(1000):
        recorder = Recorder()
        hedged.subscribe(recorder)
        assert recorder.items == [1, 2]
        assert recorder.completed == 1
    assert len(scheduler.timers) == 1
    assert scheduler.all_done()
    scheduler.fire(0)  # the shared timer runs out: nothing fires, nothing re-arms
    assert len(scheduler.timers) == 1


def test_a_thread_timer_fires_the_hedge_at_its_deadline() -> None:
    scheduler = HeldThreadTimers()
    calls: list[int] = []

    def call(_: Any) -> rx.Observable[int]:
        calls.append(1)
        return rx.never() if len(calls) == 1 else rx.of(2)

    recorder = Recorder()
    rx.defer(call).pipe(rxr.hedge(1.0, scheduler=scheduler)).subscribe(recorder)
    assert scheduler.deadlines == [1.0]  # the shared timer's, for hedge 1
    assert not scheduler.all_done()
    scheduler.fire(0)
    assert calls == [1, 1]
    assert recorder.items == [2]
    assert recorder.completed == 1
    assert scheduler.all_done()


def test_a_hedge_on_a_thread_timer_counts_from_its_own_attempt() -> None:
    """Two subscriptions a second apart share the scheduler's timer, and each
    hedge fires at its own attempt's start plus the delay."""
    scheduler = HeldThreadTimers()
    started: list[float] = []

    def call(_: Any) -> rx.Observable[int]:
        started.append(scheduler.clock)
        return rx.never()

    hedged = rx.defer(call).pipe(rxr.hedge(2.0, scheduler=scheduler))
    hedged.subscribe(Recorder())
    scheduler.clock = 1.0
    hedged.subscribe(Recorder())
    assert scheduler.deadlines == [2.0]  # the second deadline waits behind it
    scheduler.fire(0)
    assert started == [0.0, 1.0, 2.0]  # hedge of the first; re-armed for 3.0
    assert scheduler.deadlines == [2.0, 3.0]
    scheduler.fire(1)
    assert started == [0.0, 1.0, 2.0, 3.0]
    assert scheduler.all_done()


def test_on_the_default_scheduler_a_slow_attempt_is_hedged_for_real() -> None:
    """No virtual time: ``TimeoutScheduler`` fires the hedge on its own thread."""
    calls: list[int] = []
    done = threading.Event()
    recorder = Recorder()

    def call(_: Any) -> rx.Observable[str]:
        calls.append(1)
        return rx.never() if len(calls) == 1 else rx.of("hedged")

    def on_completed() -> None:
        recorder.on_completed()
        done.set()

    subscription = (
        rx.defer(call)
        .pipe(rxr.hedge(0.01))
        .subscribe(recorder.on_next, recorder.on_error, on_completed)
    )
    assert done.wait(10)
    subscription.dispose()
    assert recorder.items == ["hedged"]
    assert len(calls) == 2


def test_disposal_on_a_thread_timer_scheduler_cancels_the_shared_deadline() -> None:
    scheduler = NewThreadScheduler()
    shared = shared_timer(scheduler)
    assert shared is not None
    subscription = rx.never().pipe(rxr.hedge(60.0, scheduler=scheduler)).subscribe()
    assert shared.pending() == 1
    subscription.dispose()
    assert shared.pending() == 0


def test_a_thousand_answers_from_the_trampoline_start_no_thread_each() -> None:
    """On the default scheduler, for real: hedged ``rx.of`` subscriptions
    share one armed timer thread instead of starting one each."""
    before = threading.active_count()
    hedged = rx.of(1).pipe(rxr.hedge(60.0))
    for _ in range(1000):
        recorder = Recorder()
        hedged.subscribe(recorder)
        assert recorder.items == [1]
    assert threading.active_count() <= before + 2


class UserBackoff(rxr.Backoff):
    """A user's backoff giving ``first``, then ``then`` (a value, or an
    exception to raise; ``StopIteration``: it runs out)."""

    def __init__(self, then: Any, first: float = 1.0) -> None:
        self.first = first
        self.then = then

    def delays(self, rng: random.Random) -> Any:
        yield self.first
        while True:
            if isinstance(self.then, BaseException):
                if isinstance(self.then, StopIteration):
                    return
                raise self.then
            yield self.then


@pytest.mark.parametrize(
    ("then", "error", "says"),
    [
        (StopIteration(), ValueError, "ran out"),
        (RuntimeError("backoff bug"), RuntimeError, "backoff bug"),
        (None, TypeError, "gave None"),
        ("1", TypeError, "gave '1'"),
        (float("nan"), TypeError, "gave nan"),
    ],
)
def test_a_user_backoff_that_runs_out_or_errs_ends_the_hedge_with_its_error(
    then: Any, error: type[Exception], says: str
) -> None:
    """Its second delay is drawn on the timer of the first hedge: the error
    reaches the subscriber (it used to escape the scheduler, a timer thread,
    and leave the subscription hanging), the attempts are disposed and no
    timer is left."""
    scheduler = TestScheduler()
    subscribed: list[float] = []
    disposed: list[float] = []

    def attempt(_: Any) -> rx.Observable[int]:
        subscribed.append(scheduler.clock)
        return rx.never().pipe(
            ops.finally_action(lambda: disposed.append(scheduler.clock))
        )

    seen: list[Any] = []
    rx.defer(attempt).pipe(rxr.hedge(UserBackoff(then), 3)).subscribe(
        seen.append, seen.append, scheduler=scheduler
    )
    scheduler.advance_to(50.0)
    assert len(seen) == 1
    assert isinstance(seen[0], error)
    assert says in str(seen[0])
    assert subscribed == [0.0, 1.0]
    assert disposed == [1.0, 1.0]
    assert not scheduler._queue


def test_retry_with_a_user_backoff_that_runs_out_fails_with_a_clear_error() -> None:
    scheduler = TestScheduler()
    seen: list[Any] = []
    rx.throw(ConnectionError("down")).pipe(
        rxr.retry(5, backoff=UserBackoff(StopIteration()))
    ).subscribe(seen.append, seen.append, scheduler=scheduler)
    scheduler.advance_to(50.0)
    assert len(seen) == 1
    assert isinstance(seen[0], ValueError)
    assert "ran out" in str(seen[0])
