"""The shared timer: one armed thread timer for many deadlines, exact and cancellable."""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler import NewThreadScheduler, TimeoutScheduler
from reactivex.testing import TestScheduler

from rxresilience._clock import LONGEST_WAIT
from rxresilience._shared_timer import SharedTimer, shared_timer

THREADS = 8


class ManualThreadTimers(TimeoutScheduler):
    """A scheduler whose timers are threads, driven by hand: its clock moves
    only in :meth:`advance_to`, which runs the held timers that come due, each
    at its own deadline; an action handed over with ``schedule`` runs at
    once. A new instance each time (``TimeoutScheduler`` is a singleton)."""

    def __new__(cls) -> ManualThreadTimers:
        return object.__new__(cls)

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0.0
        self.timers: list[list[Any]] = []  # [due, action, live]
        self.handed_over = 0

    @property
    def now(self) -> datetime:
        return self.to_datetime(self.clock)

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        self.handed_over += 1
        action(self, state)
        return Disposable()

    def schedule_relative(
        self, duetime: Any, action: Any, state: Any = None
    ) -> abc.DisposableBase:
        timer = [self.clock + self.to_seconds(duetime), action, True]
        self.timers.append(timer)
        return Disposable(lambda: timer.__setitem__(2, False))

    def armed(self) -> list[float]:
        """The deadlines of the timers still pending."""
        return [due for due, _, live in self.timers if live]

    def advance_to(self, instant: float) -> None:
        while True:
            due = [timer for timer in self.timers if timer[2] and timer[0] <= instant]
            if not due:
                break
            timer = min(due, key=lambda timer: timer[0])
            timer[2] = False
            self.clock = max(self.clock, timer[0])
            timer[1](self, None)
        self.clock = max(self.clock, instant)


class TrackedThreadTimers(TimeoutScheduler):
    """``TimeoutScheduler``'s timers (a ``threading.Timer`` each), kept for the
    test to see which threads are still running."""

    def __new__(cls) -> TrackedThreadTimers:
        return object.__new__(cls)

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Timer] = []
        self._lock = threading.Lock()

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        return self.schedule_relative(0.0, action, state)

    def schedule_relative(
        self, duetime: Any, action: Any, state: Any = None
    ) -> abc.DisposableBase:
        thread = threading.Timer(
            max(0.0, self.to_seconds(duetime)), lambda: action(self, state)
        )
        thread.daemon = True
        with self._lock:
            self.threads.append(thread)
        thread.start()
        return Disposable(thread.cancel)

    def running(self) -> int:
        with self._lock:
            threads = list(self.threads)
        return sum(thread.is_alive() for thread in threads)

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        with self._lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout)


def recorder(
    scheduler: ManualThreadTimers, fired: list[tuple[Any, float]]
) -> Callable[[abc.SchedulerBase, Any], None]:
    def action(_: abc.SchedulerBase, state: Any) -> None:
        fired.append((state, scheduler.clock))

    return action


def test_deadlines_fire_in_order_each_at_its_own_instant() -> None:
    """Deadlines armed in any order (ties included, some while others wait)
    fire in deadline order, ties in arming order, each at its deadline."""
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    fired: list[tuple[Any, float]] = []
    action = recorder(scheduler, fired)
    rng = random.Random(3)
    expected: list[tuple[float, int]] = []
    for index in range(300):
        if index == 150:
            scheduler.advance_to(2.0)  # the first half partly fired
        delay = rng.choice([0.5, 1.0, 1.0, 2.5]) * rng.randrange(1, 5)
        timer.schedule_relative(delay, action, index)
        expected.append((scheduler.clock + delay, index))
    scheduler.advance_to(100.0)
    assert [index for index, _ in fired] == [index for _, index in sorted(expected)]
    due = dict((index, at) for at, index in expected)
    for index, at in fired:
        assert at == pytest.approx(due[index], abs=1e-9)
    assert timer.pending() == 0
    assert scheduler.armed() == []  # nothing left: nothing re-armed


def test_one_timer_is_armed_while_later_deadlines_wait_behind_it() -> None:
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    for delay in (5.0, 6.0, 7.0, 5.5):
        timer.schedule_relative(delay, recorder(scheduler, []))
    assert scheduler.armed() == [5.0]
    timer.schedule_relative(1.0, recorder(scheduler, []))  # earlier: re-aimed
    assert scheduler.armed() == [1.0]
    assert timer.armed() == 1.0
    assert timer.pending() == 5


def test_a_cancelled_deadline_never_fires_and_the_others_still_do() -> None:
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    fired: list[tuple[Any, float]] = []
    action = recorder(scheduler, fired)
    handles = [timer.schedule_relative(float(i), action, i) for i in range(1, 11)]
    for i in (1, 4, 5, 10):
        handles[i - 1].dispose()
    handles[3].dispose()  # twice does no harm
    assert timer.pending() == 6
    scheduler.advance_to(20.0)
    assert [state for state, _ in fired] == [2, 3, 6, 7, 8, 9]
    handles[1].dispose()  # after it fired: nothing to do
    assert timer.pending() == 0


def test_cancelling_while_the_action_is_handed_over_disposes_what_it_started() -> None:
    """Disposing a deadline being handed to the scheduler (on another thread)
    disposes what the scheduler started for it."""

    disposed: list[int] = []

    class Slow(ManualThreadTimers):
        entered = threading.Event()
        started = threading.Event()
        running = Disposable(lambda: disposed.append(1))

        def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
            self.entered.set()
            self.started.wait(5)
            return self.running

    scheduler = Slow()
    timer = SharedTimer(scheduler)
    handle = timer.schedule_relative(1.0, recorder(scheduler, []))
    firing = threading.Thread(target=scheduler.advance_to, args=(1.0,))
    firing.start()
    assert scheduler.entered.wait(5)  # the action is being handed over
    handle.dispose()
    assert disposed == []  # not started yet: the firing thread disposes it
    scheduler.started.set()
    firing.join()
    assert disposed == [1]
    handle.dispose()  # a second time: nothing more
    assert disposed == [1]


def test_ten_thousand_deadlines_half_cancelled_fire_exactly_once_each() -> None:
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    fired: list[tuple[Any, float]] = []
    action = recorder(scheduler, fired)
    rng = random.Random(11)
    handles = [
        timer.schedule_relative(rng.uniform(0.0, 50.0), action, i)
        for i in range(10_000)
    ]
    kept = set(range(0, 10_000, 2))
    for i in range(1, 10_000, 2):
        handles[i].dispose()
    assert timer.pending() == 5_000
    scheduler.advance_to(60.0)
    assert sorted(state for state, _ in fired) == sorted(kept)
    assert [at for _, at in fired] == sorted(at for _, at in fired)
    assert timer.pending() == 0


def test_cancelled_entries_are_swept_while_a_long_deadline_waits() -> None:
    """A hundred thousand short-lived deadlines beside one that waits do not
    pile up in the heap."""
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    timer.schedule_relative(3600.0, recorder(scheduler, []))
    action = recorder(scheduler, [])
    for _ in range(100_000):
        timer.schedule_relative(1.0, action).dispose()
    assert timer.pending() == 1
    assert len(timer._heap) <= 65
    assert len(scheduler.timers) == 2  # the long one, then the first short one


def test_a_stream_of_deadlines_cancelled_at_once_costs_one_timer_per_idle_period() -> (
    None
):
    """Each deadline is cancelled right after it is armed: the timer armed for
    the first is re-aimed to run out within ``idle``, and the rest wait behind it."""
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler, idle=1.0)
    action = recorder(scheduler, [])
    for _ in range(1000):
        timer.schedule_relative(3600.0, action).dispose()
    assert scheduler.armed() == [1.0]  # re-aimed once, then never again
    assert len(scheduler.timers) == 2
    scheduler.advance_to(1.0)
    assert scheduler.armed() == []
    assert timer.armed() is None


def test_an_action_that_raises_does_not_stop_the_timer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    fired: list[tuple[Any, float]] = []
    ok = recorder(scheduler, fired)

    def boom(_: abc.SchedulerBase, state: Any) -> None:
        raise RuntimeError(f"boom {state}")

    timer.schedule_relative(1.0, boom, 1)
    timer.schedule_relative(1.0, ok, 2)  # due with it
    timer.schedule_relative(2.0, ok, 3)  # due after it: armed again
    with caplog.at_level(logging.ERROR, logger="rxresilience"):
        scheduler.advance_to(1.0)
    assert "a shared timer's action raised" in caplog.text
    assert fired == [(2, 1.0)]
    timer.schedule_relative(0.5, boom, 4)
    scheduler.advance_to(5.0)
    assert fired == [(2, 1.0), (3, 2.0)]
    assert timer.pending() == 0


def test_a_scheduler_that_refuses_to_arm_raises_and_leaves_nothing_pending() -> None:
    class Refusing(ManualThreadTimers):
        def schedule_relative(
            self, duetime: Any, action: Any, state: Any = None
        ) -> abc.DisposableBase:
            raise RuntimeError("can't start new thread")

    scheduler = Refusing()
    timer = SharedTimer(scheduler)
    with pytest.raises(RuntimeError, match="new thread"):
        timer.schedule_relative(1.0, lambda *_: None)
    assert timer.pending() == 0
    assert timer.armed() is None


def test_odd_delays_nan_refused_negative_now_huge_within_a_thread_timer() -> None:
    scheduler = ManualThreadTimers()
    timer = SharedTimer(scheduler)
    with pytest.raises(ValueError, match="nan"):
        timer.schedule_relative(float("nan"), lambda *_: None)
    fired: list[tuple[Any, float]] = []
    timer.schedule_relative(1e300, recorder(scheduler, fired), "huge")
    assert scheduler.armed() == [LONGEST_WAIT]  # a thread timer's longest wait
    timer.schedule_relative(-5.0, recorder(scheduler, fired), "past")
    scheduler.advance_to(0.0)
    assert fired == [("past", 0.0)]
    scheduler.advance_to(LONGEST_WAIT)  # fires early, finds nothing due, re-arms
    assert fired == [("past", 0.0)]
    assert timer.pending() == 1
    assert scheduler.armed() == [2 * LONGEST_WAIT]


def test_each_thread_timer_scheduler_has_one_shared_timer_and_others_none() -> None:
    default = TimeoutScheduler.singleton()
    assert shared_timer(default) is shared_timer(TimeoutScheduler())
    new_thread = NewThreadScheduler()
    assert shared_timer(new_thread) is shared_timer(new_thread) is not None
    assert shared_timer(new_thread) is not shared_timer(default)
    assert shared_timer(TestScheduler()) is None


def test_eight_threads_arming_and_cancelling_at_once_fire_each_kept_deadline_once() -> (
    None
):
    scheduler = TrackedThreadTimers()
    timer = SharedTimer(scheduler)
    lock = threading.Lock()
    fired: list[int] = []
    late: list[float] = []
    all_fired = threading.Event()
    per_thread = 500
    kept = THREADS * per_thread // 2

    def action(_: abc.SchedulerBase, state: Any) -> None:
        number, due = state
        now = scheduler.to_seconds(scheduler.now)
        with lock:
            fired.append(number)
            if now < due - 1e-3:
                late.append(due - now)
            if len(fired) == kept:
                all_fired.set()

    barrier = threading.Barrier(THREADS)

    def arm(thread: int) -> None:
        rng = random.Random(thread)
        barrier.wait()
        for i in range(per_thread):
            number = thread * per_thread + i
            # Kept ones are due within 50 ms; cancelled ones seconds later,
            # so that each is cancelled before it could have fired.
            delay = rng.uniform(5.0, 10.0) if i % 2 else rng.uniform(0.0, 0.05)
            due = scheduler.to_seconds(scheduler.now) + delay
            handle = timer.schedule_relative(delay, action, (number, due))
            if i % 2:
                handle.dispose()

    threads = [threading.Thread(target=arm, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all_fired.wait(30)
    # The last one to fire finds only cancelled entries behind it: no re-arming.
    scheduler.wait_until_idle()
    assert scheduler.running() == 0
    with lock:
        assert sorted(fired) == [
            t * per_thread + i
            for t in range(THREADS)
            for i in range(per_thread)
            if not i % 2
        ]
        assert late == []  # none fired before its deadline
    assert timer.pending() == 0


def test_no_thread_is_left_running_once_nothing_is_armed() -> None:
    scheduler = TrackedThreadTimers()
    timer = SharedTimer(scheduler, idle=0.05)
    done = threading.Event()
    timer.schedule_relative(0.01, lambda *_: done.set())
    assert done.wait(10)
    scheduler.wait_until_idle()
    assert scheduler.running() == 0
    # A deadline an hour away, cancelled: its thread runs out within ``idle``.
    for _ in range(100):
        timer.schedule_relative(3600.0, lambda *_: None).dispose()
    assert len(scheduler.threads) <= 5  # armed, re-aimed: not one per deadline
    scheduler.wait_until_idle()
    assert scheduler.running() == 0
    assert timer.armed() is None


def test_after_fork_the_child_keeps_no_deadline_and_arms_its_own() -> None:
    scheduler = TimeoutScheduler.singleton()
    timer = shared_timer(scheduler)
    assert timer is not None
    handle = timer.schedule_relative(3600.0, lambda *_: None)
    try:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                fired = threading.Event()
                if timer.pending() == 0 and timer.armed() is None:
                    timer.schedule_relative(0.01, lambda *_: fired.set())
                    code = 0 if fired.wait(10) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert timer.pending() >= 1  # the parent's deadline is still armed
    finally:
        handle.dispose()


def test_a_shared_timer_does_not_keep_its_scheduler_alive() -> None:
    scheduler = ManualThreadTimers()  # its clock reads the scheduler
    timer = shared_timer(scheduler)
    assert timer is not None
    timer.schedule_relative(1.0, lambda *_: None).dispose()
    gone = weakref.ref(scheduler)
    del scheduler
    gc.collect()
    assert gone() is None
