"""Bulkheads and hedges report their events, named, timed on the operator's scheduler."""

from __future__ import annotations

import gc
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.telemetry import TelemetryEvent, _bus, events
from rxresilience.testing import assert_no_pending


@pytest.fixture
def seen() -> Iterator[list[TelemetryEvent]]:
    received: list[TelemetryEvent] = []
    subscription = events().subscribe(received.append)
    yield received
    subscription.dispose()


def _answering(
    scheduler: TestScheduler, latencies: list[float | Exception]
) -> rx.Observable[str]:
    """Subscription k answers ``latencies[k]`` ticks after it starts (an
    exception: fails then), with ``"a<k+1>"``; later ones never answer."""
    count = [0]

    def subscribe(observer: abc.ObserverBase[str], _: Any = None) -> Any:
        count[0] += 1
        number = count[0]
        if number > len(latencies):
            return Disposable()
        latency = latencies[number - 1]

        def answer(*_: Any) -> None:
            if isinstance(latency, Exception):
                observer.on_error(latency)
            else:
                observer.on_next(f"a{number}")
                observer.on_completed()

        delay = 1.0 if isinstance(latency, Exception) else latency
        return scheduler.schedule_relative(delay, answer)

    return rx.create(subscribe)


def _facts(seen: list[TelemetryEvent]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.policy, e.at, e.attempt, e.duration) for e in seen]


# -- bulkhead --------------------------------------------------------------------------


def test_a_bulkhead_reports_each_queued_call_with_the_depth_and_each_refusal(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    shared = rxr.Bulkhead(1, max_queue=2, name="wiring-inventory")
    errors: list[Exception] = []
    scheduler.advance_to(4.0)
    for _ in range(4):
        rx.timer(3.0).pipe(rxr.bulkhead(shared)).subscribe(
            on_error=errors.append, scheduler=scheduler
        )
    scheduler.start()
    assert [(e.kind, e.policy, e.at) for e in seen] == [
        ("bulkhead.queued", "wiring-inventory", 4.0),
        ("bulkhead.queued", "wiring-inventory", 4.0),
        ("bulkhead.rejected", "wiring-inventory", 4.0),
    ]
    assert [e.attributes.get("depth") for e in seen[:2]] == [1, 2]
    assert seen[2].error is errors[0]
    assert seen[2].attributes["reason"] == "queue full"
    assert shared.metrics().rejected == 1


def test_a_wait_that_runs_out_is_reported_as_rejected_at_that_instant(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    shared = rxr.Bulkhead(1, max_queue=1, max_wait=2.0, name="wiring-waits")
    rx.never().pipe(rxr.bulkhead(shared)).subscribe(scheduler=scheduler)
    errors: list[Exception] = []
    scheduler.advance_to(1.0)
    rx.of(1).pipe(rxr.bulkhead(shared)).subscribe(
        on_error=errors.append, scheduler=scheduler
    )
    scheduler.advance_to(10.0)
    assert [(e.kind, e.at) for e in seen] == [
        ("bulkhead.queued", 1.0),
        ("bulkhead.rejected", 3.0),
    ]
    assert seen[1].error is errors[0]
    assert seen[1].attributes["reason"] == "wait exceeded"


def test_calls_that_get_a_slot_report_nothing(seen: list[TelemetryEvent]) -> None:
    shared = rxr.Bulkhead(2)
    for value in range(5):
        assert rx.of(value).pipe(rxr.bulkhead(shared)).run() == value
    assert seen == []


def test_a_queued_call_that_gets_its_slot_reports_only_that_it_waited(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    shared = rxr.Bulkhead(1, max_queue=1, max_wait=5.0)
    results: list[int] = []
    for value in (1, 2):
        rx.timer(2.0).pipe(rxr.bulkhead(shared)).subscribe(
            lambda _v, value=value: results.append(value), scheduler=scheduler
        )
    scheduler.start()
    assert results == [1, 2]
    assert [(e.kind, e.policy) for e in seen] == [("bulkhead.queued", "bulkhead")]
    assert_no_pending(scheduler)


def test_a_queued_call_disposed_before_its_wait_ran_out_reports_no_refusal(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    shared = rxr.Bulkhead(1, max_queue=1, max_wait=2.0)
    rx.never().pipe(rxr.bulkhead(shared)).subscribe(scheduler=scheduler)
    waiting = rx.of(1).pipe(rxr.bulkhead(shared)).subscribe(scheduler=scheduler)
    scheduler.advance_to(1.0)
    waiting.dispose()
    scheduler.advance_to(10.0)
    assert [(e.kind, e.at) for e in seen] == [("bulkhead.queued", 0.0)]
    assert shared.metrics().rejected == 0
    assert_no_pending(scheduler)


def test_the_operator_scheduler_times_the_events(seen: list[TelemetryEvent]) -> None:
    own = TestScheduler()
    own.advance_to(7.0)
    shared = rxr.Bulkhead(1)
    held = Subject[int]()
    held.pipe(rxr.bulkhead(shared)).subscribe()
    rx.of(1).pipe(rxr.bulkhead(shared, scheduler=own)).subscribe(
        on_error=lambda _e: None, scheduler=TestScheduler()
    )
    assert [(e.kind, e.at) for e in seen] == [("bulkhead.rejected", 7.0)]


def test_refusals_from_eight_threads_are_each_reported_exactly_once(
    seen: list[TelemetryEvent],
) -> None:
    shared = rxr.Bulkhead(1, name="wiring-threads")
    held = Subject[int]()
    held.pipe(rxr.bulkhead(shared)).subscribe()
    refused = rx.of(1).pipe(rxr.bulkhead(shared))
    other: list[TelemetryEvent] = []
    second = events(kinds=["bulkhead.rejected"]).subscribe(other.append)
    errors: list[list[Exception]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def hammer(mine: list[Exception]) -> None:
        barrier.wait()
        for _ in range(200):
            refused.subscribe(on_error=mine.append)

    threads = [threading.Thread(target=hammer, args=(e,)) for e in errors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    second.dispose()
    assert sum(len(e) for e in errors) == 1600
    assert len(seen) == len(other) == 1600
    assert {id(e.error) for e in seen} == {id(e) for mine in errors for e in mine}
    assert shared.metrics().rejected == 1600


def test_a_failing_telemetry_report_never_harms_the_bulkhead(
    seen: list[TelemetryEvent],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("telemetry broke")

    monkeypatch.setattr(_bus, "emit", broken)
    scheduler = TestScheduler()
    shared = rxr.Bulkhead(1, max_queue=1, max_wait=1.0)
    results: list[Any] = []
    rx.timer(5.0).pipe(rxr.bulkhead(shared)).subscribe(
        results.append, scheduler=scheduler
    )
    for _ in range(2):  # queued (then refused by its wait), refused at once
        rx.of(1).pipe(rxr.bulkhead(shared)).subscribe(
            on_error=results.append, scheduler=scheduler
        )
    with caplog.at_level(logging.ERROR, logger="rxresilience"):
        scheduler.start()
    assert [type(r) for r in results] == [
        rxr.BulkheadFullError,
        rxr.BulkheadFullError,
        int,
    ]
    assert shared.metrics() == rxr.BulkheadMetrics(0, 0, 1, 2, 1)
    # queued, refused at once, refused by its wait: each logged, none raised
    assert len([r for r in caplog.records if "bulkhead" in r.getMessage()]) == 3


def test_two_live_bulkheads_sharing_a_name_warn_once() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = rxr.Bulkhead(1, name="telemetry-twin-bulkhead")
        second = rxr.Bulkhead(1, name="telemetry-twin-bulkhead")
        third = rxr.Bulkhead(1, name="telemetry-twin-bulkhead")
        unnamed = [rxr.Bulkhead(1), rxr.Bulkhead(1)]
        # A breaker of that name is another kind of series: no warning.
        breaker = rxr.CircuitBreaker(name="telemetry-twin-bulkhead")
    assert len(caught) == 1
    assert caught[0].category is RuntimeWarning
    assert caught[0].filename == __file__
    assert "bulkheads" in str(caught[0].message)
    del first, second, third, unnamed, breaker


def test_a_bulkhead_whose_namesake_is_gone_does_not_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rxr.Bulkhead(1, name="telemetry-successor-bulkhead")
        gc.collect()
        rxr.Bulkhead(1, name="telemetry-successor-bulkhead")
    assert caught == []


# -- hedge -------------------------------------------------------------------------------


def test_a_hedge_reports_each_hedge_started_and_the_winner_with_its_duration(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    source = _answering(scheduler, [10.0, 10.0, 1.0])
    results: list[str] = []
    source.pipe(rxr.hedge(2.0, max_hedges=3, name="quotes")).subscribe(
        results.append, scheduler=scheduler
    )
    scheduler.start()
    assert results == ["a3"]
    assert _facts(seen) == [
        ("hedge.started", "quotes", 2.0, 2, None),
        ("hedge.started", "quotes", 4.0, 3, None),
        ("hedge.won", "quotes", 5.0, 3, 1.0),
    ]
    assert_no_pending(scheduler)


def test_the_first_attempt_can_win_after_a_hedge_started(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    source = _answering(scheduler, [3.0, 10.0])
    source.pipe(rxr.hedge(2.0)).subscribe(scheduler=scheduler)
    scheduler.start()
    assert _facts(seen) == [
        ("hedge.started", "hedge", 2.0, 2, None),
        ("hedge.won", "hedge", 3.0, 1, 3.0),
    ]


def test_a_failure_starts_the_next_hedge_at_once_and_it_is_reported_then(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    source = _answering(scheduler, [ConnectionError("down"), 2.0])
    source.pipe(rxr.hedge(5.0, name="quotes")).subscribe(scheduler=scheduler)
    scheduler.start()
    assert _facts(seen) == [
        ("hedge.started", "quotes", 1.0, 2, None),
        ("hedge.won", "quotes", 3.0, 2, 2.0),
    ]


def test_a_call_answered_before_any_hedge_reports_nothing(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    _answering(scheduler, [1.0]).pipe(rxr.hedge(2.0)).subscribe(scheduler=scheduler)
    rx.of(1).pipe(rxr.hedge(0.5)).run()
    scheduler.start()
    assert seen == []


def test_every_attempt_failing_reports_only_the_hedges(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    down = ConnectionError("down")
    errors: list[Exception] = []
    _answering(scheduler, [down, down]).pipe(rxr.hedge(5.0)).subscribe(
        on_error=errors.append, scheduler=scheduler
    )
    scheduler.start()
    assert errors == [down]
    assert _facts(seen) == [("hedge.started", "hedge", 1.0, 2, None)]


def test_a_hedge_policy_carries_its_name_and_the_operator_may_rename_it(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    policy = rxr.HedgePolicy(1.0, name="search")
    assert policy.name == "search"
    assert rxr.HedgePolicy(1.0).name == "hedge"
    _answering(scheduler, [5.0, 1.0]).pipe(rxr.hedge(policy)).subscribe(
        scheduler=scheduler
    )
    _answering(scheduler, [5.0, 1.0]).pipe(
        rxr.hedge(policy, name="renamed", scheduler=scheduler)
    ).subscribe()
    scheduler.start()
    assert [(e.kind, e.policy) for e in seen] == [
        ("hedge.started", "search"),
        ("hedge.started", "renamed"),
        ("hedge.won", "search"),
        ("hedge.won", "renamed"),
    ]
    assert policy.name == "search"  # renaming makes a new policy


def test_hedge_events_carry_the_context_captured_at_subscribe_time(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    current = ["span-at-subscribe"]
    hook = _bus.trace_with(lambda: current[0])
    try:
        _answering(scheduler, [5.0, 1.0]).pipe(rxr.hedge(1.0)).subscribe(
            scheduler=scheduler
        )
        current[0] = "span-of-the-timer"
        scheduler.start()
    finally:
        hook.dispose()
    assert [(e.kind, e.context) for e in seen] == [
        ("hedge.started", "span-at-subscribe"),
        ("hedge.won", "span-at-subscribe"),
    ]


def test_the_parts_inside_a_hedge_report_to_the_subscribers_context(
    seen: list[TelemetryEvent],
) -> None:
    """A hedge subscribed from its timer passes the subscribe-time context on."""
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(scheduler=scheduler, name="wiring-inner-hedged")
    current = ["span-at-subscribe"]
    hook = _bus.trace_with(lambda: current[0])
    try:
        rx.never().pipe(rxr.circuit_breaker(breaker), rxr.hedge(1.0)).subscribe(
            scheduler=scheduler
        )
        current[0] = "span-of-the-timer"
        breaker.force_open()
        scheduler.advance_to(2.0)
    finally:
        hook.dispose()
    assert [
        (e.kind, e.attempt, e.context)
        for e in seen
        if e.kind != "breaker.state_changed"
    ] == [
        ("hedge.started", 2, "span-at-subscribe"),
        ("breaker.refused", None, "span-at-subscribe"),
    ]


def test_the_parts_inside_a_queued_call_report_to_the_subscribers_context(
    seen: list[TelemetryEvent],
) -> None:
    """A call started late, as a slot frees, passes its subscribe-time context on."""
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(scheduler=scheduler, name="wiring-inner-queued")
    breaker.force_open()
    shared = rxr.Bulkhead(1, max_queue=1)
    current = ["span-at-subscribe"]
    hook = _bus.trace_with(lambda: current[0])
    try:
        rx.timer(1.0).pipe(rxr.bulkhead(shared)).subscribe(scheduler=scheduler)
        rx.of(1).pipe(rxr.circuit_breaker(breaker), rxr.bulkhead(shared)).subscribe(
            on_error=lambda _e: None, scheduler=scheduler
        )
        current[0] = "span-of-the-freeing-call"
        scheduler.start()
    finally:
        hook.dispose()
    assert [
        (e.kind, e.at, e.context) for e in seen if e.kind != "breaker.state_changed"
    ] == [
        ("bulkhead.queued", 0.0, "span-at-subscribe"),
        ("breaker.refused", 1.0, "span-at-subscribe"),
    ]


def test_listening_that_begins_after_the_subscription_still_reports_the_hedges() -> (
    None
):
    scheduler = TestScheduler()
    _answering(scheduler, [5.0, 1.0]).pipe(rxr.hedge(1.0)).subscribe(
        scheduler=scheduler
    )
    late: list[TelemetryEvent] = []
    subscription = events().subscribe(late.append)
    try:
        scheduler.start()
    finally:
        subscription.dispose()
    # Nobody listened as attempt 1 started (it was never timed): the hedge's
    # own events are complete all the same, without a context.
    assert _facts(late) == [
        ("hedge.started", "hedge", 1.0, 2, None),
        ("hedge.won", "hedge", 2.0, 2, 1.0),
    ]


def test_a_failing_telemetry_report_never_harms_the_hedge(
    seen: list[TelemetryEvent],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("telemetry broke")

    monkeypatch.setattr(_bus, "emit", broken)
    scheduler = TestScheduler()
    results: list[str] = []
    with caplog.at_level(logging.ERROR, logger="rxresilience"):
        _answering(scheduler, [5.0, 1.0]).pipe(rxr.hedge(1.0)).subscribe(
            results.append, scheduler=scheduler
        )
        scheduler.start()
    assert results == ["a2"]
    assert len([r for r in caplog.records if "hedge" in r.getMessage()]) == 2
    assert_no_pending(scheduler)


def test_disposing_a_hedged_call_reports_no_winner(
    seen: list[TelemetryEvent],
) -> None:
    scheduler = TestScheduler()
    subscription = (
        _answering(scheduler, [5.0, 5.0])
        .pipe(rxr.hedge(1.0))
        .subscribe(scheduler=scheduler)
    )
    scheduler.advance_to(2.0)
    subscription.dispose()
    scheduler.start()
    assert _facts(seen) == [("hedge.started", "hedge", 1.0, 2, None)]
    assert_no_pending(scheduler)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rxr.Bulkhead(1, name=3),
        lambda: rxr.Bulkhead(1, name=None),
        lambda: rxr.HedgePolicy(1.0, name=3),
        lambda: rxr.hedge(1.0, name=b"x"),
        lambda: rxr.hedge(rxr.HedgePolicy(1.0), name=["x"]),
    ],
)
def test_a_name_that_is_not_a_string_is_a_type_error(make: Any) -> None:
    with pytest.raises(TypeError, match="name"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: rxr.Bulkhead(1, name=""),
        lambda: rxr.HedgePolicy(1.0, name=""),
        lambda: rxr.hedge(1.0, name=""),
        lambda: rxr.hedge(rxr.HedgePolicy(1.0), name=""),
    ],
)
def test_an_empty_name_is_a_value_error(make: Any) -> None:
    with pytest.raises(ValueError, match="name"):
        make()


def test_odd_characters_in_a_bulkhead_or_hedge_name_are_carried_literally(
    seen: list[TelemetryEvent],
) -> None:
    name = "inv*[?]%_{}'\" \\x"
    shared = rxr.Bulkhead(1, name=name)
    Subject[int]().pipe(rxr.bulkhead(shared)).subscribe()
    rx.of(1).pipe(rxr.bulkhead(shared)).subscribe(on_error=lambda _e: None)
    scheduler = TestScheduler()
    _answering(scheduler, [5.0, 1.0]).pipe(rxr.hedge(1.0, name=name)).subscribe(
        scheduler=scheduler
    )
    scheduler.start()
    assert {e.policy for e in seen} == {name}
    assert len(seen) == 3
