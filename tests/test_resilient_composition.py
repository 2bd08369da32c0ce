"""``rxr.resilient`` with a rate limiter, a bulkhead and hedging: the order it
documents is the order it pipes, and the parts meet as the docstring says."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import reactivex as rx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import advance, assert_no_pending, run

from ._redis_server import RedisServer
from ._support import record

Operator = Callable[[rx.Observable[Any]], rx.Observable[Any]]


class Boom(Exception):
    pass


class Service:
    """Call k (counted from 0 over every subscription) follows ``script[k]``
    (the last repeats): ``(latency, outcome)``, outcome "ok", "fail" or
    "hang". Every subscription's start and end are logged."""

    def __init__(
        self, scheduler: TestScheduler, script: list[tuple[float, str]]
    ) -> None:
        self.scheduler = scheduler
        self.script = script
        self.calls: list[float] = []
        self.ends: list[float | None] = []
        self.observable: rx.Observable[str] = rx.create(self._subscribe)

    def _subscribe(self, observer: abc.ObserverBase[str], _: Any = None) -> Any:
        index = len(self.calls)
        self.calls.append(float(self.scheduler.clock))
        self.ends.append(None)
        latency, outcome = self.script[min(index, len(self.script) - 1)]

        def end() -> None:
            if self.ends[index] is None:
                self.ends[index] = float(self.scheduler.clock)

        def act(*_: Any) -> None:
            end()
            if outcome == "ok":
                observer.on_next(f"answer {index}")
                observer.on_completed()
            elif outcome == "fail":
                observer.on_error(Boom(f"call {index}"))

        timer = (
            None
            if outcome == "hang"
            else self.scheduler.schedule_relative(latency, act)
        )

        def cancel() -> None:
            end()
            if timer is not None:
                timer.dispose()

        return Disposable(cancel)

    @property
    def spans(self) -> list[tuple[float, float | None]]:
        return list(zip(self.calls, self.ends, strict=True))


# --- resilient is the documented pipe --------------------------------------------------


@dataclass(frozen=True)
class Parts:
    """Which parts to compose, as settings: each side builds fresh instances."""

    timeout: float | None
    breaker: tuple[int, float, int] | None  # threshold, reset timeout, trials
    bulkhead: tuple[int, int, float | None] | None  # concurrent, queue, max wait
    rate_limit: tuple[float, float, int] | None  # rate, per, burst
    hedge: tuple[float, int] | None  # delay, max hedges
    retry: tuple[int, float | None] | None  # attempts, backoff
    total_timeout: float | None
    fallback: bool
    idempotency: bool

    def given(self) -> bool:
        return any(
            part is not None and part is not False
            for part in (
                self.timeout,
                self.breaker,
                self.bulkhead,
                self.rate_limit,
                self.hedge,
                self.retry,
                self.total_timeout,
                self.fallback or None,
                self.idempotency or None,
            )
        )


def parts() -> st.SearchStrategy[Parts]:
    return st.builds(
        Parts,
        timeout=st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0])),
        breaker=st.one_of(
            st.none(),
            st.tuples(
                st.integers(1, 3), st.sampled_from([2.0, 5.0, 10.0]), st.integers(1, 2)
            ),
        ),
        bulkhead=st.one_of(
            st.none(),
            st.tuples(
                st.integers(1, 2),
                st.integers(0, 2),
                st.sampled_from([None, 0.0, 1.0, 3.0]),
            ),
        ),
        rate_limit=st.one_of(
            st.none(),
            st.tuples(st.sampled_from([1.0, 2.0]), st.just(1.0), st.integers(1, 3)),
        ),
        hedge=st.one_of(
            st.none(), st.tuples(st.sampled_from([0.5, 1.0, 2.0]), st.integers(1, 2))
        ),
        retry=st.one_of(
            st.none(),
            st.tuples(st.integers(1, 4), st.sampled_from([None, 1.0, 2.0])),
        ),
        total_timeout=st.one_of(st.none(), st.sampled_from([4.0, 10.0, 30.0])),
        fallback=st.booleans(),
        idempotency=st.booleans(),
    ).filter(Parts.given)


@dataclass
class Built:
    """One side's fresh instances of the shared parts."""

    breaker: rxr.CircuitBreaker | None
    bulkhead: rxr.Bulkhead | None
    limiter: rxr.RateLimiter | None
    idempotency: rxr.IdempotencyPolicy | None


def build(chosen: Parts, scheduler: TestScheduler) -> Built:
    breaker = limiter = bulkhead = policy = None
    if chosen.breaker is not None:
        threshold, reset, trials = chosen.breaker
        breaker = rxr.CircuitBreaker(
            threshold, reset, half_open_max_calls=trials, scheduler=scheduler
        )
    if chosen.bulkhead is not None:
        bulkhead = rxr.Bulkhead(*chosen.bulkhead)
    if chosen.rate_limit is not None:
        limiter = rxr.RateLimiter(*chosen.rate_limit, scheduler=scheduler)
    if chosen.idempotency:
        policy = rxr.IdempotencyPolicy(
            rxr.InMemoryIdempotencyStore(), ttl=600.0, scheduler=scheduler
        )
    return Built(breaker, bulkhead, limiter, policy)


def retry_policy(chosen: Parts) -> rxr.RetryPolicy | None:
    if chosen.retry is None:
        return None
    attempts, backoff = chosen.retry
    return rxr.RetryPolicy(attempts, backoff=backoff)


def hedge_policy(chosen: Parts) -> rxr.HedgePolicy | None:
    return None if chosen.hedge is None else rxr.HedgePolicy(*chosen.hedge)


def combined(chosen: Parts, built: Built) -> Operator:
    return rxr.resilient(
        timeout=chosen.timeout,
        retry=retry_policy(chosen),
        breaker=built.breaker,
        fallback="fallback" if chosen.fallback else None,
        total_timeout=chosen.total_timeout,
        rate_limit=built.limiter,
        bulkhead=built.bulkhead,
        hedge=hedge_policy(chosen),
        idempotency=built.idempotency,
        idempotency_key="k" if built.idempotency is not None else None,
    )


def by_hand(chosen: Parts, built: Built) -> Operator:
    """The documented order, from the inside out, with the single operators."""
    timeout = None if chosen.timeout is None else rxr.timeout(chosen.timeout)
    inner: list[Operator | None] = [
        timeout if built.idempotency is None else None,
        None if built.breaker is None else rxr.circuit_breaker(built.breaker),
        None if built.bulkhead is None else rxr.bulkhead(built.bulkhead),
        None if built.limiter is None else rxr.rate_limit(built.limiter),
        None if chosen.hedge is None else rxr.hedge(rxr.HedgePolicy(*chosen.hedge)),
    ]
    if built.idempotency is not None:
        finishing = built.idempotency.with_finish_on_dispose(True)
        inner += [rxr.idempotent(finishing, key="k"), timeout]
    policy = retry_policy(chosen)
    outer: list[Operator | None] = [
        None if policy is None else rxr.retry(policy),
        None
        if chosen.total_timeout is None
        else rxr.timeout(total=chosen.total_timeout),
        rxr.fallback("fallback") if chosen.fallback else None,
    ]
    chain = [part for part in (*inner, *outer) if part is not None]

    def apply(source: rx.Observable[Any]) -> rx.Observable[Any]:
        for part in chain:
            source = part(source)
        return source

    return apply


HORIZON = 500.0


def play(
    chosen: Parts,
    make: Callable[[Parts, Built], Operator],
    script: list[tuple[float, str]],
    subscribe_at: list[float],
) -> tuple[list[list[tuple[float, str, Any]]], list[tuple[float, float | None]]]:
    """Every call's notifications (errors as type and text), and the service's
    subscriptions, for calls subscribed at ``subscribe_at`` and disposed at
    ``HORIZON``."""
    scheduler = TestScheduler()
    service = Service(scheduler, script)
    operator = make(chosen, build(chosen, scheduler))
    traces = [
        run(
            lambda: service.observable.pipe(operator),
            subscribe_at=at,
            dispose_at=HORIZON,
            until=at,
            scheduler=scheduler,
        )
        for at in sorted(subscribe_at)
    ]
    advance(scheduler, HORIZON)
    seen = [
        [
            (
                event.time,
                event.kind,
                (type(event.payload).__name__, str(event.payload))
                if isinstance(event.payload, Exception)
                else event.payload,
            )
            for event in trace.events
        ]
        for trace in traces
    ]
    return seen, service.spans


scripts = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
        st.sampled_from(["ok", "fail", "fail", "hang"]),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
@given(
    chosen=parts(),
    script=scripts,
    subscribe_at=st.lists(
        st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=1, max_size=3
    ),
)
def test_resilient_equals_piping_the_single_operators_in_the_documented_order(
    chosen: Parts, script: list[tuple[float, str]], subscribe_at: list[float]
) -> None:
    assert play(chosen, combined, script, subscribe_at) == play(
        chosen, by_hand, script, subscribe_at
    )


def test_the_property_tells_another_order_apart() -> None:
    """The comparison is sharp: the bulkhead outside the limiter is another pipeline."""
    chosen = Parts(
        None, None, (1, 1, None), (1.0, 1.0, 1), None, None, None, False, False
    )

    def swapped(chosen: Parts, built: Built) -> Operator:
        assert built.limiter is not None
        assert built.bulkhead is not None
        return lambda source: source.pipe(
            rxr.rate_limit(built.limiter), rxr.bulkhead(built.bulkhead)
        )

    script = [(2.0, "ok")]
    at = [0.0, 0.0, 0.0]
    assert play(chosen, swapped, script, at) != play(chosen, combined, script, at)


# --- the rate limiter -------------------------------------------------------------------


def test_every_attempt_takes_a_permit_and_its_wait_is_not_charged_to_the_attempt() -> (
    None
):
    scheduler = TestScheduler()
    service = Service(scheduler, [(1.5, "fail"), (1.5, "ok")])
    limiter = rxr.RateLimiter(rate=1, per=4.0, scheduler=scheduler)
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                timeout=2.0,
                retry=rxr.RetryPolicy(max_attempts=2, backoff=None),
                rate_limit=limiter,
            )
        ),
        subscribe_at=0,
    )
    # The retry at 1.5 waits for the next permit (at 4) and then has its whole
    # 2 s budget: the answer at 5.5 is in time.
    assert service.calls == [0.0, 4.0]
    assert events == [(5.5, "next", "answer 1"), (5.5, "completed", None)]


def test_the_wait_for_a_permit_is_bounded_by_the_total_timeout() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, [(0.0, "ok")])
    limiter = rxr.RateLimiter(rate=1, per=60.0, scheduler=scheduler)
    assert limiter.try_acquire()  # the next permit is at 60
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(timeout=1.0, retry=3, rate_limit=limiter, total_timeout=5.0)
        ),
        subscribe_at=0,
        until=5.0,
    )
    assert service.calls == []
    [(at, kind, error)] = events
    assert (at, kind) == (5.0, "error")
    assert isinstance(error, rxr.TimeoutError)
    assert error.budget == "total"
    # the abandoned wait gave its permit back: it was the latest reservation
    assert limiter.time_to_permit() == 55.0


def test_a_rate_limit_refusal_is_waited_out_by_the_retry_without_spending_an_attempt(
    tmp_path: pathlib.Path,
) -> None:
    """A fleet-wide limiter that fails closed refuses while Redis is away; one
    attempt is enough once it is back, and the breaker never counted the
    refusal."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        scheduler = TestScheduler()
        storage = rxr.RedisRateLimiterStorage(
            server.client(),
            name="composition",
            when_unreachable="refuse",
            reconnect_after=2.0,
        )
        limiter = rxr.RateLimiter(100, storage=storage, scheduler=scheduler)
        breaker = rxr.CircuitBreaker(1, 30.0, scheduler=scheduler)
        service = Service(scheduler, [(1.0, "ok")])
        retried: list[rxr.RetryEvent] = []
        server.stop()
        events = record(
            scheduler,
            lambda: service.observable.pipe(
                rxr.resilient(
                    retry=rxr.RetryPolicy(max_attempts=1, on_retry=retried.append),
                    breaker=breaker,
                    rate_limit=limiter,
                )
            ),
            subscribe_at=0,
            until=1.0,
        )
        assert events == []
        assert service.calls == []
        assert [(e.attempt, e.delay, e.refused) for e in retried] == [(1, 2.0, True)]
        server.start()
        advance(scheduler, 10.0)
        assert service.calls == [2.0]
        assert events == [(3.0, "next", "answer 0"), (3.0, "completed", None)]
        metrics = breaker.metrics()
        assert (metrics.calls, metrics.failures, metrics.rejected) == (1, 0, 0)
    finally:
        server.stop()


# --- the bulkhead -----------------------------------------------------------------------


def test_a_full_bulkhead_makes_the_retry_give_up_at_once_uncounted_by_the_breaker() -> (
    None
):
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(max_concurrent=1)
    breaker = rxr.CircuitBreaker(1, 30.0, scheduler=scheduler)
    busy = Service(scheduler, [(0.0, "hang")])
    busy.observable.pipe(rxr.bulkhead(bulkhead)).subscribe(scheduler=scheduler)
    service = Service(scheduler, [(0.0, "ok")])
    retried: list[rxr.RetryEvent] = []
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(max_attempts=5, on_retry=retried.append),
                breaker=breaker,
                bulkhead=bulkhead,
            )
        ),
        subscribe_at=0,
    )
    [(at, kind, error)] = events
    assert (at, kind) == (0.0, "error")
    assert isinstance(error, rxr.BulkheadFullError)
    assert error.retry_after is None
    assert service.calls == []
    assert retried == []
    assert breaker.metrics().calls == 0  # load shed, not a failure of the service


def test_a_wait_for_a_slot_is_not_charged_to_the_attempt() -> None:
    scheduler = TestScheduler()
    bulkhead = rxr.Bulkhead(max_concurrent=1, max_queue=1)
    busy = Service(scheduler, [(5.0, "ok")])
    busy.observable.pipe(rxr.bulkhead(bulkhead)).subscribe(scheduler=scheduler)
    service = Service(scheduler, [(1.5, "ok")])
    events = record(
        scheduler,
        lambda: service.observable.pipe(rxr.resilient(timeout=2.0, bulkhead=bulkhead)),
        subscribe_at=0,
    )
    assert service.calls == [5.0]
    assert events == [(6.5, "next", "answer 0"), (6.5, "completed", None)]


def test_a_call_waiting_for_its_permit_holds_no_slot() -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(rate=1, per=10.0, scheduler=scheduler)
    bulkhead = rxr.Bulkhead(max_concurrent=1)
    service = Service(scheduler, [(1.0, "ok")])
    guarded = rxr.resilient(rate_limit=limiter, bulkhead=bulkhead)
    first = record(scheduler, lambda: service.observable.pipe(guarded), subscribe_at=0)
    second = record(
        scheduler, lambda: service.observable.pipe(guarded), subscribe_at=0, until=5.0
    )
    assert bulkhead.metrics().active == 0  # the second call waits for its permit
    advance(scheduler, 20.0)
    assert service.calls == [0.0, 10.0]
    assert first[-1] == (1.0, "completed", None)
    assert second[-1] == (11.0, "completed", None)
    assert bulkhead.metrics().rejected == 0


# --- hedging ------------------------------------------------------------------------------


def test_an_open_breaker_inside_the_hedge_is_waited_out_by_the_retry() -> None:
    """Every hedged attempt is refused (each spent a permit): the hedge ends with
    the refusal, and the retry waits it out without spending its one attempt."""
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, 10.0, scheduler=scheduler)
    run(
        lambda: rx.throw(Boom()).pipe(rxr.circuit_breaker(breaker)),
        scheduler=scheduler,
        until=0,
    )
    assert breaker.state is rxr.CircuitState.OPEN
    limiter = rxr.RateLimiter(rate=1, per=1.0, burst=5, scheduler=scheduler)
    service = Service(scheduler, [(1.0, "ok")])
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(max_attempts=1),
                hedge=rxr.HedgePolicy(0.5, max_hedges=1),
                rate_limit=limiter,
                breaker=breaker,
            )
        ),
        subscribe_at=0,
        until=0,
    )
    assert events == []
    assert service.calls == []
    assert breaker.metrics().rejected == 2  # both hedged attempts, at 0
    advance(scheduler, 30.0)
    # At 10 the trial runs; the hedge at 10.5 is refused (one trial at a time)
    # and the trial answers at 11.
    assert service.calls == [10.0]
    assert events == [(11.0, "next", "answer 0"), (11.0, "completed", None)]
    assert breaker.metrics().rejected == 3


def test_when_every_hedged_attempt_fails_the_retry_counts_one_attempt() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, [(2.0, "fail")])
    retried: list[rxr.RetryEvent] = []
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(
                retry=rxr.RetryPolicy(
                    max_attempts=2, backoff=1.0, on_retry=retried.append
                ),
                hedge=rxr.HedgePolicy(1.0, max_hedges=2),
            )
        ),
        subscribe_at=0,
    )
    # round 1: attempts at 0, 1, 2 fail at 2, 3, 4 (a failure starts no extra
    # hedge: none remain); the retry waits 1 s; round 2 at 5, 6, 7
    assert service.calls == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]
    assert [event.attempt for event in retried] == [1]
    [(at, kind, error)] = events
    assert (at, kind, str(error)) == (9.0, "error", "call 5")


def test_each_hedged_attempt_has_its_own_attempt_timeout() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, [(0.0, "hang"), (2.5, "ok")])
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.resilient(timeout=3.0, hedge=rxr.HedgePolicy(1.0))
        ),
        subscribe_at=0,
    )
    # attempt 1 hangs and times out at 3, attempt 2 (from 1) answers at 3.5
    # within its own budget (until 4)
    assert service.spans == [(0.0, 3.0), (1.0, 3.5)]
    assert events == [(3.5, "next", "answer 1"), (3.5, "completed", None)]


def test_hedge_as_a_number_is_its_delay() -> None:
    def play_with(hedge: Any) -> list[Any]:
        scheduler = TestScheduler()
        service = Service(scheduler, [(5.0, "ok"), (1.0, "ok")])
        events = record(
            scheduler,
            lambda: service.observable.pipe(rxr.resilient(hedge=hedge)),
            subscribe_at=0,
        )
        return [events, service.spans]

    assert play_with(2) == play_with(rxr.HedgePolicy(2.0))
    assert play_with(2)[0] == [(3.0, "next", "answer 1"), (3.0, "completed", None)]


# --- hedging and idempotency --------------------------------------------------------------


def test_hedge_with_idempotency_sends_the_hedge_and_runs_the_work_once_per_key() -> (
    None
):
    """``idempotent`` outside the hedge: the hedge really sends a second request
    (inside, it would join the first); an attempt that timed out joins the
    hedged execution, and a later call with the key replays it."""
    scheduler = TestScheduler()
    service = Service(scheduler, [(5.0, "ok"), (5.0, "ok")])
    policy = rxr.IdempotencyPolicy(
        rxr.InMemoryIdempotencyStore(), ttl=600.0, scheduler=scheduler
    )
    charge = rxr.resilient(
        timeout=3.0,
        retry=rxr.RetryPolicy(max_attempts=3, backoff=None),
        hedge=rxr.HedgePolicy(1.0),
        idempotency=policy,
        idempotency_key="charge-42",
    )
    first = record(scheduler, lambda: service.observable.pipe(charge), subscribe_at=0)
    # the hedge sent a second request at 1; the attempt gave up waiting at 3
    # and the retry joined the same execution, which answered at 5 (call 0)
    assert service.calls == [0.0, 1.0]
    assert service.spans == [(0.0, 5.0), (1.0, 5.0)]
    assert first == [(5.0, "next", "answer 0"), (5.0, "completed", None)]
    again = record(scheduler, lambda: service.observable.pipe(charge), subscribe_at=20)
    assert again == [(20.0, "next", "answer 0"), (20.0, "completed", None)]
    assert service.calls == [0.0, 1.0]  # replayed: no call, no hedge


def test_idempotent_inside_the_hedge_would_send_no_second_request() -> None:
    """The order ``resilient`` avoids, piped by hand: the hedge joins the first
    execution and the service sees one request."""
    scheduler = TestScheduler()
    service = Service(scheduler, [(5.0, "ok"), (1.0, "ok")])
    policy = rxr.IdempotencyPolicy(
        rxr.InMemoryIdempotencyStore(),
        ttl=600.0,
        scheduler=scheduler,
        finish_on_dispose=True,
    )
    events = record(
        scheduler,
        lambda: service.observable.pipe(
            rxr.idempotent(policy, key="k"), rxr.hedge(1.0)
        ),
        subscribe_at=0,
    )
    assert service.calls == [0.0]
    assert events[-1][0] >= 5.0
    resilient_order = record(
        scheduler,
        lambda: Service(scheduler, [(5.0, "ok"), (1.0, "ok")]).observable.pipe(
            rxr.resilient(
                hedge=1.0,
                idempotency=rxr.IdempotencyPolicy(
                    rxr.InMemoryIdempotencyStore(), ttl=600.0, scheduler=scheduler
                ),
                idempotency_key="k",
            )
        ),
        subscribe_at=100,
    )
    assert resilient_order == [(102.0, "next", "answer 1"), (102.0, "completed", None)]


# --- faults: disposal at every instant, a subscriber that raises --------------------------


@given(
    dispose_at=st.sampled_from(
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.5, 7.0]
    ),
    script=scripts,
)
def test_disposal_at_any_instant_leaves_no_call_slot_permit_or_timer_behind(
    dispose_at: float, script: list[tuple[float, str]]
) -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, script)
    limiter = rxr.RateLimiter(rate=2, per=1.0, scheduler=scheduler)
    bulkhead = rxr.Bulkhead(max_concurrent=1, max_queue=2)
    guarded = rxr.resilient(
        timeout=2.0,
        breaker=rxr.CircuitBreaker(2, 5.0, scheduler=scheduler),
        bulkhead=bulkhead,
        rate_limit=limiter,
        hedge=rxr.HedgePolicy(0.5),
        retry=rxr.RetryPolicy(3, backoff=1.0),
        total_timeout=20.0,
        fallback="fallback",
    )
    for at in (0.0, 0.0, 0.5):
        run(
            lambda: service.observable.pipe(guarded),
            subscribe_at=at,
            dispose_at=max(at, dispose_at),
            until=at,
            scheduler=scheduler,
        )
    advance(scheduler, max(dispose_at, 0.5))
    assert [span for span in service.spans if span[1] is None] == []
    metrics = bulkhead.metrics()
    assert (metrics.active, metrics.queued) == (0, 0)
    assert_no_pending(scheduler)


def test_a_subscriber_that_raises_frees_its_slot_and_is_not_a_failure() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler, [(1.0, "ok")])
    bulkhead = rxr.Bulkhead(max_concurrent=2)
    breaker = rxr.CircuitBreaker(1, 30.0, scheduler=scheduler)
    guarded = rxr.resilient(
        breaker=breaker,
        bulkhead=bulkhead,
        rate_limit=rxr.RateLimiter(10, scheduler=scheduler),
        hedge=0.5,
        retry=3,
        fallback="fallback",
    )
    raised: list[BaseException] = []

    def on_next(_: Any) -> None:
        raise KeyError("the subscriber's own bug")

    def subscribe(*_: Any) -> None:
        service.observable.pipe(guarded).subscribe(on_next, scheduler=scheduler)

    scheduler.schedule_absolute(0.0, subscribe)
    try:
        advance(scheduler, 10.0)
    except KeyError as error:
        raised.append(error)
    assert len(raised) == 1
    assert service.calls == [0.0, 0.5]  # one hedge, no retry
    assert breaker.metrics().failures == 0
    assert bulkhead.metrics().active == 0


def test_threads_through_one_pipeline_never_exceed_the_bulkhead_and_lose_nothing() -> (
    None
):
    """8 threads, 50 calls each, through one ``resilient`` with a shared limiter
    and bulkhead: never more than 3 sources at once, every call ends once."""
    bulkhead = rxr.Bulkhead(max_concurrent=3, max_queue=1000)
    limiter = rxr.RateLimiter(rate=500_000, burst=1000)
    guarded = rxr.resilient(bulkhead=bulkhead, rate_limit=limiter, retry=2)
    lock = threading.Lock()
    running = peak = 0
    ended: list[str] = []

    def work(_: Any) -> rx.Observable[int]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(
            0.0001
        )  # let another thread in while this one holds its slot
        with lock:
            running -= 1
        return rx.of(1)

    def caller() -> None:
        for _ in range(50):
            rx.defer(work).pipe(guarded).subscribe(
                on_completed=lambda: ended.append("completed"),
                on_error=lambda error: ended.append(type(error).__name__),
            )

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 3
    assert ended == ["completed"] * 400
    metrics = bulkhead.metrics()
    assert (metrics.active, metrics.queued, metrics.admitted) == (0, 0, 400)


# --- arguments --------------------------------------------------------------------------


def test_a_limiter_on_another_clock_than_the_scheduler_is_refused() -> None:
    real = rxr.RateLimiter(1)
    with pytest.raises(ValueError, match=r"TestScheduler.*rate limiter.*real clock"):
        rxr.resilient(rate_limit=real, scheduler=TestScheduler())
    virtual = rxr.RateLimiter(1, scheduler=TestScheduler())
    policy = rxr.RetryPolicy(backoff=1.0, scheduler=rx.scheduler.TimeoutScheduler())
    with pytest.raises(ValueError, match=r"retry\.scheduler=TimeoutScheduler"):
        rxr.resilient(rate_limit=virtual, retry=policy)
    rxr.resilient(rate_limit=virtual, scheduler=TestScheduler())  # both virtual
