"""Telemetry as Prometheus metrics: ``register(registry=None)``.

Needs ``prometheus_client`` (``pip install rxresilience[prometheus]``).
Adds to the registry (default: ``prometheus_client.REGISTRY``):

- ``rxresilience_events_total{policy,event}``: a counter of every event;
- ``rxresilience_call_duration_seconds{policy}``: a histogram of the calls a
  breaker settled;
- ``rxresilience_breaker_state{policy,state}``: per breaker name and state,
  how many live breakers were last known in that state (1 or 0 for a
  breaker with its own name). A scrape reads the states this process last
  saw: it never waits on Redis.

Labels hold only policy names, event kinds and states: never keys, saga ids
or messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from ._event import TelemetryEvent
from ._states import state_readings
from ._stream import events

__all__ = ["METRICS", "register"]

#: The names of the metrics families this adapter exports.
METRICS: tuple[str, ...] = (
    "rxresilience_events_total",
    "rxresilience_call_duration_seconds",
    "rxresilience_breaker_state",
)

_CALLS = frozenset({"breaker.succeeded", "breaker.failed"})


class _BreakerStates(Collector):
    """The ``rxresilience_breaker_state`` gauge, read at each scrape."""

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "rxresilience_breaker_state",
            "Live circuit breakers per name, in each state as last known",
            labels=["policy", "state"],
        )
        for name, state, count in state_readings():
            gauge.add_metric([name, state], count)
        yield gauge


def register(registry: CollectorRegistry | None = None) -> abc.DisposableBase:
    """Export every telemetry event to ``registry``; dispose to unregister.

    Examples:
        >>> from prometheus_client import CollectorRegistry
        >>> from rxresilience.telemetry import prometheus as telemetry_prometheus
        >>> registration = telemetry_prometheus.register(CollectorRegistry())
        >>> registration.dispose()

    Args:
        registry: where the collectors go; default ``prometheus_client.REGISTRY``.

    Returns:
        A disposable that stops the recording and unregisters the collectors.

    Raises:
        ValueError: the registry already has these metrics (registered twice).
    """
    chosen = REGISTRY if registry is None else registry
    counter = Counter(
        "rxresilience_events",
        "rxresilience events by policy and kind",
        ["policy", "event"],
        registry=None,
    )
    calls = Histogram(
        "rxresilience_call_duration_seconds",
        "Duration of the calls a circuit breaker settled",
        ["policy"],
        registry=None,
    )
    states = _BreakerStates()
    collectors: list[Collector] = []
    made: tuple[Collector, ...] = (counter, calls, states)
    try:
        for collector in made:
            chosen.register(collector)
            collectors.append(collector)
    except Exception:
        for collector in collectors:
            chosen.unregister(collector)
        raise

    def record(event: TelemetryEvent) -> None:
        counter.labels(event.policy, event.kind).inc()
        if event.duration is not None and event.kind in _CALLS:
            calls.labels(event.policy).observe(event.duration)

    def unregister() -> None:
        for collector in collectors:
            with contextlib.suppress(KeyError):  # already gone
                chosen.unregister(collector)

    return CompositeDisposable(events().subscribe(record), Disposable(unregister))
