"""rxr.telemetry.events: filters, delivery, detaching, threads, bad input."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience.telemetry import KINDS, TelemetryEvent, _bus, events


def _fire(kind: str = "retry.scheduled", policy: str = "p", at: float = 0.0) -> None:
    if _bus.listening:
        _bus.emit(kind, policy, at)


def test_the_event_is_frozen_and_slotted() -> None:
    event = TelemetryEvent("retry.scheduled", "p", 1.0)
    assert not hasattr(event, "__dict__")
    with pytest.raises(AttributeError):
        event.kind = "x"  # type: ignore[misc]
    assert dict(event.attributes) == {}


def test_events_are_filtered_by_kind_and_policy() -> None:
    everything: list[TelemetryEvent] = []
    retries: list[TelemetryEvent] = []
    payments: list[TelemetryEvent] = []
    subscriptions = [
        events().subscribe(everything.append),
        events(kinds=["retry.scheduled", "retry.exhausted"]).subscribe(retries.append),
        events(policies="payments").subscribe(payments.append),
    ]
    try:
        _fire("retry.scheduled", "payments")
        _fire("breaker.refused", "payments")
        _fire("retry.exhausted", "search")
    finally:
        for subscription in subscriptions:
            subscription.dispose()
    assert [e.kind for e in everything] == [
        "retry.scheduled",
        "breaker.refused",
        "retry.exhausted",
    ]
    assert [(e.kind, e.policy) for e in retries] == [
        ("retry.scheduled", "payments"),
        ("retry.exhausted", "search"),
    ]
    assert [e.kind for e in payments] == ["retry.scheduled", "breaker.refused"]


def test_one_event_object_is_shared_by_the_subscribers() -> None:
    first: list[TelemetryEvent] = []
    second: list[TelemetryEvent] = []
    a = events().subscribe(first.append)
    b = events().subscribe(second.append)
    try:
        _fire()
    finally:
        a.dispose()
        b.dispose()
    assert first[0] is second[0]


def test_an_unknown_kind_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'retry\.sheduled'") as raised:
        events(kinds=["retry.sheduled"])
    for kind in KINDS:
        assert kind in str(raised.value)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"kinds": 3}, TypeError),
        ({"kinds": [b"retry.scheduled"]}, TypeError),
        ({"policies": 3.5}, TypeError),
        ({"policies": [None]}, TypeError),
    ],
)
def test_filters_of_the_wrong_type_are_refused(
    arguments: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        events(**arguments)


def test_disposing_detaches_and_the_bus_goes_quiet() -> None:
    assert not _bus.listening
    seen: list[TelemetryEvent] = []
    subscription = events().subscribe(seen.append)
    assert _bus.listening
    _fire()
    subscription.dispose()
    assert not _bus.listening
    _bus.emit("retry.scheduled", "p", 0.0)  # even called directly: nobody gets it
    assert len(seen) == 1
    subscription.dispose()  # twice is harmless


def test_a_subscriber_that_raises_is_detached_and_told_the_others_carry_on() -> None:
    told: list[Exception] = []
    seen: list[TelemetryEvent] = []

    def bad(_event: TelemetryEvent) -> None:
        raise RuntimeError("subscriber bug")

    broken = events().subscribe(bad, told.append)
    good = events().subscribe(seen.append)
    try:
        _fire()
        _fire()
    finally:
        broken.dispose()
        good.dispose()
    assert [type(e) for e in told] == [RuntimeError]
    assert len(seen) == 2


def test_a_raising_subscriber_never_fails_the_operator() -> None:
    def bad(_event: TelemetryEvent) -> None:
        raise RuntimeError("subscriber bug")

    broken = events().subscribe(bad)  # no on_error: the default raises; logged
    try:
        failing = rx.throw(ConnectionError("down"))
        errors: list[Exception] = []
        failing.pipe(rxr.retry(3, backoff=None)).subscribe(on_error=errors.append)
    finally:
        broken.dispose()
    assert [type(e) for e in errors] == [ConnectionError]
    assert not _bus.listening


def test_events_from_eight_threads_reach_every_subscriber_exactly_once() -> None:
    threads_count, per_thread = 8, 500
    sinks: list[list[TelemetryEvent]] = [[] for _ in range(3)]
    locks = [threading.Lock() for _ in sinks]

    def collector(i: int) -> Any:
        def collect(event: TelemetryEvent) -> None:
            with locks[i]:
                sinks[i].append(event)

        return collect

    subscriptions = [events().subscribe(collector(i)) for i in range(len(sinks))]
    barrier = threading.Barrier(threads_count)

    def work(thread: int) -> None:
        barrier.wait()
        for n in range(per_thread):
            _bus.emit("retry.scheduled", f"t{thread}", float(n), attempt=n)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for subscription in subscriptions:
        subscription.dispose()
    for sink in sinks:
        assert len(sink) == threads_count * per_thread
        assert len({id(e) for e in sink}) == threads_count * per_thread
        for t in range(threads_count):  # each thread's events in its own order
            mine = [e.attempt for e in sink if e.policy == f"t{t}"]
            assert mine == list(range(per_thread))


def test_subscribers_coming_and_going_under_load_lose_nothing_of_the_others() -> None:
    seen: list[TelemetryEvent] = []
    lock = threading.Lock()

    def collect(event: TelemetryEvent) -> None:
        with lock:
            seen.append(event)

    steady = events().subscribe(collect)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            events().subscribe(lambda _e: None).dispose()

    churner = threading.Thread(target=churn)
    churner.start()
    workers = [
        threading.Thread(
            target=lambda: [_bus.emit("fallback.used", "f", 0.0) for _ in range(1000)]
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    churner.join()
    steady.dispose()
    assert len(seen) == 4000
    assert not _bus.listening


def test_the_library_itself_cannot_emit_an_unknown_kind() -> None:
    subscription = events().subscribe(lambda _e: None)
    try:
        with pytest.raises(ValueError, match="unknown telemetry event kind"):
            _bus.emit("retry.typo", "p", 0.0)
    finally:
        subscription.dispose()


def test_importing_the_package_imports_no_adapter_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rxresilience, rxresilience.telemetry; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('opentelemetry', 'prometheus_client')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
