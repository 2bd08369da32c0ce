"""Telemetry as OpenTelemetry metrics and span events: ``instrument(...)``.

Needs only ``opentelemetry-api`` at run time (``pip install
rxresilience[otel]``); the application brings the SDK and its exporters.

Instruments (meter ``"rxresilience"``):

- ``rxresilience.events``: a counter of every event;
- ``rxresilience.call.duration``: a histogram, in seconds, of the calls a
  breaker settled (``breaker.succeeded``, ``breaker.failed``);
- ``rxresilience.attempt.duration``: a histogram, in seconds, of the retried
  attempts that failed (the events of a retry that carry a duration);
- ``rxresilience.breaker.state``: an observable gauge, per breaker name and
  state, of how many live breakers were last known in that state (no round
  trip to a shared storage in a collection).

Attributes are only ``rxresilience.policy``, ``rxresilience.event``,
``rxresilience.breaker.state`` and ``error.type`` (the error's qualified type
name): never keys, saga ids or messages, which would explode cardinality.

Retries, refusals and timeouts also become span events on the span that was
current when the pipeline was subscribed (captured then: the timer threads a
retry or a timeout fires on do not carry the context), else on the span
current where the event happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics, trace
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from .._child_safe_lock import ChildSafeLock
from .._weak_identity_map import WeakIdentityMap
from ._bus import trace_with
from ._event import TelemetryEvent
from ._states import state_readings
from ._stream import events

__all__ = ["SPAN_EVENT_KINDS", "instrument"]

#: The kinds added to the subscriber's span as span events.
SPAN_EVENT_KINDS = frozenset(
    {
        "retry.scheduled",
        "retry.refusal_waited",
        "retry.exhausted",
        "retry.gave_up",
        "breaker.refused",
        "rate_limit.refused",
        "bulkhead.rejected",
        "timeout.expired",
    }
)

_CALLS = frozenset({"breaker.succeeded", "breaker.failed"})
_ATTEMPTS = frozenset({"retry.scheduled", "retry.exhausted", "retry.gave_up"})


def error_type(error: BaseException) -> str:
    """The qualified type name of ``error``, as ``error.type`` takes it."""
    kind = type(error)
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def _attributes(event: TelemetryEvent) -> dict[str, str]:
    attributes = {"rxresilience.policy": event.policy, "rxresilience.event": event.kind}
    state = event.attributes.get("state")
    if isinstance(state, str) and event.kind.startswith("breaker."):
        attributes["rxresilience.breaker.state"] = state
    if event.error is not None:
        attributes["error.type"] = error_type(event.error)
    return attributes


def instrument(
    meter_provider: metrics.MeterProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> abc.DisposableBase:
    """Record every telemetry event as OpenTelemetry metrics and span events.

    Examples:
        >>> from rxresilience.telemetry import opentelemetry as telemetry_otel
        >>> instrumentation = telemetry_otel.instrument()  # the global providers
        >>> instrumentation.dispose()

    Args:
        meter_provider: where the instruments are made; default the global
            one (``opentelemetry.metrics.get_meter_provider()``).
        tracer_provider: the provider of the application's spans; a
            ``NoOpTracerProvider`` turns span events off. Default: span
            events on, added to whatever span is current.

    Returns:
        A disposable: disposing it stops recording (the gauge then reports
        nothing until the provider is instrumented again; OpenTelemetry
        cannot remove an instrument).

    Raises:
        ValueError: the provider is instrumented already (each event would
            count twice), as ``prometheus.register`` refuses a second time.
    """
    provider = (
        meter_provider if meter_provider is not None else metrics.get_meter_provider()
    )
    meter = provider.get_meter("rxresilience")
    # One gauge per provider, made once: OpenTelemetry keeps the first
    # instrument of a name and drops a later one's callback, so a gauge made
    # again (after a dispose) would never report.
    gauge = _gauges.setdefault(provider, lambda: _BreakerGauge(meter))
    with _lock:
        if gauge.live:
            raise ValueError(
                "rxresilience is instrumented on this meter provider already "
                "(every event would count twice): dispose that one first"
            )
        gauge.live = True
    counter = meter.create_counter(
        "rxresilience.events", unit="{event}", description="rxresilience events"
    )
    calls = meter.create_histogram(
        "rxresilience.call.duration",
        unit="s",
        description="Duration of the calls a circuit breaker settled",
    )
    attempts = meter.create_histogram(
        "rxresilience.attempt.duration",
        unit="s",
        description="Duration of the retried attempts that failed",
    )
    span_events = not isinstance(tracer_provider, trace.NoOpTracerProvider)

    def record(event: TelemetryEvent) -> None:
        attributes = _attributes(event)
        counter.add(1, attributes)
        duration = event.duration
        if duration is not None:
            if event.kind in _CALLS:
                calls.record(duration, _without_event(attributes))
            elif event.kind in _ATTEMPTS:
                attempts.record(duration, _without_event(attributes))
        if span_events and event.kind in SPAN_EVENT_KINDS:
            _add_span_event(event, attributes)

    parts: list[abc.DisposableBase] = [
        events().subscribe(record),
        Disposable(gauge.stop),
    ]
    if span_events:
        parts.append(trace_with(trace.get_current_span))
    return CompositeDisposable(parts)


class _BreakerGauge:
    """A provider's breaker-state gauge: reports while an instrumentation lives."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.live = False  # guarded by _lock
        meter.create_observable_gauge(
            "rxresilience.breaker.state",
            callbacks=[self._observe],
            unit="{breaker}",
            description="Live breakers per name, in each state as last known",
        )

    def stop(self) -> None:
        with _lock:
            self.live = False

    def _observe(
        self, _options: metrics.CallbackOptions
    ) -> Iterable[metrics.Observation]:
        if not self.live:
            return []
        return [
            metrics.Observation(
                count,
                {"rxresilience.policy": name, "rxresilience.breaker.state": state},
            )
            for name, state, count in state_readings()
        ]


_lock = ChildSafeLock()
_gauges: WeakIdentityMap[metrics.MeterProvider, _BreakerGauge] = WeakIdentityMap()


def _without_event(attributes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k != "rxresilience.event"}


def _add_span_event(event: TelemetryEvent, attributes: dict[str, str]) -> None:
    captured: Any = event.context
    span = (
        captured
        if isinstance(captured, trace.Span) and captured.is_recording()
        else trace.get_current_span()
    )
    if not span.is_recording():
        return
    details: dict[str, str | int | float] = dict(attributes)
    if event.attempt is not None:
        details["rxresilience.attempt"] = event.attempt
    delay = event.attributes.get("delay")
    if isinstance(delay, int | float):
        details["rxresilience.delay"] = float(delay)
    span.add_event(event.kind, details)
