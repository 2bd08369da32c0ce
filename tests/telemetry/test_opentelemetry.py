"""The OpenTelemetry adapter, with the real SDK's in-memory reader and exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.telemetry import _bus
from rxresilience.telemetry import opentelemetry as telemetry_otel


class _Otel:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.exporter = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.tracers.get_tracer("tests")

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[_Otel]:
    setup = _Otel()
    instrumentation = telemetry_otel.instrument(setup.meters, setup.tracers)
    yield setup
    instrumentation.dispose()
    assert not _bus.listening


def _failing_retry(otel: _Otel, scheduler: TestScheduler) -> rxr.CircuitBreaker:
    breaker = rxr.CircuitBreaker(
        failure_threshold=2, reset_timeout=1e6, scheduler=scheduler, name="otel-pay"
    )
    source = rx.timer(1.0, scheduler=scheduler).pipe(
        rx.operators.flat_map(lambda _: rx.throw(ConnectionError("down")))
    )
    span = otel.tracer.start_span("checkout")
    with trace.use_span(span, end_on_exit=False):  # current while subscribing
        source.pipe(
            rxr.circuit_breaker(breaker),
            rxr.retry(3, backoff=1.0, max_refusal_wait=0.0, name="pay-retry"),
        ).subscribe(on_error=lambda _e: None, scheduler=scheduler)
    assert not trace.get_current_span().is_recording()
    scheduler.start()  # the timers fire with no current span
    span.end()
    return breaker


def test_events_are_counted_with_low_cardinality_attributes(otel: _Otel) -> None:
    _failing_retry(otel, TestScheduler())
    counts = {
        tuple(sorted(point.attributes.items())): point.value
        for point in otel.points("rxresilience.events")
    }
    assert counts == {
        (
            ("error.type", "ConnectionError"),
            ("rxresilience.event", "retry.scheduled"),
            ("rxresilience.policy", "pay-retry"),
        ): 2,
        (
            ("error.type", "rxresilience.errors.CircuitOpenError"),
            ("rxresilience.event", "retry.exhausted"),
            ("rxresilience.policy", "pay-retry"),
        ): 1,
        (
            ("error.type", "ConnectionError"),
            ("rxresilience.breaker.state", "closed"),
            ("rxresilience.event", "breaker.failed"),
            ("rxresilience.policy", "otel-pay"),
        ): 1,
        (
            ("error.type", "ConnectionError"),
            ("rxresilience.breaker.state", "open"),
            ("rxresilience.event", "breaker.failed"),
            ("rxresilience.policy", "otel-pay"),
        ): 1,
        (
            ("rxresilience.breaker.state", "open"),
            ("rxresilience.event", "breaker.state_changed"),
            ("rxresilience.policy", "otel-pay"),
        ): 1,
        (
            ("error.type", "rxresilience.errors.CircuitOpenError"),
            ("rxresilience.breaker.state", "open"),
            ("rxresilience.event", "breaker.refused"),
            ("rxresilience.policy", "otel-pay"),
        ): 1,
    }


def test_durations_go_to_the_call_and_attempt_histograms(otel: _Otel) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(scheduler=scheduler, name="search")
    rx.timer(2.0).pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    failing = rx.timer(3.0).pipe(
        rx.operators.flat_map(lambda _: rx.throw(ConnectionError("down")))
    )
    failing.pipe(rxr.retry(2, backoff=None, name="r")).subscribe(
        on_error=lambda _e: None, scheduler=scheduler
    )
    scheduler.start()
    (call,) = otel.points("rxresilience.call.duration")
    assert dict(call.attributes) == {
        "rxresilience.policy": "search",
        "rxresilience.breaker.state": "closed",
    }
    assert (call.count, call.sum) == (1, 2.0)
    attempts = otel.points("rxresilience.attempt.duration")
    assert sum(point.count for point in attempts) == 2
    assert sum(point.sum for point in attempts) == 6.0


def test_the_breaker_state_gauge_reports_last_known_states(otel: _Otel) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(failure_threshold=1, scheduler=scheduler, name="g1")
    breaker.admit().failure(ConnectionError("down"))
    readings = {
        point.attributes["rxresilience.breaker.state"]: point.value
        for point in otel.points("rxresilience.breaker.state")
        if point.attributes["rxresilience.policy"] == "g1"
    }
    assert readings == {
        "closed": 0,
        "open": 1,
        "half-open": 0,
        "forced-open": 0,
        "disabled": 0,
    }
    del breaker


def test_retries_refusals_and_timeouts_are_span_events_of_the_subscriber_span(
    otel: _Otel,
) -> None:
    scheduler = TestScheduler()
    span = otel.tracer.start_span("search")
    with trace.use_span(span, end_on_exit=False):
        rx.never().pipe(rxr.timeout(5.0, name="t")).subscribe(
            on_error=lambda _e: None, scheduler=scheduler
        )
    breaker = _failing_retry(otel, scheduler)
    span.end()
    with otel.tracer.start_as_current_span("again"):  # refused at subscribe time
        rx.of(1).pipe(
            rxr.circuit_breaker(breaker), rxr.retry(3, max_refusal_wait=0.0)
        ).subscribe(on_error=lambda _e: None, scheduler=scheduler)
    spans = {span.name: span for span in otel.exporter.get_finished_spans()}
    checkout = [event.name for event in spans["checkout"].events]
    # The refusal in the last attempt happened on a timer thread, where no
    # span is current: the retry carried its subscriber's context to it.
    assert checkout == [
        "retry.scheduled",
        "retry.scheduled",
        "breaker.refused",
        "retry.exhausted",
    ]
    again = [event.name for event in spans["again"].events]
    assert again == ["breaker.refused", "retry.exhausted"]
    first = spans["checkout"].events[0]
    assert first.attributes is not None
    assert first.attributes["rxresilience.attempt"] == 1
    assert first.attributes["rxresilience.delay"] == 1.0
    assert [event.name for event in spans["search"].events] == ["timeout.expired"]


def test_a_noop_tracer_provider_turns_span_events_off() -> None:
    setup = _Otel()
    instrumentation = telemetry_otel.instrument(
        setup.meters, trace.NoOpTracerProvider()
    )
    try:
        with setup.tracer.start_as_current_span("quiet"):
            rx.throw(KeyError()).pipe(rxr.retry(2, backoff=None)).subscribe(
                on_error=lambda _e: None
            )
    finally:
        instrumentation.dispose()
    (span,) = setup.exporter.get_finished_spans()
    assert span.events == ()
    assert setup.points("rxresilience.events")


def test_disposing_stops_recording() -> None:
    setup = _Otel()
    telemetry_otel.instrument(setup.meters, setup.tracers).dispose()
    rx.throw(KeyError()).pipe(rxr.retry(2, backoff=None)).subscribe(
        on_error=lambda _e: None
    )
    assert setup.points("rxresilience.events") == []
    assert setup.points("rxresilience.breaker.state") == []


def test_error_type_is_the_qualified_type_name() -> None:
    assert telemetry_otel.error_type(KeyError()) == "KeyError"
    assert (
        telemetry_otel.error_type(rxr.TimeoutError("each", 1.0))
        == "rxresilience.errors.TimeoutError"
    )


def test_instrumenting_again_after_a_dispose_reports_the_gauge_again() -> None:
    """OpenTelemetry keeps a provider's first gauge and drops a later one's
    callback: a second instrumentation used to leave the gauge empty."""
    setup = _Otel()
    telemetry_otel.instrument(setup.meters, setup.tracers).dispose()
    again = telemetry_otel.instrument(setup.meters, setup.tracers)
    try:
        breaker = rxr.CircuitBreaker(failure_threshold=1, name="again")
        breaker.admit().failure(ConnectionError("down"))
        points = [
            point
            for point in setup.points("rxresilience.breaker.state")
            if point.attributes["rxresilience.policy"] == "again"
        ]
        assert {p.attributes["rxresilience.breaker.state"]: p.value for p in points}[
            "open"
        ] == 1
    finally:
        again.dispose()


def test_instrumenting_one_provider_twice_is_refused() -> None:
    setup = _Otel()
    first = telemetry_otel.instrument(setup.meters, setup.tracers)
    try:
        with pytest.raises(ValueError, match="instrumented on this meter provider"):
            telemetry_otel.instrument(setup.meters, setup.tracers)
    finally:
        first.dispose()
    assert not _bus.listening
