"""Time has one owner: one rule picks the scheduler, one reader reads its clock."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.scheduler import (
    HistoricalScheduler,
    ImmediateScheduler,
    NewThreadScheduler,
    TimeoutScheduler,
)
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience._clock import (
    LONGEST_WAIT,
    choose_scheduler,
    clock_of,
    seconds_now,
    thread_scheduler,
)

from ._support import record

PACKAGE = pathlib.Path(rxr.__file__).parent


def test_the_operator_argument_wins_then_the_subscribe_time_scheduler() -> None:
    own, subscribed = TestScheduler(), TestScheduler()
    assert choose_scheduler(own, subscribed) is own
    assert choose_scheduler(None, subscribed) is subscribed
    assert choose_scheduler(None, None) is TimeoutScheduler.singleton()


def test_the_default_scheduler_is_looked_up_once_not_per_subscription(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``TimeoutScheduler.singleton()`` takes a class-wide lock: the rule asks it once."""
    default = TimeoutScheduler.singleton()

    def asked_again() -> TimeoutScheduler:
        raise AssertionError("TimeoutScheduler.singleton() asked per subscription")

    monkeypatch.setattr(TimeoutScheduler, "singleton", asked_again)
    assert choose_scheduler(None, None) is default
    assert thread_scheduler() is default
    errors: list[Exception] = []
    done = threading.Event()
    rx.never().pipe(rxr.timeout(0.001)).subscribe(
        on_error=lambda error: (errors.append(error), done.set())
    )
    assert done.wait(10)
    assert [type(error) for error in errors] == [rxr.TimeoutError]


def test_a_forked_child_gets_the_default_scheduler_while_its_lock_was_held() -> None:
    """A fork taken while another thread held the singleton's lock leaves that lock
    held in the child for ever: the child's subscriptions must not need it."""
    default = TimeoutScheduler.singleton()
    lock = TimeoutScheduler._lock  # held as another thread would, at the fork
    with lock:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                signal.alarm(10)  # a regression blocks on the lock: end, don't hang
                errors: list[Exception] = []
                done = threading.Event()
                if choose_scheduler(None, None) is default:
                    rx.never().pipe(rxr.timeout(0.001)).subscribe(
                        on_error=lambda error: (errors.append(error), done.set())
                    )
                    code = 0 if done.wait(10) and len(errors) == 1 else 2
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_real_clock_is_the_one_timeout_scheduler_keeps() -> None:
    before = seconds_now()
    assert abs(clock_of(TimeoutScheduler.singleton())() - before) < 5.0
    assert abs(clock_of(ImmediateScheduler())() - before) < 5.0
    scheduler = TestScheduler()
    scheduler.advance_to(42.5)
    assert seconds_now(scheduler) == 42.5


def test_the_longest_wait_is_what_a_thread_timer_accepts() -> None:
    assert LONGEST_WAIT == threading.TIMEOUT_MAX


def test_no_module_but_the_clock_chooses_a_scheduler_or_reads_the_wall_clock() -> None:
    """The rule and the reader live in one place: nobody decides on their own."""
    offenders: list[str] = []
    pattern = re.compile(
        r"TimeoutScheduler|time\.(time|monotonic)\(|scheduler\s+or\s+scheduler_"
    )
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_clock.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and '"' not in code and "`" not in code:
                offenders.append(
                    f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                )
    assert offenders == []


def test_a_step_timeout_fires_in_the_sagas_virtual_time() -> None:
    """Saga(scheduler=ts) is the saga's time: its steps' timeouts run on it too."""
    scheduler = TestScheduler()
    saga = rxr.Saga("pay", scheduler=scheduler).step(
        "charge", execute=lambda ctx: rx.never(), timeout=5.0
    )
    # Subscribed with no scheduler at all: only the saga's own one is there.
    events: list[tuple[float, str]] = []
    saga.run("order").subscribe(
        on_error=lambda error: events.append((scheduler.clock, type(error).__name__))
    )
    scheduler.advance_to(4.0)
    assert events == []
    scheduler.advance_to(5.0)
    assert events == [(5.0, "SagaFailed")]


def test_a_step_retry_waits_on_the_sagas_scheduler_unless_its_policy_has_one() -> None:
    saga_time, policy_time = TestScheduler(), TestScheduler()
    attempts: list[tuple[float, float]] = []

    def charge(ctx: str) -> rx.Observable[str]:
        attempts.append((saga_time.clock, policy_time.clock))
        if len(attempts) < 2:
            return rx.throw(ConnectionError("down"))
        return rx.of(ctx)

    on_saga = rxr.Saga("a", scheduler=saga_time).step(
        "charge", execute=charge, retry=rxr.RetryPolicy(backoff=3.0)
    )
    on_saga.run("order").subscribe()
    saga_time.advance_to(3.0)
    assert attempts == [(0.0, 0.0), (3.0, 0.0)]

    attempts.clear()
    on_policy = rxr.Saga("b", scheduler=saga_time).step(
        "charge",
        execute=charge,
        retry=rxr.RetryPolicy(backoff=3.0, scheduler=policy_time),
    )
    on_policy.run("order").subscribe()
    saga_time.advance_by(10.0)
    assert len(attempts) == 1
    policy_time.advance_to(3.0)
    assert len(attempts) == 2


def test_recovery_claims_and_writes_on_the_recoverers_scheduler() -> None:
    journal = rxr.InMemorySagaJournal()
    journal.begin("s-1", "s", now=0.0)
    journal.append("s-1", rxr.JournalEntry("step_started", "a"), now=0.0)
    saga = rxr.Saga("s").step(
        "a", execute=lambda c: rx.of(c), compensate=lambda c: rx.empty()
    )
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    ends: list[float] = []
    # Subscribed with no scheduler: only the recoverer's own one is there.
    rxr.recover(journal, {"s": saga}, stale_after=60.0, scheduler=scheduler).subscribe(
        on_completed=lambda: ends.append(scheduler.clock)
    )
    scheduler.start()
    assert ends == [100.0]
    state = journal.state("s-1")
    assert state is not None
    assert state.status != "running"
    assert state.touched == 100.0


def test_flaky_sources_keep_time_on_the_subscribe_time_scheduler() -> None:
    scheduler = TestScheduler()
    source = rxr.testing.flaky(["ok"], failures=0, latency=2.0)
    events = record(scheduler, lambda: source, subscribe_at=10)
    assert events == [(12.0, "next", "ok"), (12.0, "completed", None)]
    assert source.subscriptions == [(10.0, 12.0)]


def test_a_store_without_now_reads_the_real_clock() -> None:
    store = rxr.InMemoryIdempotencyStore()
    for key, expires_at in (("live", seconds_now() + 60.0), ("gone", 1.0)):
        now = 0.0
        store.claim(key, None, "me", now, lease_until=now + 10.0)
        assert store.complete(key, "me", b"done", expires_at)
    assert store.get("live") == b"done"
    assert store.get("gone") is None
    assert store.purge_expired() == 1


def test_ops_chain_keeps_the_subscribe_time_scheduler() -> None:
    scheduler = TestScheduler()
    events = record(
        scheduler,
        lambda: rx.of(1).pipe(rxr.timeout(5.0), ops.delay(1.0)),
        subscribe_at=0,
    )
    assert events == [(1.0, "next", 1), (1.0, "completed", None)]


def test_a_historical_scheduler_drives_timeouts_breakers_and_budgets() -> None:
    """HistoricalScheduler keeps a datetime clock: read as seconds since the epoch."""
    from datetime import UTC, datetime, timedelta

    scheduler = HistoricalScheduler(initial_clock=datetime(2026, 1, 1, tzinfo=UTC))
    errors: list[Exception] = []
    rx.never().pipe(rxr.timeout(5.0)).subscribe(
        on_error=errors.append, scheduler=scheduler
    )
    breaker = rxr.CircuitBreaker(1, reset_timeout=10.0, scheduler=scheduler)
    assert breaker.call(len, "abc") == 3
    attempts: list[datetime] = []

    def failing(_: object) -> rx.Observable[int]:
        attempts.append(scheduler.now)
        return rx.throw(ConnectionError("down"))

    rx.defer(failing).pipe(rxr.retry(None, backoff=2.0, max_elapsed=4.0)).subscribe(
        on_error=errors.append, scheduler=scheduler
    )
    scheduler.advance_by(timedelta(seconds=10))
    assert [type(error) for error in errors] == [ConnectionError, rxr.TimeoutError]
    assert len(attempts) == 3  # at +0, +2 and +4 s: the budget's last instant


def steppable_system_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """``time.time``, until the returned function sets it back an hour (NTP,
    a manual change)."""
    real = time.time
    back = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() - back[0])
    return lambda: back.__setitem__(0, 3600.0)


def test_a_timeouts_deadline_ignores_a_step_of_the_system_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step_back = steppable_system_clock(monkeypatch)
    fired = threading.Event()
    subscription = (
        rx.never().pipe(rxr.timeout(0.2)).subscribe(on_error=lambda error: fired.set())
    )
    step_back()
    try:
        assert fired.wait(10)  # not an hour later
    finally:
        subscription.dispose()


def test_a_hedges_deadline_ignores_a_step_of_the_system_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = threading.Event()
    attempts: list[int] = []

    def attempt(_: Any) -> rx.Observable[int]:
        attempts.append(1)
        if len(attempts) == 2:
            started.set()
        return rx.never()

    step_back = steppable_system_clock(monkeypatch)
    # A scheduler of its own: its shared timer reads the clock as patched.
    hedged = rxr.hedge(0.2, 1, scheduler=NewThreadScheduler())
    subscription = rx.defer(attempt).pipe(hedged).subscribe()
    step_back()
    try:
        assert started.wait(10)  # the hedge, not an hour later
    finally:
        subscription.dispose()


def test_a_retrys_max_elapsed_ignores_a_step_of_the_system_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Set back an hour after the first failure, the wall clock would leave
    an hour more for retries; a step forward would end them at once."""
    real = time.time
    ahead = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + ahead[0])
    failed = threading.Event()
    attempts: list[int] = []

    def attempt(_: Any) -> rx.Observable[int]:
        attempts.append(1)
        if len(attempts) == 1:
            ahead[0] = 3600.0  # stepped forward an hour
        return rx.throw(ConnectionError("down"))

    rx.defer(attempt).pipe(rxr.retry(None, backoff=0.01, max_elapsed=0.5)).subscribe(
        on_error=lambda error: failed.set()
    )
    assert failed.wait(10)
    assert len(attempts) > 2  # retried within its half second, not cut short


def test_a_historical_scheduler_with_a_naive_clock_reads_it_as_utc() -> None:
    """RxPY's own arithmetic takes a naive clock: so does ours (it failed at
    subscription with a TypeError)."""
    from datetime import datetime

    scheduler = HistoricalScheduler(initial_clock=datetime(2020, 1, 1))
    seen: list[Any] = []
    rx.never().pipe(rxr.timeout(2.0)).subscribe(
        on_error=lambda error: seen.append((scheduler.clock, type(error))),
        scheduler=scheduler,
    )
    scheduler.advance_by(5.0)
    assert seen == [(datetime(2020, 1, 1, 0, 0, 2), rxr.TimeoutError)]
