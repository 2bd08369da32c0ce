"""RateLimiter: plain-code permits, reservations, its clock, and threads."""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

import pytest
import reactivex as rx
from reactivex.scheduler import TimeoutScheduler
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing._rate_limit_laws import admissions_fit_the_rate

from .._support import DURATIONS_OUT_OF_RANGE


def test_the_issue_example_builds() -> None:
    limiter = rxr.RateLimiter(rate=100, per=1.0, burst=10, name="payments-api")
    assert limiter.name == "payments-api"
    assert limiter.config == rxr.RateLimiterConfig(100, 1.0, 10)
    assert isinstance(limiter.storage, rxr.InMemoryRateLimiterStorage)
    assert limiter.scheduler is None
    assert repr(limiter) == (
        "RateLimiter(rate=100, per=1.0, burst=10, name='payments-api')"
    )


def test_try_acquire_takes_a_free_permit_and_nothing_else() -> None:
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, burst=2, scheduler=clock)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    assert limiter.time_to_permit() == 0.5
    clock.advance_to(0.4)
    assert not limiter.try_acquire()
    assert limiter.time_to_permit() == pytest.approx(0.1)
    clock.advance_to(0.5)
    assert limiter.time_to_permit() == 0.0
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


def test_try_reserve_within_max_wait_and_refuses_beyond_it() -> None:
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=2.0, scheduler=clock, name="api")
    assert limiter.try_reserve() == rxr.RateLimiterReservation(0.0, 0.0, 2.0)
    assert limiter.try_reserve(max_wait=2) == rxr.RateLimiterReservation(2.0, 2.0, 4.0)
    refusal = limiter.try_reserve(max_wait=3.5)
    assert isinstance(refusal, rxr.RateLimitedError)
    assert (refusal.limiter, refusal.retry_after) == ("api", 4.0)
    assert isinstance(refusal, rxr.CallRefusedError)
    assert limiter.time_to_permit() == 4.0  # the refusal took nothing


@pytest.mark.parametrize(("max_wait", "error"), DURATIONS_OUT_OF_RANGE)
def test_try_reserve_refuses_a_bad_max_wait(
    max_wait: object, error: type[Exception]
) -> None:
    limiter = rxr.RateLimiter(1)
    with pytest.raises(error, match="max_wait"):
        limiter.try_reserve(max_wait)  # type: ignore[arg-type]
    assert limiter.try_acquire()  # nothing was taken


def test_cancel_gives_back_the_latest_reservation_only() -> None:
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, scheduler=clock)
    first, second = limiter.try_reserve(), limiter.try_reserve()
    assert isinstance(first, rxr.RateLimiterReservation)
    assert isinstance(second, rxr.RateLimiterReservation)
    assert not limiter.cancel(first)
    assert limiter.cancel(second)
    assert limiter.time_to_permit() == 1.0


def test_an_absurdly_far_permit_is_refused_even_without_max_wait() -> None:
    """No timer can wait beyond LONGEST_WAIT: such a permit is not taken."""
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=5e9, scheduler=clock)
    assert limiter.try_acquire()
    assert limiter.try_reserve() == rxr.RateLimiterReservation(5e9, 5e9, 1e10)
    refusal = limiter.try_reserve()
    assert isinstance(refusal, rxr.RateLimitedError)
    assert refusal.retry_after == 1e10


def test_the_limiter_keeps_its_own_clock_not_the_pipelines() -> None:
    limiter_clock, pipeline_clock = TestScheduler(), TestScheduler()
    limiter = rxr.RateLimiter(rate=1, scheduler=limiter_clock)
    assert limiter.try_acquire()
    pipeline_clock.advance_to(100.0)
    assert not limiter.try_acquire()
    limiter_clock.advance_to(1.0)
    assert limiter.try_acquire()


def test_a_real_clock_limiter_in_a_virtual_pipeline_is_warned_of_once() -> None:
    limiter = rxr.RateLimiter(rate=1000, name="real")
    scheduler = TestScheduler()
    with pytest.warns(RuntimeWarning, match="'real' keeps the real clock"):
        rx.of(1).pipe(rxr.rate_limit(limiter)).subscribe(scheduler=scheduler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rx.of(1).pipe(rxr.rate_limit(limiter)).subscribe(scheduler=scheduler)
        rx.of(1).pipe(rxr.pace(limiter)).subscribe(scheduler=scheduler)
        # A real scheduler meets a real clock: nothing to say.
        other = rxr.RateLimiter(rate=1000)
        rx.of(1).pipe(rxr.rate_limit(other)).subscribe(
            scheduler=TimeoutScheduler.singleton()
        )


@pytest.mark.parametrize("operator", [rxr.rate_limit, rxr.pace])
def test_a_virtual_clock_limiter_in_a_real_pipeline_is_warned_of_once(
    operator: Any,
) -> None:
    name = f"virtual-{operator.__name__}"
    limiter = rxr.RateLimiter(rate=1000, name=name, scheduler=TestScheduler())
    with pytest.warns(RuntimeWarning, match=f"'{name}' keeps virtual time"):
        rx.of(1).pipe(operator(limiter)).subscribe()  # timers: TimeoutScheduler
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rx.of(1).pipe(operator(limiter)).subscribe()
        rx.of(1).pipe(operator(limiter)).subscribe(
            scheduler=TimeoutScheduler.singleton()
        )
        # Virtual time on both sides: nothing to say.
        virtual = TestScheduler()
        other = rxr.RateLimiter(rate=1000, scheduler=virtual)
        rx.of(1).pipe(operator(other)).subscribe(scheduler=virtual)
        rx.of(1).pipe(operator(other, scheduler=virtual)).subscribe()


# --- threads ------------------------------------------------------------------------


def hammer(threads: int, work: object) -> None:
    start = threading.Barrier(threads)

    def body() -> None:
        start.wait()
        work()  # type: ignore[operator]

    workers = [threading.Thread(target=body) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)


def test_eight_threads_take_exactly_the_permits_there_are() -> None:
    """The clock stands still while they race: exactly ``burst`` permits, then
    exactly ``rate`` more per second of virtual time."""
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=10, per=1.0, burst=50, scheduler=clock)
    taken = [0] * 8
    lock = threading.Lock()

    def take() -> None:
        mine = sum(limiter.try_acquire() for _ in range(500))
        with lock:
            taken[threading.get_ident() % 8] += mine

    hammer(8, take)
    assert sum(taken) == 50
    clock.advance_to(1.0)
    taken[:] = [0] * 8
    hammer(8, take)
    assert sum(taken) == 10


def test_eight_threads_reserving_get_every_slot_once() -> None:
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=4, per=1.0, burst=2, scheduler=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(100):
            answer = limiter.try_reserve(max_wait=10.0)
            if isinstance(answer, rxr.RateLimiterReservation):
                with lock:
                    waits.append(answer.wait)

    hammer(8, reserve)
    # two at once, then one every 0.25 s up to 10 s: 2 + 40 permits, each once
    assert sorted(waits) == [0.0, 0.0] + [0.25 * k for k in range(1, 41)]
    admissions_fit_the_rate(waits, limiter.config)


def test_eight_threads_on_the_real_clock_stay_within_the_rate() -> None:
    limiter = rxr.RateLimiter(rate=200, per=1.0, burst=5)
    times: list[float] = []
    lock = threading.Lock()
    started = time.time()

    def take() -> None:
        while time.time() - started < 0.2:
            answer = limiter.try_reserve(max_wait=0.0)
            if isinstance(answer, rxr.RateLimiterReservation):
                with lock:
                    times.append(answer.previous)

    hammer(8, take)
    assert len(times) <= 5 + 200 * (time.time() - started)
    # each permit's slot in the limiter's time, taken once
    assert len(set(times)) == len(times)
