"""Every policy reports its events, named, timed on its own scheduler."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.telemetry import TelemetryEvent, events

from ..idempotency._doubles import Flaky


@pytest.fixture
def seen() -> Iterator[list[TelemetryEvent]]:
    received: list[TelemetryEvent] = []
    subscription = events().subscribe(received.append)
    yield received
    subscription.dispose()


def _kinds(seen: list[TelemetryEvent]) -> list[str]:
    return [event.kind for event in seen]


class _Flaky:
    """Fails ``failures`` times, one tick after each subscription, then emits."""

    def __init__(self, scheduler: TestScheduler, failures: int) -> None:
        self.scheduler = scheduler
        self.failures = failures

    def observable(self) -> rx.Observable[str]:
        def subscribe(observer: Any, _: Any = None) -> Any:
            def act(*_: Any) -> None:
                if self.failures:
                    self.failures -= 1
                    observer.on_error(ConnectionError("down"))
                else:
                    observer.on_next("ok")
                    observer.on_completed()

            return self.scheduler.schedule_relative(1.0, act)

        return rx.create(subscribe)


# -- retry ---------------------------------------------------------------------------


def test_retry_reports_scheduled_then_exhausted_with_attempts_and_durations(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    source = _Flaky(scheduler, 5).observable()
    errors: list[Exception] = []
    source.pipe(rxr.retry(3, backoff=2.0, name="payments")).subscribe(
        on_error=errors.append, scheduler=scheduler
    )
    scheduler.start()
    assert [(e.kind, e.policy, e.attempt, e.at, e.duration) for e in seen] == [
        ("retry.scheduled", "payments", 1, 1.0, 1.0),
        ("retry.scheduled", "payments", 2, 4.0, 1.0),
        ("retry.exhausted", "payments", 3, 7.0, 1.0),
    ]
    assert seen[0].attributes["delay"] == 2.0
    assert seen[-1].error is errors[0]
    assert seen[-1].attributes["reason"] == "attempts"


def test_retry_success_reports_only_its_retries(seen: list[TelemetryEvent]) -> None:
    scheduler = TestScheduler()
    source = _Flaky(scheduler, 1).observable()
    source.pipe(rxr.retry(3, backoff=None)).subscribe(scheduler=scheduler)
    scheduler.start()
    assert [(e.kind, e.policy) for e in seen] == [("retry.scheduled", "retry")]


def test_an_error_not_to_retry_is_reported_as_given_up(
    seen: list[TelemetryEvent],
) -> None:
    rx.throw(KeyError("k")).pipe(
        rxr.retry(RetryPolicy(3, should_retry=ConnectionError, name="r"))
    ).subscribe(on_error=lambda _e: None)
    assert _kinds(seen) == ["retry.gave_up"]
    assert seen[0].attempt == 1


RetryPolicy = rxr.RetryPolicy


def test_a_refusal_wait_is_reported_with_the_breaker_refusal(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, reset_timeout=5.0, scheduler=scheduler, name="b")
    breaker.force_open()
    breaker.reset()
    breaker.admit().failure(ConnectionError("down"))  # open at 0
    del seen[:]
    rx.of(1).pipe(
        rxr.circuit_breaker(breaker), rxr.retry(2, backoff=None, name="r")
    ).subscribe(scheduler=scheduler)
    scheduler.start()
    assert _kinds(seen) == [
        "breaker.refused",
        "retry.refusal_waited",
        "breaker.state_changed",  # the trial moves it to half-open ...
        "breaker.succeeded",
        "breaker.state_changed",  # ... and its success closes it
    ]
    assert seen[1].attributes["delay"] == 5.0
    assert seen[1].duration is None  # a refused attempt never ran
    assert seen[1].attempt == 1


# -- breaker -------------------------------------------------------------------------


def test_breaker_calls_refusals_and_transitions_in_order(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=2, reset_timeout=5.0, scheduler=scheduler, name="wiring-pay"
    )
    assert breaker.call(len, "abc") == 3
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_raise, ConnectionError("down"))
    with pytest.raises(rxr.CircuitOpenError):
        breaker.call(len, "abc")
    assert [(e.kind, e.policy) for e in seen] == [
        ("breaker.succeeded", "wiring-pay"),
        ("breaker.failed", "wiring-pay"),
        ("breaker.failed", "wiring-pay"),
        ("breaker.state_changed", "wiring-pay"),
        ("breaker.refused", "wiring-pay"),
    ]
    change = seen[3].attributes
    assert (change["previous"], change["state"]) == ("closed", "open")
    assert isinstance(seen[1].error, ConnectionError)
    assert seen[4].attributes["retry_after"] == 5.0


def test_the_breaker_operator_reports_durations_on_the_breaker_clock(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(scheduler=scheduler)
    rx.timer(3.0).pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    scheduler.start()
    assert [(e.kind, e.policy, e.at, e.duration) for e in seen] == [
        ("breaker.succeeded", "circuit-breaker", 3.0, 3.0)
    ]


def test_a_call_that_counts_as_neither_reports_nothing(
    seen: list[TelemetryEvent],
) -> None:
    breaker = rxr.CircuitBreaker(ignore=KeyError)
    with pytest.raises(KeyError):
        breaker.call(_raise, KeyError("k"))
    breaker.admit().release()
    assert seen == []


def _raise(error: Exception) -> None:
    raise error


# -- timeout, fallback, resilient ------------------------------------------------------


def test_timeout_reports_the_budget_that_ran_out(seen: list[TelemetryEvent]) -> None:
    scheduler = TestScheduler()
    rx.never().pipe(rxr.timeout(3.0, total=10.0, name="t")).subscribe(
        on_error=lambda _e: None, scheduler=scheduler
    )
    scheduler.start()
    assert [(e.kind, e.policy, e.at, e.duration) for e in seen] == [
        ("timeout.expired", "t", 3.0, 3.0)
    ]
    assert seen[0].attributes["budget"] == "first"
    assert isinstance(seen[0].error, rxr.TimeoutError)


def test_a_timeout_policy_carries_its_name(seen: list[TelemetryEvent]) -> None:
    scheduler = TestScheduler()
    policy = rxr.TimeoutPolicy(each=2.0, name="search")
    rx.never().pipe(rxr.timeout(policy)).subscribe(
        on_error=lambda _e: None, scheduler=scheduler
    )
    rx.never().pipe(rxr.timeout(policy, name="renamed")).subscribe(
        on_error=lambda _e: None, scheduler=scheduler
    )
    scheduler.start()
    assert [e.policy for e in seen] == ["search", "renamed"]


def test_a_fallback_reports_the_error_it_replaced(seen: list[TelemetryEvent]) -> None:
    error = KeyError("k")
    assert rx.throw(error).pipe(rxr.fallback("cached", name="f")).run() == "cached"
    assert [(e.kind, e.policy) for e in seen] == [("fallback.used", "f")]
    assert seen[0].error is error


def test_an_error_a_fallback_does_not_match_reports_nothing(
    seen: list[TelemetryEvent],
) -> None:
    rx.throw(KeyError("k")).pipe(rxr.fallback(1, when=ValueError)).subscribe(
        on_error=lambda _e: None
    )
    assert seen == []


def test_resilient_names_the_parts_it_builds(seen: list[TelemetryEvent]) -> None:
    scheduler = TestScheduler()
    rx.never().pipe(
        rxr.resilient(
            timeout=1.0,
            retry=2,
            fallback="cached",
            scheduler=scheduler,
            name="search",
        )
    ).subscribe(scheduler=scheduler)
    scheduler.start()
    assert {e.policy for e in seen} == {"search"}
    assert _kinds(seen) == [
        "timeout.expired",
        "retry.scheduled",
        "timeout.expired",
        "retry.exhausted",
        "fallback.used",
    ]


def test_resilient_leaves_a_policy_own_name_alone(seen: list[TelemetryEvent]) -> None:
    rx.throw(KeyError("k")).pipe(
        rxr.resilient(
            retry=rxr.RetryPolicy(2, backoff=None, name="mine"),
            fallback=1,
            name="outer",
        )
    ).subscribe()
    assert [(e.kind, e.policy) for e in seen] == [
        ("retry.scheduled", "mine"),
        ("retry.exhausted", "mine"),
        ("fallback.used", "outer"),
    ]


# -- idempotency ---------------------------------------------------------------------


def test_idempotency_reports_claims_replays_and_joins(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    policy = rxr.IdempotencyPolicy(
        rxr.InMemoryIdempotencyStore(), scheduler=scheduler, name="charge"
    )
    slow = rx.timer(2.0).pipe(ops.map(lambda _: "charged"))
    results: list[str] = []
    call = slow.pipe(rxr.idempotent(policy, key="order-1"))
    call.subscribe(results.append, scheduler=scheduler)
    call.subscribe(results.append, scheduler=scheduler)  # joins the one in flight
    scheduler.start()
    call.subscribe(results.append, scheduler=scheduler)  # replays the record
    assert results == ["charged"] * 3
    assert [(e.kind, e.policy) for e in seen] == [
        ("idempotency.claimed", "charge"),
        ("idempotency.joined", "charge"),
        ("idempotency.replayed", "charge"),
    ]
    for event in seen:  # keys are never attributes
        assert "order-1" not in repr(dict(event.attributes))


def test_idempotency_reports_an_outcome_it_cannot_encode_once(
    seen: list[TelemetryEvent],
) -> None:
    store = rxr.InMemoryIdempotencyStore()
    errors: list[Exception] = []
    rx.of(object()).pipe(rxr.idempotent(store, key="k", name="charge")).subscribe(
        on_error=errors.append
    )
    assert [type(e) for e in errors] == [rxr.IdempotencyCodecError]
    assert _kinds(seen) == ["idempotency.claimed", "idempotency.codec_error"]


def test_idempotency_reports_a_claim_lost_while_running_once(
    seen: list[TelemetryEvent],
) -> None:
    store = rxr.InMemoryIdempotencyStore()
    flaky = Flaky(store)  # a real store whose renewal can answer "not yours"
    scheduler = TestScheduler()
    errors: list[Exception] = []
    rx.timer(10.0).pipe(
        rxr.idempotent(flaky, key="order-2", in_progress_timeout=3.0, name="charge")
    ).subscribe(on_error=errors.append, scheduler=scheduler)
    scheduler.advance_to(1.5)  # renewed at 1: still ours
    flaky.not_yours = True
    scheduler.advance_to(30.0)  # the renewal at 2 hears "not yours"
    assert [type(e) for e in errors] == [rxr.IdempotencyClaimLostError]
    assert [(e.kind, e.policy, e.at) for e in seen] == [
        ("idempotency.claimed", "charge", 0.0),
        ("idempotency.claim_lost", "charge", 2.0),
    ]
    assert seen[1].error is errors[0]
    assert "order-2" not in repr(dict(seen[1].attributes))


# -- rate limiter ----------------------------------------------------------------------


def test_rate_limiter_reports_waits_and_refusals(seen: list[TelemetryEvent]) -> None:
    scheduler = TestScheduler()
    limiter = rxr.RateLimiter(1, per=2.0, scheduler=scheduler, name="api")
    rx.of(1).pipe(rxr.rate_limit(limiter)).subscribe(scheduler=scheduler)
    rx.of(2).pipe(rxr.rate_limit(limiter)).subscribe(scheduler=scheduler)
    rx.of(3).pipe(rxr.rate_limit(limiter, max_wait=0.0)).subscribe(
        on_error=lambda _e: None, scheduler=scheduler
    )
    scheduler.start()
    assert [(e.kind, e.policy) for e in seen] == [
        ("rate_limit.waited", "api"),
        ("rate_limit.refused", "api"),
    ]
    assert seen[0].attributes["delay"] == 2.0
    assert isinstance(seen[1].error, rxr.RateLimitedError)


# -- sagas -----------------------------------------------------------------------------


def test_a_saga_reports_a_failed_step_and_its_compensations(
    seen: list[TelemetryEvent],
) -> None:
    saga: rxr.Saga[int] = (
        rxr.Saga("order")
        .step("reserve", lambda c: rx.of(c + 1), lambda c: rx.empty())
        .step("bill", lambda c: rx.of(c + 1), lambda c: rx.throw(OSError("undo")))
        .step("ship", lambda c: rx.throw(ConnectionError("down")))
    )
    saga.execute(0, saga_id="s-1").subscribe(on_error=lambda _e: None)
    assert [(e.kind, e.policy, e.attributes.get("step")) for e in seen] == [
        ("saga.step_failed", "order", "ship"),
        ("saga.compensation_failed", "order", "bill"),
        ("saga.compensated", "order", "reserve"),
    ]
    assert all(e.attributes["saga_id"] == "s-1" for e in seen)
    assert isinstance(seen[0].error, ConnectionError)


def test_recovering_a_saga_nobody_knows_reports_recovery_failed(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    journal = rxr.InMemorySagaJournal()
    journal.begin("s-2", "lost", 0.0)  # a crashed run of a saga nobody knows now
    journal.append("s-2", rxr.JournalEntry("step_succeeded", "a", b"1"), 0.0)
    scheduler.advance_to(5.0)
    rxr.recover(journal, {}, stale_after=1.0, scheduler=scheduler).subscribe(
        on_error=lambda _e: None
    )
    scheduler.start()
    assert [(e.kind, e.policy) for e in seen] == [("saga.recovery_failed", "lost")]
    assert seen[0].attributes["saga_id"] == "s-2"


def test_a_run_whose_saga_is_taken_over_reports_ownership_lost(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    journal = rxr.InMemorySagaJournal()
    saga: rxr.Saga[int] = rxr.Saga("order*[?]", lease=30.0).step(
        "reserve",
        lambda c: rx.timer(5.0, scheduler=scheduler).pipe(ops.map(lambda _: c)),
        lambda c: rx.empty(),
    )
    outcomes: list[Any] = []
    saga.execute(0, journal=journal, saga_id="s-3").subscribe(
        outcomes.append, outcomes.append, scheduler=scheduler
    )
    scheduler.advance_to(1.0)
    # Another owner takes the saga (as a recoverer that judged it gone would):
    assert journal.take(
        "s-3", 1.0, owner="another", lease_until=100.0, stale_before=1000.0
    )
    scheduler.advance_to(50.0)  # the run hears it when it writes the step's end
    assert isinstance(outcomes[-1], rxr.SagaOwnershipLostError)
    lost = [e for e in seen if e.kind == "saga.ownership_lost"]
    assert [(e.policy, e.at) for e in lost] == [("order*[?]", 5.0)]
    assert dict(lost[0].attributes) == {"saga_id": "s-3", "reason": "taken over"}
    assert [e.kind for e in seen] == ["saga.ownership_lost"]


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: rxr.RetryPolicy(name=3),
        lambda: rxr.retry(3, name=b"x"),
        lambda: rxr.TimeoutPolicy(each=1.0, name=None),
        lambda: rxr.timeout(1.0, name=1),
        lambda: rxr.fallback(1, name=2),
        lambda: rxr.resilient(retry=2, name=["x"]),
        lambda: rxr.IdempotencyPolicy(rxr.InMemoryIdempotencyStore(), name=3),
        lambda: rxr.idempotent(rxr.InMemoryIdempotencyStore(), key="k", name=3),
        lambda: rxr.CircuitBreaker(name=3),
    ],
)
def test_a_name_that_is_not_a_string_is_a_type_error(make: Any) -> None:
    with pytest.raises(TypeError, match="name"):
        make()


def test_an_empty_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="name"):
        rxr.RetryPolicy(name="")
    with pytest.raises(ValueError, match="name"):
        rxr.TimeoutPolicy(each=1.0, name="")


def test_odd_characters_in_a_name_are_carried_literally(
    seen: list[TelemetryEvent],
) -> None:
    name = "pay*[?]%_{}'\" \\x"
    rx.throw(KeyError()).pipe(rxr.fallback(1, name=name)).subscribe()
    assert seen[0].policy == name


def test_the_policies_keep_working_with_a_name() -> None:
    policy = rxr.RetryPolicy(2, backoff=None, name="p")
    assert dataclasses.replace(policy, name="q").name == "q"
    assert rx.of(1).pipe(rxr.retry(policy)).run() == 1


def test_two_live_breakers_sharing_a_name_warn_once() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = rxr.CircuitBreaker(name="telemetry-twin")
        second = rxr.CircuitBreaker(name="telemetry-twin")
        third = rxr.CircuitBreaker(name="telemetry-twin")
        unnamed = [rxr.CircuitBreaker(), rxr.CircuitBreaker()]
    merged = [w for w in caught if "telemetry-twin" in str(w.message)]
    assert len(merged) == 1
    assert merged[0].category is RuntimeWarning
    assert merged[0].filename == __file__
    assert len(caught) == 1  # default names are not warned about
    del first, second, third, unnamed


def test_a_breaker_whose_namesake_is_gone_does_not_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rxr.CircuitBreaker(name="telemetry-successor")
        import gc

        gc.collect()
        rxr.CircuitBreaker(name="telemetry-successor")
    assert caught == []


def test_two_live_rate_limiters_sharing_a_name_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = rxr.RateLimiter(1, name="telemetry-limit")
        b = rxr.RateLimiter(1, name="telemetry-limit")
    assert len(caught) == 1
    assert caught[0].filename == __file__
    del a, b


def test_fallback_used_is_stamped_on_the_pipelines_clock_and_only_when_it_replaced(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(7.0)
    rx.throw(ValueError("down")).pipe(
        rxr.resilient(fallback="cached", scheduler=scheduler, name="f")
    ).subscribe()
    assert [(e.kind, e.at) for e in seen] == [("fallback.used", 7.0)]

    def broken(error: Exception) -> rx.Observable[str]:
        raise RuntimeError("the fallback's own bug")

    errors: list[Exception] = []
    rx.throw(ValueError("down")).pipe(rxr.fallback(broken, name="g")).subscribe(
        on_error=errors.append
    )
    assert [type(error) for error in errors] == [RuntimeError]
    assert [e.policy for e in seen] == ["f"]  # nothing replaced: nothing said


def test_saga_events_are_stamped_on_the_subscribe_time_scheduler_without_one_of_its_own(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(103.0)
    saga = (
        rxr.Saga[int]("order")
        .step("reserve", execute=lambda n: rx.of(n), compensate=lambda n: rx.empty())
        .step(
            "charge",
            execute=lambda n: rx.throw(ValueError("declined")),
            compensate=lambda n: rx.empty(),
        )
    )
    saga.run(0).subscribe(on_error=lambda error: None, scheduler=scheduler)
    scheduler.advance_to(110.0)
    stamped = [(e.kind, e.at) for e in seen if e.kind.startswith("saga.")]
    assert stamped == [("saga.step_failed", 103.0), ("saga.compensated", 103.0)]


def test_names_nothing_lives_under_any_more_are_forgotten() -> None:
    """Per-tenant names that come and go: the registry keeps what lives, not
    every name ever used (200,000 of them held 208 MB)."""
    import gc

    from rxresilience.telemetry import _registry

    for i in range(20_000):
        rxr.Bulkhead(1, name=f"tenant-{i}")
    gc.collect()
    rxr.Bulkhead(1, name="one-more")
    assert len(_registry._live) <= 2 * 1024 + 1
