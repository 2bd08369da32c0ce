"""rxr.rate_limit: one subscription, one permit, waited for on the scheduler."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import assert_no_pending, run
from rxresilience.testing._rate_limit_laws import (
    admissions_fit_the_rate,
    rate_limit_never_exceeds_the_rate,
    rate_limiter_configs,
)

from .._support import DURATIONS_OUT_OF_RANGE
from ..test_docstrings import marble_events, marble_source, sketch


class Calls:
    """A source that notes when each subscription reaches it, and each disposal."""

    def __init__(self, scheduler: TestScheduler, make: Any = None) -> None:
        self.scheduler = scheduler
        self.reached: list[float] = []
        self.disposed: list[float] = []
        self._make = make or (lambda: rx.of("ok"))

    def observable(self) -> rx.Observable[Any]:
        def subscribe(observer: Any, scheduler_: Any = None) -> Any:
            self.reached.append(float(self.scheduler.clock))
            inner = self._make().subscribe(observer, scheduler=scheduler_)

            def dispose() -> None:
                self.disposed.append(float(self.scheduler.clock))
                inner.dispose()

            return Disposable(dispose)

        return rx.create(subscribe)


def subscribe_all(
    scheduler: TestScheduler, calls: Calls, operator: Any, count: int
) -> list[Any]:
    return [
        run(lambda: calls.observable().pipe(operator), scheduler=scheduler, until=0.0)
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    ("burst", "expected"),
    [(1, [0.0, 0.5, 1.0, 1.5, 2.0]), (3, [0.0, 0.0, 0.0, 0.5, 1.0])],
)
def test_five_subscriptions_at_zero_reach_the_source_at_their_permits(
    burst: int, expected: list[float]
) -> None:
    """The issue's examples: RateLimiter(rate=2, per=1.0), burst 1 and 3."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, burst=burst, scheduler=scheduler)
    calls = Calls(scheduler)
    traces = subscribe_all(scheduler, calls, rxr.rate_limit(limiter), 5)
    scheduler.advance_to(10.0)
    assert calls.reached == expected
    for trace, at in zip(traces, expected, strict=True):
        trace.assert_values("ok").assert_completed(at=at)
    assert_no_pending(scheduler)


def test_the_marble_sketch_matches_the_operator() -> None:
    lines = sketch(rxr.rate_limit)
    origin = lines["call 1"][0]
    assert all(column >= origin for column, _ in lines.values())
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=2.0, scheduler=scheduler)
    traces = {}
    for name in sorted(lines):
        max_wait = 5.0 if name == "call 4" else None
        traces[name] = run(
            lambda max_wait=max_wait: marble_source(scheduler, "-a|").pipe(
                rxr.rate_limit(limiter, max_wait=max_wait)
            ),
            scheduler=scheduler,
            until=0.0,
        )
    scheduler.advance_to(20.0)
    for name, (column, drawn) in lines.items():
        marbles = drawn.split()[0]
        expected = [
            (at + column - origin, kind, value)
            for at, kind, value in marble_events(marbles)
        ]
        observed = [
            (time, kind, "#" if kind == "error" else value)
            for time, kind, value in traces[name].events
        ]
        assert observed == [
            (at, kind, "#" if kind == "error" else value)
            for at, kind, value in expected
        ], name
    error = traces["call 4"].error
    assert isinstance(error, rxr.RateLimitedError)
    assert error.retry_after == 6.0


def test_max_wait_zero_refuses_at_once_and_takes_nothing() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler, name="api")
    calls = Calls(scheduler)
    first, second = subscribe_all(
        scheduler, calls, rxr.rate_limit(limiter, max_wait=0), 2
    )
    first.assert_values("ok").assert_completed(at=0.0)
    second.assert_error(rxr.RateLimitedError)
    error = second.error
    assert isinstance(error, rxr.RateLimitedError)
    assert (error.limiter, error.retry_after) == ("api", 0.5)
    assert calls.reached == [0.0]
    assert limiter.time_to_permit() == 0.5  # the refusal took nothing


def test_a_permit_exactly_max_wait_away_is_waited_for() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler)
    calls = Calls(scheduler)
    traces = subscribe_all(scheduler, calls, rxr.rate_limit(limiter, max_wait=0.5), 3)
    scheduler.advance_to(5.0)
    assert calls.reached == [0.0, 0.5]
    traces[2].assert_error(rxr.RateLimitedError)


def test_retry_outside_waits_out_a_refusal_without_spending_an_attempt() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler)
    assert limiter.try_acquire()
    calls = Calls(scheduler)
    trace = run(
        lambda: calls.observable().pipe(
            rxr.rate_limit(limiter, max_wait=0), rxr.retry(1)
        ),
        scheduler=scheduler,
    )
    trace.assert_values("ok").assert_completed(at=0.5)
    assert calls.reached == [0.5]


def test_disposing_the_latest_waiting_call_gives_its_permit_back() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    calls = Calls(scheduler)
    run(lambda: calls.observable().pipe(rxr.rate_limit(limiter)), scheduler=scheduler)
    waiting = run(
        lambda: calls.observable().pipe(rxr.rate_limit(limiter)),
        scheduler=scheduler,
        dispose_at=0.5,
    )
    assert limiter.time_to_permit() == 0.5
    assert waiting.events == []
    assert_no_pending(scheduler)  # its timer is gone
    # Its slot at t=1 is free again: the next call gets it.
    late = run(
        lambda: calls.observable().pipe(rxr.rate_limit(limiter)),
        scheduler=scheduler,
        subscribe_at=0.5,
    )
    late.assert_completed(at=1.0)
    assert calls.reached == [0.0, 1.0]


def test_disposing_a_waiting_call_with_a_later_one_behind_it_spends_its_permit() -> (
    None
):
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    calls = Calls(scheduler)
    operator = rxr.rate_limit(limiter)
    run(lambda: calls.observable().pipe(operator), scheduler=scheduler, until=0.0)
    run(
        lambda: calls.observable().pipe(operator),
        scheduler=scheduler,
        dispose_at=0.5,
        until=0.0,
    )
    behind = run(
        lambda: calls.observable().pipe(operator), scheduler=scheduler, until=0.0
    )
    scheduler.advance_to(0.5)
    # Giving t=1 back would hand t=2's holder's slot out twice: it stays spent.
    assert limiter.time_to_permit() == 2.5
    scheduler.advance_to(10.0)
    behind.assert_completed(at=2.0)
    assert calls.reached == [0.0, 2.0]


def test_disposal_after_the_source_was_subscribed_disposes_it_and_spends_the_permit() -> (
    None
):
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=1.0, scheduler=scheduler)
    calls = Calls(scheduler, make=rx.never)
    run(
        lambda: calls.observable().pipe(rxr.rate_limit(limiter)),
        scheduler=scheduler,
        dispose_at=0.5,
    )
    assert calls.reached == [0.0]
    assert calls.disposed == [0.5]
    assert limiter.time_to_permit() == 0.5


@given(
    config=rate_limiter_configs(),
    plan=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 1.0, 2.5]),
            st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0, 7.0])),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_disposal_at_any_instant_leaves_nothing_behind_and_the_rate_holds(
    config: rxr.RateLimiterConfig, plan: list[tuple[float, float | None]]
) -> None:
    """Calls subscribe at generated instants, some are disposed a generated
    while later; none reaches the source after its disposal, every other one
    does, at most at the rate, and no timer is left."""
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(
        config.rate, config.per, config.burst, scheduler=scheduler
    )
    reached: dict[int, float] = {}
    traces = []
    for index, (at, dispose_after) in enumerate(sorted(plan, key=lambda p: p[0])):

        def call(_: Any, index: int = index) -> rx.Observable[str]:
            reached[index] = float(scheduler.clock)
            return rx.never()

        traces.append(
            run(
                lambda call=call: rx.defer(call).pipe(rxr.rate_limit(limiter)),
                scheduler=scheduler,
                subscribe_at=at,
                dispose_at=None if dispose_after is None else at + dispose_after,
                until=at,
            )
        )
    scheduler.advance_to(1000.0)
    for index, trace in enumerate(traces):
        if trace.disposed_at is None:
            assert index in reached
        elif index in reached:
            assert reached[index] <= trace.disposed_at
    admissions_fit_the_rate(list(reached.values()), config)
    for trace in traces:
        trace.events.clear()
    assert_no_pending(scheduler)


@given(
    config=rate_limiter_configs(),
    subscribe_at=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]), max_size=10),
)
def test_the_law_holds_for_rate_limit(
    config: rxr.RateLimiterConfig, subscribe_at: list[float]
) -> None:
    rate_limit_never_exceeds_the_rate(config, subscribe_at)


@given(config=rate_limiter_configs())
def test_the_law_holds_for_a_users_pipeline_with_a_retry_outside(
    config: rxr.RateLimiterConfig,
) -> None:
    rate_limit_never_exceeds_the_rate(
        config,
        [0.0] * 6,
        lambda limiter: (
            lambda source: source.pipe(
                rxr.rate_limit(limiter, max_wait=0), rxr.retry(3)
            )
        ),
    )


# --- subscribers that misbehave ------------------------------------------------------


class SubscriberBug(Exception):
    pass


def raising(_: Any) -> None:
    raise SubscriberBug("mine")


def test_a_subscriber_raising_on_a_free_permit_is_as_without_the_operator() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, scheduler=scheduler)
    errors: list[Exception] = []
    rx.of(1, 2).pipe(rxr.rate_limit(limiter, scheduler=scheduler)).subscribe(
        raising, errors.append
    )
    plain: list[Exception] = []
    rx.of(1, 2).subscribe(raising, plain.append)
    assert [type(e) for e in errors] == [type(e) for e in plain] == [SubscriberBug]
    assert limiter.time_to_permit() == 1.0  # the call was made: its permit spent


def test_a_subscriber_raising_after_a_wait_is_its_own_affair() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, scheduler=scheduler)
    calls = Calls(scheduler)
    assert limiter.try_acquire()
    errors: list[Exception] = []
    calls.observable().pipe(rxr.rate_limit(limiter)).subscribe(
        raising, errors.append, scheduler=scheduler
    )
    after = run(
        lambda: calls.observable().pipe(rxr.rate_limit(limiter)),
        scheduler=scheduler,
        until=0.0,
    )
    # As RxPY with a synchronous source: the bug comes back as on_error.
    scheduler.advance_to(5.0)
    assert [type(e) for e in errors] == [SubscriberBug]
    after.assert_completed(at=2.0)  # the others keep their slots
    assert calls.reached == [1.0, 2.0]


def test_subscribe_time_and_own_schedulers_carry_the_wait() -> None:
    limiter_clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, scheduler=limiter_clock)
    assert limiter.try_acquire()
    own = TestScheduler()
    calls = Calls(own)
    trace = run(
        lambda: calls.observable().pipe(rxr.rate_limit(limiter, scheduler=own)),
        scheduler=TestScheduler(),
    )
    assert trace.events == []  # the wait is on `own`, not the subscribe-time one
    own.advance_to(1.0)
    assert calls.reached == [1.0]


@pytest.mark.parametrize(("max_wait", "error"), DURATIONS_OUT_OF_RANGE)
def test_a_bad_max_wait_is_refused_when_built(
    max_wait: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="max_wait"):
        rxr.rate_limit(rxr.RateLimiter(1), max_wait=max_wait)


def test_a_bad_limiter_or_scheduler_is_refused_when_built() -> None:
    with pytest.raises(TypeError, match="limiter"):
        rxr.rate_limit("payments")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheduler"):
        rxr.rate_limit(rxr.RateLimiter(1), scheduler=1.0)  # type: ignore[arg-type]


def test_eight_threads_subscribing_get_exactly_the_free_permits() -> None:
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, burst=40, scheduler=clock)
    reached = []
    refused = []
    lock = threading.Lock()

    def call(_: Any) -> rx.Observable[int]:
        with lock:
            reached.append(1)
        return rx.of(1)

    guarded = rx.defer(call).pipe(rxr.rate_limit(limiter, max_wait=0))
    start = threading.Barrier(8)

    def body() -> None:
        start.wait()
        for _ in range(100):
            guarded.subscribe(on_error=lambda e: refused.append(e), scheduler=clock)

    workers = [threading.Thread(target=body) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert (len(reached), len(refused)) == (40, 760)


def test_disposal_racing_the_timer_on_another_thread_leaves_no_call_running() -> None:
    """Real timers fire while another thread disposes: a call either never
    reaches its source, or its source subscription is disposed too."""
    from reactivex.scheduler import ThreadPoolScheduler

    limiter = rxr.RateLimiter(rate=2000, per=1.0)  # a permit every 0.5 ms
    pool = ThreadPoolScheduler(4)
    lock = threading.Lock()
    open_calls: dict[int, bool] = {}

    def call(index: int) -> rx.Observable[int]:
        def subscribe(observer: Any, _: Any = None) -> Any:
            with lock:
                open_calls[index] = True

            def dispose() -> None:
                with lock:
                    open_calls[index] = False

            return Disposable(dispose)

        return rx.create(subscribe)

    subscriptions = [
        call(index).pipe(rxr.rate_limit(limiter, scheduler=pool)).subscribe()
        for index in range(200)
    ]
    threading.Event().wait(0.03)  # some timers have fired, some have not
    for subscription in subscriptions:
        subscription.dispose()
    threading.Event().wait(0.2)  # any timer still running has finished
    with lock:
        assert not [index for index, running in open_calls.items() if running]
    assert open_calls  # the first call's permit was free: it ran at once


class RefusingScheduler(TestScheduler):
    """A scheduler shut down: it refuses every timer (as an AsyncIOScheduler
    on a closed loop does)."""

    def schedule_relative(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("scheduler shut down")


def test_a_refused_wait_timer_gives_the_permit_back_before_the_error() -> None:
    clock = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=10.0, scheduler=clock)
    assert limiter.try_acquire()
    before = limiter.time_to_permit()
    seen: list[Any] = []
    reached: list[str] = []

    def on_error(error: Exception) -> None:
        seen.append((str(error), limiter.time_to_permit()))

    rx.defer(lambda _: (reached.append("source"), rx.of(1))[1]).pipe(
        rxr.rate_limit(limiter, scheduler=RefusingScheduler())
    ).subscribe(seen.append, on_error)
    assert seen == [("scheduler shut down", before)]
    assert reached == []
